"""Findings as people read them: one line each on stderr, or JSON for machines.

On the shim's hot path: standard library only.
"""

from __future__ import annotations

from tfwrap.findings.finding import ERROR, Finding
from tfwrap.output import PREFIX, write

TYPE_CHECKING = False  # typing costs ~3 ms to import on the hot path

if TYPE_CHECKING:
    from typing import Any, TextIO

    from tfwrap.checks.guard import Outcome
    from tfwrap.findings.policy import Policy


def line(f: Finding) -> str:
    return f"{f.severity} [{f.id}] {f.message}" + (f" — fix: {f.fix}" if f.fix else "")


def to_stderr(findings: list[Finding], blocked: bool, stream: TextIO | None = None) -> None:
    """Print the findings (nothing at all when there are none: quiet by default)."""
    text = "".join(f"{PREFIX}{line(f)}\n" for f in findings)
    if blocked:
        count = sum(1 for f in findings if f.severity == ERROR)
        text += (
            f"{PREFIX}stopped before Terraform ran: {count} error{'s' if count != 1 else ''} "
            "(fix them, or TFWRAP_MODE=warn to report them and run Terraform anyway)\n"
        )
    if stream is None:
        write(text)  # never raises: a closed stderr must not change the outcome
    elif text:
        stream.write(text)
        stream.flush()


def to_json(outcome: Outcome, policy: Policy) -> dict[str, Any]:
    backend = outcome.backend
    return {
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
        "findings": [f.to_json() for f in outcome.findings],
        "errors": len(outcome.errors),
        "blocked": outcome.blocked,
        "probe": outcome.probe,  # the conditional-write probe's facts (issue 9), null if not run
    }
