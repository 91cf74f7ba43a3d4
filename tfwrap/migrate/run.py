"""The entry points of ``tfwrap migrate``: which phase may run now, then the phase's steps."""

from __future__ import annotations

from collections.abc import Callable

from tfwrap import exitcodes
from tfwrap.durations import human
from tfwrap.errors import TfwrapError
from tfwrap.migrate.cleanup import cleanup_steps
from tfwrap.migrate.dual import dual_steps
from tfwrap.migrate.finalize import finalize_steps
from tfwrap.migrate.journal import now, parse_stamp
from tfwrap.migrate.migration import Migration, Options, describe_mode
from tfwrap.migrate.rollback import rollback_steps
from tfwrap.migrate.step import execute


def _session(opts: Options, body: Callable[[Migration], int]) -> int:
    m = Migration(opts)
    try:
        with m.stopper:
            return body(m)
    finally:
        m.close()


def _refuse_if_behind(m: Migration) -> None:
    """A colleague's checkout without the journal's edits: pull, never roll back or re-create
    (docs/decisions/060-checkout-behind-the-journal.md)."""
    from tfwrap.backend.journal import behind

    found = behind(m.journal.data, m.mode)
    if found is not None:
        raise TfwrapError(found.line, exitcodes.USAGE)


def _header(m: Migration, phase: str) -> None:
    dry = " --dry-run (the plan only: nothing is changed)" if m.opts.dry_run else ""
    m.out.line(f"migrate {phase}{dry}: {m.where} in {m.workdir}")


def dual(opts: Options) -> int:
    def body(m: Migration) -> int:
        m.check_config()
        m.refuse_if_rolling_back()
        _refuse_if_behind(m)
        journal = m.journal
        if m.mode == "native":
            if journal.done("finalize/remove-digest"):
                at = journal.steps["finalize/remove-digest"]["at"]
                m.out.line(
                    f"nothing to do: the migration finished at {at}"
                    " (tfwrap migrate cleanup-table deletes the lock table once no other state uses it)"
                )
                return exitcodes.OK
            if journal.phase_started("finalize"):
                raise TfwrapError(
                    "the finalize phase is in progress: run tfwrap migrate finalize to complete it",
                    exitcodes.USAGE,
                )
            m.out.line(
                f"nothing to do: {opts.chdir} already uses S3 native locking only (use_lockfile = true, "
                "no dynamodb_table)"
            )
            return exitcodes.OK
        if m.mode == "none":
            raise TfwrapError(
                f"{opts.chdir} configures no state locking at all (neither dynamodb_table nor "
                "use_lockfile): nothing to migrate; add use_lockfile = true to the backend block",
                exitcodes.USAGE,
            )
        if m.mode == "dual" and journal.done("dual/verify") and not journal.phase_started("finalize"):
            at = journal.steps["dual/verify"]["at"]
            m.out.line(f"nothing to do: dual locking was verified at {at}; {_soak_left(m, at)}")
            return exitcodes.OK
        _header(m, "dual")
        execute(m, "dual", dual_steps(m))
        if not opts.dry_run:
            m.out.line(
                "dual locking is in place: Terraform takes the .tflock object and the DynamoDB item, so runs "
                "on the old configuration are still excluded. Roll this configuration out to every pipeline "
                f"(Terraform >= 1.10), then {_soak_left(m, journal.steps['dual/verify']['at'])}"
            )
        return exitcodes.OK

    return _session(opts, body)


def _soak_left(m: Migration, at: str) -> str:
    ready = parse_stamp(at).timestamp() + m.opts.soak
    left = ready - now().timestamp()
    if left <= 0:
        return "run tfwrap migrate finalize"
    return f"after the soak (another {human(left)}) run tfwrap migrate finalize"


def finalize(opts: Options) -> int:
    def body(m: Migration) -> int:
        m.check_config()
        m.refuse_if_rolling_back()
        _refuse_if_behind(m)
        journal = m.journal
        if m.mode == "native" and journal.done("finalize/remove-digest"):
            at = journal.steps["finalize/remove-digest"]["at"]
            m.out.line(
                f"nothing to do: finalized at {at}; tfwrap migrate cleanup-table deletes the lock table"
            )
            return exitcodes.OK
        if m.mode == "native" and not journal.phase_started("finalize") and not journal.done("dual/verify"):
            m.out.line(f"nothing to do: {opts.chdir} already uses S3 native locking only")
            return exitcodes.OK
        if m.mode in ("dynamodb", "none"):
            raise TfwrapError(
                f"{opts.chdir} is not in the dual phase ({describe_mode(m.mode)}): run tfwrap migrate first",
                exitcodes.USAGE,
            )
        _header(m, "finalize")
        execute(m, "finalize", finalize_steps(m))
        if not opts.dry_run:
            m.out.line(
                "finalized: S3 native locking only. Pipelines must use this configuration now; "
                "tfwrap migrate cleanup-table deletes the lock table once no other state uses it"
            )
        return exitcodes.OK

    return _session(opts, body)


def rollback(opts: Options) -> int:
    def body(m: Migration) -> int:
        m.check_config()
        _refuse_if_behind(m)
        journal = m.journal
        table = m.backend.dynamodb_table or str(journal.get("table") or "") or (opts.table or "")
        if m.mode == "dynamodb" and not journal.phase_started("rollback"):
            m.out.line(
                f"nothing to roll back: {opts.chdir} uses DynamoDB locking ({m.backend.dynamodb_table})"
            )
            return exitcodes.OK
        if m.mode == "none":
            raise TfwrapError(
                f"{opts.chdir} configures no state locking: nothing to roll back", exitcodes.USAGE
            )
        if not table:
            raise TfwrapError(
                "which DynamoDB table? the journal does not know it: pass --table NAME", exitcodes.USAGE
            )
        _header(m, "rollback")
        execute(m, "rollback", rollback_steps(m, table))
        if not opts.dry_run:
            journal.close("rolled back")
            m.out.line(
                f"rolled back: DynamoDB locking only (dynamodb_table = {table!r}); every pipeline must use "
                "this configuration again"
            )
        return exitcodes.OK

    return _session(opts, body)


def cleanup_table(opts: Options) -> int:
    def body(m: Migration) -> int:
        m.check_config()
        _refuse_if_behind(m)
        journal = m.journal
        table = opts.table or str(journal.get("table") or "") or m.backend.dynamodb_table
        if not table:
            raise TfwrapError("which DynamoDB table? pass --table NAME", exitcodes.USAGE)
        deleted = journal.step("cleanup-table/delete-table")
        still_set = m.backend.dynamodb_table or (m.initialised.dynamodb_table if m.initialised else "")
        if not still_set and m.remote.describe_table(table) is None:  # gone is done
            when = f" (deleted at {deleted['at']})" if deleted is not None else ""
            m.out.line(f"nothing to do: table {table} does not exist{when}")
            return exitcodes.OK
        _header(m, "cleanup-table")
        execute(m, "cleanup-table", cleanup_steps(m, table))
        return exitcodes.OK

    return _session(opts, body)


def status(opts: Options, as_json: bool = False) -> int:
    """The report of ``tfwrap.migrate.status``, on stdout."""
    from tfwrap.migrate import status as report

    report.status(Migration(opts), as_json)
    return exitcodes.OK
