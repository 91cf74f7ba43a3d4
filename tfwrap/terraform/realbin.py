"""Finding the real terraform binary: ``TFWRAP_TERRAFORM``, else the first ``terraform`` on
PATH that is not a tfwrap shim (recognised by its marker line, not by its name).

The sh shim does the same in shell by file identity (it must not read binaries); this is for
``tfwrap`` commands and the checked path.
"""

from __future__ import annotations

import os

from tfwrap import exitcodes
from tfwrap.errors import TfwrapError

SHIM_MARKER = b"# tfwrap-shim "


def is_shim(path: str) -> bool:
    """True when the file's second line carries the shim marker."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return False
    lines = head.split(b"\n")
    return len(lines) > 1 and lines[1].startswith(SHIM_MARKER)


def past_shims(real: str, environ: dict[str, str] | None = None) -> str:
    """The real binary for the checked path. The sh shim recognises shims by file identity
    only (it never reads a binary), so it can hand over a shim of another install;
    Python reads 512 bytes at once and can afford to look: such a shim is skipped, or refused
    when TFWRAP_TERRAFORM names it."""
    return find(environ) if is_shim(real) else real


def find(environ: dict[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    chosen = env.get("TFWRAP_TERRAFORM")
    if chosen:
        if not os.path.exists(chosen):
            raise TfwrapError(
                f"TFWRAP_TERRAFORM={chosen} does not exist; point it at the real terraform binary",
                exitcodes.NOT_FOUND,
            )
        if is_shim(chosen):
            raise TfwrapError(
                f"TFWRAP_TERRAFORM={chosen} is a tfwrap shim; point it at the real terraform binary",
                exitcodes.RECURSION,
            )
    else:
        for directory in env.get("PATH", "").split(os.pathsep):
            candidate = os.path.join(directory or ".", "terraform")
            if os.path.isfile(candidate) and os.access(candidate, os.X_OK) and not is_shim(candidate):
                chosen = candidate
                break
        else:
            raise TfwrapError(
                "no real terraform found on PATH (tfwrap shims are skipped); install Terraform >= 1.11 "
                "or set TFWRAP_TERRAFORM",
                exitcodes.NOT_FOUND,
            )
    if not (os.path.isfile(chosen) and os.access(chosen, os.X_OK)):
        raise TfwrapError(
            f"{chosen} is not an executable file; fix its permissions (chmod +x) or set TFWRAP_TERRAFORM",
            exitcodes.NOT_EXECUTABLE,
        )
    return chosen
