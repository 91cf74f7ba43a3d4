"""``tfwrap lock ls`` and ``tfwrap lock clear --stale --all``: every lock in view at once.

Which locks: with PATHS (default ``.`` when no ``--bucket`` is given), the buckets of every
stack ``tfwrap audit`` finds under them, the locks of those stacks' states in every workspace,
and the items of the DynamoDB lock tables they name (a straggler's lock is a lock). With
``--bucket B`` (repeatable), every ``*.tflock`` object of B, under ``--prefix P`` when given
(one prefix for every ``--bucket``), reached through the environment (``AWS_ENDPOINT_URL_S3``,
``AWS_REGION``, ``AWS_PROFILE``).

``lock ls`` prints one row per lock on stdout: verdict (as ``lock status`` judges it), age of
its last write by the store's clock, lock key, holder, operation, DynamoDB table when the item
is held too, and the CI run link from the heartbeat; then a summary line. ``--stale``,
``--alive``, ``--unknown`` keep rows of those verdicts; ``--older-than DURATION`` rows whose
last write is older. ``--json`` prints ``{"locks": [...], "problems": [...], "buckets": N,
"summary": "..."}``: each lock is the ``lock status --json`` document plus ``stack`` (the
directory, or null) and ``age_seconds``; each problem is ``where`` and ``detail``.

``lock clear --stale --all`` removes every lock of the selection judged stale, each exactly
as judged (``tfwrap/lock/bulk.py``). Without ``--yes`` it is a dry run: it lists what it
would remove and, on a terminal, asks; ``--dry-run`` never asks. ``unknown`` locks are never
removed in bulk: each is named with the ``lock clear --id`` that would remove it.

Exit codes: 0 every lock read (``ls``), every stale lock removed (``clear``), or a dry run;
80 (``BLOCKED``) nothing could be read; 83 (``USAGE``) bad arguments; 86 (``LOCK_HELD``) the
removal was not confirmed; 88 (``PARTIAL``) part of the work failed: a bucket, table or lock
could not be read, or a stale lock was kept (renewed meanwhile) or could not be removed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from tfwrap import exitcodes
from tfwrap.errors import TfwrapError
from tfwrap.output import say

if TYPE_CHECKING:
    from tfwrap.lock.listing import Listing, Row


def selection(func: Callable[..., Any]) -> Callable[..., Any]:
    """PATHS, ``--bucket`` (repeatable), ``--prefix`` and ``--older-than``."""
    for option in reversed(
        (
            click.argument("paths", nargs=-1, type=click.Path(path_type=Path)),
            click.option("--bucket", "buckets", multiple=True, metavar="B", help="List every lock of B."),
            click.option("--prefix", default="", metavar="P", help="Only keys under P (with --bucket)."),
            click.option(
                "--older-than", metavar="DURATION", help="Only locks last written longer ago (24h, 90m)."
            ),
        )
    ):
        func = option(func)
    return func


def read(paths: tuple[Path, ...], buckets: tuple[str, ...], prefix: str, older_than: str | None) -> Listing:
    """Discover, list and judge: the rows of the selection (AWS failures are ``problems``)."""
    from tfwrap.audit import discover
    from tfwrap.durations import parse_duration
    from tfwrap.lock import listing

    if prefix and not buckets:
        raise TfwrapError("--prefix needs --bucket B: it narrows a bucket's listing", exitcodes.USAGE)
    oldest = parse_duration(older_than) if older_than else None
    places = []
    if paths or not buckets:
        stacks = discover.stacks(discover.candidate_files(list(paths or (Path(),))))
        places = listing.places_from_stacks(stacks)
        if not places and not buckets:
            where = ", ".join(map(str, paths or (Path(),)))
            raise TfwrapError(
                f"no stack with an s3 backend under {where}; pass directories or --bucket B", exitcodes.USAGE
            )
    places += [listing.place_for_bucket(b, prefix) for b in buckets]
    found = listing.collect(places)
    if oldest is not None:
        found.rows = [r for r in found.rows if r.age is not None and r.age > oldest]
    return found


def _problems(found: Listing) -> int:
    """Say each problem; the exit code they make."""
    for problem in found.problems:
        say(f"cannot read {problem.where}: {problem.detail}")
    if not found.problems:
        return exitcodes.OK
    return exitcodes.PARTIAL if found.rows or found.buckets > len(found.problems) else exitcodes.BLOCKED


@click.command("ls")
@selection
@click.option("--stale", is_flag=True, help="Only stale locks (with --alive/--unknown: either).")
@click.option("--alive", is_flag=True, help="Only alive locks.")
@click.option("--unknown", is_flag=True, help="Only unknown locks.")
@click.option("--json", "as_json", is_flag=True, help="Print the listing as JSON on stdout.")
def ls(  # noqa: PLR0917 - click passes every option
    paths: tuple[Path, ...],
    buckets: tuple[str, ...],
    prefix: str,
    older_than: str | None,
    stale: bool,
    alive: bool,
    unknown: bool,
    as_json: bool,
) -> int:
    """Every lock of the stacks under PATHS (or of --bucket B): holder, age and verdict.

    Exit 0 when everything was read; 88 when some bucket, table or lock could not be; 80 when
    nothing could be.
    """
    from tfwrap.lock import table

    found = read(paths, buckets, prefix, older_than)
    verdicts = {name for name, wanted in (("stale", stale), ("alive", alive), ("unknown", unknown)) if wanted}
    if verdicts:
        found.rows = [r for r in found.rows if r.verdict in verdicts]
    if as_json:
        sys.stdout.write(json.dumps(table.document(found), indent=2) + "\n")
    else:
        for line in table.lines(found):
            click.echo(line)
    return _problems(found)


def clear_all(found: Listing, *, yes: bool, dry_run: bool) -> int:
    """The bulk clear: show the plan, ask (or not), remove, summarise; the exit code."""
    from tfwrap.lock import bulk

    stale, refused = bulk.plan(found.rows, takeover_off)
    for row in stale:
        v = row.found.verdict
        say(f"stale: {row.found.where}, held by {v.holder_line() if v else '?'}: {v.reason if v else ''}")
    for row in refused:
        say(f"refused: {bulk.refusal(row, takeover_off)}")
    problems = _problems(found)
    if not stale:
        say(f"no stale lock among {len(found.rows)} held: nothing removed")
        return problems
    if dry_run or (not yes and not sys.stdin.isatty()):
        say(f"dry run: {len(stale)} stale locks would be removed; pass --yes to remove them")
        return problems
    if not yes and not click.confirm(f"Remove these {len(stale)} stale locks?", default=False, err=True):
        raise TfwrapError("no lock removed: not confirmed", exitcodes.LOCK_HELD)
    done = bulk.clear_stale(found.rows, unsafe=takeover_off)
    for line in done.removed:
        say(line)
    for line in done.kept:
        say(f"kept: {line}")
    for line in done.failed:
        say(f"failed: {line}")
    say(done.summary())
    return exitcodes.PARTIAL if done.partial or problems else exitcodes.OK


def takeover_off(row: Row) -> str:
    """Why no lock of this row's store may be removed by a judgement ("" when it may): the
    same rule as ``lock clear --stale`` and the takeover (a DELETE whose If-Match the store
    honours, atomically: the probe's verdict for that endpoint)."""
    from tfwrap.checks import store

    return store.takeover_off(store.cached(row.backend) or {})
