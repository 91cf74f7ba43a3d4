"""Whether this state's migration journal records a rollback (issue 11).

After ``tfwrap migrate rollback`` the backend is DynamoDB-only again, on purpose: the guard
reports that as a warning naming the date and the way back (``tfwrap migrate``), not as the
``locking-dynamodb-only`` error that would block every run. Read only when that error is
about to be raised: one GET of the journal next to the state.
"""

from __future__ import annotations

import json
from typing import Any

from tfwrap.aws import sse
from tfwrap.backend.config import BackendConfig
from tfwrap.findings.finding import Finding, make


def rolled_back_at(backend: BackendConfig) -> str | None:
    """The time the journal's last migration ended "rolled back", with nothing started since."""
    from tfwrap.aws import clients

    params = sse.params(backend)
    try:
        s3: Any = clients.client(backend, "s3")
        got = s3.get_object(Bucket=backend.bucket, Key=backend.journal_key, **params)
        data = json.loads(got["Body"].read())
    except Exception:  # noqa: BLE001 - no journal, or unreadable: the plain finding stands
        return None
    if not isinstance(data, dict) or data.get("steps"):
        return None
    history = data.get("history") or []
    last = history[-1] if history and isinstance(history[-1], dict) else {}
    return str(last["ended"]) if last.get("how") == "rolled back" and last.get("ended") else None


def soften(backend: BackendConfig, raw: list[Finding]) -> list[Finding]:
    """``locking-dynamodb-only`` becomes ``locking-rolled-back`` while the journal records a rollback."""
    if not any(f.id == "locking-dynamodb-only" for f in raw):
        return raw
    at = rolled_back_at(backend)
    if at is None:
        return raw
    finding = make(
        "locking-rolled-back",
        f"state is locked with DynamoDB only: the migration to S3 native locking was rolled back on {at}",
        "`tfwrap migrate` resumes the migration (dual locking) when you are ready",
    )
    return [finding if f.id == "locking-dynamodb-only" else f for f in raw]
