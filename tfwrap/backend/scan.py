"""Finding ``terraform { backend "..." { ... } }`` blocks without parsing whole files.

python-hcl2 parses a 284 KB file of resources named ``backend`` in 8 s. This
scanner reads HCL only as far as it must to know what is code: comments (``#``, ``//``,
``/* */``), quoted strings (escapes and ``${...}``/``%{...}`` templates, which may hold
strings and braces of their own) and heredocs (``<<EOF``, ``<<-EOF``, templates included).
A ``terraform`` block is a ``terraform {`` header at the start of a line at brace depth 0;
a backend block is ``backend LABEL {`` at the start of a line directly inside it. Text in a
comment, a string or a heredoc never counts, so the blocks found are the ones Terraform reads.

Backend settings are literals (Terraform refuses variables and functions there), so the
block's body is read here too, with the line and column of every setting (``tfwrap audit``
points at them). A body holding anything but literals is marked ``literal=False`` and the
caller hands that block alone to python-hcl2. The same reader serves Terragrunt's
``remote_state``, where an expression is kept as written, never evaluated.
Why: docs/decisions/105-the-backend-scanner.md.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
from dataclasses import dataclass, field
from typing import Any

Place = tuple[int, int]  # (line, column), both from 1

_SIMPLE_STRING = r'"(?:[^"\\\n$%]|\\.|\$\$\{|%%\{|\$(?!\{)|%(?!\{))*"'
_HEREDOC = r"<<(-?)([A-Za-z_][\w-]*)[ \t]*\r?\n"
# What matters in a whole file: everything that hides text, braces, and the keywords.
# Every alternative starts with a literal character, so the regex engine skips ahead fast.
_FILE = re.compile(
    rf"(?P<s>{_SIMPLE_STRING})|(?P<t>\")|(?P<c>#[^\n]*|//[^\n]*)|(?P<b>/\*)|(?P<h>{_HEREDOC})"
    r"|(?P<o>\{)|(?P<x>\})|(?P<w>(?:terraform|backend|remote_state|cloud|state_store)(?![\w-]))"
)
# A string whose templates hold no string, brace, newline or comment: skipped in one step.
_PLAIN_TEMPLATE = r'"(?:[^"\\\n$%]|\\.|\$\$\{|%%\{|[$%](?!\{)|[$%]\{(?:[^{}"\n#/]|/(?![/*]))*\})*"'
# Everything in between, consumed in one C-level match: the loop sees only what matters.
_RUN = re.compile(
    r"(?:[^\"#/<{}\w]+|(?!(?:terraform|backend|remote_state|cloud|state_store)(?![\w-]))[\w-]+"
    rf"|{_PLAIN_TEMPLATE}|#[^\n]*|//[^\n]*|/(?![/*])|<(?!<[-A-Za-z_]))*"
)
# Python >= 3.11: the run and a brace in one match, the common step outside a terraform block
# (possessive: nothing to backtrack into when no brace follows).
_RUN_TO_BRACE = re.compile(_RUN.pattern + "+([{}])") if sys.version_info >= (3, 11) else None
# A block header anywhere (in code or not): the scan stops after the last one.
_HEADERS = {
    # the literal first, then the look-behind: the engine then searches for the literal fast
    "terraform": re.compile(r"terraform(?<![\w.-]terraform)[ \t]*(?:\{|/\*)"),
    "remote_state": re.compile(r"remote_state(?<![\w.-]remote_state)[ \t]*(?:=|\{|/\*)"),
}
# Inside ``${...}`` (and for skipping an expression): brackets and newlines count too.
_EXPR = re.compile(
    rf"(?P<s>{_SIMPLE_STRING})|(?P<t>\")|(?P<c>#[^\n]*|//[^\n]*)|(?P<b>/\*)|(?P<h>{_HEREDOC})"
    r"|(?P<o>[{(\[])|(?P<x>[})\]])|(?P<n>\n)|(?P<k>,)"
)
_IN_STRING = re.compile(r'(?P<e>\\.)|(?P<l>\$\$\{|%%\{)|(?P<i>[$%]\{)|(?P<q>")|(?P<n>\n)')
_IN_HEREDOC = re.compile(r"(?P<l>\$\$\{|%%\{)|(?P<i>[$%]\{)|(?P<n>\n)")
_BLOCK_OPEN = r"[ \t]*(?:/\*(?:[^*]|\*(?!/))*\*/[ \t]*)*\{"
_TF_HEADER = re.compile(_BLOCK_OPEN)
_LABEL_HEADER = re.compile(rf'[ \t]*(?:"((?:[^"\\\n]|\\.)*)"|(?<=[ \t])([A-Za-z_][\w-]*)){_BLOCK_OPEN}')
_ATTR_OPEN = re.compile(rf"[ \t]*(?:={_BLOCK_OPEN}|{_BLOCK_OPEN})")
_IDENT = re.compile(r"[A-Za-z_][\w-]*")
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_BLANK = re.compile(r"(?:[ \t\r\n]+|#[^\n]*|//[^\n]*|/\*(?:[^*]|\*(?!/))*\*/)*")
_SPACE = re.compile(r"(?:[ \t]+|/\*(?:[^*\n]|\*(?!/))*\*/)*")  # on one line
_ESCAPE = re.compile(r'\\(?:([nrt"\\])|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8}))|\$\$\{|%%\{|\\')
_SIMPLE = re.compile(_SIMPLE_STRING)
_KEYWORDS = {"true": True, "false": False, "null": None}
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}


class ScanError(ValueError):
    """The file is not HCL Terraform could read (unterminated string, comment, block)."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(f"{message} at line {line}")
        self.line = line


class Expression(str):
    """A value that is not a literal, kept exactly as written (never evaluated or guessed)."""

    __slots__ = ()


class _NotLiteral(Exception):  # a signal inside the reader, never seen outside
    pass


@dataclass
class Block:
    """A ``backend "s3" { ... }`` (or ``remote_state``) block: its settings and where each is."""

    label: str
    line: int
    column: int
    text: str  # the block's source, from its keyword to its closing brace
    settings: dict[str, Any] = field(default_factory=dict)
    places: dict[str, Place] = field(default_factory=dict)  # "bucket", "endpoints.s3", ...
    literal: bool = True  # False: something in it is not a literal (hand it to python-hcl2)
    # Offsets in the file, for editing in place (tfwrap.backend.edit): the keyword, the opening
    # and the closing brace; and per top-level setting its name, value start and value end
    # (a nested block's "value" is its braces).
    span: tuple[int, int, int] = (0, 0, 0)
    spans: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    complete: bool = True  # False: the body holds something the reader could not follow
    # A setting written twice ("Attribute redefined" in Terraform): its name and both places.
    duplicates: list[tuple[str, Place, Place]] = field(default_factory=list)


@dataclass
class TerraformBlock:
    """One ``terraform { ... }`` block: where it is, its backends and ``required_version``."""

    line: int
    column: int
    backends: list[Block] = field(default_factory=list)
    required_version: Any = None
    required_version_place: Place | None = None
    body: tuple[int, int] = (0, 0)  # offsets inside the braces
    # ``cloud`` and ``state_store`` blocks directly inside: each replaces any backend
    # (in an override file) or conflicts with one (in a primary file). Kind and place.
    others: list[tuple[str, Place]] = field(default_factory=list)


class _Lines:
    """Offsets to (line, column), counting each newline once however many places are asked."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.offset = 0
        self.line = 1

    def place(self, offset: int) -> Place:
        if offset < self.offset:  # a setting placed after its nested values: count back
            self.line -= self.text.count("\n", offset, self.offset)
        else:
            self.line += self.text.count("\n", self.offset, offset)
        self.offset = offset
        return self.line, offset - self.text.rfind("\n", 0, offset)


def _at_line_start(text: str, offset: int) -> bool:
    start = text.rfind("\n", 0, offset) + 1
    before = text[start:offset]
    return not before.strip() or _SPACE.fullmatch(before) is not None


def _unterminated(text: str, offset: int, what: str) -> ScanError:
    return ScanError(f"unterminated {what}", text.count("\n", 0, offset) + 1)


def _skip(text: str, m: re.Match[str]) -> int:
    """The end of a string, comment or heredoc token found by ``_FILE`` or ``_EXPR``."""
    kind = m.lastgroup
    if kind == "t":
        return _string_end(text, m.end())
    if kind == "b":
        end = text.find("*/", m.end())
        if end < 0:
            raise _unterminated(text, m.start(), "comment")
        return end + 2
    if kind == "h":
        return _heredoc_end(text, m.end(), m.group(m.re.groupindex["h"] + 2), m.start())
    return m.end()


def _string_end(text: str, pos: int) -> int:
    """``pos`` is just after the opening quote; returns the offset after the closing one."""
    start = pos - 1
    while True:
        m = _IN_STRING.search(text, pos)
        if m is None or m.lastgroup == "n":
            raise _unterminated(text, start, "string")
        if m.lastgroup == "q":
            return m.end()
        pos = _template_end(text, m.end()) if m.lastgroup == "i" else m.end()


def _heredoc_end(text: str, pos: int, tag: str, start: int) -> int:
    """``pos`` is the first line of the heredoc's content; returns the offset after its marker."""
    line_start = True
    while True:
        if line_start:
            eol = text.find("\n", pos)
            line = text[pos : eol if eol >= 0 else len(text)]
            if line.strip() == tag:
                return pos + len(line)
            line_start = False
        m = _IN_HEREDOC.search(text, pos)
        if m is None:
            raise _unterminated(text, start, f"heredoc <<{tag}")
        if m.lastgroup == "n":
            line_start = True
            pos = m.end()
        else:
            pos = _template_end(text, m.end()) if m.lastgroup == "i" else m.end()


def _template_end(text: str, pos: int) -> int:
    """``pos`` is just after ``${``, ``%{`` or ``{``; returns the offset after the matching ``}``."""
    depth, start = 0, pos - 1
    while True:
        m = _EXPR.search(text, pos)
        if m is None:
            raise _unterminated(text, start, "block or template")
        kind = m.lastgroup
        if kind == "o" and m.group() == "{":
            depth += 1
        elif kind == "x" and m.group() == "}":
            if depth == 0:
                return m.end()
            depth -= 1
        pos = _skip(text, m)


def scan(  # noqa: PLR0912, PLR0915 - one token loop reads best whole
    text: str,
    keyword: str = "terraform",
    *,
    settings: bool = True,
    versions: bool = True,
    expressions: bool = False,
) -> list[TerraformBlock]:
    """Every top-level ``terraform`` block of a ``.tf`` file, with its backend blocks.

    With ``keyword="remote_state"`` (Terragrunt), each top-level ``remote_state { ... }`` or
    ``remote_state = { ... }`` is returned as a one-backend block labelled ``remote_state``.
    ``settings=False``: the backend blocks' places only, not their settings (cheaper);
    ``versions=False``: no ``required_version`` (the guard does not need it).
    ``expressions=True``: a backend value that is not a literal is kept as an ``Expression``
    (Terragrunt's ``generate`` contents, where ``${...}`` is Terragrunt's to fill).
    """
    headers = _HEADERS[keyword].finditer(text)
    last = -1
    for last_header in headers:
        last = last_header.start()
    if last < 0:
        return []  # most files: no header at all, wherever it might be hidden
    found: list[TerraformBlock] = []
    lines = _Lines(text)
    depth = pos = 0
    outer: TerraformBlock | None = None
    outer_at = outer_brace = 0
    inner: tuple[str, int, int] | None = None  # label, keyword offset, "{" offset
    while outer is not None or pos <= last:
        if _RUN_TO_BRACE is not None and outer is None:  # outside terraform: braces only count
            step = _RUN_TO_BRACE.match(text, pos)
            if step is not None:
                depth = depth + 1 if step.group(1) == "{" else max(depth - 1, 0)
                pos = step.end()
                continue
        pos = _RUN.match(text, pos).end()  # type: ignore[union-attr]
        m = _FILE.match(text, pos)
        if m is None:
            break
        kind = m.lastgroup
        if kind == "o":
            depth += 1
            pos = m.end()
        elif kind == "x":
            depth -= 1
            pos = m.end()
            if inner is not None and depth == 1:
                span = (*inner[1:], m.start())
                found[-1].backends.append(
                    _read_block(text, lines, inner[0], span, strict=not expressions)
                    if settings
                    else Block(inner[0], *lines.place(inner[1]), text[inner[1] : m.start() + 1], span=span)
                )
                inner = None
            elif outer is not None and depth == 0:
                outer.body = (outer_brace + 1, m.start())
                if keyword == "remote_state":
                    outer.backends.append(
                        _read_block(text, lines, keyword, (outer_at, outer_brace, m.start()))
                    )
                outer = None
            depth = max(depth, 0)  # a stray "}" is Terraform's to report
        elif kind == "w":
            pos = m.end()
            word, start = m.group(), m.start()
            if start and (text[start - 1].isalnum() or text[start - 1] in "_-."):
                continue
            if word == keyword and depth == 0 and _at_line_start(text, start):
                header = (_ATTR_OPEN if keyword == "remote_state" else _TF_HEADER).match(text, pos)
                if header:
                    outer = TerraformBlock(*lines.place(start))
                    outer_at, outer_brace = start, header.end() - 1
                    found.append(outer)
                    pos = outer_brace  # the "{" itself is counted above
            elif word in ("cloud", "state_store") and keyword == "terraform" and outer is not None:
                header = (_TF_HEADER if word == "cloud" else _LABEL_HEADER).match(text, pos)
                if depth == 1 and inner is None and header and _at_line_start(text, start):
                    outer.others.append((word, lines.place(start)))
            elif word == "backend" and keyword == "terraform" and outer is not None and depth == 1:
                header = _LABEL_HEADER.match(text, pos)
                if header and inner is None and _at_line_start(text, start):
                    quoted, bare = header.groups()
                    label = _decode(quoted) if quoted is not None else bare
                    inner = (label, start, header.end() - 1)
                    pos = header.end() - 1
        else:
            pos = _skip(text, m)
    if outer is not None:
        raise ScanError(f"{keyword} block is never closed (opened", outer.line)
    if keyword == "terraform" and versions:
        for block in found:
            _required_version(text, lines, block)
    return found


def _read_block(
    text: str, lines: _Lines, label: str, span: tuple[int, int, int], *, strict: bool | None = None
) -> Block:
    """``span``: offsets of the keyword, the opening brace and the closing brace."""
    start, brace, close = span
    line, column = lines.place(start)
    block = Block(label, line, column, text[start : close + 1], span=span)
    try:
        strict = label != "remote_state" if strict is None else strict
        _Body(text, lines, block, strict=strict).read(brace + 1, close, "")
    except _NotLiteral:
        block.literal = False
        block.settings.clear()
        block.places.clear()
        block.spans.clear()
        block.duplicates.clear()
        try:
            _Body(text, lines, block, strict=False).read(brace + 1, close, "")
        except _NotLiteral:  # the places found so far are all we can give
            block.complete = False
    return block


_BLOCK_HEADER = re.compile(
    rf'(?:[ \t]+(?:"(?:[^"\\\n]|\\.)*"|[A-Za-z_][\w-]*)|[ \t]*"(?:[^"\\\n]|\\.)*")*{_BLOCK_OPEN}'
)


def _required_version(text: str, lines: _Lines, block: TerraformBlock) -> None:
    """``required_version`` directly in the block: its value (or expression) and place."""
    pos, end = block.body
    while True:
        pos = _blank(text, pos)
        name = _IDENT.match(text, pos)
        if pos >= end or name is None:
            return
        after = _space(text, name.end())
        if text.startswith("=", after):
            value_start = _space(text, after + 1)
            value_end = _expression_end(text, value_start, end)
            if name.group() == "required_version":
                try:
                    reader = _Body(text, lines, Block("", 0, 0, ""), strict=True)
                    block.required_version, _ = reader.value(value_start, end)
                except _NotLiteral:
                    block.required_version = Expression(text[value_start:value_end].strip())
                block.required_version_place = lines.place(pos)
            pos = value_end
        else:
            header = _BLOCK_HEADER.match(text, name.end())
            if header is None:
                return  # not HCL Terraform reads: nothing more to learn here
            pos = _template_end(text, header.end())


# --- the body reader: literals only ------------------------------------------------------


def _blank(text: str, pos: int) -> int:
    return _BLANK.match(text, pos).end()  # type: ignore[union-attr]


def _space(text: str, pos: int) -> int:
    return _SPACE.match(text, pos).end()  # type: ignore[union-attr]


class _Body:
    """Reads a block body of literals into ``block.settings`` and ``block.places``.

    ``strict``: anything but a literal raises ``_NotLiteral`` (backend blocks: the caller
    falls back to python-hcl2). Otherwise it is kept as an ``Expression`` (Terragrunt).
    """

    def __init__(self, text: str, lines: _Lines, block: Block, *, strict: bool) -> None:
        self.text, self.lines, self.block, self.strict = text, lines, block, strict

    def read(self, pos: int, end: int, prefix: str) -> None:  # noqa: PLR0912 - one loop over a body
        """Attributes and nested blocks between ``pos`` and ``end``."""
        text, target = self.text, self.block.settings
        for part in prefix.split(".")[:-1] if prefix else []:
            target = target.setdefault(part, {})
        while True:
            pos = _blank(text, pos)
            if pos >= end:
                return
            name = _IDENT.match(text, pos)
            if name is None:
                raise _NotLiteral
            key, at = name.group(), pos
            pos = _space(text, name.end())
            repeated = key in target
            if repeated:
                first = self.block.places.get(prefix + key, (0, 0))
                self.block.duplicates.append((prefix + key, first, self.lines.place(at)))
            if text.startswith("=", pos) and not text.startswith("==", pos):
                value_start = _space(text, pos + 1)
                value, value_end = self.attribute(value_start, end, prefix + key + ".")
                if not repeated:  # Terraform refuses a repeated attribute; keep the first
                    target[key] = value
                    if not prefix:
                        self.block.spans[key] = (at, value_start, value_end)
                pos = _space(text, value_end)
                pos = pos + 1 if text.startswith(",", pos) else pos
            else:  # a nested block, e.g. assume_role { ... } (labels are not expected here)
                header = _TF_HEADER.match(text, pos)
                if header is None:
                    raise _NotLiteral
                close = _template_end(text, header.end()) - 1
                if not repeated:  # Terraform refuses a repeated block; keep the first
                    target[key] = {}
                    self.read(header.end(), close, prefix + key + ".")
                    if not prefix:
                        self.block.spans[key] = (at, header.end() - 1, close + 1)
                pos = close + 1
            if not repeated:
                self.block.places[prefix + key] = self.lines.place(at)

    def attribute(self, start: int, end: int, prefix: str) -> tuple[Any, int]:
        """An attribute's value and the offset just after the value."""
        text = self.text
        try:
            value, pos = self.value(start, end, prefix)
        except _NotLiteral:
            if self.strict:
                raise
            pos = start
        if pos == start or not _line_ends(text, pos, end):
            if self.strict:
                raise _NotLiteral
            pos = _expression_end(text, start, end)
            value = Expression(text[start:pos].strip())
            pos = start + len(text[start:pos].rstrip())
        return value, pos

    def value(self, pos: int, end: int, prefix: str = "") -> tuple[Any, int]:
        """A literal value at ``pos`` and the offset after it; ``_NotLiteral`` for anything else."""
        if pos >= end:
            raise _NotLiteral
        value, after = self.primary(pos, end, prefix)
        nxt = _space(self.text, after)
        if nxt < end and self.text[nxt] not in ",]}\n\r" and not self.text.startswith(("#", "//"), nxt):
            raise _NotLiteral  # an operator, an index, a conditional: not a literal
        return value, after

    def primary(self, pos: int, end: int, prefix: str) -> tuple[Any, int]:
        text = self.text
        char = text[pos]
        if char == '"':
            m = _SIMPLE.match(text, pos)
            if m is None or m.end() > end:
                raise _NotLiteral  # a template with ${...}: not a literal
            return _decode(m.group()[1:-1]), m.end()
        if char.isdigit() or char == "-":
            m = _NUMBER.match(text, pos)
            if m is None:
                raise _NotLiteral
            return (float(m.group()) if m.group(1) or m.group(2) else int(m.group())), m.end()
        if char == "[":
            items: list[Any] = []
            pos = _blank(text, pos + 1)
            while pos < end and text[pos] != "]":
                item, pos = self.value(pos, end)
                items.append(item)
                pos = _blank(text, pos)
                if pos < end and text[pos] == ",":
                    pos = _blank(text, pos + 1)
            return items, pos + 1
        if char == "{":
            return self.object(pos + 1, end, prefix)
        word = _IDENT.match(text, pos)
        if word and word.group() in _KEYWORDS:
            return _KEYWORDS[word.group()], word.end()
        raise _NotLiteral  # a variable, a function call, a heredoc

    def object(self, pos: int, end: int, prefix: str) -> tuple[dict[str, Any], int]:
        text, out = self.text, dict[str, Any]()
        while True:
            pos = _blank(text, pos)
            if pos >= end:
                raise _NotLiteral
            if text[pos] == "}":
                return out, pos + 1
            at = pos
            key_match = _SIMPLE.match(text, pos) if text[pos] == '"' else _IDENT.match(text, pos)
            if key_match is None:
                raise _NotLiteral
            key = key_match.group()
            key = _decode(key[1:-1]) if key.startswith('"') else key
            pos = _space(text, key_match.end())
            if pos >= end or text[pos] not in "=:":
                raise _NotLiteral
            start = _space(text, pos + 1)
            try:
                out[key], pos = self.value(start, end, prefix + key + ".")
            except _NotLiteral:
                if self.strict:
                    raise
                pos = _expression_end(text, start, end, in_object=True)
                out[key] = Expression(text[start:pos].strip())
            if prefix:
                self.block.places[prefix + key] = self.lines.place(at)
            pos = _space(text, pos)
            if pos < end and text[pos] == ",":
                pos += 1


def _line_ends(text: str, pos: int, end: int) -> bool:
    pos = _space(text, pos)
    return pos >= end or text[pos] in "\n," or text.startswith(("#", "//", "\r\n"), pos)


def _expression_end(text: str, pos: int, end: int, *, in_object: bool = False) -> int:
    """The end of an expression: the first newline or comment outside brackets (or ``end``);
    ``in_object``: an object item's, which a comma or the object's ``}`` ends too."""
    depth = 0
    while True:
        m = _EXPR.search(text, pos, end)
        if m is None:
            return end
        kind = m.lastgroup
        if depth == 0 and (kind in ("n", "c") or (in_object and (kind == "k" or m.group() == "}"))):
            return m.start()
        if kind == "o":
            depth += 1
        elif kind == "x":
            depth -= 1
        pos = _skip(text, m)


def _decode(raw: str) -> str:
    """A quoted string's content as Terraform reads it (HCL escapes, ``$${`` and ``%%{``)."""
    if "\\" not in raw and "{" not in raw:
        return raw

    def one(m: re.Match[str]) -> str:
        token = m.group()
        if token in ("$${", "%%{"):
            return token[1:]
        if token == "\\":  # noqa: S105 - an escape character, not a password
            raise _NotLiteral  # an escape HCL does not know: Terraform refuses it
        simple, short, long = m.groups()
        if simple:
            return _ESCAPES[simple]
        return chr(int(short or long, 16))

    return _ESCAPE.sub(one, raw)


# --- whole bodies: -backend-config files and Terragrunt files ---------------------------


def attributes(text: str, *, strict: bool = True) -> Block:
    """A ``-backend-config`` file: a body of attributes, read as a block labelled ``file``.

    ``literal=False`` when something in it is not a literal (the caller hands it to
    python-hcl2, which reports Terraform's own error); repeated settings are in ``duplicates``.
    ``strict=False`` reads on past an expression, for editing (``complete`` says whether it
    could). Its ``span`` covers the text (no braces: keyword and brace at -1). ScanError for an
    unterminated string, comment or heredoc.
    """
    lines = _Lines(text)
    block = Block("file", 1, 1, text, span=(-1, -1, len(text)))
    try:
        _Body(text, lines, block, strict=strict).read(0, len(text), "")
    except _NotLiteral:
        block.literal = False
        block.complete = False
    _check_closed(text)
    return block


def _check_closed(text: str) -> None:
    """ScanError for an unterminated string, comment or heredoc (what Terraform refuses first)."""
    pos = 0
    while True:
        m = _EXPR.search(text, pos)
        if m is None:
            return
        pos = _skip(text, m)


@dataclass
class Item:
    """A top-level attribute or block of an HCL body (a Terragrunt file): name, labels, where."""

    name: str
    labels: list[str]
    line: int
    column: int
    start: int  # the name's offset
    value: tuple[int, int]  # an attribute's expression, or a block's body inside the braces
    is_block: bool


_LABELS = re.compile(r'[ \t]*(?:"((?:[^"\\\n]|\\.)*)"|([A-Za-z_][\w-]*))')


def items(text: str) -> list[Item]:
    """The top-level attributes and blocks of an HCL file, without reading their values.

    ScanError when the file is not HCL Terraform or Terragrunt could read.
    """
    found: list[Item] = []
    lines = _Lines(text)
    pos, end = 0, len(text)
    while True:
        pos = _blank(text, pos)
        if pos >= end:
            return found
        name = _IDENT.match(text, pos)
        if name is None:
            raise ScanError(f"unexpected {text[pos]!r}", text.count("\n", 0, pos) + 1)
        at, pos = pos, _space(text, name.end())
        line, column = lines.place(at)
        if text.startswith("=", pos):
            value_start = _space(text, pos + 1)
            value_end = _expression_end(text, value_start, end)
            found.append(Item(name.group(), [], line, column, at, (value_start, value_end), False))
            pos = value_end
            continue
        labels: list[str] = []
        while (label := _LABELS.match(text, pos)) and not text.startswith("{", _space(text, pos)):
            quoted, bare = label.groups()
            labels.append(_decode(quoted) if quoted is not None else bare)
            pos = label.end()
        pos = _space(text, pos)
        if not text.startswith("{", pos):
            raise ScanError(f"{name.group()}: expected a block or an attribute", line)
        close = _template_end(text, pos + 1) - 1
        found.append(Item(name.group(), labels, line, column, at, (pos + 1, close), True))
        pos = close + 1


def body(text: str, item: Item) -> Block:
    """A top-level block's settings, expressions kept as written (never evaluated)."""
    lines = _Lines(text)
    block = Block(item.labels[0] if item.labels else item.name, item.line, item.column, "")
    if item.is_block:
        with contextlib.suppress(_NotLiteral):
            _Body(text, lines, block, strict=False).read(item.value[0], item.value[1], "")
    return block


def value(text: str, item: Item) -> Any:
    """A top-level attribute's value: a literal, an object of values, or an ``Expression``."""
    lines = _Lines(text)
    block = Block(item.name, item.line, item.column, "")
    start, end = item.value
    reader = _Body(text, lines, block, strict=False)
    try:
        found, _ = reader.attribute(start, end, item.name + ".")
    except _NotLiteral:
        return Expression(text[start:end].strip())
    return found


def places(text: str, item: Item) -> dict[str, Place]:
    """Where each setting of an attribute's object value is (``config.bucket``: line, column)."""
    lines = _Lines(text)
    block = Block(item.name, item.line, item.column, "")
    with contextlib.suppress(_NotLiteral):
        _Body(text, lines, block, strict=False).attribute(item.value[0], item.value[1], "")
    return block.places


def heredoc(raw: str) -> str | None:
    """The content of a heredoc expression as written (``<<EOF`` ... ``EOF``): its first line
    is the line after the marker. None if ``raw`` is not a heredoc."""
    m = re.match(_HEREDOC, raw)
    if m is None:
        return None
    tag = m.group(2)
    content = raw[m.end() :]
    last = content.rstrip().rfind("\n")
    if content.rstrip()[last + 1 :].strip() != tag:
        return None
    return content[: last + 1]


# --- .tf.json --------------------------------------------------------------------------------


def scan_json(text: str) -> list[TerraformBlock]:
    """The ``terraform`` blocks of a ``.tf.json`` document, with places (``json.loads`` semantics)."""
    doc, places = _json_places(text)
    found: list[TerraformBlock] = []
    for i, tf in enumerate(as_list(doc.get("terraform") if isinstance(doc, dict) else None)):
        path = "terraform" if isinstance(doc["terraform"], dict) else f"terraform.{i}"
        line, column = places.get(path, (1, 1))
        block = TerraformBlock(line, column)
        if "required_version" in tf:
            block.required_version = tf["required_version"]
            block.required_version_place = places.get(f"{path}.required_version")
        backends = tf.get("backend")
        for j, backend in enumerate(as_list(backends)):
            bpath = f"{path}.backend" if isinstance(backends, dict) else f"{path}.backend.{j}"
            for label, body in backend.items():
                for k, one in enumerate(as_list(body)):
                    opath = f"{bpath}.{label}" if isinstance(body, dict) else f"{bpath}.{label}.{k}"
                    bline, bcol = places.get(f"{bpath}.{label}", places.get(bpath, (line, column)))
                    entry = Block(label, bline, bcol, "", settings=dict(one))
                    entry.places = {
                        key[len(opath) + 1 :]: where
                        for key, where in places.items()
                        if key.startswith(opath + ".")
                    }
                    block.backends.append(entry)
        found.append(block)
    return found


def as_list(value: Any) -> list[dict[str, Any]]:
    """A JSON/HCL block value as a list of its bodies (one body, a list of them, or none)."""
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, dict)]
    return []


def _json_places(text: str) -> tuple[Any, dict[str, Place]]:
    """``json.loads(text)`` plus the place of every key on the way to the backend settings.

    Only the ``terraform`` member is walked by hand; every other value is skipped by the
    C decoder, so a large ``.tf.json`` costs what ``json.loads`` costs.
    """
    doc = json.loads(text)  # the errors users see are json's own
    places: dict[str, Place] = {}
    if not isinstance(doc, dict) or "terraform" not in doc:
        return doc, places
    lines = _Lines(text)
    decoder = json.JSONDecoder()
    ws = re.compile(r"[ \t\n\r]*")

    def walk(pos: int, path: str, depth: int) -> int:
        pos = ws.match(text, pos).end()  # type: ignore[union-attr]
        if depth > 0 and text[pos] == "{":
            pos += 1
            while True:
                pos = ws.match(text, pos).end()  # type: ignore[union-attr]
                if text[pos] == "}":
                    return pos + 1
                if text[pos] == ",":
                    pos += 1
                    continue
                key, after = decoder.raw_decode(text, pos)
                where = f"{path}.{key}" if path else str(key)
                places[where] = lines.place(pos)
                colon = ws.match(text, after).end()  # type: ignore[union-attr]
                wanted = path != "" or key == "terraform"
                pos = walk(colon + 1, where, depth - 1 if wanted else 0)
        if depth > 0 and text[pos] == "[":
            pos, index = pos + 1, 0
            while True:
                pos = ws.match(text, pos).end()  # type: ignore[union-attr]
                if text[pos] == "]":
                    return pos + 1
                if text[pos] == ",":
                    pos += 1
                    continue
                places[f"{path}.{index}"] = lines.place(pos)
                pos = walk(pos, f"{path}.{index}", depth)
                index += 1
        _, end = decoder.raw_decode(text, pos)
        return int(end)

    walk(0, "", 6)
    return doc, places
