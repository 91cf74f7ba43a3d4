"""Findings as people read them: one line each on stderr, or JSON for machines."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from tfwrap.checks.guard import Outcome
from tfwrap.checks.policy import Policy


def line(finding_id: str, severity: str, message: str, fix: str) -> str:
    return f"tfwrap: {severity} [{finding_id}] {message}" + (f" — fix: {fix}" if fix else "")


def to_stderr(outcome: Outcome, policy: Policy, stream: TextIO | None = None) -> None:
    """Print the findings (nothing at all when there are none: quiet by default)."""
    out = stream or sys.stderr
    for f in outcome.findings:
        out.write(line(f.id, f.severity.value, f.message, f.fix) + "\n")
    if outcome.blocked:
        count = len(outcome.errors)
        out.write(
            f"tfwrap: stopped before Terraform ran: {count} error{'s' if count != 1 else ''} "
            "(TFWRAP_MODE=warn reports them and runs Terraform anyway)\n"
        )
    out.flush()


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
    }
