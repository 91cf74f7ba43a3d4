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
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tfwrap.backend import scan
from tfwrap.errors import BackendConfigError
from tfwrap.fs import atomic_write


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
        try:
            atomic_write(self.path, self.after)
        except OSError as exc:
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
        _, brace, close = _s3_block(path, before).span
        if not before[brace + 1 : close].strip():  # `backend "s3" {}`: written whole, as fmt does
            outer = _indentation(before, brace)
            width = max(len(k) for k in sets)
            lines = "".join(f"{outer}  {k.ljust(width)} = {hcl_value(v)}\n" for k, v in sets.items())
            return Edit(path, before, before[: brace + 1] + "\n" + lines + outer + before[close:])
    after = before
    for name, value in (sets or {}).items():
        after = _edit_text(path, after, name, value, remove=False)
    for name in removes or []:
        after = _edit_text(path, after, name, None, remove=True)
    return Edit(path, before, after)


def _edit_text(path: Path, text: str, name: str, value: Any, remove: bool) -> str:
    """One change, on the scanner's reading of the text (so a heredoc or a string that holds
    ``backend "s3" {...}`` is never taken for the block Terraform reads)."""
    if path.name.endswith(".tf.json"):
        return _edit_json(path, text, name, value, remove)
    if path.name.endswith(".tf"):
        block = _s3_block(path, text)
        keyword, brace, close = block.span
        outer = _indentation(text, keyword)
        inner = text[brace + 1 : close]
        if "\n" not in inner:
            # A one-line block (`backend "s3" { bucket = "b" }`) holds one attribute at most: a
            # second written beside it is "Invalid single-argument block definition".
            body = "\n" + (f"{outer}  {inner.strip()}\n" if inner.strip() else "") + outer
            text = text[: brace + 1] + body + text[close:]
            block = _s3_block(path, text)
        return _edit_block(path, text, block, name, value, remove=remove, indent=outer + "  ")
    # a -backend-config file: all of it is the settings
    if text and not text.endswith("\n"):
        text += "\n"
    try:
        settings = scan.attributes(text, strict=False)
    except scan.ScanError:
        settings = None
    if settings is None or not settings.complete:
        raise BackendConfigError(f"cannot read the settings in {path.name}; edit it by hand")
    return _edit_block(path, text, settings, name, value, remove=remove, indent="")


def _s3_block(path: Path, text: str) -> scan.Block:
    """The file's ``backend "s3"`` block as the scanner reads it (where Terraform reads it)."""
    try:
        found = scan.scan(text, versions=False)
    except scan.ScanError as exc:
        raise BackendConfigError(f"cannot parse {path.name}: {exc}; edit it by hand") from exc
    for terraform_block in found:
        for block in terraform_block.backends:
            if block.label == "s3" and block.complete:
                return block
    raise BackendConfigError(f'{path.name} has no complete backend "s3" block; edit it by hand')


def _indentation(text: str, offset: int) -> str:
    """The leading blanks of the line holding ``offset`` (the block's own indentation)."""
    line_start = text.rfind("\n", 0, offset) + 1
    line = text[line_start:offset]
    return line[: len(line) - len(line.lstrip(" \t"))]


def _line_end(text: str, offset: int) -> int:
    """The offset just past the newline that ends the line holding ``offset``."""
    end = text.find("\n", offset)
    return len(text) if end < 0 else end + 1


def _edit_block(
    path: Path, text: str, block: scan.Block, name: str, value: Any, *, remove: bool, indent: str
) -> str:
    """``indent``: for a new setting when the block has none to copy from."""
    span = block.spans.get(name)
    if span is not None:
        at, value_start, value_end = span
        line_start = text.rfind("\n", 0, at) + 1
        if text[line_start:at].strip():
            raise BackendConfigError(f"{name} in {path.name} shares its line; edit it by hand")
        if remove:
            return text[:line_start] + text[_line_end(text, value_end) :]
        if "\n" in text[value_start:value_end]:
            raise BackendConfigError(f"{name} spans several lines; edit it by hand")
        rest = text[value_end : _line_end(text, value_end)]
        tail = rest if rest.strip() else rest.lstrip(" \t\r")  # no trailing blanks
        return text[:value_start] + hcl_value(value) + tail + text[value_end + len(rest) :]
    if remove:
        return text
    _, brace, close = block.span
    lines = text[brace + 1 : close].splitlines(keepends=True)
    # the closing brace's indentation (no newline after it) stays last
    closing = lines.pop() if lines and not lines[-1].endswith("\n") else ""
    first = min((s[0] for s in block.spans.values()), default=None)
    pad = _indentation(text, first) if first is not None else indent
    paragraph = "\n" if first is not None and lines and lines[-1].strip() else ""  # fmt alignment kept
    body = "".join(lines) + paragraph + f"{pad}{name} = {hcl_value(value)}\n" + closing
    return text[: brace + 1] + body + text[close:]


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
