"""Steps and checks every phase shares: preflight facts, the baseline plan, init, verify."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tfwrap.backend import edit
from tfwrap.migrate.migration import MODE_LINES, Migration, describe_mode
from tfwrap.migrate.step import Done, Step
from tfwrap.migrate.terraform import (
    Plan,
)


def object_lock_policy(m: Migration) -> tuple[str, str]:
    """The severity the guard gives ``bucket-object-lock`` here, and where it is set (
    the migration follows the same policy; never name a .tfwrap.toml that does not exist)."""
    from tfwrap.findings import policy
    from tfwrap.findings.finding import CATALOG

    pol = policy.load(str(m.workdir), m.environ)
    severity = pol.severity.get("bucket-object-lock")
    if severity is None:
        where = (
            f"by default (no severity for it in {pol.source})" if pol.source != "defaults" else "by default"
        )
        return CATALOG["bucket-object-lock"], where
    return severity, f"in {pol.source}"


def preflight_common(m: Migration, table: str | None, need_version: bool = True) -> str:
    parts = []
    if need_version:
        parts.append(f"Terraform {m.terraform_version()}")
    state = m.require_state()
    parts.insert(0, f"state serial {state.serial} lineage {state.lineage or '?'}")
    if table:
        m.require_table(table, "the lock table")
        parts.append(f"table {table} exists")
    m.refuse_held_lock(table)
    parts.append("no lock held")
    return ", ".join(parts)


def baseline_step(m: Migration, phase: str) -> Step:
    def title(_: bool) -> str:
        return (
            f"terraform plan -lock=true with the current configuration ({describe_mode(m.init_mode)}), to "
            "compare with the plan after the change"
        )

    def run() -> Done:
        plan = m.plan(m.init_mode)
        return Done(
            f"{plan.describe()} (exit {plan.code}); lock {plan.lock_id} ({plan.mode})",
            {"plan": plan.to_json()},
        )

    return Step("baseline", title, run)


def init_step(m: Migration, want: str) -> Step:
    args = " ".join(f"-backend-config={v}" for v in m.opts.backend_config)

    def title(_: bool) -> str:
        return f"terraform init -reconfigure -input=false {args}".rstrip() + f" ({m.real}, not the shim)"

    return Step("init", title, m.init, holds=lambda: m.init_mode == want, drift="redo")


def verify_step(m: Migration, phase: str, want: str, table: Callable[[], str | None]) -> Step:
    mode = MODE_LINES[want]

    def title(_: bool) -> str:
        return f"terraform plan -lock=true: Terraform locks with {mode!r} and releases, same plan as before"

    def run() -> Done:
        recorded = m.journal.step(f"{phase}/baseline") or {}
        plan = m.plan(want)
        extra = m.released(plan, table())
        note = f"locked and unlocked ({mode}) as lock {plan.lock_id}; no lock left behind{extra}"
        if "plan" in recorded:
            note += "; " + m.compare(Plan.from_json(recorded["plan"]), plan)
        return Done(note, {"plan": plan.to_json()})

    return Step("verify", title, run)


def diff_printer(m: Migration, changes: Callable[[], list[edit.Edit]]) -> Callable[[], None]:
    def show() -> None:
        for change in changes():
            m.out.block(change.diff())

    return show


def journal_edit(m: Migration, rec: dict[str, Any]) -> None:
    """Write-ahead: the edit is in the journal before the file changes (a crash loses nothing)."""
    m.journal.data["edits"] = [
        e
        for e in m.journal.edits
        if (e["phase"], e["path"], e["op"], e["name"]) != (rec["phase"], rec["path"], rec["op"], rec["name"])
    ]
    m.journal.add_edit(rec)
    m.journal.save()


def settings_of(path: Path) -> dict[str, Any]:
    """The S3 backend settings one file sets (a .tf/.tf.json block or a -backend-config file)."""
    from tfwrap.backend import config

    return config.file_settings(path) or {}
