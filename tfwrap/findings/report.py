"""Findings as people read them: one line each on stderr, or JSON for machines.

On the shim's hot path: standard library only.
"""

from __future__ import annotations

from tfwrap.findings.finding import ERROR, Finding
from tfwrap.output import PREFIX, write
from tfwrap.schema import VERSION as SCHEMA_VERSION

TYPE_CHECKING = False  # typing costs ~3 ms to import on the hot path

if TYPE_CHECKING:
    from typing import Any, TextIO

    from tfwrap.checks.guard import Outcome
    from tfwrap.findings.policy import Policy


def line(f: Finding) -> str:
    return f"{f.severity} [{f.id}] {f.message}" + (f" — fix: {f.fix}" if f.fix else "")


DAY = 24 * 3600.0
# The setting a finding is about: where `check --json` points (None: the backend block itself).
_SETTING = {
    "locking-dual": "dynamodb_table",
    "locking-dynamodb-only": "dynamodb_table",
    "locking-rolled-back": "dynamodb_table",
    "checkout-behind": "dynamodb_table",
    "locking-disagree": "use_lockfile",
    "skip-s3-checksum-object-lock": "skip_s3_checksum",
    "encrypt-missing": "encrypt",
}
ADOPT_HINT = (
    "adopting tfwrap gradually? `tfwrap check --init-config` writes a .tfwrap.toml that makes "
    "today's findings warnings (shown once a day; TFWRAP_QUIET=1 hides them)"
)


def to_stderr(
    findings: list[Finding],
    blocked: bool,
    stream: TextIO | None = None,
    *,
    quiet: bool = False,
    stack: str = "",
) -> None:
    """Print the findings (nothing at all when there are none: quiet by default).

    With ``stack`` (the directory's absolute path), a warning or note already printed in full
    for that stack in the last day is one short line; ``quiet`` drops warnings and notes. An
    error is always printed in full (docs/decisions/063-warnings-once-a-day.md)."""
    text = ""
    for f in findings:
        if f.severity != ERROR:
            if quiet:
                continue
            if stack and _seen_today(stack, f):
                text += (
                    f"{PREFIX}{f.severity} [{f.id}] (as shown today; `tfwrap check` repeats it, "
                    "TFWRAP_QUIET=1 hides it)\n"
                )
                continue
        text += PREFIX + line(f) + "\n"
    if blocked:
        count = sum(1 for f in findings if f.severity == ERROR)
        text += (
            f"{PREFIX}stopped before Terraform ran: {count} error{'s' if count != 1 else ''} "
            "(fix them, or TFWRAP_MODE=warn to report them and run Terraform anyway)\n"
        )
        if stack and _first_time("adopt-hint", ""):
            text += f"{PREFIX}{ADOPT_HINT}\n"
    if stream is None:
        write(text)  # never raises: a closed stderr must not change the outcome
    elif text:
        stream.write(text)
        stream.flush()


def _seen_today(stack: str, f: Finding) -> bool:
    """Whether ``f`` was printed in full for ``stack`` within a day (and note it now if not)."""
    return not _first_time("seen", f"{stack}\0{f.id}\0{f.message}", DAY)


def _first_time(kind: str, what: str, within: float | None = None) -> bool:
    """True the first time ``what`` is asked about (within ``within`` seconds), and remembers it.
    A cache that cannot be read or written makes every time the first: full output, never less."""
    from tfwrap.findings import cache

    key = cache.digest(kind, what)
    if cache.get(kind, key, max_age=within) is not None:
        return False
    cache.put(kind, key, {"shown": True})
    return True


def to_json(outcome: Outcome, policy: Policy) -> dict[str, Any]:
    backend = outcome.backend
    return {
        "schema_version": SCHEMA_VERSION,
        "mode": policy.mode,
        "policy_file": policy.source if policy.source != "defaults" else None,
        "backend": {
            "type": backend.backend_type or None,
            "bucket": backend.bucket or None,
            "state_key": backend.state_key if backend.is_s3 else None,
            "lock_key": backend.lock_key if backend.is_s3 else None,
            "region": backend.region,
            "workspace": backend.workspace,
            "s3_endpoint": backend.s3_endpoint,
            "use_lockfile": backend.use_lockfile,
            "dynamodb_table": backend.dynamodb_table or None,
        },
        "findings": [{**f.to_json(), **location(backend, f.id)} for f in outcome.findings],
        "errors": len(outcome.errors),
        "blocked": outcome.blocked,
        "probe": outcome.probe,  # the conditional-write probe's facts, null if not run
    }


def location(backend: Any, finding_id: str) -> dict[str, Any]:
    """``{"file", "line"}`` of the setting a finding is about (the backend block when the
    setting is not written anywhere; nulls when no file holds the backend)."""
    setting = _SETTING.get(finding_id)
    files = [src for src in backend.sources if _a_file(src.where)]
    for src in reversed(files):
        if setting and setting in src.places:
            return {"file": _file(src.where), "line": src.places[setting][0]}
    blocks = [src for src in files if src.backend_type]
    if blocks:
        src = blocks[-1]
        return {"file": _file(src.where), "line": src.places.get("", (None,))[0]}
    return {"file": None, "line": None}


def _file(where: str) -> str:
    return where.split("=", 1)[1] if where.startswith("-backend-config=") else where


def _a_file(where: str) -> bool:
    """A place a person edits: a .tf file or a named -backend-config file."""
    if where.startswith("-backend-config="):
        return "..." not in where
    return not where.endswith("terraform.tfstate")
