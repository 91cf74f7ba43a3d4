"""The chain from the ``terraform`` a user types to the binary that runs: tfwrap's shim →
a version manager's shim, if any (tfenv, asdf, mise, tenv, aqua) → the real binary.

One function, ``resolve()``, returns the chain; ``tfwrap doctor`` prints it. It follows
``realbin.find`` (the same rule as the sh shim), so it shows what the shim will run.
``version_manager()`` is the one rule for "is this file a version manager's shim", used by
``tfwrap doctor`` and ``tfwrap shim status`` alike.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from tfwrap.terraform import realbin

# A version manager's shim, recognised by a word in its script (or its target's name), and
# where that manager installs version V (``~`` and variables expanded; None: not known).
_MANAGERS: dict[str, tuple[str, ...]] = {
    "tfenv": ("${TFENV_ROOT}/versions/{v}/terraform",),
    "tenv": ("${TENV_ROOT:-~/.tenv}/Terraform/{v}/terraform",),
    "asdf": ("${ASDF_DATA_DIR:-~/.asdf}/installs/terraform/{v}/bin/terraform",),
    "mise": ("${MISE_DATA_DIR:-~/.local/share/mise}/installs/terraform/{v}/terraform",),
    "aqua": (),
    "rtx": (),  # mise's former name
    "tfswitch": (),
}
# A manager's name as a whole word in a script ("promise" does not name mise).
_MANAGER_WORD = re.compile(r"(?<![\w-])(" + "|".join(_MANAGERS) + r")(?![\w])")


@dataclass(frozen=True)
class Link:
    """One step of the chain: ``kind`` is ``tfwrap-shim``, ``version-manager`` or ``terraform``."""

    kind: str
    path: str
    name: str = ""  # the version manager's name
    note: str = ""  # how this link was chosen or found


def version_manager(path: str) -> str:
    """The version manager whose shim ``path`` is, or "" for the real terraform (a binary, or a
    script that names no manager). A proxy is known by its target's name, a script by a word."""
    target = os.path.realpath(path)
    base = os.path.basename(target)
    for name in _MANAGERS:
        if base == name or base.startswith(f"{name}-"):  # mise, tenv, aqua-proxy: symlinked proxies
            return name
    try:
        with open(target, "rb") as f:
            head = f.read(4096)
    except OSError:
        return ""
    if not head.startswith(b"#!"):
        return ""  # a binary: the real terraform (tfswitch links straight to one)
    found = _MANAGER_WORD.search(head.decode(errors="replace"))
    return found.group(1) if found else ""


def installed(manager: str, version: str, shim: str, environ: dict[str, str] | None = None) -> str | None:
    """Where ``manager`` keeps Terraform ``version``, when that file exists."""
    env = dict(os.environ if environ is None else environ)
    if manager == "tfenv" and "TFENV_ROOT" not in env:
        env["TFENV_ROOT"] = os.path.dirname(os.path.dirname(os.path.realpath(shim)))
    for pattern in _MANAGERS.get(manager, ()):
        path = os.path.expanduser(_expand(pattern.replace("{v}", version), env))
        if os.path.isfile(path):
            return path
    return None


def _expand(text: str, env: dict[str, str]) -> str:
    """``${NAME}`` and ``${NAME:-default}``, as the managers' own scripts write them."""
    while "${" in text:
        start = text.index("${")
        end = text.index("}", start)
        name, _, default = text[start + 2 : end].partition(":-")
        text = text[:start] + (env.get(name) or default) + text[end + 1 :]
    return text


def resolve(environ: dict[str, str] | None = None, version: str | None = None) -> list[Link]:
    """The chain, first link first. ``version`` (if known) locates a manager's binary.

    Raises ``TfwrapError`` as ``realbin.find`` does when no real terraform can be found.
    """
    env = os.environ if environ is None else environ
    chain: list[Link] = []
    for directory in env.get("PATH", "").split(os.pathsep):
        candidate = os.path.join(directory or ".", "terraform")
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            if realbin.is_shim(candidate):
                chain.append(Link("tfwrap-shim", candidate, note="first terraform on PATH"))
            break
    real = realbin.find(dict(env))
    note = "TFWRAP_TERRAFORM" if env.get("TFWRAP_TERRAFORM") else "first terraform on PATH that is not a shim"
    manager = version_manager(real)
    if not manager:
        target = os.path.realpath(real)
        chain.append(Link("terraform", real, note=note if target == real else f"{note}; links to {target}"))
        return chain
    chain.append(Link("version-manager", real, name=manager, note=note))
    found = installed(manager, version, real, dict(env)) if version else None
    chain.append(
        Link(
            "terraform",
            found or "",
            note=f"chosen by {manager}" if found else f"chosen by {manager} at run time (path not known)",
        )
    )
    return chain
