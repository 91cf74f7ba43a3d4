"""A private directory per supervised run (Terraform's log, migration plans), made where it
can be and removed without ever failing the run.

``XDG_RUNTIME_DIR`` is preferred (per-user, tmpfs), but it may be set and yet missing or
unwritable (a `su`/`sudo` shell keeps another user's): every locking command then exited 85
(issue 7 §6). Each candidate is tried in turn; ``mkdir`` fails on an existing name, so the
directory is new and 0700. Standard library only: this runs before Terraform starts.
"""

from __future__ import annotations

import os
import time


def private_dir(prefix: str = "tfwrap") -> str | None:
    """A new directory only this user can use, or None when no candidate allows one."""
    bases = [os.environ.get("XDG_RUNTIME_DIR", ""), os.environ.get("TMPDIR", ""), "/tmp"]  # noqa: S108
    for base in dict.fromkeys(b for b in bases if b):
        path = os.path.join(base, f"{prefix}-{os.getpid()}-{time.time_ns()}")
        try:
            os.mkdir(path, 0o700)
        except OSError:
            continue
        return path
    return None


def remove_tree(path: str) -> None:
    """Remove the directory and whatever is in it; never raises (Terraform has run by now,
    and a failure here must not change its exit status or run it again, issue 7 §6)."""
    import shutil

    shutil.rmtree(path, ignore_errors=True)
