"""A finding: one thing wrong (or worth knowing) about the backend, with the exact fix.

On the shim's hot path (cached findings are rebuilt from JSON): standard library only.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs ~3 ms to import on the hot path

if TYPE_CHECKING:
    from typing import Any

ERROR, WARNING, INFO, OFF = "error", "warning", "info", "off"
SEVERITIES = (ERROR, WARNING, INFO, OFF)

# Every finding id with its default severity: the policy file may change any of them.
CATALOG: dict[str, str] = {
    "terraform-version": ERROR,  # older than the minimum (use_lockfile needs 1.10)
    "terraform-version-experimental": WARNING,  # 1.10.x: use_lockfile experimental
    "terraform-version-retention-bug": ERROR,  # 1.10.0 + default retention (#36113)
    "terraform-version-unknown": ERROR,  # `version -json` gave no usable answer
    "bucket-versioning": ERROR,
    "bucket-object-lock": ERROR,  # the team's standard, not a Terraform need
    "object-lock-compliance-retention": WARNING,
    "locking-dual": WARNING,  # use_lockfile + dynamodb_table: mid-migration
    "locking-dynamodb-only": ERROR,
    "locking-rolled-back": WARNING,  # DynamoDB only, as `tfwrap migrate rollback` left it
    "checkout-behind": ERROR,  # the files lack an edit the migration journal records: pull it
    "locking-none": ERROR,
    "locking-disagree": WARNING,  # files and the initialised copy differ
    "backend-config-missing": ERROR,  # a partial backend block and no -backend-config
    "bucket-encryption": ERROR,
    "public-access-block": ERROR,
    "access-denied": WARNING,  # a check could not run: names the IAM action
    "no-credentials": ERROR,
    "bad-credentials": ERROR,
    "bucket-missing": ERROR,
    "endpoint-unreachable": ERROR,
    "check-failed": WARNING,  # any other AWS error while checking
    # The store itself (checks/store.py, the conditional-write probe)
    "conditional-writes-ignored": ERROR,  # a second create-only PUT succeeded: no lock at all
    "conditional-writes-unsupported": ERROR,  # conditional PUTs refused: Terraform cannot lock
    "if-match-unreliable": WARNING,  # the heartbeat is turned off for this endpoint
    "delete-conditions-ignored": WARNING,  # DELETE If-Match not honoured: takeover, clear --stale off
    "conditional-writes-racy": WARNING,  # concurrent conditional writes: several won; heartbeat, takeover off
    "checksum-unsupported": WARNING,  # the SDK's default checksums are rejected
    "probe-denied": WARNING,  # the probe could not run: not a verdict on the store
    "skip-s3-checksum-object-lock": ERROR,  # warning without a default retention
    # tfwrap audit: what the files alone say, for every stack at once
    "required-version-pre-lockfile": WARNING,  # required_version admits < 1.10 (no use_lockfile)
    "required-version-experimental": INFO,  # admits 1.10.x (use_lockfile experimental)
    "encrypt-missing": WARNING,  # the backend does not set encrypt = true
    "backend-dynamic-value": INFO,  # a value built by an expression: shown, not guessed
    "backend-unreadable": ERROR,  # the stack's backend configuration cannot be read
    # The bucket's policy, logging and KMS key (docs/decisions/071-bucket-policy-findings.md)
    "bucket-policy-conditional-writes": ERROR,  # Terraform's unconditional writes will be denied
    "bucket-policy-tls": WARNING,  # nothing denies plain HTTP
    "kms-key-access": ERROR,  # the runner cannot use the key: the first lock write fails
    "bucket-access-logging": WARNING,  # server access logging off
}


class Finding:
    """What is wrong (``id``, ``message``), how much it matters, and the command that fixes it."""

    __slots__ = ("fix", "id", "message", "severity")

    def __init__(self, finding_id: str, severity: str, message: str, fix: str = "") -> None:
        self.id, self.severity, self.message, self.fix = finding_id, severity, message, fix

    def __repr__(self) -> str:
        return f"Finding({self.id!r}, {self.severity!r}, {self.message!r})"

    def with_severity(self, severity: str) -> Finding:
        return Finding(self.id, severity, self.message, self.fix)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "severity": self.severity, "message": self.message, "fix": self.fix}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Finding:
        return cls(data["id"], data["severity"], data["message"], data.get("fix", ""))


def make(check_id: str, message: str, fix: str = "") -> Finding:
    """A finding at its catalogue severity (policy is applied later)."""
    return Finding(check_id, CATALOG[check_id], message, fix)
