"""Editing backend settings where they live, changing only the lines that must change.

Used by ``tfwrap migrate`` (add ``use_lockfile``, remove ``dynamodb_table``) and
``tfwrap bootstrap --write-backend``. A ``.tf`` file keeps its comments, ordering and
formatting: a changed attribute keeps its line's indentation, alignment and trailing
comment; a new one is added as its own paragraph so ``terraform fmt`` alignment of the
others is untouched. ``.tf.json`` files are rewritten as JSON with their key order, and
``-backend-config`` files (top-level ``key = value``) are edited like a block body.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tfwrap.errors import BackendConfigError

_BACKEND_S3 = re.compile(r'\bbackend\s+"s3"\s*\{')
_ATTRIBUTE = re.compile(r"^(\s*)([A-Za-z_][\w-]*)(\s*)=(\s*)")


@dataclass(frozen=True)
class Edit:
    """A file's text before and after an edit; nothing is written until ``apply()``."""

    path: Path
    before: str
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def diff(self) -> str:
        lines = difflib.unified_diff(
            self.before.splitlines(keepends=True),
            self.after.splitlines(keepends=True),
            fromfile=f"{self.path.name} (before)",
            tofile=f"{self.path.name} (after)",
        )
        return "".join(lines)

    def apply(self) -> None:
        """Write the new text atomically (creating the file if new), keeping its permissions."""
        if not self.changed and self.path.exists():
            return
        tmp = self.path.with_name(f".{self.path.name}.tfwrap-{os.getpid()}")
        try:
            tmp.write_text(self.after)
            if self.path.exists():
                os.chmod(tmp, self.path.stat().st_mode & 0o7777)
            os.replace(tmp, self.path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise BackendConfigError(f"cannot write {self.path}: {exc.strerror}") from exc


def hcl_value(value: Any) -> str:
    """A Python value as an HCL literal (bools, numbers, strings, flat maps)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        inner = ", ".join(f"{k} = {hcl_value(v)}" for k, v in value.items())
        return "{ " + inner + " }"
    return json.dumps(str(value))


def render_backend(settings: dict[str, Any]) -> str:
    """A new ``terraform { backend "s3" {...} }`` block, formatted as ``terraform fmt`` does."""
    width = max((len(k) for k in settings), default=0)
    body = "".join(f"    {k.ljust(width)} = {hcl_value(v)}\n" for k, v in settings.items())
    return 'terraform {\n  backend "s3" {\n' + body + "  }\n}\n"


def set_setting(path: Path, name: str, value: Any) -> Edit:
    """Set ``name`` in the file's S3 backend settings (added if absent)."""
    return edit_settings(path, sets={name: value})


def remove_setting(path: Path, name: str) -> Edit:
    """Remove ``name`` from the file's S3 backend settings (no change if absent)."""
    return edit_settings(path, removes=[name])


def edit_settings(path: Path, sets: dict[str, Any] | None = None, removes: list[str] | None = None) -> Edit:
    """Several changes to the file's S3 backend settings as one edit (nothing written yet)."""
    try:
        before = path.read_text()
    except OSError as exc:
        raise BackendConfigError(f"cannot read {path}: {exc.strerror}") from exc
    if path.name.endswith(".tf") and sets and not removes:
        start, end = _block_body(path, before)
        if not before[start:end].strip():  # `backend "s3" {}`: written whole, aligned as fmt does
            outer = _indentation(before, start)
            width = max(len(k) for k in sets)
            lines = "".join(f"{outer}  {k.ljust(width)} = {hcl_value(v)}\n" for k, v in sets.items())
            return Edit(path, before, before[:start] + "\n" + lines + outer + before[end:])
    after = before
    for name, value in (sets or {}).items():
        after = _edit_text(path, after, name, value, remove=False)
    for name in removes or []:
        after = _edit_text(path, after, name, None, remove=True)
    return Edit(path, before, after)


def _edit_text(path: Path, text: str, name: str, value: Any, remove: bool) -> str:
    if path.name.endswith(".tf.json"):
        return _edit_json(path, text, name, value, remove)
    if path.name.endswith(".tf"):
        start, end = _block_body(path, text)
        body, outer = text[start:end], _indentation(text, start)
        if "\n" not in body:
            # A one-line block (`backend "s3" { bucket = "b" }`) holds one attribute at most: a
            # second written beside it is "Invalid single-argument block definition" (issue 7).
            inner = body.strip()
            body = "\n" + (f"{outer}  {inner}\n" if inner else "") + outer
        return text[:start] + _edit_body(body, name, value, remove, outer + "  ") + text[end:]
    return _edit_body(text, name, value, remove, "")  # a -backend-config file: all of it is the body


def _skip(text: str, i: int) -> int:
    """If a string or comment starts at ``i``, the index just past it; else ``i``."""
    if text.startswith("#", i) or text.startswith("//", i):
        end = text.find("\n", i)
        return len(text) if end < 0 else end
    if text.startswith("/*", i):
        end = text.find("*/", i + 2)
        return len(text) if end < 0 else end + 2
    if text[i] == '"':
        j = i + 1
        while j < len(text) and text[j] != '"':
            j += 2 if text[j] == "\\" else 1
        return j + 1
    return i


def _block_body(path: Path, text: str) -> tuple[int, int]:
    """Offsets of the body of the file's ``backend "s3" {...}`` (inside the braces)."""
    i = 0
    while i < len(text):
        j = _skip(text, i)
        if j != i:
            i = j
            continue
        match = _BACKEND_S3.match(text, i)
        if match:
            start, depth, k = match.end(), 1, match.end()
            while k < len(text):
                m = _skip(text, k)
                if m != k:
                    k = m
                    continue
                depth += {"{": 1, "}": -1}.get(text[k], 0)
                if depth == 0:
                    return start, k
                k += 1
            break
        i += 1
    raise BackendConfigError(f'{path.name} has no complete backend "s3" block; edit it by hand')


def _indentation(text: str, offset: int) -> str:
    """The leading blanks of the line holding ``offset`` (the block's own indentation)."""
    line_start = text.rfind("\n", 0, offset) + 1
    line = text[line_start:offset]
    return line[: len(line) - len(line.lstrip(" \t"))]


def _depth_change(line: str) -> int:
    change, i = 0, 0
    while i < len(line):
        j = _skip(line, i)
        if j != i:
            i = j
            continue
        change += {"{": 1, "}": -1, "[": 1, "]": -1}.get(line[i], 0)
        i += 1
    return change


def _edit_body(body: str, name: str, value: Any, remove: bool, indent: str) -> str:
    lines = body.splitlines(keepends=True)
    depth = 0
    for n, line in enumerate(lines):
        match = _ATTRIBUTE.match(line) if depth == 0 else None
        if match and match.group(2) == name:
            span = 1
            nested = _depth_change(line)
            while nested > 0 and n + span < len(lines):  # a multi-line value such as a map
                nested += _depth_change(lines[n + span])
                span += 1
            if remove:
                return "".join(lines[:n] + lines[n + span :])
            if span != 1:
                raise BackendConfigError(f"{name} spans several lines; edit it by hand")
            return "".join([*lines[:n], _replace_value(line, match, value), *lines[n + 1 :]])
        depth += _depth_change(line)
    if remove:
        return body
    # the closing brace's indentation (no newline after it) stays last
    closing = lines.pop() if lines and not lines[-1].endswith("\n") else ""
    seen = [m.group(1) for m in map(_ATTRIBUTE.match, lines) if m]
    pad = seen[0] if seen else indent
    prefix = "\n" if seen and lines and lines[-1].strip() else ""  # own paragraph: fmt alignment kept
    return "".join(lines) + prefix + f"{pad}{name} = {hcl_value(value)}\n" + closing


def _replace_value(line: str, match: re.Match[str], value: Any) -> str:
    rest = line[match.end() :]
    comment_at = len(rest)
    i = 0
    while i < len(rest):
        j = _skip(rest, i)
        if j != i:
            if rest[i] != '"':  # a comment: keep it
                comment_at = i
                break
            i = j
            continue
        i += 1
    tail = rest[comment_at:].rstrip("\n")
    gap = " " if tail and not tail.startswith(" ") else ""
    newline = "\n" if line.endswith("\n") else ""
    old_value = rest[:comment_at]
    spacing = old_value[len(old_value.rstrip()) :] if tail else ""
    return line[: match.end()] + hcl_value(value) + (spacing or gap) + tail + newline


def _edit_json(path: Path, text: str, name: str, value: Any, remove: bool) -> str:
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise BackendConfigError(f"cannot parse {path.name}: {exc}") from exc
    blocks = doc.get("terraform") if isinstance(doc, dict) else None
    for block in blocks if isinstance(blocks, list) else [blocks]:
        backends = block.get("backend") if isinstance(block, dict) else None
        for backend in backends if isinstance(backends, list) else [backends]:
            s3 = backend.get("s3") if isinstance(backend, dict) else None
            for settings in s3 if isinstance(s3, list) else [s3]:
                if isinstance(settings, dict):
                    if remove:
                        settings.pop(name, None)
                    else:
                        settings[name] = value
                    first = re.search(r"\n( +)\S", text)  # keep the file's indentation
                    return json.dumps(doc, indent=len(first.group(1)) if first else 2) + "\n"
    raise BackendConfigError(f'{path.name} has no backend "s3" block; edit it by hand')
