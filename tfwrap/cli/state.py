"""``tfwrap state history|diff|restore|undo``: the state's versions, who wrote each, what a
write changed, and putting an earlier version back under the state lock.

Reference: docs/state-recovery.md (fields of ``--json``, the exit codes, the IAM actions).
Reports go to stdout; prompts and refusals to stderr. No attribute or output value of any
state is ever printed: addresses, types, attribute names, serials and lineages only.

Exit codes: 0 done; 80 AWS could not be reached or refused (the IAM action is named);
82 the backend configuration cannot be read; 83 bad arguments, not an s3 backend, or no
terminal to confirm on without ``--yes``; 86 the state lock is held by another holder (the
shim's verdict line), or the restore was not confirmed; 93 nothing to recover from (no
versioning, no backups), version not found, lineage mismatch, or undo cannot tell the last
run's writes apart; 94 the state was written meanwhile (nothing was overwritten), or the
read-back after the restore did not match.
"""

from __future__ import annotations

import json
import sys
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from tfwrap import exitcodes
from tfwrap.cli.ask import confirm
from tfwrap.errors import TfwrapError

if TYPE_CHECKING:
    from tfwrap.backend.config import BackendConfig
    from tfwrap.state.history import History
    from tfwrap.state.versions import Version

RECOVERY_ACTIONS = "s3:ListBucketVersions, s3:GetObjectVersion, s3:GetBucketVersioning"
UNDO_LOOKS_AT = 50  # versions attributed exactly for undo, before looking at all of them
READ_TIMEOUT = 30.0  # a page of 1,000 versions or a large state; a person waits on purpose


@click.group()
def state() -> None:
    """The state's versions and who wrote them; undo a bad write."""


_CHDIR = click.option(
    "-chdir", "--chdir", "chdir", default=".", help="Directory whose state to use (as terraform -chdir)."
)


def _backend(chdir: str) -> BackendConfig:
    from tfwrap.backend import config
    from tfwrap.terraform import commands

    if not Path(chdir).is_dir():
        raise TfwrapError(f"{chdir} is not a directory; pass -chdir DIR", exitcodes.USAGE)
    backend = config.load(commands.parse([f"-chdir={chdir}", "plan"]))
    if not backend.is_s3 or not backend.bucket or not backend.key:
        kind = f'"{backend.backend_type}"' if backend.backend_type else "none (local state)"
        raise TfwrapError(
            f"the backend of {chdir} is {kind}, not an s3 backend with bucket and key: "
            "tfwrap state only knows the S3 backend",
            exitcodes.USAGE,
        )
    return backend


def _aws(what: str, backend: BackendConfig, actions: str = RECOVERY_ACTIONS) -> AbstractContextManager[None]:
    """An AWS failure as one line (exit 80); access denied names the actions to grant."""
    from tfwrap.aws.errors import refused

    grant = (
        f"{actions} on s3://{backend.bucket}/{backend.state_key}* "
        "(`tfwrap iam-policy --recovery` prints what recovery needs)"
    )
    return refused(what, backend.s3_endpoint, code=exitcodes.BLOCKED, grant=grant)


def _clients(backend: BackendConfig) -> tuple[Any, Any | None]:
    from tfwrap.aws import clients

    with _aws("create the AWS clients", backend, "sts:AssumeRole"):
        session = clients.session(backend)
        s3 = clients.client(backend, "s3", session, read_timeout=READ_TIMEOUT)
        ddb = (
            clients.client(backend, "dynamodb", session, read_timeout=READ_TIMEOUT)
            if backend.dynamodb_table
            else None
        )
    return s3, ddb


def _load(backend: BackendConfig, s3: Any, shown: int = 1) -> History:
    """The history, its newest ``shown`` versions (0: all) attributed to runs exactly."""
    from tfwrap.state import history

    with _aws(f"list the versions of s3://{backend.bucket}/{backend.state_key}", backend):
        return history.load(s3, backend, shown)


def _out(line: str = "") -> None:
    click.echo(line)


def _say(message: str) -> None:
    from tfwrap.output import say

    say(message)


@state.command()
@_CHDIR
@click.option("--json", "as_json", is_flag=True, help="Print the history as JSON on stdout.")
@click.option(
    "--limit", default=20, show_default=True, type=click.IntRange(min=0), help="Versions shown (0: all)."
)
def history(chdir: str, as_json: bool, limit: int) -> None:
    """The state's versions, newest first, each with the run that wrote it."""
    from tfwrap.state import show

    backend = _backend(chdir)
    s3, _ = _clients(backend)
    found = _load(backend, s3, limit)
    shown = found.attributed[:limit] if limit else found.attributed
    with _aws(f"read the versions of s3://{backend.bucket}/{backend.state_key}", backend):
        found.read_summaries(s3, [e.version for e in shown])
        found.read_holders(s3, [h for e in shown for h in e.candidates])
    if as_json:
        sys.stdout.write(json.dumps(show.history_document(found, shown), indent=2) + "\n")
        return
    for line in show.history_lines(found, shown):
        _out(line)


def _current(found: History) -> Version | None:
    """The version that is the state now (None when the state is deleted or absent)."""
    for version in found.entries:
        if version.latest and not version.is_backup:
            return None if version.deleted else version
    return None


def _previous(found: History, version: Version) -> Version:
    entries = [v for v in found.entries if not v.deleted]
    later = entries.index(version) + 1 if version in entries else len(entries)
    if later >= len(entries):
        raise TfwrapError(
            f"version {version.version_id} has no earlier version to compare with: name two versions",
            exitcodes.VERSION_NOT_FOUND,
        )
    return entries[later]


@state.command()
@_CHDIR
@click.argument("version_a", required=False)
@click.argument("version_b", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the diff as JSON on stdout.")
def diff(chdir: str, version_a: str | None, version_b: str | None, as_json: bool) -> None:
    """What changed from VERSION_A to VERSION_B (default: the previous version to the current one).

    Addresses, types and the names of changed attributes; never their values.
    """
    from tfwrap.state import diff as statediff

    backend = _backend(chdir)
    s3, _ = _clients(backend)
    found = _load(backend, s3)
    if version_b is not None:
        new = found.find(version_b)
    else:
        current = _current(found)
        if current is None:
            raise TfwrapError(
                "the state has no current version: name two versions", exitcodes.VERSION_NOT_FOUND
            )
        new = current
    old = found.find(version_a) if version_a is not None else _previous(found, new)
    with _aws(f"read versions of s3://{backend.bucket}/{backend.state_key}", backend):
        found.read_summaries(s3, [old, new])
    from tfwrap.state import versions

    result = statediff.between(found.summaries[versions.ident(old)], found.summaries[versions.ident(new)])
    if as_json:
        document = {"from": versions.ident(old), "to": versions.ident(new), **result.document()}
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        return
    _out(f"from {versions.ident(old)} to {versions.ident(new)}: {result.counts()}")
    for line in statediff.lines(result):
        _out(f"  {line}")


_YES = click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
_DRY = click.option("--dry-run", is_flag=True, help="Show what would be restored; write nothing.")


@state.command()
@_CHDIR
@click.option("--version", "version", required=True, metavar="V", help="The version to restore.")
@click.option("--force-lineage", is_flag=True, help="Restore a version of another lineage.")
@_YES
@_DRY
def restore(chdir: str, version: str, force_lineage: bool, yes: bool, dry_run: bool) -> None:
    """Make version V the current state again (serial = current + 1), under the state lock."""
    backend = _backend(chdir)
    s3, ddb = _clients(backend)
    found = _load(backend, s3)
    target = found.find(version)
    _restore(
        backend, s3, ddb, found, target, force_lineage=force_lineage, yes=yes, dry_run=dry_run, doing=version
    )


@state.command()
@_CHDIR
@_YES
@_DRY
def undo(chdir: str, yes: bool, dry_run: bool) -> None:
    """Restore the state the last run started from (the version before its first write)."""
    from tfwrap.state import history, versions

    backend = _backend(chdir)
    s3, ddb = _clients(backend)
    found = _load(backend, s3, UNDO_LOOKS_AT)
    with _aws(f"read versions of s3://{backend.bucket}/{backend.state_key}", backend):
        plan = history.undo_plan(found, s3, UNDO_LOOKS_AT)
        if plan.target is None and len(plan.undone) >= UNDO_LOOKS_AT - 1:
            found = _load(backend, s3, 0)  # a run that wrote more versions than that: all of them
            plan = history.undo_plan(found, s3, 0)
        found.read_holders(s3, [plan.run] if plan.run else [])
    if plan.target is None:
        candidates = ", ".join(versions.ident(v) for v in plan.candidates)
        more = (
            f"; candidates: {candidates}; pick one with `tfwrap state restore --version V`"
            if candidates
            else ""
        )
        raise TfwrapError(f"nothing undone: {plan.refusal}{more}", exitcodes.UNDO_UNCLEAR)
    if plan.run is not None:
        undone = ", ".join(versions.ident(v) for v in plan.undone)
        _say(f"the last run was {plan.run.name()}; it wrote {undone}")
    _restore(
        backend,
        s3,
        ddb,
        found,
        plan.target,
        force_lineage=False,
        yes=yes,
        dry_run=dry_run,
        doing=f"undo to {versions.ident(plan.target)}",
    )


def _restore(
    backend: BackendConfig,
    s3: Any,
    ddb: Any | None,
    found: History,
    target: Version,
    *,
    force_lineage: bool,
    yes: bool,
    dry_run: bool,
    doing: str,
) -> None:
    from tfwrap.state import diff as statediff
    from tfwrap.state import restore, summary, versions

    current = _current(found)
    with _aws(f"read versions of s3://{backend.bucket}/{backend.state_key}", backend):
        found.read_summaries(s3, [target] + ([current] if current else []))
    wanted = found.summaries[versions.ident(target)]
    if not wanted.valid:
        raise TfwrapError(
            f"version {versions.ident(target)} is not a Terraform state: "
            "pick another from `tfwrap state history`",
            exitcodes.VERSION_NOT_FOUND,
        )
    now = found.summaries[versions.ident(current)] if current else summary.Summary(valid=True)
    if now.lineage and wanted.lineage != now.lineage and not force_lineage:
        raise TfwrapError(
            f"state not restored: version {versions.ident(target)} has lineage {wanted.lineage}, the current "
            f"state {now.lineage} (another state's history); pass --force-lineage if you mean it",
            exitcodes.LINEAGE_MISMATCH,
        )
    change = statediff.between(now, wanted)
    serial = (now.serial or 0) + 1
    _out(
        f"restore s3://{backend.bucket}/{backend.state_key} to version {versions.ident(target)} "
        f"(serial {wanted.serial}) as serial {serial}: {change.counts()}"
    )
    for line in statediff.lines(change):
        _out(f"  {line}")
    if dry_run:
        _out("dry run: nothing written")
        return
    confirm(
        yes,
        f"Restore version {versions.ident(target)} as the current state?",
        yes_to="restore (or --dry-run)",
        declined="state not restored: not confirmed",
    )
    with _aws(f"read s3://{backend.bucket}/{backend.state_key} version {versions.ident(target)}", backend):
        body = versions.read_body(s3, backend, target)
    lock = restore.StateLock(s3, ddb, backend)
    with _aws(f"take the state lock s3://{backend.bucket}/{backend.lock_key}", backend, "s3:PutObject"):
        lock.take(doing)
    undo_with = versions.ident(current) if current is not None else ""
    try:
        if current is not None and not found.versioned:
            # Without versioning the write replaces the current state for good: copy it first,
            # so the restore itself can be undone (docs/decisions/083-state-backup.md).
            from tfwrap.state import backup

            with _aws(f"copy s3://{backend.bucket}/{backend.state_key}", backend, "s3:PutObject"):
                _say(backup.copy_current(s3, backend))
            undo_with = versions.backup_key(backend, now.serial or 0)
        with _aws(
            f"write s3://{backend.bucket}/{backend.state_key}", backend, "s3:PutObject, dynamodb:PutItem"
        ):
            version_id, written, digest = restore.write(
                s3,
                ddb,
                backend,
                body=body,
                expected=current,
                current_serial=now.serial or 0,
                versioned=found.versioned,
            )
        problem = restore.verify(backend, written)
    finally:
        left = lock.release()
        if left:
            _say(
                f"could not release the restore's lock ({'; '.join(left)}): "
                f"`tfwrap lock clear --id {lock.lock_id}` removes it"
            )
    if digest:
        _say(f"DynamoDB digest {backend.bucket}/{backend.state_key}-md5 set to {digest}")
    if problem.startswith("not verified"):
        _say(problem)
    elif problem:
        raise TfwrapError(f"state written as version {version_id}, but {problem}", exitcodes.STATE_CHANGED)
    how = "" if problem else ", read back by terraform state pull"
    _out(f"restored: version {version_id} is now the state (serial {serial}{how})")
    if undo_with:
        _out(f"to undo this restore: tfwrap state restore --version {undo_with}")
