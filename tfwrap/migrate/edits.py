"""Where the backend's locking settings live, and edits that can be undone exactly.

The edits themselves are ``tfwrap.backend.edit`` (format-preserving). This module picks the
file to edit (a ``.tf``/``.tf.json`` file or the ``-backend-config`` file that sets
``dynamodb_table``), and records each edit in the journal as the hashes of the file before
and after plus only the lines that changed — never the rest of the file, so no secret
reaches the journal. A rollback of a file nobody touched since gives back the original
bytes; a file edited since is changed with the same format-preserving edits instead.
"""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tfwrap import exitcodes
from tfwrap.backend import edit
from tfwrap.backend.config import SECRET_SETTINGS, BackendConfig
from tfwrap.errors import TfwrapError

ARG_PREFIX = "-backend-config="
LOCK_SETTINGS = ("dynamodb_table", "use_lockfile")


@dataclass(frozen=True)
class Place:
    """One source of backend settings: a file tfwrap can edit, or a command-line value."""

    label: str  # "backend.tf", "-backend-config=prod.hcl", "-backend-config=dynamodb_table=..."
    path: Path | None  # None: a key=value on the command line, not editable
    settings: dict[str, Any]

    def sets(self, name: str) -> bool:
        return name in self.settings and self.settings[name] is not None


def places(backend: BackendConfig) -> list[Place]:
    """The sources of ``backend`` (loaded for ``init``) in Terraform's order, lowest first."""
    initialised = f"{backend.data_dir.name}/terraform.tfstate"
    found: list[Place] = []
    for source in backend.sources:
        if source.where == initialised:
            continue
        if source.where.startswith(ARG_PREFIX):
            value = source.where[len(ARG_PREFIX) :]
            if "=" in value:  # key=value (Source.where is "-backend-config=name=...")
                found.append(Place(source.where, None, source.settings))
            else:
                found.append(Place(source.where, (backend.workdir / value).resolve(), source.settings))
        else:
            found.append(Place(source.where, backend.workdir / source.where, source.settings))
    return found


def refuse_command_line(found: list[Place]) -> None:
    """A locking setting given as ``-backend-config=key=value`` cannot be edited by tfwrap."""
    for place in found:
        if place.path is None and any(place.sets(n) for n in LOCK_SETTINGS):
            name = next(n for n in LOCK_SETTINGS if place.sets(n))
            raise TfwrapError(
                f"{name} is set on the command line ({place.label}), which tfwrap cannot edit: move it "
                "into a -backend-config file (and pass that file to tfwrap migrate), or change your "
                "init arguments by hand",
                exitcodes.USAGE,
            )


def target_for_lockfile(found: list[Place]) -> Place:
    """Where ``use_lockfile`` goes: the strongest place that sets dynamodb_table or use_lockfile."""
    refuse_command_line(found)
    chosen = [p for p in found if p.sets("dynamodb_table") or p.sets("use_lockfile")]
    if not chosen:
        raise TfwrapError("no file sets dynamodb_table; nothing to migrate", exitcodes.USAGE)
    return chosen[-1]


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def record(
    change: edit.Edit, workdir: Path, *, phase: str, op: str, name: str, previous: Any
) -> dict[str, Any]:
    """A journal record of ``change``: enough to undo it exactly, and nothing more."""
    before = change.before.splitlines(keepends=True)
    after = change.after.splitlines(keepends=True)
    matcher = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
    hunks: list[list[Any]] = [
        [i1, i2, j1, j2, before[i1:i2], after[j1:j2]]
        for tag, i1, i2, j1, j2 in matcher.get_opcodes()
        if tag != "equal"
    ]
    changed = [line for h in hunks for line in (*h[4], *h[5])]
    secret = any(s in line for line in changed for s in SECRET_SETTINGS)
    try:
        shown = str(change.path.relative_to(workdir))
    except ValueError:
        shown = str(change.path)
    return {
        "phase": phase,
        "file": shown,
        "path": str(change.path),
        "op": op,
        "name": name,
        "previous": previous,
        "before_sha256": sha256(change.before),
        "after_sha256": sha256(change.after),
        "hunks": None if secret else hunks,  # a reformatted .tf.json line could hold a secret
    }


def undo_exact(rec: dict[str, Any]) -> edit.Edit | None:
    """The edit that restores the file's bytes before ``rec``, if nobody changed it since."""
    path = Path(rec["path"])
    try:
        current = path.read_text()
    except OSError:
        return None
    if rec.get("hunks") is None or sha256(current) != rec["after_sha256"]:
        return None
    lines = current.splitlines(keepends=True)
    out: list[str] = []
    pos = 0
    for _i1, _i2, j1, j2, old, _new in rec["hunks"]:
        out.extend(lines[pos:j1])
        out.extend(old)
        pos = j2
    out.extend(lines[pos:])
    text = "".join(out)
    if sha256(text) != rec["before_sha256"]:
        return None
    return edit.Edit(path, current, text)


def undo_semantic(rec: dict[str, Any]) -> edit.Edit:
    """Undo ``rec`` on a file changed since: the setting as it was, with format-preserving edits."""
    path = Path(rec["path"])
    previous = rec.get("previous")
    if previous is None:
        return edit.remove_setting(path, rec["name"])
    return edit.set_setting(path, rec["name"], previous)
