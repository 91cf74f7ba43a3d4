"""Removing every stale lock of a listing, each exactly as it was judged.

Each removal is ``removal.remove_judged``: the ``.tflock`` object only with ``If-Match`` on
the ETag that was judged, the DynamoDB item only while its ``Info`` is the one judged. A
lock renewed between the listing and its removal is kept. Only ``stale`` is ever removed in
bulk: ``unknown`` (and any verdict that is not ``stale``) needs a person who knows the run
is gone, and ``tfwrap lock clear --id``.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from botocore.exceptions import BotoCoreError, ClientError

from tfwrap.lock import removal, verdict
from tfwrap.lock.listing import CONCURRENCY, Row


@dataclass
class Outcome:
    """What a bulk clear did, lock by lock: one sentence each."""

    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # stale when judged, changed before the delete
    refused: list[str] = field(default_factory=list)  # never removed in bulk (unknown, ...)
    failed: list[str] = field(default_factory=list)  # the store refused or did not answer

    @property
    def partial(self) -> bool:
        """Some stale lock was meant to go and did not."""
        return bool(self.kept or self.failed)

    def summary(self) -> str:
        return (
            f"{len(self.removed)} removed, {len(self.kept)} kept (changed since judged), "
            f"{len(self.refused)} refused (not stale), {len(self.failed)} failed"
        )


def plan(rows: list[Row], unsafe: Callable[[Row], str] = lambda _: "") -> tuple[list[Row], list[Row]]:
    """The rows a bulk clear removes (stale) and those it refuses (neither stale nor alive, or
    stale on a store whose probe says a removal by judgement is not exact there: ``unsafe``)."""
    stale = [r for r in rows if r.verdict == verdict.STALE and not unsafe(r)]
    refused = [r for r in rows if r.verdict not in (verdict.STALE, verdict.ALIVE) or unsafe(r)]
    return stale, refused


def refusal(row: Row, unsafe: Callable[[Row], str] = lambda _: "") -> str:
    v = row.found.verdict
    lock_id = v.lock_id if v else ""
    where = f" -chdir {row.stack}" if row.stack else ""
    why = unsafe(row)
    said = f"stale, but this endpoint's probe found {why}" if why else str(row.verdict)
    return (
        f"{row.found.where} is {said}, never removed in bulk; if you know that run is gone, "
        f"`tfwrap lock clear --id {lock_id}{where}`"
    )


def _remove(row: Row) -> removal.Removal | str:
    """The removal of one stale row, or why the store refused it (one line)."""
    try:
        return removal.remove_judged(row.found)
    except (BotoCoreError, ClientError) as exc:
        from tfwrap.aws.errors import classify

        failure = classify(exc, row.found.lockfile.s3.meta.endpoint_url)
        return f"cannot remove {row.found.where}: {failure.detail} [{failure.kind}]"


def clear_stale(
    rows: list[Row], concurrency: int = CONCURRENCY, unsafe: Callable[[Row], str] = lambda _: ""
) -> Outcome:
    """Remove every stale row exactly as judged; say what happened to each row not alive.
    ``unsafe``: why a row's store makes a removal by judgement inexact ("" when it does not)."""
    stale, refused = plan(rows, unsafe)
    out = Outcome(refused=[refusal(r, unsafe) for r in refused])
    with ThreadPoolExecutor(max(1, concurrency)) as pool:
        for done in pool.map(_remove, stale):
            if isinstance(done, str):
                out.failed.append(done)
            else:
                out.removed.extend(done.removed)
                out.kept.extend(done.kept)
    return out
