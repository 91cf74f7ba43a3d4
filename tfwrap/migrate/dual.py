"""The dual phase: ``use_lockfile = true`` beside ``dynamodb_table``, verified with both locks."""

from __future__ import annotations

from tfwrap import exitcodes
from tfwrap.backend import edit
from tfwrap.errors import TfwrapError
from tfwrap.migrate import edits
from tfwrap.migrate.common import (
    baseline_step,
    diff_printer,
    init_step,
    journal_edit,
    object_lock_policy,
    preflight_common,
    verify_step,
)
from tfwrap.migrate.migration import Migration, describe_mode
from tfwrap.migrate.step import Done, Step


def dual_steps(m: Migration) -> list[Step]:
    table = m.backend.dynamodb_table
    bucket = m.backend.bucket
    severity, said = object_lock_policy(m)
    wants_lock = severity == "error"  # warning/info: report and go on; off: not looked at

    def preflight() -> Done:
        target()  # a setting tfwrap cannot edit is refused before anything changes
        facts = preflight_common(m, table)
        if m.terraform_version() == "1.10.0" and m.remote.object_lock().get("retention"):
            raise TfwrapError(
                "Terraform 1.10.0 cannot take the lock on a bucket with an Object Lock default retention "
                "(hashicorp/terraform#36113): upgrade to 1.10.1 or newer first",
                exitcodes.BLOCKED,
            )
        m.journal.bind(table=table)
        return Done(facts, {"serial": m.state.serial if m.state else None})

    def enable_versioning() -> Done:
        m.remote.enable_versioning()
        return Done("versioning enabled")

    def enable_object_lock() -> Done:
        try:
            m.remote.enable_object_lock()
        except TfwrapError as exc:
            raise TfwrapError(
                f"{exc.message}; Terraform does not need Object Lock: enable it later with `tfwrap bootstrap "
                f'--fix`, or set bucket-object-lock = "warning" (or "off") under [severity] in .tfwrap.toml '
                "and run tfwrap migrate again",
                exc.code,
            ) from exc
        return Done("Object Lock enabled (no default retention)")

    versioning = Step(
        "versioning",
        lambda already: (
            f"bucket {bucket!r} versioning is Enabled"
            if already
            else f"enable versioning on bucket {bucket!r} (so a bad state write can be undone)"
        ),
        enable_versioning,
        holds=lambda: m.remote.versioning() == "Enabled",
        drift="redo",
        gone=lambda: f"bucket {bucket!r} versioning is {m.remote.versioning() or 'not enabled'}",
    )

    def object_lock_title(already: bool) -> str:
        if severity == "off":
            return f"not required (bucket-object-lock is off {said})"
        enabled = bool(m.remote.object_lock()["enabled"])
        if enabled:
            return f"Object Lock is enabled on bucket {bucket!r}"
        if not wants_lock:
            return (
                f"Object Lock is off on bucket {bucket!r}; bucket-object-lock is a {severity} {said}, so the "
                "migration goes on without it (`tfwrap bootstrap --fix` enables it later)"
            )
        return (
            f"enable Object Lock on bucket {bucket!r}: your team's standard (bucket-object-lock is an error "
            f"{said}); Terraform's use_lockfile itself does not need it; it cannot be turned off"
        )

    object_lock = Step(
        "object-lock",
        object_lock_title,
        enable_object_lock,
        holds=lambda: not wants_lock or bool(m.remote.object_lock()["enabled"]),
        drift="redo",
    )

    def target() -> edits.Place:
        return edits.target_for_lockfile(edits.places(m.backend))

    def pending() -> list[edit.Edit]:
        place = target()
        assert place.path is not None  # noqa: S101 - refuse_command_line ran
        return [edit.set_setting(place.path, "use_lockfile", True)]

    def edit_title(already: bool) -> str:
        if already:
            return "use_lockfile = true is set beside dynamodb_table"
        return f"add use_lockfile = true beside dynamodb_table in {target().label}"

    def edit_run() -> Done:
        place = target()
        change = pending()[0]
        m.out.block(change.diff())
        previous = place.settings.get("use_lockfile")
        rec = edits.record(change, m.workdir, phase="dual", op="set", name="use_lockfile", previous=previous)
        journal_edit(m, rec)
        change.apply()
        m.load()
        return Done(f"{place.label} edited", {"file": rec["file"]})

    edit_step = Step(
        "edit",
        edit_title,
        edit_run,
        holds=lambda: m.mode == "dual" and m.backend.dynamodb_table == table,
        dry=diff_printer(m, pending),
        gone=lambda: f"the files now give {describe_mode(m.mode)}, not dual",
    )
    return [
        Step(
            "preflight",
            lambda _: f"{m.where}, lock table {table}: state, locks, Terraform version",
            preflight,
            always=True,
        ),
        versioning,
        object_lock,
        baseline_step(m, "dual"),
        edit_step,
        init_step(m, "dual"),
        verify_step(m, "dual", "dual", lambda: table),
    ]
