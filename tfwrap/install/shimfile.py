"""Placing the ``terraform`` shim, and taking it away again.

Installing the package puts no ``terraform`` anywhere: pip's ``script-files`` once
overwrote a real Terraform in a shared bin directory. Placing the shim is an explicit act
(``tfwrap shim install``, which ``install.sh`` uses). The placed file is the package's
``sh/terraform`` with this tfwrap's Python written in, so the checked path finds it from any
directory, while the pass-through path still starts no Python at all.

A file is a tfwrap shim when its second line carries the marker (``realbin.is_shim``). A
file that is not is never overwritten or removed.
Why: docs/decisions/101-shims-known-by-file-identity.md.
"""

from __future__ import annotations

import os
import re
import sys

from tfwrap import exitcodes
from tfwrap.errors import TfwrapError
from tfwrap.fs import atomic_write
from tfwrap.terraform import realbin

NAME = "terraform"
# The sh shim lives with the shim package (its hot path); this module only places copies of it.
TEMPLATE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "shim", NAME)
PYTHON_LINE = "tfwrap_python=''"
_PYTHON_RE = re.compile(r"^tfwrap_python='((?:[^']|'\\'')*)'$", re.MULTILINE)


def quote(value: str) -> str:
    """``value`` as one sh word in single quotes."""
    return "'" + value.replace("'", "'\\''") + "'"


def render(python: str) -> str:
    """The shim's text with ``python`` as the Python of its checked path."""
    with open(TEMPLATE, encoding="utf-8") as f:
        text = f.read()
    if PYTHON_LINE not in text:
        raise TfwrapError(f"{TEMPLATE} has no `{PYTHON_LINE}` line; reinstall tfwrap", exitcodes.INTERNAL)
    return text.replace(PYTHON_LINE, f"tfwrap_python={quote(python)}", 1)


def python_of(path: str) -> str | None:
    """The Python a placed shim runs its checked path with; None when none is written in."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            head = f.read(4096)
    except OSError:
        return None
    found = _PYTHON_RE.search(head)
    return found.group(1).replace("'\\''", "'") if found and found.group(1) else None


def default_dir(argv0: str | None = None) -> str:
    """Beside the ``tfwrap`` command being run (pipx's and install.sh's bin directory)."""
    argv0 = sys.argv[0] if argv0 is None else argv0
    if os.path.basename(argv0) != "tfwrap" or os.sep not in argv0:
        raise TfwrapError(
            "cannot tell which bin directory this tfwrap runs from; give one: --dir DIR", exitcodes.USAGE
        )
    return os.path.dirname(os.path.abspath(argv0))


def foreign(path: str) -> TfwrapError:
    return TfwrapError(
        f"{path} exists and is not a tfwrap shim; tfwrap never overwrites or removes it: "
        "pick another --dir and put it first in PATH",
        exitcodes.FOREIGN_FILE,
    )


def install(directory: str, python: str | None = None) -> tuple[str, str | None]:
    """Place the shim as DIR/terraform: the path, and the Python of a shim it replaced (None
    when there was none, or it named no Python).

    Refuses (FOREIGN_FILE) when DIR/terraform exists and is not a tfwrap shim. A tfwrap shim
    there (of this install or another, copied or linked) is replaced: it is tfwrap's file.
    """
    python = python or sys.executable
    target = os.path.join(os.path.abspath(directory), NAME)
    replaced = None
    if os.path.lexists(target):
        if os.path.isdir(target) or not realbin.is_shim(target):
            raise foreign(target)
        replaced = python_of(target)
    text = render(python)
    try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        # a terraform run meanwhile sees the old shim or the new one, never half a file
        atomic_write(target, text, mode=0o755)  # a command everyone may run, like any in bin
    except OSError as exc:
        raise unwritable(target, exc) from exc
    return target, replaced


def unwritable(target: str, exc: OSError) -> TfwrapError:
    return TfwrapError(
        f"cannot write {target} ({exc.strerror or exc}); pick a directory you may write: --dir DIR",
        exitcodes.USAGE,
    )


def uninstall(directory: str, python: str | None = None) -> str | None:
    """Remove DIR/terraform when it is this install's shim: its path, or None if absent.

    Refuses a file that is not a tfwrap shim (FOREIGN_FILE), and a shim another tfwrap placed
    whose Python still exists (that install removes its own).
    """
    python = python or sys.executable
    target = os.path.join(os.path.abspath(directory), NAME)
    if not os.path.lexists(target):
        return None
    if os.path.isdir(target) or not realbin.is_shim(target):
        raise foreign(target)
    owner = python_of(target)
    if owner and owner != python and os.path.exists(owner):
        raise TfwrapError(
            f"{target} is the shim of another tfwrap (its Python is {owner}); "
            f"remove it with that install: {os.path.dirname(owner)}/tfwrap shim uninstall --dir {directory}",
            exitcodes.FOREIGN_FILE,
        )
    try:
        os.unlink(target)
    except OSError as exc:
        raise unwritable(target, exc) from exc
    return target
