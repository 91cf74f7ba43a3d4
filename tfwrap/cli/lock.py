"""``tfwrap lock status|clear``: who holds the state lock, and removing it safely.

``tfwrap lock status [-chdir DIR] [--json]`` reads the backend of DIR as ``terraform plan``
would (the initialised copy in ``.terraform``, else the ``*.tf`` files), then the
``<state key>.tflock`` object and, with ``dynamodb_table`` set, the DynamoDB item
``LockID = "<bucket>/<state key>"``. It prints who holds the lock, its heartbeat and the
verdict (``tfwrap.lock.verdict``), or "no lock held"; exit 0 either way. The report goes
to stdout. ``--json`` prints one document instead; its fields are stable:

- ``bucket``: the state bucket.
- ``state_key``: the state object's key (with the workspace prefix).
- ``lock_key``: the ``.tflock`` object's key (``state_key`` + ``.tflock``).
- ``dynamodb_table``: the DynamoDB lock table, or null when not set.
- ``locked``: true when the ``.tflock`` object or the DynamoDB item exists.
- ``s3``: null, or the ``.tflock`` object: ``ID``, ``Operation``, ``Info``, ``Who``,
  ``Version``, ``Created``, ``Path`` (as Terraform wrote them) and ``etag``.
- ``dynamodb``: null, or the DynamoDB item: ``table``, ``item`` (its ``LockID``) and the
  same seven Terraform fields.
- ``verdict``: ``"alive"``, ``"stale"``, ``"unknown"``, or null when no lock is held.
- ``reason``: one sentence explaining the verdict (null when no lock is held).
- ``heartbeat``: the last tfwrap heartbeat (``YYYY-MM-DDTHH:MM:SSZ``), or null.
- ``heartbeat_age_seconds``: seconds since that heartbeat, or null.
- ``lease_seconds``: the heartbeat's lease, or null.
- ``holder``: null without a heartbeat, else ``host``, ``terraform_pid``, ``tfwrap_pid``,
  ``ci`` (a CI run link, or null) and ``started`` (timestamp, or null).

``tfwrap lock clear --stale [--yes] [-chdir DIR]`` removes the lock only when its verdict is
``stale``. The delete is conditional on the exact object (``If-Match`` with the ETag that
was judged) and the exact DynamoDB item (``Info`` unchanged): a lock renewed or retaken
after it was read survives. An ``alive`` or ``unknown`` lock is never removed this way.

``tfwrap lock clear --id ID [--yes] [-chdir DIR]`` is ``terraform force-unlock`` for the
``.tflock`` object and the DynamoDB item alike: it removes whichever holds ``ID``.

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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from tfwrap import exitcodes
from tfwrap.errors import TfwrapError

if TYPE_CHECKING:
    from tfwrap.backend.config import BackendConfig
    from tfwrap.lock.lockfile import DynamoLock, LockObject, S3LockFile
    from tfwrap.lock.verdict import Verdict

TERRAFORM_FIELDS = ("ID", "Operation", "Info", "Who", "Version", "Created", "Path")


@click.group()
def lock() -> None:
    """Who holds the state lock, and removing it safely."""


@dataclass
class _Lock:
    """The lock of one state as read now: the object, the item, and the verdict on them."""

    backend: BackendConfig
    lockfile: S3LockFile
    dynamo: DynamoLock | None
    s3: LockObject | None
    item: dict[str, Any] | None
    verdict: Verdict | None

    @property
    def locked(self) -> bool:
        return self.s3 is not None or self.item is not None

    @property
    def where(self) -> str:
        return f"s3://{self.backend.bucket}/{self.backend.lock_key}"

    @property
    def item_where(self) -> str:
        backend = self.backend
        return f"DynamoDB item LockID={backend.bucket}/{backend.state_key} in {backend.dynamodb_table}"


def _backend(chdir: str) -> BackendConfig:
    from tfwrap import commands
    from tfwrap.backend import config

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


@contextmanager
def _aws(action: str, endpoint: str | None) -> Iterator[None]:
    """Turn an AWS failure into one line and exit 80: the lock could not be read or changed."""
    from botocore.exceptions import BotoCoreError, ClientError

    from tfwrap.aws.errors import classify

    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        failure = classify(exc, endpoint)
        raise TfwrapError(f"cannot {action}: {failure.detail} [{failure.kind}]", exitcodes.BLOCKED) from exc


def _read(backend: BackendConfig) -> _Lock:
    from tfwrap.aws import clients
    from tfwrap.lock import info, verdict
    from tfwrap.lock.lockfile import DynamoLock, S3LockFile

    where = f"s3://{backend.bucket}/{backend.lock_key}"
    with _aws(f"read the lock {where}", backend.s3_endpoint):
        lockfile = S3LockFile(clients.client(backend, "s3"), backend)
        s3 = lockfile.read()
    dynamo: DynamoLock | None = None
    item: dict[str, Any] | None = None
    if backend.dynamodb_table:
        with _aws(
            f"read the lock item in DynamoDB table {backend.dynamodb_table}", backend.dynamodb_endpoint
        ):
            dynamo = DynamoLock(clients.client(backend, "dynamodb"), backend)
            item = dynamo.read()
    judged = verdict.judge_lock(s3.fields if s3 else None, item, info.now())
    return _Lock(backend, lockfile, dynamo, s3, item, judged)


def _terraform_fields(fields: dict[str, Any]) -> dict[str, Any]:
    return {name: fields.get(name, "") for name in TERRAFORM_FIELDS}


def _document(found: _Lock) -> dict[str, Any]:
    from tfwrap.lock import info

    backend, v = found.backend, found.verdict
    holder = v.holder if v else None
    s3 = dict(_terraform_fields(found.s3.fields), etag=found.s3.etag) if found.s3 else None
    item = None
    if found.item is not None and found.dynamo is not None:
        item = {"table": found.dynamo.table, "item": found.dynamo.lock_id, **_terraform_fields(found.item)}
    return {
        "bucket": backend.bucket,
        "state_key": backend.state_key,
        "lock_key": backend.lock_key,
        "dynamodb_table": backend.dynamodb_table or None,
        "locked": found.locked,
        "s3": s3,
        "dynamodb": item,
        "verdict": v.verdict if v else None,
        "reason": v.reason if v else None,
        "heartbeat": info.stamp(holder.heartbeat) if holder else None,
        "heartbeat_age_seconds": v.heartbeat_age if v else None,
        "lease_seconds": holder.lease_seconds if holder else None,
        "holder": (
            {
                "host": holder.host,
                "terraform_pid": holder.terraform_pid,
                "tfwrap_pid": holder.tfwrap_pid,
                "ci": holder.ci or None,
                "started": info.stamp(holder.started) if holder.started else None,
            }
            if holder
            else None
        ),
    }


def _field_lines(fields: dict[str, Any]) -> list[str]:
    from tfwrap.timestamps import to_second

    shown = {**fields, "Created": to_second(str(fields.get("Created") or ""))}  # one format (issue 11)
    return [
        f"  {name + ':':<11} {shown.get(name) or '-'}"
        for name in ("ID", "Who", "Operation", "Created", "Path")
    ]


def _report(found: _Lock) -> list[str]:
    from tfwrap.lock import info

    backend, v = found.backend, found.verdict
    lines = [
        f"state:     s3://{backend.bucket}/{backend.state_key} (workspace {backend.workspace})",
        f"lock file: {found.where}",
    ]
    if found.dynamo is not None:
        lines.append(f"dynamodb:  item LockID={found.dynamo.lock_id} in table {found.dynamo.table}")
    if v is None:
        lines.append("no lock held")
        return lines
    if found.s3 is not None:
        lines.append("the .tflock object is held:")
        lines.extend(_field_lines(found.s3.fields))
    if found.item is not None:
        if found.s3 is not None and found.item.get("ID") == found.s3.id:
            lines.append(f"the DynamoDB item is held by the same ID ({found.s3.id})")
        else:
            lines.append("the DynamoDB item is held:")
            lines.extend(_field_lines(found.item))
    holder = v.holder
    if holder is None:
        lines.append("heartbeat: none (the holder is not a tfwrap run)")
    else:
        age = f" ({v.heartbeat_age} s ago)" if v.heartbeat_age is not None else ""
        lines.extend(
            [
                f"heartbeat: {info.stamp(holder.heartbeat)}{age}",
                f"lease:     {holder.lease_seconds} s",
                f"host:      {holder.host or '-'} (terraform pid {holder.terraform_pid}, "
                f"tfwrap pid {holder.tfwrap_pid})",
                f"started:   {info.stamp(holder.started) if holder.started else '-'}",
                f"CI:        {holder.ci or '-'}",
            ]
        )
    lines.append(f"verdict:   {v.verdict}: {v.reason}")
    return lines


_CHDIR = click.option(
    "-chdir", "--chdir", "chdir", default=".", help="Directory whose state lock to use (as terraform -chdir)."
)


@lock.command()
@_CHDIR
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
def status(chdir: str, as_json: bool) -> None:
    """Who holds the state lock, its heartbeat, and whether it is alive, stale or unknown.

    Exit 0 whether or not a lock is held; 80 when AWS cannot be reached or refuses.
    """
    found = _read(_backend(chdir))
    if as_json:
        sys.stdout.write(json.dumps(_document(found), indent=2) + "\n")
        return
    for line in _report(found):
        click.echo(line)


def _say(message: str) -> None:
    click.echo(f"tfwrap: {message}", err=True)


def _confirm(yes: bool, question: str) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise TfwrapError("no terminal to confirm on: pass --yes to remove the lock", exitcodes.USAGE)
    if not click.confirm(question, default=False, err=True):
        raise TfwrapError("lock not removed: not confirmed", exitcodes.LOCK_HELD)


@lock.command()
@_CHDIR
@click.option("--stale", is_flag=True, help="Remove the lock only if tfwrap judges it stale.")
@click.option("--id", "lock_id", metavar="ID", help="Remove the lock only if its ID is ID (force-unlock).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def clear(chdir: str, stale: bool, lock_id: str | None, yes: bool) -> None:
    """Remove the state lock: --stale only when it is stale, --id ID only when ID holds it.

    Exit 0 when removed (or no lock is held); 86 when the lock was not removed.
    """
    if stale == bool(lock_id):
        raise TfwrapError("pass exactly one of --stale or --id ID", exitcodes.USAGE)
    backend = _backend(chdir)
    found = _read(backend)
    v = found.verdict
    if v is None:
        _say(f"no lock held on {found.where}: nothing removed")
        return
    if stale:
        _clear_stale(found, v, yes)
    else:
        _clear_id(found, str(lock_id), yes)


def _clear_stale(found: _Lock, v: Verdict, yes: bool) -> None:
    from tfwrap.lock import verdict

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
    _say(f"the lock is stale: {v.reason}")
    _confirm(yes, f"Remove the stale lock held by {v.holder_line()}?")
    endpoint = found.backend.s3_endpoint
    kept: list[str] = []
    if found.s3 is not None:
        with _aws(f"remove the lock {found.where}", endpoint):
            removed = found.lockfile.delete_exact(found.s3)
        if removed:
            _say(f"removed the stale lock {found.where} (ID {found.s3.id}, {found.s3.fields.get('Who', '')})")
        else:
            kept.append(f"{found.where} changed since it was read (renewed, released or retaken)")
    if found.item is not None and found.dynamo is not None:
        with _aws(f"remove the {found.item_where}", found.backend.dynamodb_endpoint):
            removed = found.dynamo.delete_exact(found.item)
        if removed:
            _say(f"removed the stale {found.item_where} (ID {found.item.get('ID', '')})")
        else:
            kept.append(f"the {found.item_where} changed since it was read (renewed, released or retaken)")
    if kept:
        raise TfwrapError(f"left in place: {'; '.join(kept)}; see `tfwrap lock status`", exitcodes.LOCK_HELD)


def _clear_id(found: _Lock, lock_id: str, yes: bool) -> None:
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
        _say(f"the lock is {v.verdict}: {v.reason}")
    _confirm(yes, f"Remove the lock with ID {lock_id}?")
    kept = [k for k in (_remove_object_by_id(found, lock_id), _remove_item_by_id(found, lock_id)) if k]
    if kept:
        raise TfwrapError(
            f"not removed: {'; '.join(kept)} (released or retaken meanwhile); see `tfwrap lock status`",
            exitcodes.LOCK_HELD,
        )


def _remove_object_by_id(found: _Lock, lock_id: str) -> str:
    """Remove the ``.tflock`` object if ``lock_id`` holds it; what was left in place, if anything."""
    if found.s3 is None:
        return ""
    if found.s3.id != lock_id:
        _say(f"left in place: {found.where} is held by another ID ({found.s3.id})")
        return ""
    with _aws(f"remove the lock {found.where}", found.backend.s3_endpoint):
        gone = found.lockfile.delete_if_held_by(lock_id)
    if gone is None:
        return f"{found.where} is no longer held by ID {lock_id}"
    _say(f"removed the lock {found.where} (ID {lock_id}, {gone.fields.get('Who', '')})")
    return ""


def _remove_item_by_id(found: _Lock, lock_id: str) -> str:
    """Remove the DynamoDB item if ``lock_id`` holds it; what was left in place, if anything."""
    if found.item is None or found.dynamo is None:
        return ""
    if found.item.get("ID") != lock_id:
        _say(f"left in place: the {found.item_where} is held by another ID ({found.item.get('ID', '')})")
        return ""
    with _aws(f"remove the {found.item_where}", found.backend.dynamodb_endpoint):
        done = found.dynamo.delete_if_held_by(lock_id)
    if not done:
        return f"the {found.item_where} is no longer held by ID {lock_id}"
    _say(f"removed the {found.item_where} (ID {lock_id})")
    return ""
