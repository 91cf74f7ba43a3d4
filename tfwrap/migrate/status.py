"""``tfwrap migrate status``: what the journal next to the state says, and the next command.

Read (the configuration, the initialised copy, the journal: one S3 GET), decide (the phase and
the next command, a pure function), show (text or ``--json`` on stdout: a report the user asked
for). The JSON fields are stable: ``backend`` (``type``, ``bucket``,
``state_key``, ``workspace``, ``backend_config``), ``journal``, ``files_locking``, ``initialised_locking``,
``lock_table``, ``phase``, ``steps`` (``[{"step", "at"}]``), ``rolled_back_at``, ``next``
(a command line, or null when nothing is left to do) and ``why``; ``schema_version`` (1),
``checkout_behind`` (the "pull the backend change" line when the files are behind the
journal's edits, else null) and ``stragglers`` (``[{"kind", "lock_id", "who", "at",
"operation", "id"}]``: runs on the old configuration found by evidence, ``tfwrap.migrate.stragglers``)
and ``stragglers_unread`` (why they could not be looked for, e.g. access denied; else null).
"""

from __future__ import annotations

import json
import shlex
import sys
from typing import Any

from tfwrap.backend.journal import behind, watched
from tfwrap.durations import human
from tfwrap.errors import TfwrapError
from tfwrap.migrate import stragglers
from tfwrap.migrate.journal import Journal, now, parse_stamp
from tfwrap.migrate.migration import Migration, describe_mode
from tfwrap.migrate.remote import Remote

PHASES = ("dual", "finalize", "rollback", "cleanup-table")


def read(m: Migration) -> dict[str, Any]:
    backend = m.backend if m.backend.bucket else (m.initialised or m.backend)
    journal = None
    if m.backend.bucket:
        journal = m.journal
    elif backend.bucket:  # a partial backend: the initialised copy knows the bucket
        journal = Journal.load(Remote(backend).journal())
    steps = journal.steps if journal else {}
    history = journal.data.get("history") if journal else []
    last = history[-1] if history else {}
    stale = behind(journal.data, m.mode) if journal else None
    table = watched(journal.data) if journal else ""
    remote = m.remote if m.backend.bucket else Remote(backend)
    evidence, unread = [], None
    if journal and table:
        try:
            evidence = stragglers.find(remote, table, journal)
        except TfwrapError as exc:  # a report still: say what could not be looked at
            unread = exc.message
    return {
        "backend": {
            "type": m.backend.backend_type or None,
            "bucket": backend.bucket,
            "state_key": backend.state_key,
            "workspace": backend.workspace,
            "backend_config": list(m.opts.backend_config),
        },
        "journal": journal.path if journal else None,
        "files_locking": m.mode,
        "initialised_locking": m.init_mode,
        "lock_table": (journal.get("table") if journal else None) or backend.dynamodb_table or None,
        "phase": next((p for p in reversed(PHASES) if any(k.startswith(p + "/") for k in steps)), None),
        "steps": [{"step": k, "at": v.get("at")} for k, v in steps.items()],
        "rolled_back_at": last.get("ended") if not steps and last.get("how") == "rolled back" else None,
        "checkout_behind": stale.line if stale else None,
        "stragglers": [e.to_json() for e in evidence],
        "stragglers_unread": unread,
    }


def decide(report: dict[str, Any], soak: float, chdir: str) -> tuple[str | None, str]:
    """The next command and why (None: nothing left to do)."""
    extra = f" -chdir={shlex.quote(chdir)}" if chdir != "." else ""
    extra += "".join(f" -backend-config={shlex.quote(v)}" for v in report["backend"]["backend_config"])
    done = {s["step"]: s["at"] for s in report["steps"]}
    phase, files = report["phase"], report["files_locking"]
    if report["backend"]["type"] != "s3":
        return None, f"the backend is {report['backend']['type'] or 'local'}, not s3: nothing to migrate"
    if not report["backend"]["bucket"]:
        return (
            f"tfwrap migrate status{extra} -backend-config=FILE",
            "the bucket comes from -backend-config, none given: pass the file terraform init uses",
        )
    if report.get("checkout_behind"):
        return None, report["checkout_behind"]
    if phase == "rollback":
        return f"tfwrap migrate rollback{extra}", "a rollback is in progress: finish it"
    straggling = _stragglers_next(report, phase, done, extra)
    if straggling is not None:
        return straggling
    if phase == "cleanup-table":
        if "cleanup-table/delete-table" in done:
            deleted = done["cleanup-table/delete-table"]
            return None, f"the migration is complete; the lock table was deleted at {deleted}"
        return f"tfwrap migrate cleanup-table{extra}", "the lock table's deletion is in progress"
    if phase == "finalize":
        if "finalize/remove-digest" in done:
            at = done["finalize/remove-digest"]
            return f"tfwrap migrate cleanup-table{extra}", f"finalized at {at}: delete the lock table next"
        return f"tfwrap migrate finalize{extra}", "the finalize phase is in progress: finish it"
    if phase == "dual":
        verified = done.get("dual/verify")
        if verified is None:
            return f"tfwrap migrate{extra}", "the dual phase is in progress: run it again to resume"
        ready = parse_stamp(verified).timestamp() + soak
        left = ready - now().timestamp()
        if left > 0:
            return (
                f"tfwrap migrate finalize{extra}",
                f"dual locking verified at {verified}; after the soak (another {human(left)}), once every "
                "pipeline uses the new configuration",
            )
        return f"tfwrap migrate finalize{extra}", f"dual locking verified at {verified}; the soak is over"
    return _from_files(report, files, extra)


def _stragglers_next(
    report: dict[str, Any], phase: str | None, done: dict[str, str], extra: str
) -> tuple[str | None, str] | None:
    """With evidence of a run on the old configuration: wait for it, never the next deletion."""
    if not report.get("stragglers"):
        return None
    if phase in ("finalize", "cleanup-table") and "finalize/remove-digest" in done:
        return None, (
            f"{stragglers.OLD} used the lock table after finalize (see straggler above): update that "
            "pipeline; cleanup-table refuses until then"
        )
    if phase == "dual":
        return f"tfwrap migrate finalize{extra}", (
            f"{stragglers.OLD} used the lock table during the dual phase (see straggler above): update "
            "that pipeline; finalize waits for the soak from the last time it was seen"
        )
    return None


def _from_files(report: dict[str, Any], files: str, extra: str) -> tuple[str | None, str]:
    """No migration in the journal: the next step follows from the locking the files give."""
    if files == "dynamodb":
        if report["rolled_back_at"]:
            return f"tfwrap migrate{extra}", f"rolled back at {report['rolled_back_at']}; this resumes it"
        return f"tfwrap migrate{extra}", "DynamoDB locking only: start the migration (dual locking)"
    if files == "dual":
        return (
            f"tfwrap migrate{extra}",
            "dual locking set outside tfwrap migrate: let it verify and record it",
        )
    if files == "native":
        return None, "S3 native locking only: nothing to migrate"
    return None, "no state locking is configured: add use_lockfile = true to the backend block"


def show(report: dict[str, Any], as_json: bool) -> None:
    if as_json:
        from tfwrap.schema import versioned

        sys.stdout.write(json.dumps(versioned(report), indent=2) + "\n")
        return
    backend = report["backend"]
    if backend["type"] != "s3":  # one statement, not an s3 line contradicting it
        kind = backend["type"] or "none (local state)"
        sys.stdout.write(f"backend: {kind}\nnext: nothing to do ({report['why']})\n")
        return
    where = (
        f"s3://{backend['bucket']}/{backend['state_key']}" if backend["bucket"] else "s3 (bucket not given)"
    )
    lines = [
        f"backend: {where} (workspace {backend['workspace']})",
        f"locking: the files give {describe_mode(report['files_locking'])}, .terraform gives "
        f"{describe_mode(report['initialised_locking'])}",
    ]
    if backend["backend_config"]:
        lines.append("backend config: " + " ".join(backend["backend_config"]))
    if report["journal"]:
        lines.append(f"journal: {report['journal']}")
    if report["lock_table"]:
        lines.append(f"lock table: {report['lock_table']}")
    if report["rolled_back_at"]:
        lines.append(f"rolled back at {report['rolled_back_at']}")
    if not report["steps"]:
        lines.append("no migration in progress")
    lines += [f"  {s['at']}  {s['step']}" for s in report["steps"]]
    for e in report.get("stragglers") or []:
        lines.append(f"straggler: {_evidence_line(e)}")
    if report.get("stragglers_unread"):
        lines.append(f"stragglers: not looked for: {report['stragglers_unread']}")
    if report.get("checkout_behind"):
        lines.append(
            "next: pull the backend change, then terraform init -reconfigure (" + report["why"] + ")"
        )
    else:
        lines.append(f"next: {report['next'] or 'nothing to do'} ({report['why']})")
    sys.stdout.write("\n".join(lines) + "\n")


def status(m: Migration, as_json: bool) -> None:
    report = read(m)
    report["next"], report["why"] = decide(report, m.opts.soak, m.opts.chdir)
    show(report, as_json)


def _evidence_line(e: dict[str, Any]) -> str:
    """One straggler for a person: Who, when and what showed it."""
    return stragglers.Evidence(
        e["kind"], e["lock_id"], e["who"], e["at"], e.get("operation", ""), e.get("id", "")
    ).describe()
