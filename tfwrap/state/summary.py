"""What a state body is, without its values: serial, lineage, Terraform version, and its
resource instances by address (pure).

State holds secrets (passwords, keys, tokens in attributes and outputs). Nothing here keeps
a value: an instance is its address, its type and a fingerprint per attribute, so a diff can
say *which* attributes changed and never *to what* (docs/decisions/081-state-values-never-shown.md).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Instance:
    address: str
    type: str
    attributes: dict[str, str]  # attribute name -> fingerprint of its value (never the value)


@dataclass(frozen=True)
class Summary:
    """A state version's identity and shape; ``valid`` False when the body is not a state."""

    valid: bool
    serial: int | None = None
    lineage: str = ""
    terraform_version: str = ""
    instances: dict[str, Instance] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)  # name -> fingerprint

    @property
    def resource_count(self) -> int:
        return len(self.instances)


def _fingerprint(value: Any) -> str:
    """Equal values give equal fingerprints; a fingerprint never leaves this process."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def address(resource: dict[str, Any], instance: dict[str, Any]) -> str:
    """Terraform's address of one instance: ``module.a.data.t.n["k"]``."""
    parts = []
    if resource.get("module"):
        parts.append(str(resource["module"]))
    if resource.get("mode") == "data":
        parts.append("data")
    parts.append(f"{resource.get('type', '?')}.{resource.get('name', '?')}")
    text = ".".join(parts)
    if "index_key" in instance:
        key = instance["index_key"]
        text += f"[{key}]" if isinstance(key, int) else f"[{json.dumps(str(key))}]"
    return text


def parse(body: bytes) -> dict[str, Any] | None:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return doc if isinstance(doc, dict) else None


def summarise(body: bytes) -> Summary:
    doc = parse(body)
    if doc is None or "lineage" not in doc:
        return Summary(valid=False)
    instances: dict[str, Instance] = {}
    for resource in doc.get("resources") or []:
        if not isinstance(resource, dict):
            continue
        for instance in resource.get("instances") or []:
            if not isinstance(instance, dict):
                continue
            attrs = instance.get("attributes") or {}
            where = address(resource, instance)
            instances[where] = Instance(
                address=where,
                type=str(resource.get("type") or ""),
                attributes={str(k): _fingerprint(v) for k, v in attrs.items()}
                if isinstance(attrs, dict)
                else {},
            )
    outputs = doc.get("outputs") or {}
    serial = doc.get("serial")
    return Summary(
        valid=True,
        serial=serial if isinstance(serial, int) and not isinstance(serial, bool) else None,
        lineage=str(doc.get("lineage") or ""),
        terraform_version=str(doc.get("terraform_version") or ""),
        instances=instances,
        outputs={str(k): _fingerprint(v) for k, v in outputs.items()} if isinstance(outputs, dict) else {},
    )


def with_serial(body: bytes, serial: int) -> bytes:
    """The same state with ``serial`` replaced, written as Terraform writes state (two-space
    indent, keys in their order, a final newline)."""
    doc = parse(body)
    if doc is None:
        raise ValueError("not a state")
    doc["serial"] = serial
    return (json.dumps(doc, indent=2) + "\n").encode()
