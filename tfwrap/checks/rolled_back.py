"""What this state's migration journal says about the locking the guard found.

After ``tfwrap migrate rollback`` the backend is DynamoDB-only again, on purpose: the guard
reports that as a warning naming the date and the way back (``tfwrap migrate``), not as the
``locking-dynamodb-only`` error that would block every run. A checkout whose files are
behind the journal's recorded edits (a colleague who has not pulled the migration) gets
``checkout-behind`` instead: pull the backend change, never "start a migration"
(docs/decisions/060-checkout-behind-the-journal.md). Read only when a DynamoDB or dual
finding is about to be raised: one GET of the journal next to the state.
"""

from __future__ import annotations

import json
from typing import Any

from tfwrap.aws import sse
from tfwrap.backend.config import BackendConfig, to_bool
from tfwrap.findings.finding import Finding, make

_READ_WHEN = ("locking-dynamodb-only", "locking-dual")


def journal_data(backend: BackendConfig) -> dict[str, Any] | None:
    """The journal next to the state, parsed; None when absent or unreadable."""
    from tfwrap.aws import clients

    params = sse.params(backend)
    try:
        s3: Any = clients.client(backend, "s3")
        got = s3.get_object(Bucket=backend.bucket, Key=backend.journal_key, **params)
        data = json.loads(got["Body"].read())
    except Exception:  # noqa: BLE001 - no journal, or unreadable: the plain finding stands
        return None
    return data if isinstance(data, dict) else None


def rolled_back_at(backend: BackendConfig, data: dict[str, Any] | None = None) -> str | None:
    """The time the journal's last migration ended "rolled back", with nothing started since."""
    data = journal_data(backend) if data is None else data
    if not isinstance(data, dict) or data.get("steps"):
        return None
    history = data.get("history") or []
    last = history[-1] if history and isinstance(history[-1], dict) else {}
    return str(last["ended"]) if last.get("how") == "rolled back" and last.get("ended") else None


def files_mode(backend: BackendConfig) -> str:
    """The locking the files give (not Terraform's initialised copy): dual|native|dynamodb|none."""
    files = [s for s in backend.sources if not s.where.endswith("terraform.tfstate")]
    table = any(s.settings.get("dynamodb_table") for s in files)
    lockfile = any(to_bool(s.settings.get("use_lockfile")) is True for s in files)
    if table and lockfile:
        return "dual"
    if lockfile:
        return "native"
    return "dynamodb" if table else "none"


def soften(backend: BackendConfig, raw: list[Finding]) -> list[Finding]:
    """``locking-dynamodb-only`` becomes ``locking-rolled-back`` while the journal records a
    rollback; a DynamoDB or dual finding becomes ``checkout-behind`` while the files are
    behind the journal's edits."""
    if not any(f.id in _READ_WHEN for f in raw):
        return raw
    data = journal_data(backend)
    if data is None:
        return raw
    from tfwrap.backend.journal import behind

    stale = behind(data, files_mode(backend))
    if stale is not None:
        finding = make("checkout-behind", stale.message, stale.fix)
        return [finding if f.id in _READ_WHEN else f for f in raw]
    at = rolled_back_at(backend, data)
    if at is None:
        return raw
    finding = make(
        "locking-rolled-back",
        f"state is locked with DynamoDB only: the migration to S3 native locking was rolled back on {at}",
        "`tfwrap migrate` resumes the migration (dual locking) when you are ready",
    )
    return [finding if f.id == "locking-dynamodb-only" else f for f in raw]
