"""Rollback: back to DynamoDB locking from either phase, the stale digest refreshed."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from tfwrap import exitcodes
from tfwrap.backend import edit
from tfwrap.backend.config import to_bool
from tfwrap.errors import TfwrapError
from tfwrap.migrate import edits
from tfwrap.migrate.common import (
    baseline_step,
    diff_printer,
    init_step,
    preflight_common,
    settings_of,
    verify_step,
)
from tfwrap.migrate.migration import Migration, describe_mode, read_text
from tfwrap.migrate.step import Done, Step


def rollback_steps(m: Migration, table: str) -> list[Step]:
    def preflight() -> Done:
        edits.refuse_command_line(edits.places(m.backend))
        m.require_table(table, "the lock table to go back to")
        facts = preflight_common(m, table, need_version=False)
        m.journal.bind(table=table)
        return Done(facts)

    def restore() -> list[edit.Edit]:
        return plan_restore(m, table)

    def edit_title(already: bool) -> str:
        if already:
            return f"the files give DynamoDB locking only (dynamodb_table = {table!r})"
        files = ", ".join(c.path.name for c in restore())
        return f"restore dynamodb_table = {table!r} and remove use_lockfile = true in {files}"

    def edit_run() -> Done:
        for change in restore():
            if change.changed:
                m.out.block(change.diff())
                change.apply()
        m.load()
        return Done("configuration restored")

    edit_step = Step(
        "edit",
        edit_title,
        edit_run,
        holds=lambda: m.mode == "dynamodb" and m.backend.dynamodb_table == table,
        dry=diff_printer(m, restore),
        gone=lambda: f"the files now give {describe_mode(m.mode)}",
    )

    def stale() -> list[tuple[str, str | None]]:
        out: list[tuple[str, str | None]] = []
        for key in m.remote.workspace_state_keys():
            digest = m.remote.digest(table, key)
            if digest is None:
                continue  # no digest: Terraform checks nothing, and writes one on its next save
            state = m.remote.read_state(key)
            if state is not None and state.md5 != digest:
                out.append((key, digest))
        return out

    def digest_title(already: bool) -> str:
        if already:
            return f"every digest item in {table} matches its state object (or is absent)"
        keys = ", ".join(f"{m.backend.bucket}/{k}-md5" for k, _ in stale())
        return (
            f"set {keys} in {table} to the MD5 of the state object now, or Terraform fails with "
            '"state data in S3 does not have the expected content"'
        )

    def digest_run() -> Done:
        fixed = []
        for key, old in stale():
            fixed.append(_refresh_digest(m, table, key, old))
        return Done("; ".join(fixed), {"refreshed": fixed})

    digest = Step("digest", digest_title, digest_run, holds=lambda: not stale(), drift="redo")
    return [
        Step(
            "preflight",
            lambda _: f"{m.where}, lock table {table}: table, state, locks",
            preflight,
            always=True,
        ),
        baseline_step(m, "rollback"),
        edit_step,
        digest,
        init_step(m, "dynamodb"),
        verify_step(m, "rollback", "dynamodb", lambda: table),
    ]


def _refresh_digest(m: Migration, table: str, key: str, old: str | None) -> str:
    """Set the digest to the state's MD5, only over the value judged stale, state unchanged."""
    for _ in range(5):
        state = m.remote.read_state(key)
        if state is None:
            return f"{key}: no state object"
        if not m.remote.put_digest(table, key, state.md5, old):
            current = m.remote.digest(table, key)
            if current == state.md5 or current is None:
                return f"{key}: already current"
            old = current
            continue
        if m.remote.state_etag(key) == state.etag:
            return f"{m.backend.bucket}/{key}-md5 = {state.md5}"
        old = state.md5  # the state was written meanwhile: again, over what we just wrote
    raise TfwrapError(
        f"the state s3://{m.backend.bucket}/{key} keeps changing; run rollback again when it is quiet",
        exitcodes.BLOCKED,
    )


def plan_restore(m: Migration, table: str) -> list[edit.Edit]:
    """The edits that bring the files back to DynamoDB locking only, not applied yet.

    The journal's edits are undone newest first (exactly, for a file nobody touched since);
    then whatever is still needed is done with the same format-preserving edits: no
    ``use_lockfile = true`` anywhere, ``dynamodb_table`` set. Planned on scratch copies.
    """
    found = edits.places(m.backend)
    edits.refuse_command_line(found)
    scratch = Path(tempfile.mkdtemp(prefix="tfwrap-rollback-"))
    copies: dict[Path, Path] = {}

    def copy(path: Path) -> Path:
        if path not in copies:
            copies[path] = scratch / f"{len(copies)}-{path.name}"  # same suffix: same kind of edit
            copies[path].write_text(read_text(path))
        return copies[path]

    try:
        for rec in reversed(m.journal.edits):
            scratch_copy = copy(Path(rec["path"]))
            sha = edits.sha256(scratch_copy.read_text())
            if sha == rec["before_sha256"]:
                continue  # never applied, or undone already
            on_copy = {**rec, "path": str(scratch_copy)}
            exact = edits.undo_exact(on_copy) if sha == rec["after_sha256"] else None
            scratch_copy.write_text((exact or edits.undo_semantic(on_copy)).after)
        editable = [p.path for p in found if p.path is not None]
        for path in editable:
            if to_bool(settings_of(copy(path)).get("use_lockfile")) is True:
                copies[path].write_text(edit.remove_setting(copies[path], "use_lockfile").after)
        if not any(settings_of(copy(path)).get("dynamodb_table") for path in editable):
            files = [p for p in editable if p.name.endswith((".tf", ".tf.json"))] or editable
            if not files:
                raise TfwrapError("no file to put dynamodb_table back into; edit the backend by hand", 83)
            home = copy(files[-1])
            home.write_text(edit.set_setting(home, "dynamodb_table", table).after)
        changes = [edit.Edit(path, read_text(path), c.read_text()) for path, c in copies.items()]
        return [c for c in changes if c.changed]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
