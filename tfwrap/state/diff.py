"""What changed between two state versions: instances added, removed and changed (by
address, with the names of the attributes that changed) and outputs changed (pure).

Values are never part of a diff: only addresses, types and names
(docs/decisions/081-state-values-never-shown.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tfwrap.state.summary import Summary


@dataclass(frozen=True)
class Change:
    address: str
    type: str
    attributes: list[str] = field(default_factory=list)  # names only


@dataclass(frozen=True)
class Diff:
    added: list[Change]
    removed: list[Change]
    changed: list[Change]
    outputs_added: list[str]
    outputs_removed: list[str]
    outputs_changed: list[str]

    @property
    def empty(self) -> bool:
        return not (
            self.added
            or self.removed
            or self.changed
            or self.outputs_added
            or self.outputs_removed
            or self.outputs_changed
        )

    def counts(self) -> str:
        return (
            f"{len(self.added)} added, {len(self.removed)} removed, {len(self.changed)} changed; "
            f"outputs: {len(self.outputs_added)} added, {len(self.outputs_removed)} removed, "
            f"{len(self.outputs_changed)} changed"
        )

    def document(self) -> dict[str, Any]:
        def items(changes: list[Change], with_attributes: bool = False) -> list[dict[str, Any]]:
            return [
                {
                    "address": c.address,
                    "type": c.type,
                    **({"attributes": c.attributes} if with_attributes else {}),
                }
                for c in changes
            ]

        return {
            "added": items(self.added),
            "removed": items(self.removed),
            "changed": items(self.changed, with_attributes=True),
            "outputs": {
                "added": self.outputs_added,
                "removed": self.outputs_removed,
                "changed": self.outputs_changed,
            },
        }


def between(old: Summary, new: Summary) -> Diff:
    """What going from ``old`` to ``new`` did."""
    added = [Change(a, new.instances[a].type) for a in sorted(set(new.instances) - set(old.instances))]
    removed = [Change(a, old.instances[a].type) for a in sorted(set(old.instances) - set(new.instances))]
    changed = []
    for a in sorted(set(old.instances) & set(new.instances)):
        before, after = old.instances[a].attributes, new.instances[a].attributes
        names = sorted(n for n in set(before) | set(after) if before.get(n) != after.get(n))
        if names:
            changed.append(Change(a, new.instances[a].type, names))
    return Diff(
        added=added,
        removed=removed,
        changed=changed,
        outputs_added=sorted(set(new.outputs) - set(old.outputs)),
        outputs_removed=sorted(set(old.outputs) - set(new.outputs)),
        outputs_changed=sorted(
            n for n in set(old.outputs) & set(new.outputs) if old.outputs[n] != new.outputs[n]
        ),
    )


def lines(diff: Diff) -> list[str]:
    """The diff for a person: one line per address, ``+`` added, ``-`` removed, ``~`` changed."""
    out = [f"+ {c.address}" for c in diff.added]
    out += [f"- {c.address}" for c in diff.removed]
    out += [f"~ {c.address} ({', '.join(c.attributes)})" for c in diff.changed]
    out += [f"+ output.{n}" for n in diff.outputs_added]
    out += [f"- output.{n}" for n in diff.outputs_removed]
    out += [f"~ output.{n}" for n in diff.outputs_changed]
    return out or ["no differences"]
