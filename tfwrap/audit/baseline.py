"""What ``tfwrap audit`` leaves out on request: a baseline of known findings (``--baseline``,
``--write-baseline``), stacks under ``--skip-path GLOB``, and findings ignored inline with
``# tfwrap:ignore <finding-id> <reason>`` on the backend block (as the guard does).

Applied to a finished report, apart from the discovery and the checks, so they stay what they
are. A finding's fingerprint is its stack, its id and the file it points at, relative to the
working directory: it survives edits that move lines, and a finding that moves to another
file is new (docs/decisions/064-suppression.md).

Baseline file (JSON)::

    {"schema_version": 1, "findings": [{"fingerprint": "…", "id": "locking-dynamodb-only",
      "stack": "envs/prod", "file": "envs/prod/backend.tf"}]}
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from tfwrap import exitcodes
from tfwrap.audit.rules import Located
from tfwrap.errors import TfwrapError
from tfwrap.findings import suppress

SCHEMA_VERSION = 1


def _relative(path: Path) -> str:
    try:
        return Path(os.path.relpath(path.resolve(), Path.cwd())).as_posix()
    except ValueError:  # another drive
        return path.resolve().as_posix()


def fingerprint(found: Located) -> str:
    """The finding's identity across commits: stack, id and file (not the line)."""
    key = "\0".join((_relative(found.stack.path), found.finding.id, _relative(found.file)))
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def write(findings: list[Located], path: Path) -> None:
    doc = {
        "schema_version": SCHEMA_VERSION,
        "findings": [
            {
                "fingerprint": fingerprint(f),
                "id": f.finding.id,
                "stack": _relative(f.stack.path),
                "file": _relative(f.file),
            }
            for f in findings
        ],
    }
    try:
        path.write_text(json.dumps(doc, indent=2) + "\n")
    except OSError as exc:
        raise TfwrapError(
            f"cannot write {path}: {exc.strerror}; pick a writable path", exitcodes.USAGE
        ) from exc


def read(path: Path) -> set[str]:
    try:
        doc: Any = json.loads(path.read_text())
    except OSError as exc:
        raise TfwrapError(
            f"cannot read the baseline {path}: {exc.strerror}; write one with --write-baseline {path}",
            exitcodes.USAGE,
        ) from exc
    except ValueError as exc:
        raise TfwrapError(
            f"the baseline {path} is not JSON ({exc}); write it again with --write-baseline", exitcodes.USAGE
        ) from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("findings"), list):
        raise TfwrapError(
            f"the baseline {path} has no findings list; write it again with --write-baseline", exitcodes.USAGE
        )
    return {str(f.get("fingerprint")) for f in doc["findings"] if isinstance(f, dict)}


def without_baselined(findings: list[Located], known: set[str]) -> tuple[list[Located], int]:
    """The findings not in the baseline, and how many were."""
    kept = [f for f in findings if fingerprint(f) not in known]
    return kept, len(findings) - len(kept)


def skipped(path: Path, globs: tuple[str, ...]) -> bool:
    """Whether a stack directory matches one of the --skip-path globs (relative, posix)."""
    rel = _relative(path)
    return any(
        fnmatch.fnmatch(rel, g) or fnmatch.fnmatch(rel + "/", g) or rel.startswith(g.rstrip("/") + "/")
        for g in globs
    )


def without_inline_ignores(findings: list[Located]) -> tuple[list[Located], int]:
    """The findings not ignored inline (with a reason) on their stack's backend block."""
    cache: dict[Path, dict[str, tuple[str, int]]] = {}
    kept = []
    for f in findings:
        block = f.stack.block[0]
        if block not in cache:
            try:
                cache[block] = suppress.ignores_in(block.read_text(encoding="utf-8-sig"))
            except (OSError, UnicodeDecodeError):
                cache[block] = {}
        reason, _ = cache[block].get(f.finding.id, ("", 0))
        if not reason:
            kept.append(f)
    return kept, len(findings) - len(kept)
