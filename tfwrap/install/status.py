"""Where the ``terraform`` shim is and what it will run (``tfwrap shim status``).

Read (every ``terraform`` on PATH, what each one is), then decide (does the shim win, what
real binary does it reach and through which version manager). The CLI only formats.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field

from tfwrap.errors import TfwrapError
from tfwrap.install import shimfile
from tfwrap.terraform import chain, realbin

SHIM = "tfwrap shim"
MANAGER = "version-manager shim"
BINARY = "terraform"
# `version -json` answers in well under a second; a terraform that hangs is reported, not awaited.
VERSION_TIMEOUT_SECONDS = 5


@dataclass(frozen=True)
class Entry:
    """One ``terraform`` on PATH."""

    path: str
    kind: str  # SHIM, MANAGER or BINARY
    manager: str | None = None  # tfenv, tenv, asdf, mise... for MANAGER
    python: str | None = None  # the Python written into a placed shim
    ours: bool = False  # a shim of the tfwrap that runs this command


@dataclass
class Status:
    entries: list[Entry]
    real: Entry | None  # what the shim runs (TFWRAP_TERRAFORM, else the first non-shim on PATH)
    real_error: str | None  # why there is none
    binary: str | None  # the binary a version manager's shim picks today, when it says
    version: str | None  # `real version -json`'s terraform_version
    tfwrap_terraform: str | None
    problems: list[str] = field(default_factory=list)

    @property
    def shim(self) -> Entry | None:
        return next((e for e in self.entries if e.kind == SHIM), None)

    @property
    def shim_wins(self) -> bool:
        return bool(self.entries) and self.entries[0].kind == SHIM


def manager_of(path: str) -> str | None:
    """The version manager whose shim ``path`` is (the rule ``tfwrap doctor`` uses too)."""
    return chain.version_manager(path) or None


def classify(path: str, python: str) -> Entry:
    if realbin.is_shim(path):
        owner = shimfile.python_of(path)
        return Entry(path, SHIM, python=owner, ours=owner is None or owner == python)
    manager = manager_of(path)
    return Entry(path, MANAGER if manager else BINARY, manager=manager)


def on_path(environ: dict[str, str], python: str) -> list[Entry]:
    entries = []
    seen: set[str] = set()
    for directory in environ.get("PATH", "").split(os.pathsep):
        candidate = os.path.join(directory or ".", "terraform")
        if candidate in seen or not (os.path.isfile(candidate) and os.access(candidate, os.X_OK)):
            continue
        seen.add(candidate)
        entries.append(classify(candidate, python))
    return entries


def _run(argv: list[str], environ: dict[str, str]) -> str | None:
    """What a command prints on stdout when it succeeds; None when it fails or hangs."""
    try:
        done = subprocess.run(
            argv,
            env={**environ, "CHECKPOINT_DISABLE": "1"},  # never ask HashiCorp for updates
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=VERSION_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def _answer(argv: list[str], environ: dict[str, str]) -> str | None:
    """The first line a command prints, or None."""
    lines = (_run(argv, environ) or "").strip().splitlines()
    return lines[0].strip() if lines else None


def manager_binary(entry: Entry, environ: dict[str, str]) -> str | None:
    """The terraform a version manager's shim runs here and now, asked the manager's way:
    `asdf which`, `mise which`, tfenv's `version-name` under its versions directory. None when
    the manager cannot say (tenv picks at run time)."""
    if entry.manager in ("asdf", "mise", "rtx"):
        tool = shutil.which(entry.manager, path=environ.get("PATH"))
        return _answer([tool, "which", "terraform"], environ) if tool else None
    if entry.manager == "tfenv":
        root = os.path.dirname(os.path.dirname(os.path.realpath(entry.path)))
        version = _answer([os.path.join(root, "bin", "tfenv"), "version-name"], environ)
        if version:
            binary = os.path.join(environ.get("TFENV_CONFIG_DIR") or root, "versions", version, "terraform")
            return binary if os.path.isfile(binary) else None
    return None


def version_of(path: str, environ: dict[str, str]) -> str | None:
    """``terraform version -json`` through ``path`` (so through a version manager too)."""
    try:
        return str(json.loads(_run([path, "version", "-json"], environ) or "")["terraform_version"])
    except (ValueError, KeyError, TypeError):
        return None


def gather(environ: dict[str, str] | None = None, python: str | None = None) -> Status:
    env = dict(os.environ if environ is None else environ)
    python = python or sys.executable
    entries = on_path(env, python)
    real: Entry | None = None
    error = None
    try:
        real_path = realbin.find(env)
        real = next((e for e in entries if e.path == real_path), None) or classify(real_path, python)
    except TfwrapError as exc:
        error = exc.message
    version = version_of(real.path, env) if real else None
    binary = manager_binary(real, env) if real and real.kind == MANAGER else None
    status = Status(entries, real, error, binary, version, env.get("TFWRAP_TERRAFORM") or None)
    status.problems = problems(status)
    return status


def problems(status: Status) -> list[str]:
    """What stops ``terraform`` from running tfwrap, each with its fix."""
    found = []
    shim = status.shim
    if shim is None:
        found.append("no tfwrap shim on PATH: run `tfwrap shim install` and put its directory first in PATH")
    elif not status.shim_wins:
        first = status.entries[0].path
        found.append(
            f"{first} comes before the shim on PATH, so `terraform` skips tfwrap: "
            f'export PATH="{os.path.dirname(shim.path)}:$PATH"'
        )
    if shim is not None and shim.python and not os.path.exists(shim.python):
        found.append(f"{shim.path} runs checks with {shim.python}, which is gone: run `tfwrap shim install`")
    if status.real is None:
        found.append(status.real_error or "no real terraform found")
    elif status.version is None:
        found.append(f"{status.real.path} did not answer `version -json`: is it Terraform?")
    return found
