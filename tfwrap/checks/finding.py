"""A finding: one thing wrong (or worth knowing) about the backend, with the exact fix."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass
from typing import Any


class Severity(enum.Enum):
    """How much a finding matters; ``OFF`` hides it (set by policy)."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"
    OFF = "off"


# Every finding id with its default severity: the policy file may change any of them.
CATALOG: dict[str, Severity] = {
    "terraform-version": Severity.ERROR,  # older than the minimum (use_lockfile needs 1.10)
    "terraform-version-experimental": Severity.WARNING,  # 1.10.x: use_lockfile experimental
    "terraform-version-retention-bug": Severity.ERROR,  # 1.10.0 + default retention (#36113)
    "terraform-version-unknown": Severity.ERROR,  # `version -json` gave no usable answer
    "bucket-versioning": Severity.ERROR,
    "bucket-object-lock": Severity.ERROR,  # the team's standard, not a Terraform need
    "object-lock-compliance-retention": Severity.WARNING,
    "locking-dual": Severity.WARNING,  # use_lockfile + dynamodb_table: mid-migration
    "locking-dynamodb-only": Severity.ERROR,
    "locking-none": Severity.ERROR,
    "locking-disagree": Severity.WARNING,  # files and the initialised copy differ
    "bucket-encryption": Severity.ERROR,
    "public-access-block": Severity.ERROR,
    "access-denied": Severity.WARNING,  # a check could not run: names the IAM action
    "no-credentials": Severity.ERROR,
    "bad-credentials": Severity.ERROR,
    "bucket-missing": Severity.ERROR,
    "endpoint-unreachable": Severity.ERROR,
    "check-failed": Severity.WARNING,  # any other AWS error while checking
}


@dataclass(frozen=True)
class Finding:
    """What is wrong, how much it matters, and the command that fixes it."""

    id: str
    severity: Severity
    message: str
    fix: str = ""

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["severity"] = self.severity.value
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Finding:
        return cls(data["id"], Severity(data["severity"]), data["message"], data.get("fix", ""))


def make(check_id: str, message: str, fix: str = "") -> Finding:
    """A finding at its catalogue severity (policy is applied later)."""
    return Finding(check_id, CATALOG[check_id], message, fix)
