"""Inline suppression: ``# tfwrap:ignore <finding-id> <reason>`` on the backend block.

The comment goes on the lines right above ``backend "s3" {`` or inside the block (``//``
comments too), as checkov's inline skips do. The reason is required: an ignore without one
is not honoured, and the finding says so. Read by the guard and by ``tfwrap audit``, so both
agree (docs/decisions/064-suppression.md).

Standard library only (the guard's findings are rebuilt on the shim's hot path).
"""

from __future__ import annotations

import os
import re

from tfwrap.findings.finding import Finding

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

_IGNORE = re.compile(r"(?:#|//)\s*tfwrap:ignore\s+([A-Za-z0-9_-]+)(?:[ \t]+([^\n]*\S))?")
_BACKEND = re.compile(r'^\s*backend\s+"s3"\s*\{')


def ignores_in(text: str) -> dict[str, tuple[str, int]]:
    """``{finding id: (reason, line)}`` from the comments on each ``backend "s3"`` block of one
    file ("" reason: none given)."""
    lines = text.splitlines()
    found: dict[str, tuple[str, int]] = {}
    for number, line in enumerate(lines):
        if not _BACKEND.match(line):
            continue
        above = number - 1
        while above >= 0 and lines[above].strip().startswith(("#", "//")):
            above -= 1
        depth, end = 0, number
        for end in range(number, len(lines)):
            depth += lines[end].count("{") - lines[end].count("}")
            if depth <= 0:
                break
        for index in range(above + 1, end + 1):
            match = _IGNORE.search(lines[index])
            if match:
                found[match.group(1)] = (match.group(2) or "", index + 1)
    return found


def ignores(backend: Any) -> dict[str, tuple[str, str]]:
    """``{finding id: (reason, "file:line")}`` for the backend's ``.tf`` files."""
    found: dict[str, tuple[str, str]] = {}
    for src in backend.sources:
        if src.backend_type != "s3" or not src.where.endswith(".tf"):
            continue
        try:
            with open(os.path.join(str(backend.workdir), src.where), encoding="utf-8-sig") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError):
            continue
        for finding_id, (reason, line) in ignores_in(text).items():
            found[finding_id] = (reason, f"{src.where}:{line}")
    return found


def apply(backend: Any, raw: list[Finding]) -> list[Finding]:
    """The findings without those ignored inline with a reason."""
    if not raw:
        return raw
    marked = ignores(backend)
    if not marked:
        return raw
    kept = []
    for f in raw:
        reason, where = marked.get(f.id, (None, ""))
        if reason:
            continue
        if reason == "":
            kept.append(
                Finding(
                    f.id,
                    f.severity,
                    f"{f.message} (the tfwrap:ignore at {where} gives no reason, so it is not honoured)",
                    f"{f.fix}; or give the reason: # tfwrap:ignore {f.id} <why>" if f.fix else "",
                )
            )
            continue
        kept.append(f)
    return kept
