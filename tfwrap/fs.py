"""Files tfwrap writes: replaced atomically (``atomic_write``), and a private directory per
supervised run (Terraform's log, migration plans) made where it can be and removed without
ever failing the run.

``XDG_RUNTIME_DIR`` is preferred (per-user, tmpfs), but it may be set and yet missing or
unwritable (a `su`/`sudo` shell keeps another user's): every locking command then exited 85.
Each candidate is tried in turn; ``mkdir`` fails on an existing name, so the directory is new
and 0700. Standard library only: the shim's cache and the supervised run use it.
"""

from __future__ import annotations

import os
import time

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


def atomic_write(
    path: str | os.PathLike[str],
    data: bytes | str,
    *,
    mode: int | None = None,
    dir_fd: int | None = None,
    durable: bool = True,
) -> None:
    """Replace ``path`` with ``data`` all at once: a reader sees the old file or the new one,
    never half of one (pip's ``adjacent_tmp_file``).

    The new text goes to an unpredictable name in the same directory, created exclusively and
    never through a symlink, is flushed to disk (``durable``) and renamed over ``path``. ``mode``:
    the new file's permissions (default: the old file's, else 0o666 less the umask). ``dir_fd``:
    ``path`` is relative to that open directory. On any failure the temporary file is gone and
    the ``OSError`` is raised; ``path`` is untouched.
    """
    target = os.fspath(path)
    folder, name = os.path.split(target)
    tmp = os.path.join(folder, f".{name}.{os.getpid()}.{os.urandom(6).hex()}.tmp")
    if mode is None:
        try:
            mode = os.stat(target, dir_fd=dir_fd).st_mode & 0o7777
        except FileNotFoundError:
            mode = None
    fd = os.open(tmp, _CREATE, 0o666 if mode is None else 0o600, dir_fd=dir_fd)
    try:
        try:
            if mode is not None:
                os.fchmod(fd, mode)
            view = memoryview(data.encode() if isinstance(data, str) else data)
            while view:
                view = view[os.write(fd, view) :]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        try:  # noqa: SIM105 - contextlib stays off the hot path
            os.unlink(tmp, dir_fd=dir_fd)
        except OSError:
            pass
        raise


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
    and a failure here must not change its exit status or run it again)."""
    import shutil

    shutil.rmtree(path, ignore_errors=True)
