"""The finalize phase: ``dynamodb_table`` removed after the soak, and this state's digest items."""

from __future__ import annotations

import datetime as dt

from tfwrap import exitcodes
from tfwrap.backend import edit
from tfwrap.durations import human
from tfwrap.errors import TfwrapError
from tfwrap.migrate import edits, stragglers
from tfwrap.migrate.common import (
    baseline_step,
    diff_printer,
    init_step,
    journal_edit,
    preflight_common,
    verify_step,
)
from tfwrap.migrate.journal import now, parse_stamp
from tfwrap.migrate.migration import Migration, describe_mode
from tfwrap.migrate.step import Done, Step


def finalize_steps(m: Migration) -> list[Step]:
    table = str(m.journal.get("table") or m.backend.dynamodb_table)
    started = m.journal.phase_started("finalize")

    def preflight() -> Done:
        places_with_table()  # a setting tfwrap cannot edit is refused before anything changes
        # Evidence first: a straggler seen restarts the soak, and says who to update.
        stragglers.refuse_finalize(m, table, soak=not started)
        if not started:
            soak_check(m)
        # the item is checked even after the edit: a run on the old configuration locks it
        return Done(preflight_common(m, table))

    def places_with_table() -> list[edits.Place]:
        found = edits.places(m.backend)
        edits.refuse_command_line(found)
        return [p for p in found if p.sets("dynamodb_table")]

    def pending() -> list[edit.Edit]:
        return [edit.remove_setting(p.path, "dynamodb_table") for p in places_with_table() if p.path]

    def edit_title(already: bool) -> str:
        if already:
            return "dynamodb_table is gone, use_lockfile = true stays"
        labels = ", ".join(p.label for p in places_with_table())
        return f"remove dynamodb_table from {labels} (use_lockfile = true stays)"

    def edit_run() -> Done:
        changed = []
        for place in places_with_table():
            assert place.path is not None  # noqa: S101 - refuse_command_line ran
            change = edit.remove_setting(place.path, "dynamodb_table")
            m.out.block(change.diff())
            previous = place.settings["dynamodb_table"]
            rec = edits.record(
                change, m.workdir, phase="finalize", op="remove", name="dynamodb_table", previous=previous
            )
            journal_edit(m, rec)
            change.apply()
            changed.append(rec["file"])
        m.load()
        return Done(f"{', '.join(changed)} edited", {"files": changed})

    edit_step = Step(
        "edit",
        edit_title,
        edit_run,
        holds=lambda: m.mode == "native",
        dry=diff_printer(m, pending),
        gone=lambda: f"the files now give {describe_mode(m.mode)}, not S3 native only",
    )

    def digest_keys() -> list[str]:
        return m.remote.workspace_state_keys()

    def digests_present() -> list[str]:
        return [k for k in digest_keys() if m.remote.digest(table, k) is not None]

    def digest_title(already: bool) -> str:
        if already:
            return f"no digest item of this configuration left in {table}"
        items = ", ".join(f"{m.backend.bucket}/{k}-md5" for k in digests_present())
        return (
            f"remove the DynamoDB digest item(s) {items} from {table}: Terraform no longer updates them, "
            "and a stale one breaks a rollback to DynamoDB locking"
        )

    def digest_run() -> Done:
        removed = digests_present()
        for key in removed:
            m.remote.delete_digest(table, key)
        return Done(f"removed {len(removed)} digest item(s)", {"removed": removed})

    remove_digest = Step(
        "remove-digest",
        digest_title,
        digest_run,
        holds=lambda: not digests_present(),
        drift="redo",
    )
    return [
        Step(
            "preflight", lambda _: f"{m.where}: soak, state, locks, Terraform version", preflight, always=True
        ),
        baseline_step(m, "finalize"),
        edit_step,
        init_step(m, "native"),
        verify_step(m, "finalize", "native", lambda: table),
        remove_digest,
    ]


def soak_check(m: Migration) -> None:
    verified = m.journal.step("dual/verify")
    if verified is None:
        raise TfwrapError(
            "the dual phase has not been verified: run tfwrap migrate (it resumes) before finalize",
            exitcodes.USAGE,
        )
    since = parse_stamp(verified["at"])
    ready = since + dt.timedelta(seconds=m.opts.soak)
    if now() < ready:
        age = (now() - since).total_seconds()
        raise TfwrapError(
            f"the dual phase is {human(age)} old (verified {verified['at']}); finalize after the "
            f"{human(m.opts.soak)} soak, at {ready:%Y-%m-%dT%H:%M:%SZ}, once every pipeline uses the new "
            "configuration, or pass --soak 0s",
            exitcodes.BLOCKED,
        )
