"""What the migration journal beside the state says about the backend, read from its parsed
document (pure): whether the checkout is behind it, and which lock table stragglers may use.

A checkout behind the migration journal: the journal in the bucket records a backend edit
(``use_lockfile`` added, ``dynamodb_table`` removed) that the local files do not have.

That is a colleague who has not pulled yet (or a branch cut before the migration), not a
migration gone wrong: the answer is "pull the backend change", never a rollback or a new
lock table (docs/decisions/060-checkout-behind-the-journal.md). Pure: it reads a parsed
journal document and the locking the files give, so the guard, every ``tfwrap migrate``
subcommand and ``migrate status`` say the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# How far along the migration a locking configuration is.
_RANK = {"dynamodb": 0, "dual": 1, "native": 2}
# The journal step whose edit brings the files to each rank, and what that edit did.
_EDITS = (
    ("dual/edit", "dual", "use_lockfile = true added"),
    ("finalize/edit", "native", "dynamodb_table removed"),
)


def expected_mode(data: dict[str, Any]) -> str | None:
    """The locking the journal's recorded edits give (None: no edit recorded, or a rollback
    is under way: the files may then rightly be behind the forward edits)."""
    steps = data.get("steps") or {}
    if not isinstance(steps, dict) or any(str(k).startswith("rollback/") for k in steps):
        return None
    mode = None
    for step, gives, _ in _EDITS:
        if step in steps:
            mode = gives
    return mode


@dataclass(frozen=True)
class Behind:
    """What the journal records and the files lack."""

    files: str  # the locking the files give, in words
    edits: str  # the recorded edits they lack, with files and times

    @property
    def line(self) -> str:
        """The one refusal line (without ``tfwrap: ``) every migrate subcommand prints."""
        return (
            f"your checkout is behind the migration journal: pull the backend change ({self.edits} by "
            f"tfwrap migrate), then run terraform init -reconfigure; these files still give {self.files}"
        )

    @property
    def message(self) -> str:
        return (
            f"your checkout is behind the migration journal: these files give {self.files}, but the "
            f"journal records {self.edits}"
        )

    fix = "pull the backend change (git pull), then run `terraform init -reconfigure`"


def behind(data: dict[str, Any], files_mode: str) -> Behind | None:
    """What the files lack when ``files_mode`` is behind the journal's edits, else None."""
    want = expected_mode(data)
    if want is None or files_mode not in _RANK or _RANK[files_mode] >= _RANK[want]:
        return None
    steps = data.get("steps") or {}
    edits = [e for e in data.get("edits") or [] if isinstance(e, dict)]
    done = []
    for step, gives, what in _EDITS:
        if step not in steps or _RANK[gives] <= _RANK[files_mode]:
            continue
        phase = step.split("/")[0]
        files = sorted({str(e.get("file")) for e in edits if e.get("phase") == phase and e.get("file")})
        where = f" in {', '.join(files)}" if files else ""
        done.append(f"{what}{where} at {steps[step].get('at', '?')}")
    return Behind(_WORDS[files_mode], "; ".join(done))


_WORDS = {"dynamodb": "DynamoDB locking only", "dual": "dual locking"}


def watched(data: dict[str, Any]) -> str:
    """The lock table a straggler may still use: the journal's, from the dual edit on, until
    cleanup-table deleted it or a rollback made it the configured table again ("": none)."""
    steps = data.get("steps") or {}
    if not isinstance(steps, dict) or "dual/edit" not in steps:
        return ""
    if "cleanup-table/delete-table" in steps or any(str(k).startswith("rollback/") for k in steps):
        return ""
    return str(data.get("table") or "")


def finalized_at(data: dict[str, Any]) -> str:
    steps = data.get("steps") or {}
    recorded = steps.get("finalize/remove-digest") if isinstance(steps, dict) else None
    return str(recorded.get("at") or "") if isinstance(recorded, dict) else ""
