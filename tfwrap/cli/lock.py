"""``tfwrap lock status|clear``: who holds the state lock, and removing it safely.

``tfwrap lock status [-chdir DIR] [--json]`` reads the backend of DIR as ``terraform plan``
would (the initialised copy in ``.terraform``, else the ``*.tf`` files), then the
``<state key>.tflock`` object and, with ``dynamodb_table`` set, the DynamoDB item
``LockID = "<bucket>/<state key>"``. After ``tfwrap migrate finalize`` removed
``dynamodb_table`` and until ``cleanup-table`` deleted the table, the migration journal's lock
table is read too: a run still on the old configuration locks there. It prints who holds the
lock, its heartbeat and the verdict (``tfwrap.lock.verdict``), or "no lock held"; exit 0
either way. The report goes to stdout. ``--json`` prints one document instead; its fields are stable:

- ``schema_version``: 1 (``tfwrap/schema.py``).
- ``bucket``: the state bucket.
- ``state_key``: the state object's key (with the workspace prefix).
- ``lock_key``: the ``.tflock`` object's key (``state_key`` + ``.tflock``).
- ``dynamodb_table``: the DynamoDB lock table (the journal's after finalize), or null.
- ``locked``: true when the ``.tflock`` object or the DynamoDB item exists.
- ``s3``: null, or the ``.tflock`` object: ``ID``, ``Operation``, ``Info``, ``Who``,
  ``Version``, ``Created``, ``Path`` (as Terraform wrote them), ``etag`` and
  ``last_modified``.
- ``dynamodb``: null, or the DynamoDB item: ``table``, ``item`` (its ``LockID``) and the
  same seven Terraform fields.
- ``verdict``: ``"alive"``, ``"stale"``, ``"unknown"``, ``"unreadable"`` (garbled, empty or
  no ID: no tool can read it), or null when no lock is held.
- ``reason``: one sentence explaining the verdict (null when no lock is held).
- ``server_time``: the store's clock (the ``Date`` of the answer that read the lock).
- ``heartbeat``: the last tfwrap heartbeat as the holder stamped it, or null.
- ``heartbeat_age_seconds``: seconds since the holder last wrote the lock, by the store's
  clock (``server_time`` minus the object's ``Last-Modified``), or null.
- ``lease_seconds``: the heartbeat's lease, or null.
- ``holder``: null without a heartbeat, else ``host``, ``terraform_pid``, ``tfwrap_pid``,
  ``ci`` (a CI run link, or null), ``started`` (timestamp, or null), ``boot_id``,
  ``pid_namespace`` and ``took_over`` (the ID of the stale lock it replaced, or null).

``tfwrap lock clear --stale [--yes] [-chdir DIR]`` removes the lock only when its verdict is
``stale``. The delete is conditional on the exact object (``If-Match`` with the ETag that
was judged) and the exact DynamoDB item (``Info`` unchanged): a lock renewed or retaken
after it was read survives. An ``alive`` or ``unknown`` lock is never removed this way.

``tfwrap lock clear --id ID [--yes] [-chdir DIR]`` is ``terraform force-unlock`` for the
``.tflock`` object and the DynamoDB item alike: it removes whichever holds ``ID``.

``tfwrap lock clear --unreadable [--yes] [-chdir DIR]`` removes the ``.tflock`` object only
when it is ``unreadable``, with ``If-Match`` on the ETag read (exactly that object).

Both ask for confirmation on the terminal (stderr) unless ``--yes``; with no terminal and
no ``--yes`` they refuse. Prompts, refusals and what was removed go to stderr.

Exit codes: 0 done (or no lock held); 80 (``BLOCKED``) AWS could not be reached or refused
the call (the reason is printed); 82 the backend configuration cannot be read; 83
(``USAGE``) bad arguments, a backend that is not s3, or no terminal to confirm on; 86
(``LOCK_HELD``) the lock was not removed: it is alive or unknown, held by another ID,
changed while being removed, or the removal was not confirmed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from tfwrap import exitcodes
from tfwrap.aws.errors import refused
from tfwrap.cli import lock_estate
from tfwrap.cli.ask import confirm
from tfwrap.errors import TfwrapError
from tfwrap.output import say

if TYPE_CHECKING:
    from tfwrap.backend.config import BackendConfig
    from tfwrap.lock.current import CurrentLock
    from tfwrap.lock.removal import Removal
    from tfwrap.lock.verdict import Verdict


@click.group()
def lock() -> None:
    """Who holds the state lock, and removing it safely."""


def _backend(chdir: str) -> BackendConfig:
    from tfwrap.backend import config
    from tfwrap.terraform import commands

    if not Path(chdir).is_dir():
        raise TfwrapError(f"{chdir} is not a directory; pass -chdir DIR", exitcodes.USAGE)
    backend = config.load(commands.parse([f"-chdir={chdir}", "plan"]))
    if not backend.is_s3:
        kind = f'"{backend.backend_type}"' if backend.backend_type else "none (local state)"
        raise TfwrapError(
            f"the backend of {chdir} is {kind}, not s3: tfwrap lock only knows the S3 backend's lock",
            exitcodes.USAGE,
        )
    if not backend.bucket or not backend.key:
        raise TfwrapError(
            f'the s3 backend of {chdir} has no bucket or key; set them in the backend "s3" block',
            exitcodes.USAGE,
        )
    return backend


def _with_journal_table(backend: BackendConfig) -> tuple[BackendConfig, Any]:
    """The backend, with the migration journal's lock table after finalize: a run on the old
    configuration still locks there, and its lock must not read as "no lock held"."""
    import dataclasses

    from tfwrap.aws import clients
    from tfwrap.lock import current

    if backend.dynamodb_table:
        return backend, None
    with refused(
        f"read the migration journal s3://{backend.bucket}/{backend.journal_key}", backend.s3_endpoint
    ):
        s3 = clients.client(backend, "s3")
        table = current.migration_table(s3, backend)
    if not table:
        return backend, s3
    return dataclasses.replace(backend, settings={**backend.settings, "dynamodb_table": table}), s3


def _read(backend: BackendConfig, s3_client: Any = None) -> CurrentLock:
    from tfwrap.aws import clients
    from tfwrap.lock import current
    from tfwrap.lock.lockfile import DynamoLock, S3LockFile

    where = f"s3://{backend.bucket}/{backend.lock_key}"
    with refused(f"read the lock {where}", backend.s3_endpoint):
        lockfile = S3LockFile(s3_client or clients.client(backend, "s3"), backend)
        s3 = lockfile.read()
    dynamo: DynamoLock | None = None
    item: dict[str, Any] | None = None
    if backend.dynamodb_table:
        with refused(
            f"read the lock item in DynamoDB table {backend.dynamodb_table}", backend.dynamodb_endpoint
        ):
            dynamo = DynamoLock(clients.client(backend, "dynamodb"), backend)
            try:
                item = dynamo.read()
            except Exception as exc:
                from tfwrap.aws.errors import error_code

                if error_code(exc) != "ResourceNotFoundException":
                    raise
                dynamo = None  # the table is gone: nobody can hold a lock in it
    return current.judged(lockfile, dynamo, s3, item)


_CHDIR = click.option(
    "-chdir", "--chdir", "chdir", default=".", help="Directory whose state lock to use (as terraform -chdir)."
)


lock.add_command(lock_estate.ls)


@lock.command()
@_CHDIR
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
def status(chdir: str, as_json: bool) -> None:
    """Who holds the state lock, its heartbeat, and whether it is alive, stale or unknown.

    Exit 0 whether or not a lock is held; 80 when AWS cannot be reached or refuses.
    """
    from tfwrap.lock import report

    backend, s3_client = _with_journal_table(_backend(chdir))
    found = _read(backend, s3_client)
    if as_json:
        from tfwrap.schema import versioned

        sys.stdout.write(json.dumps(versioned(report.document(backend, found)), indent=2) + "\n")
        return
    for line in report.lines(backend, found):
        click.echo(line)
    if backend.dynamodb_table and s3_client is not None:  # the table came from the journal
        click.echo(
            "(lock table from the migration journal: finalize removed dynamodb_table, but a run on "
            "the old configuration still locks there until tfwrap migrate cleanup-table)"
        )


@lock.command()
@_CHDIR
@click.option("--stale", is_flag=True, help="Remove the lock only if tfwrap judges it stale.")
@click.option("--id", "lock_id", metavar="ID", help="Remove the lock only if its ID is ID (force-unlock).")
@click.option(
    "--unreadable", is_flag=True, help="Remove the lock object only if no tool can read it (garbled, empty)."
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--all", "every", is_flag=True, help="With --stale: every stale lock of PATHS or --bucket.")
@click.option("--dry-run", is_flag=True, help="With --all: only say what would be removed.")
@lock_estate.selection
def clear(  # noqa: PLR0917 - click passes every option
    chdir: str,
    stale: bool,
    lock_id: str | None,
    unreadable: bool,
    yes: bool,
    every: bool,
    dry_run: bool,
    paths: tuple[Path, ...],
    buckets: tuple[str, ...],
    prefix: str,
    older_than: str | None,
) -> int | None:
    """Remove the state lock: --stale only when it is stale, --id ID only when ID holds it,
    --unreadable only when the lock object is not a lock any tool can read.

    Exit 0 when removed (or no lock is held); 86 when the lock was not removed; with --all,
    92 when some stale lock was kept or could not be removed (tfwrap/cli/lock_estate.py).
    """
    if sum((stale, lock_id is not None, unreadable)) != 1:
        raise TfwrapError("pass exactly one of --stale, --id ID or --unreadable", exitcodes.USAGE)
    if lock_id is not None and not lock_id:
        raise TfwrapError(
            "--id needs the lock's ID (`tfwrap lock status` shows it); a lock with no ID is "
            "removed with --unreadable",
            exitcodes.USAGE,
        )
    selected = bool(paths or buckets or prefix or older_than or dry_run)
    if (selected and not every) or (every and (lock_id or unreadable or chdir != ".")):
        raise TfwrapError(
            "PATHS, --bucket, --prefix, --older-than and --dry-run go with --stale --all, "
            "never with -chdir, --id or --unreadable",
            exitcodes.USAGE,
        )
    if every:
        return lock_estate.clear_all(
            lock_estate.read(paths, buckets, prefix, older_than), yes=yes, dry_run=dry_run
        )
    backend, s3_client = _with_journal_table(_backend(chdir))
    found = _read(backend, s3_client)
    v = found.verdict
    if v is None:
        say(f"no lock held on {found.where}: nothing removed")
        return None
    if unreadable:
        _clear_unreadable(backend, found, v, yes)
    elif stale:
        _clear_stale(backend, found, v, yes)
    else:
        _clear_id(backend, found, str(lock_id), yes)
    return None


def _clear_stale(backend: BackendConfig, found: CurrentLock, v: Verdict, yes: bool) -> None:
    from tfwrap.lock import removal, verdict

    if v.verdict != verdict.STALE:
        hint = (
            f"; if you know that run is gone, `tfwrap lock clear --id {v.lock_id}`"
            if v.verdict == verdict.UNKNOWN
            else ""
        )
        raise TfwrapError(
            f"lock not removed: it is {v.verdict}, held by {v.holder_line()}: {v.reason}{hint}",
            exitcodes.LOCK_HELD,
        )
    from tfwrap.checks import store

    off = store.takeover_off(store.cached(backend) or {})
    if off:
        raise TfwrapError(
            f"lock not removed: this endpoint's probe found {off}, so a removal by judgement could "
            f"hit a lock taken meanwhile; if you know that run is gone, `tfwrap lock clear --id {v.lock_id}`",
            exitcodes.LOCK_HELD,
        )
    say(f"the lock is stale: {v.reason}")
    confirm(
        yes,
        f"Remove the stale lock held by {v.holder_line()}?",
        yes_to="remove the lock",
        declined="lock not removed: not confirmed",
    )
    with refused(f"remove the lock {found.where}", backend.s3_endpoint):
        done = removal.remove_judged(found)
    _finish(done, "left in place: {kept}; see `tfwrap lock status`")


def _clear_unreadable(backend: BackendConfig, found: CurrentLock, v: Verdict, yes: bool) -> None:
    from tfwrap.lock import verdict

    if found.s3 is None or verdict.judge(found.s3.fields, None).verdict != verdict.UNREADABLE:
        raise TfwrapError(
            f"lock not removed: {found.where} is a readable lock ({v.verdict}, held by "
            f"{v.holder_line()}); use --stale or --id",
            exitcodes.LOCK_HELD,
        )
    say(f"the lock is unreadable: {found.where} holds {len(found.s3.body)} bytes that are not a lock")
    confirm(
        yes,
        f"Remove the unreadable lock object {found.where}?",
        yes_to="remove the lock",
        declined="lock not removed: not confirmed",
    )
    with refused(f"remove the lock {found.where}", backend.s3_endpoint):
        gone = found.lockfile.delete_exact(found.s3)  # If-Match on the ETag read: exactly this object
    if not gone:
        raise TfwrapError(
            f"lock not removed: {found.where} changed since it was read; see `tfwrap lock status`",
            exitcodes.LOCK_HELD,
        )
    say(f"removed the unreadable lock object {found.where}")


def _clear_id(backend: BackendConfig, found: CurrentLock, lock_id: str, yes: bool) -> None:
    from tfwrap.lock import removal

    held = [
        (where, str(fields.get("ID", "")))
        for where, fields in (
            (found.where, found.s3.fields if found.s3 else None),
            (found.item_where, found.item),
        )
        if fields is not None
    ]
    if all(held_id != lock_id for _, held_id in held):
        ids = {held_id for _, held_id in held}
        if len(ids) == 1:
            there = f"ID {ids.pop() or '(none)'}"
        else:
            there = ", ".join(f"{where} by ID {held_id or '(none)'}" for where, held_id in held)
        raise TfwrapError(
            f"lock not removed: it is held by {there}, not by ID {lock_id}", exitcodes.LOCK_HELD
        )
    v = found.verdict
    if v is not None:
        say(f"the lock is {v.verdict}: {v.reason}")
    confirm(
        yes,
        f"Remove the lock with ID {lock_id}?",
        yes_to="remove the lock",
        declined="lock not removed: not confirmed",
    )
    with refused(f"remove the lock {found.where}", backend.s3_endpoint):
        done = removal.remove_object_by_id(found, lock_id)
    with refused(f"remove the {found.item_where}", backend.dynamodb_endpoint):
        item = removal.remove_item_by_id(found, lock_id)
    done.removed += item.removed
    done.kept += item.kept
    done.notes += item.notes
    _finish(done, "not removed: {kept}; see `tfwrap lock status`")


def _finish(done: Removal, refusal: str) -> None:
    for line in done.notes + done.removed:
        say(line)
    if done.kept:
        raise TfwrapError(refusal.format(kept="; ".join(done.kept)), exitcodes.LOCK_HELD)
