"""Stragglers: runs still on the old configuration (``dynamodb_table``, no ``use_lockfile``)
once the migration has begun, found by what they leave in the lock table, not by the clock.

After finalize such a run and a run on ``use_lockfile`` exclude nobody: each takes its own
lock and both write the state. The soak alone cannot tell that a pipeline was missed, so
tfwrap looks (docs/decisions/061-stragglers-by-evidence.md):

- ``lock``: a DynamoDB lock item ``<bucket>/<state key>`` with no ``.tflock`` of the same
  ``ID``. A run on the new configuration holds both with one ``ID``; one on the old
  configuration holds only the item. Read item, ``.tflock``, item again: Terraform releases
  the ``.tflock`` first, so an item gone on the second read was a release in progress.
- ``digest``: after finalize removed them, a digest item ``<bucket>/<state key>-md5``.
  Only a run configured with ``dynamodb_table`` writes it, and only when it writes the
  state: its time is the state object's ``Last-Modified`` (that run's write, or a later one).
- ``seen``: a ``lock`` found earlier by ``tfwrap migrate`` and recorded in the journal
  (``"stragglers"``), so a run that ended is still known by its ``Who`` and time.

``finalize`` refuses while a lock is held this way, or while any evidence is younger than
the soak; ``cleanup-table`` refuses while a lock is held, or while any evidence is newer than
finalize, whatever the soak. ``--ignore-stragglers`` overrides the second kind knowingly.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tfwrap.backend.journal import finalized_at
from tfwrap.timestamps import to_second

if TYPE_CHECKING:
    from tfwrap.migrate.journal import Journal
    from tfwrap.migrate.remote import Remote

OLD = "a run on the old configuration (dynamodb_table, no use_lockfile)"
OVERRIDE = "--ignore-stragglers"


@dataclass(frozen=True)
class Evidence:
    kind: str  # "lock" (held now), "digest" (written after finalize), "seen" (recorded earlier)
    lock_id: str  # the DynamoDB item's LockID
    who: str  # Terraform's Who (user@host), "" when not known
    at: str  # when, tfwrap's format: the lock's Created, the state's Last-Modified, or when seen
    operation: str = ""
    terraform_id: str = ""  # the lock's ID, for a lock

    @property
    def holder(self) -> str:
        op = f", {self.operation}" if self.operation else ""
        return f"{self.who or 'an unknown holder'}{op}"

    def describe(self) -> str:
        if self.kind == "lock":
            return (
                f"DynamoDB item LockID={self.lock_id} held by {self.holder} since {self.at} "
                f"(ID {self.terraform_id or '?'}), with no .tflock of that ID"
            )
        if self.kind == "digest":
            by = f" by {self.who}" if self.who else ""
            return (
                f"digest item LockID={self.lock_id} written after finalize{by}: the state was last "
                f"written at {self.at}"
            )
        return f"DynamoDB item LockID={self.lock_id} held by {self.holder} at {self.at} (recorded)"

    def to_json(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "lock_id": self.lock_id,
            "who": self.who or "",
            "at": self.at,
            "operation": self.operation,
            "id": self.terraform_id,
        }


def find(remote: Remote, table: str, journal: Journal) -> list[Evidence]:
    """All evidence of stragglers on this configuration's states, newest knowledge first."""
    from tfwrap.aws.errors import error_code

    if not table:
        return []
    keys = remote.workspace_state_keys()
    found: list[Evidence] = []
    try:
        for key in keys:
            lock = _lock(remote, table, key)
            if lock is not None:
                found.append(lock)
        finalized = finalized_at(journal.data)
        if finalized:
            for key in keys:
                if remote.digest(table, key) is not None:
                    found.append(_digest(remote, key, journal))
    except Exception as exc:
        if error_code(exc.__cause__ or exc) == "ResourceNotFoundException":  # aws() wraps it
            return []  # the table is gone: nobody can lock with it
        raise
    live = {e.terraform_id for e in found if e.kind == "lock"}
    for rec in journal.data.get("stragglers") or []:
        if isinstance(rec, dict) and rec.get("id") not in live:
            found.append(
                Evidence(
                    "seen",
                    str(rec.get("lock_id", "")),
                    str(rec.get("who", "")),
                    str(rec.get("at", "")),
                    str(rec.get("operation", "")),
                    str(rec.get("id", "")),
                )
            )
    return found


def _item(remote: Remote, table: str, lock_id: str) -> dict[str, Any] | None:
    with remote._ddb_call(f"read the lock item {lock_id} in {table}", "dynamodb:GetItem", table):
        item = remote.ddb.get_item(TableName=table, Key={"LockID": {"S": lock_id}}, ConsistentRead=True).get(
            "Item"
        )
    if not item or "Info" not in item:
        return None
    try:
        info = json.loads(item["Info"]["S"])
    except ValueError:
        return {}
    return info if isinstance(info, dict) else {}


def _tflock_id(remote: Remote, key: str) -> str | None:
    from tfwrap.aws.errors import error_code

    lock_key = key + ".tflock"
    with remote._s3_call(f"read the lock s3://{remote.bucket}/{lock_key}", "s3:GetObject", lock_key):
        try:
            got = remote.s3.get_object(Bucket=remote.bucket, Key=lock_key, **remote._sse_c())
        except Exception as exc:
            if error_code(exc) in ("NoSuchKey", "404"):
                return None
            raise
        body = got["Body"].read()
    try:
        fields = json.loads(body)
    except ValueError:
        return ""
    return str(fields.get("ID", "")) if isinstance(fields, dict) else ""


def _lock(remote: Remote, table: str, key: str) -> Evidence | None:
    lock_id = f"{remote.bucket}/{key}"
    first = _item(remote, table, lock_id)
    if first is None:
        return None
    tflock = _tflock_id(remote, key)
    if tflock is not None and tflock == str(first.get("ID", "")):
        return None  # the new configuration: both locks, one ID
    again = _item(remote, table, lock_id)
    if again is None or again.get("ID") != first.get("ID"):
        return None  # released (or retaken) meanwhile: judge it next time
    operation = str(first.get("Operation") or "").removeprefix("OperationType")
    return Evidence(
        "lock",
        lock_id,
        str(first.get("Who") or ""),
        to_second(str(first.get("Created") or "?")),
        operation,
        str(first.get("ID") or ""),
    )


def _digest(remote: Remote, key: str, journal: Journal) -> Evidence:
    from tfwrap.migrate.journal import stamp

    with remote._s3_call(f"read s3://{remote.bucket}/{key}", "s3:GetObject", key):
        try:
            head = remote.s3.head_object(Bucket=remote.bucket, Key=key, **remote._sse_c())
            written = stamp(head["LastModified"].astimezone(dt.timezone.utc))
        except Exception:  # noqa: BLE001 - the digest alone is the evidence; its time is unknown
            written = "?"
    lock_id = f"{remote.bucket}/{key}"
    seen = [
        r for r in journal.data.get("stragglers") or [] if isinstance(r, dict) and r.get("lock_id") == lock_id
    ]
    who = str(seen[-1].get("who", "")) if seen else ""
    return Evidence("digest", lock_id + "-md5", who, written)


def record(journal: Journal, found: list[Evidence]) -> None:
    """Keep each held lock in the journal, so it is still known after that run ends."""
    known = {str(r.get("id")) for r in journal.data.get("stragglers") or [] if isinstance(r, dict)}
    new = [e for e in found if e.kind == "lock" and e.terraform_id not in known]
    if not new or not journal.exists:
        return
    journal.data.setdefault("stragglers", []).extend(e.to_json() for e in new)
    journal.save()


def _moment(at: str) -> dt.datetime:
    from tfwrap.migrate.journal import now, parse_stamp

    try:
        return parse_stamp(at)
    except ValueError:
        return now()  # a time tfwrap cannot read counts as now: the careful side


def _refusal(e: Evidence, then: str) -> str:
    if e.kind == "lock":
        return (
            f"{OLD} holds the lock now: {e.describe()}; wait for it to end and update that pipeline, {then}"
        )
    return f"{OLD} used the lock table: {e.describe()}; update that pipeline, {then}"


def refuse_finalize(m: Any, table: str, soak: bool = True) -> None:
    """Finalize waits while a straggler holds the lock, or for the soak after the last one seen."""
    from tfwrap import exitcodes
    from tfwrap.errors import TfwrapError
    from tfwrap.migrate.journal import now, stamp

    found = find(m.remote, table, m.journal)
    if not m.opts.dry_run:
        record(m.journal, found)
    held = [e for e in found if e.kind == "lock"]
    if held:
        raise TfwrapError(
            _refusal(
                held[0], "then run tfwrap migrate finalize again (it cannot finalize under a held lock)"
            ),
            exitcodes.LOCK_HELD,
        )
    if not soak:
        return  # finalize is under way: only a held lock stops it now
    soak_left = dt.timedelta(seconds=m.opts.soak)
    recent = [e for e in found if now() - _moment(e.at) < soak_left]
    if recent and not m.opts.ignore_stragglers:
        last = max(recent, key=lambda e: _moment(e.at))
        ready = stamp(_moment(last.at) + soak_left)
        raise TfwrapError(
            _refusal(
                last,
                f"then finalize after the soak from then, at {ready}; or, knowing every pipeline is "
                f"updated now, run tfwrap migrate finalize {OVERRIDE}",
            ),
            exitcodes.LOCK_HELD,
        )


def refuse_cleanup(m: Any, table: str) -> list[Evidence]:
    """Cleanup waits while a straggler holds the lock, and refuses (override: --ignore-stragglers)
    while anything shows the table was used after finalize. The evidence that was overridden."""
    from tfwrap import exitcodes
    from tfwrap.errors import TfwrapError

    found = find(m.remote, table, m.journal)
    if not m.opts.dry_run:
        record(m.journal, found)
    held = [e for e in found if e.kind == "lock"]
    if held:
        raise TfwrapError(
            _refusal(held[0], "then run tfwrap migrate cleanup-table again"), exitcodes.LOCK_HELD
        )
    finalized = finalized_at(m.journal.data)
    if not finalized:
        return []
    after = [e for e in found if e.kind == "digest" or _moment(e.at) >= _moment(finalized)]
    if after and not m.opts.ignore_stragglers:
        raise TfwrapError(
            f"table {table} is still in use after finalize ({finalized}): "
            + _refusal(
                after[0],
                "then run tfwrap migrate cleanup-table again; once the table is gone such a run fails "
                f"instead of locking alone; to delete it knowingly, pass {OVERRIDE}",
            ),
            exitcodes.LOCK_HELD,
        )
    return after
