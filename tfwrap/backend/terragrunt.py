"""Terragrunt units as Terragrunt resolves them: one state per unit (a ``terragrunt.hcl`` that
no other unit includes), its backend from ``remote_state`` or a ``generate`` block, in the unit
or in the files it includes (``include``, ``read_terragrunt_config``).

Only what can be read exactly is read: literal paths, ``find_in_parent_folders`` with or
without a name, ``get_terragrunt_dir()`` and ``path_relative_to_include()``. Anything else is a
note naming the expression, never a guess (docs/decisions/051-terragrunt-as-it-resolves.md).
Functions in an included file run in the unit's context, as Terragrunt runs them, so every
relative path is taken from the unit's directory.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tfwrap.backend import config as backend_config
from tfwrap.backend import scan

Where = tuple[Path, int, int]
UNIT_FILE = "terragrunt.hcl"

_FIND = re.compile(r'find_in_parent_folders\(\s*(?:"([^"\\]*)"\s*)?(?:,\s*"([^"\\]*)"\s*)?\)')
_READ = re.compile(r"read_terragrunt_config\(\s*(.*?)\s*(?:,\s*\{.*\})?\s*\)", re.DOTALL)
_REFERENCE = re.compile(r"(local|include)\.([A-Za-z_][\w-]*)\.remote_state")
_RELATIVE = "${path_relative_to_include()}"


@dataclass
class Resolved:
    """A unit's backend: its type and settings, where each is written, and what was not read."""

    backend_type: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    places: dict[str, Where] = field(default_factory=dict)
    block: Where | None = None
    how: str = ""  # "remote_state" | "generate"
    notes: list[tuple[str, str, Where]] = field(default_factory=list)  # (what, expression, where)
    parents: list[Path] = field(default_factory=list)  # files this unit includes or reads
    error: str | None = None


class _File:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.error: str | None = None
        self.items: list[scan.Item] = []
        self.text = ""
        try:
            self.text = backend_config.read_text(path)
            self.items = scan.items(self.text)
        except (OSError, UnicodeDecodeError) as exc:
            self.error = f"cannot read {path.name}: {exc}"
        except scan.ScanError as exc:
            self.error = f"cannot parse {path.name}: {exc}"

    def blocks(self, name: str) -> list[scan.Item]:
        return [i for i in self.items if i.name == name]


_FILES: dict[Path, _File] = {}  # a parent file is read once for all the units that include it


def _file(path: Path) -> _File:
    found = _FILES.get(path)
    if found is None:
        found = _FILES[path] = _File(path)
    return found


def _find_in_parents(unit_dir: Path, name: str) -> Path | None:
    """``find_in_parent_folders(name)``: from the unit's parent directory up to the root."""
    here = unit_dir.parent
    while True:
        candidate = here / name
        if candidate.is_file():
            return candidate
        if here.parent == here:
            return None
        here = here.parent


def absolute(path: Path) -> Path:
    """``path`` made absolute and normalised without a system call (symlinks are kept)."""
    return Path(os.path.abspath(path))


_absolute = absolute


def path_of(expression: Any, unit_dir: Path) -> Path | None:
    """The file an ``include`` path or ``read_terragrunt_config`` argument names (None: not read)."""
    text = str(expression).strip()
    if isinstance(expression, str) and not isinstance(expression, scan.Expression):
        literal = expression
    elif (m := _FIND.fullmatch(text)) is not None:
        found = _find_in_parents(unit_dir, m.group(1) or UNIT_FILE)
        if found is None and m.group(2):
            return _absolute(unit_dir / m.group(2))
        return _absolute(found) if found else None
    elif text.startswith('"${get_terragrunt_dir()}') and text.endswith('"') and text.count("${") == 1:
        literal = str(unit_dir) + text[len('"${get_terragrunt_dir()}') : -1]
    else:
        return None
    return _absolute(unit_dir / literal)


def _includes(unit: _File, unit_dir: Path, out: Resolved) -> list[tuple[str, _File, str]]:
    """(name, file, merge strategy) of each include that can be read, in the order written."""
    found = []
    for item in unit.blocks("include"):
        settings = scan.body(unit.text, item).settings
        where = (unit.path, item.line, item.column)
        target = path_of(settings.get("path"), unit_dir)
        if target is None or not target.is_file():
            out.notes.append(("include path", str(settings.get("path")), where))
            continue
        strategy = settings.get("merge_strategy")
        strategy = (
            strategy if isinstance(strategy, str) and not isinstance(strategy, scan.Expression) else "shallow"
        )
        out.parents.append(_absolute(target))
        found.append((item.labels[0] if item.labels else "", _file(target), strategy))
    return found


def _reads(one: _File, unit_dir: Path, out: Resolved) -> dict[str, _File]:
    """``locals { name = read_terragrunt_config(...) }``: the files the names stand for."""
    found: dict[str, _File] = {}
    for item in one.blocks("locals"):
        block = scan.body(one.text, item)
        for name, raw in block.settings.items():
            m = _READ.fullmatch(str(raw).strip()) if isinstance(raw, scan.Expression) else None
            if m is None:
                continue
            line, column = block.places.get(name, (item.line, item.column))
            target = path_of(_argument(m.group(1)), unit_dir)
            if target is None or not target.is_file():
                out.notes.append(("read_terragrunt_config", str(raw), (one.path, line, column)))
                continue
            out.parents.append(_absolute(target))
            found[name] = _file(target)
    return found


def _argument(text: str) -> Any:
    if text.startswith('"') and text.endswith('"') and "${" not in text:
        return text[1:-1]
    return scan.Expression(text)


@dataclass
class _Backend:
    backend_type: str
    settings: dict[str, Any]
    places: dict[str, Where]
    block: Where
    how: str
    source: _File


def _remote_state(
    one: _File, reads: dict[str, _File], includes: dict[str, _File], out: Resolved
) -> _Backend | None:
    for item in one.items:
        if item.name != "remote_state":
            continue
        where = (one.path, item.line, item.column)
        if not item.is_block:
            raw = scan.value(one.text, item)
            if isinstance(raw, scan.Expression):
                m = _REFERENCE.fullmatch(str(raw).strip())
                other = (reads if m and m.group(1) == "local" else includes).get(m.group(2)) if m else None
                if other is None:
                    out.notes.append(("remote_state", str(raw), where))
                    return None
                return _remote_state(other, {}, {}, out)
        return _from_remote_state(one, item)
    return None


def _from_remote_state(one: _File, item: scan.Item) -> _Backend | None:
    if item.is_block:
        block = scan.body(one.text, item)
        settings, places = block.settings, block.places
    else:
        settings = scan.value(one.text, item)
        places = scan.places(one.text, item)
        if not isinstance(settings, dict):
            return None
    config = settings.get("config")
    backend_type = settings.get("backend")
    if not isinstance(config, dict) or not isinstance(backend_type, str):
        return None
    config_places = {
        k.removeprefix("config."): (one.path, *v) for k, v in places.items() if k.startswith("config.")
    }
    return _Backend(
        backend_type, dict(config), config_places, (one.path, item.line, item.column), "remote_state", one
    )


def _generated(one: _File, out: Resolved) -> dict[str, _Backend | None]:
    """Each ``generate`` block by label: the backend its contents declare (None: no backend)."""
    found: dict[str, _Backend | None] = {}
    for item in one.blocks("generate"):
        label = item.labels[0] if item.labels else ""
        block = scan.body(one.text, item)
        contents = block.settings.get("contents")
        line, column = block.places.get("contents", (item.line, item.column))
        text = scan.heredoc(str(contents)) if isinstance(contents, scan.Expression) else contents
        if not isinstance(text, str):
            if "backend" in str(contents):
                out.notes.append(("generate contents", str(contents)[:60], (one.path, line, column)))
            found[label] = None
            continue
        first_line = line + 1 if isinstance(contents, scan.Expression) else line
        try:
            blocks = scan.scan(text, versions=False, expressions=True)
        except scan.ScanError:
            found[label] = None
            continue
        backend = next((b for tf in blocks for b in tf.backends), None)
        if backend is None:
            found[label] = None
            continue

        def shift(place: tuple[int, int], first: int = first_line) -> Where:
            return (one.path, place[0] + first - 1, place[1])

        found[label] = _Backend(
            backend.label,
            dict(backend.settings),
            {k: shift(v) for k, v in backend.places.items()},
            shift((backend.line, backend.column)),
            "generate",
            one,
        )
    return found


def resolve(unit_path: Path) -> Resolved:
    """The backend of the unit whose ``terragrunt.hcl`` is ``unit_path``."""
    out = Resolved()
    unit = _file(unit_path)
    if unit.error:
        out.error = unit.error
        return out
    unit_dir = unit_path.parent
    included = _includes(unit, unit_dir, out)
    chosen: _Backend | None = None
    generated: dict[str, _Backend | None] = {}
    exposed = {name: f for name, f, _ in included}
    for _, parent, strategy in [*included, ("", unit, "shallow")]:
        if parent.error:
            out.error = parent.error
            return out
        if strategy == "no_merge":
            continue
        reads = _reads(parent, unit_dir, out)
        mine = _remote_state(parent, reads, exposed if parent is unit else {}, out)
        if mine is not None:
            # merge_strategy = "deep": the unit's settings go over the included ones key by key;
            # the default ("shallow") replaces the included remote_state whole.
            if chosen is not None and parent is unit and _deep(included):
                mine.settings = {**chosen.settings, **mine.settings}
                mine.places = {**chosen.places, **mine.places}
            chosen = mine
        generated.update(_generated(parent, out))
    if chosen is None:
        chosen = next((g for g in generated.values() if g is not None), None)
    if chosen is None:
        return out
    relative = _relative_to_include(chosen.source.path.parent, unit_dir)
    out.backend_type = chosen.backend_type
    out.settings = {k: _evaluate(v, relative) for k, v in chosen.settings.items()}
    out.places = chosen.places
    out.block = chosen.block
    out.how = chosen.how
    return out


def _deep(included: list[tuple[str, _File, str]]) -> bool:
    return any(strategy == "deep" for _, _, strategy in included)


def _relative_to_include(include_dir: Path, unit_dir: Path) -> str:
    return os.path.relpath(unit_dir, include_dir)


def _evaluate(value: Any, relative: str) -> Any:
    """``"${path_relative_to_include()}/x"`` is known exactly; any other expression is kept."""
    if isinstance(value, dict):
        return {k: _evaluate(v, relative) for k, v in value.items()}
    if not isinstance(value, str) or _RELATIVE not in value:
        return value
    text = value.strip()
    if isinstance(value, scan.Expression):
        if not (text.startswith('"') and text.endswith('"')):
            return value
        text = text[1:-1]
    filled = text.replace(_RELATIVE, relative)
    if "${" in filled or "%{" in filled or "\\" in filled:
        return value
    return filled
