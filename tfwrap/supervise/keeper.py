"""The heartbeat's own process, the keeper: it renews the lock for as long as Terraform's
process exists, stopped or not, and outlives tfwrap if tfwrap is killed.

Why a process of its own: the shell stops a job (Ctrl-Z, ``kill -TSTP``, a background read)
by stopping every process in it, and a stopped apply still holds its lock. A heartbeat
thread inside tfwrap stopped with it, and after the lease the live lock looked stale. The
keeper is forked by tfwrap before Terraform starts and leaves the job at once (``setsid``:
a session of its own, no terminal), so nothing aimed at the job reaches it.

How it learns which process to watch: the forked Terraform itself, just before exec, sends
the keeper a pidfd of its own process (``Keeper.before_exec``): a handle that cannot name
another process after a pid is reused, and that the keeper holds before Terraform runs a
single instruction. Any Terraform therefore has a keeper.

Two endings:
- tfwrap reaps Terraform and sends its status: the keeper stops the heartbeat, removes a
  lock Terraform left behind (``finish``), reports what the heartbeat saw and exits;
- tfwrap dies (SIGKILL): the socket reads EOF. Terraform got its one parent-death SIGTERM
  (``child.py``); the keeper wakes it if it was stopped, keeps the heartbeat until it
  exits, kills the tree after the grace period as tfwrap would have, kills provisioners
  left in Terraform's process group, then cleans up the lock.

The keeper ignores stop and job-control signals: it ends when Terraform does.
Why: docs/decisions/102-the-keeper.md.
"""

from __future__ import annotations

import _socket  # not `socket`: its enum set-up costs ~3 ms before Terraform starts
import contextlib
import os
import signal
import sys
from collections.abc import Callable

from tfwrap import testhooks
from tfwrap.output import say, write

TYPE_CHECKING = False  # imported before Terraform starts: nothing heavy
if TYPE_CHECKING:
    from typing import Any, ClassVar

    from tfwrap.supervise.heartbeat import Locks

REPORT_TIMEOUT = 120.0  # the keeper's cleanup is bounded by its clients' timeouts
_NO_HEARTBEAT = b"no-heartbeat"  # the keeper's report when no heartbeat ever started
STATUS_UNKNOWN = -1  # Terraform was not tfwrap's child any more when it ended
_generation = 0  # how many keepers this run replaced before this one (0: the first)
_IGNORED = (
    signal.SIGINT,
    signal.SIGTERM,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGTSTP,
    signal.SIGTTIN,
    signal.SIGTTOU,
)


class KeeperReport:
    """What the keeper tells tfwrap when Terraform has ended: the message between two
    processes, so it is typed and versioned (a renamed field is a new version, never a
    silently missing attribute). ``decode`` returns None for anything it does not know.

    A plain class, not a dataclass: this module is imported before Terraform starts, and
    ``dataclasses`` imports ``inspect`` (milliseconds on every supervised run).
    """

    VERSION = 1
    # name -> type; the wire format is JSON {"version": VERSION, name: value, ...}
    FIELDS: ClassVar[dict[str, type]] = {
        "attempted": str,  # the lock ID Terraform tried to take
        "locked": str,  # the lock ID Terraform reported holding
        "unlocked": bool,
        "mode": str,  # "S3 Native only", "S3 Native and DynamoDB", ...
        "cleaned": str,  # what own-lock cleanup did (supervise/cleanup.py)
        "connect_error": str,
        "annotations": int,  # heartbeat renewals written
        "has_locks": bool,  # the keeper reached the lock: tfwrap may connect to it too
    }
    __slots__ = tuple(FIELDS)

    def __init__(
        self,
        *,
        attempted: str = "",
        locked: str = "",
        unlocked: bool = False,
        mode: str = "",
        cleaned: str = "",
        connect_error: str = "",
        annotations: int = 0,
        has_locks: bool = False,
    ) -> None:
        self.attempted, self.locked, self.unlocked, self.mode = attempted, locked, unlocked, mode
        self.cleaned, self.connect_error, self.annotations = cleaned, connect_error, annotations
        self.has_locks = has_locks

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KeeperReport) and self.values() == other.values()

    __hash__ = None  # type: ignore[assignment]

    def values(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.FIELDS}

    @classmethod
    def of(cls, heartbeat: Any) -> KeeperReport:
        return cls(
            attempted=str(heartbeat.attempted),
            locked=str(heartbeat.locked),
            unlocked=bool(heartbeat.unlocked),
            mode=str(heartbeat.mode),
            cleaned=str(heartbeat.cleaned),
            connect_error=str(heartbeat.connect_error),
            annotations=int(heartbeat.annotations),
            has_locks=heartbeat.locks is not None,
        )

    def encode(self) -> bytes:
        import json

        return json.dumps({"version": self.VERSION, **self.values()}).encode()

    @classmethod
    def decode(cls, raw: bytes) -> KeeperReport | None:
        import json

        try:
            data = json.loads(raw)
        except ValueError:
            return None
        if not isinstance(data, dict) or data.pop("version", None) != cls.VERSION:
            return None
        if set(data) != set(cls.FIELDS) or any(type(data[k]) is not t for k, t in cls.FIELDS.items()):
            return None
        return cls(**data)


class Report:
    """The keeper's report as tfwrap uses it: its fields, and the lock reconnected here only
    when asked (a retry waits for the holder's lock to go)."""

    def __init__(self, sent: KeeperReport, connect: Callable[[], Locks | None]) -> None:
        self.sent = sent
        self.attempted, self.locked, self.cleaned = sent.attempted, sent.locked, sent.cleaned
        self._has_locks = sent.has_locks
        self._connect = connect
        self._locks: Locks | None = None

    @property
    def locks(self) -> Locks | None:
        if self._has_locks and self._locks is None:
            self._locks = self._connect()
            self._has_locks = self._locks is not None
        return self._locks


class Keeper:
    """tfwrap's end of the keeper: ``spawn`` before Terraform, ``finish`` after it."""

    def __init__(self, sock: _socket.socket, pid: int, spawned: Callable[[], Keeper | None]) -> None:
        self._sock = sock
        self.pid = pid
        self._spawn_again = spawned
        self.replaced = 0
        self.lost = False  # no keeper any more: nothing to report

    @classmethod
    def spawn(
        cls,
        start: Callable[[int], Any],
        finish: Callable[[Any, int], None],
        grace: float,
    ) -> Keeper | None:
        """Fork the keeper. ``start(terraform_pid)`` returns a started heartbeat (or None),
        ``finish(heartbeat, status)`` stops it and cleans up; both run in the keeper."""
        try:
            ours, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
            write("")  # flush before fork (a closed stderr is None: nothing to flush)
            pid = os.fork()
        except OSError as exc:
            say(f"heartbeat disabled: cannot start its process ({exc.strerror})")
            return None
        if pid == 0:  # pragma: no cover - the keeper; tests observe it from outside
            try:
                ours.close()
                _keep(theirs, start, finish, grace)
            except BaseException as exc:  # noqa: BLE001 - one line, never a traceback
                say(f"heartbeat process failed ({type(exc).__name__}: {exc})")
            finally:
                os._exit(0)
        theirs.close()
        return cls(ours, pid, lambda: cls.spawn(start, finish, grace))

    def replace_if_dead(self, terraform_pid: int) -> None:
        """While Terraform runs (on SIGCHLD): a keeper that died (killed, or a bug) is
        replaced at once, so the heartbeat does not lapse while Terraform lives (the
        foundation of stale-lock takeover). The new keeper reads Terraform's log
        from the start, so it knows the lock as the first did."""
        try:
            pid, _ = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            pid = self.pid
        if pid == 0 or self.lost:
            return
        self.replaced += 1
        self._sock.close()
        global _generation  # noqa: PLW0603 - inherited by the fork: the new keeper knows it is one
        _generation = self.replaced
        if self.replaced == 1:  # said once; the heartbeat must not lapse however often it dies
            say("the heartbeat process ended while Terraform runs; starting another")
        new = None if testhooks.get(testhooks.KEEPER_SPAWN_FAILS) else self._spawn_again()
        if new is None:
            self.lost = True
            say(
                "WARNING: the heartbeat process ended and could not be replaced: the lock is no "
                "longer renewed while Terraform runs; marking it so that no other run judges it "
                "stale by age (check it with `tfwrap lock status`)"
            )
            return
        self._sock, self.pid = new._sock, new.pid
        try:
            pidfd = os.pidfd_open(terraform_pid)  # our unreaped child: it cannot be another process
            _send_pidfd(self._sock, terraform_pid, pidfd)
            os.close(pidfd)
        except OSError as exc:
            say(f"heartbeat disabled: cannot hand Terraform to the new heartbeat process ({exc.strerror})")

    def before_exec(self) -> None:
        """In the forked Terraform, just before exec: give the keeper a pidfd of itself."""
        try:
            pidfd = os.pidfd_open(os.getpid())
            _send_pidfd(self._sock, os.getpid(), pidfd)
            os.close(pidfd)
        except OSError:
            pass  # no keeper: Terraform runs on, its lock is Terraform's alone

    def abandon(self) -> None:
        """Terraform never started: the keeper reads EOF with nothing to watch and exits."""
        self._sock.close()
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)

    def finish(self, status: int, connect: Callable[[], Locks | None]) -> Report | None:
        """Tell the keeper Terraform's status; wait for its cleanup and its report."""
        if self.lost:
            return None
        raw = b""
        try:
            self._sock.send(f"exit {status}".encode())
            self._sock.settimeout(REPORT_TIMEOUT)
            raw = self._sock.recv(1 << 16)
        except OSError as exc:
            say(f"the heartbeat process did not report ({type(exc).__name__})")
        finally:
            self._sock.close()
        with contextlib.suppress(ChildProcessError):
            if raw:
                os.waitpid(self.pid, 0)
        sent = KeeperReport.decode(raw) if raw and raw != _NO_HEARTBEAT else None
        if raw and raw != _NO_HEARTBEAT and sent is None:
            say("the heartbeat process sent a report this tfwrap cannot read; Terraform's status stands")
        return Report(sent, connect) if sent is not None else None


def _keep(
    sock: _socket.socket, start: Callable[[int], Any], finish: Callable[[Any, int], None], grace: float
) -> None:
    """The keeper's life (in the forked process)."""
    os.setsid()  # out of the job: Ctrl-Z, kill of the job's group, the terminal's SIGHUP
    for sig in _IGNORED:
        signal.signal(sig, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)  # stdout is Terraform's: `$(terraform output)` must not wait for us
    os.close(null)
    sys.stderr = _Quiet(sys.stderr)  # a closed terminal must not stop the heartbeat
    from tfwrap import log

    log._logger = None  # rebuilt on the quiet stderr if used
    heartbeat: Any = None
    terraform: tuple[int, int] | None = None
    orphaned = False
    while True:
        try:
            data, fds = _receive(sock)
        except OSError:
            data, fds = b"", []
        if fds:
            terraform = (int(data), fds[0])
            try:
                heartbeat = start(terraform[0])
            except Exception as exc:  # noqa: BLE001 - Terraform runs on without it
                say(f"heartbeat disabled ({type(exc).__name__}: {exc})")
            continue
        if data.startswith(b"exit "):
            status = int(data[5:])
            break
        if terraform is None:
            return  # tfwrap ended before any Terraform started
        orphaned = True
        status = _outlive(*terraform, grace)
        break
    finish(heartbeat, status)
    if orphaned:
        return
    message = KeeperReport.of(heartbeat).encode() if heartbeat is not None else _NO_HEARTBEAT
    with contextlib.suppress(OSError):
        sock.send(message)


def end_on_crash(reason: str) -> None:
    """The heartbeat thread failed (a bug): end this keeper so tfwrap starts another, which
    reads Terraform's log from the start and renews the lock again. Said by the first only."""
    if _generation == 0:
        say(f"heartbeat failed ({reason}); its process ends and another takes over")
    os._exit(70)


def _send_pidfd(sock: _socket.socket, pid: int, pidfd: int) -> None:
    import array

    rights = [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, array.array("i", [pidfd]))]
    sock.sendmsg([str(pid).encode()], rights, _socket.MSG_NOSIGNAL)


def _receive(sock: _socket.socket) -> tuple[bytes, list[int]]:
    """One message and the fds it carries."""
    import array

    data, ancillary, _, _ = sock.recvmsg(256, _socket.CMSG_LEN(array.array("i").itemsize))
    fds = array.array("i")
    for level, kind, payload in ancillary:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
    return data, list(fds)


def _outlive(pid: int, pidfd: int, grace: float) -> int:
    """tfwrap was killed: see Terraform to its end as tfwrap would have; its status."""
    from tfwrap.terraform.child import kill_tree

    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGCONT)  # a stopped Terraform must wake to act on its SIGTERM
    status = STATUS_UNKNOWN
    if not _exits_within(pidfd, grace):
        kill_tree(pid)
        _exits_within(pidfd, 10)
        status = 128 + signal.SIGKILL
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)  # provisioners left in its process group
    return status


def _exits_within(pidfd: int, timeout: float) -> bool:
    import select

    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    return bool(poller.poll(timeout * 1000))


class _Quiet:
    """stderr that never raises: the keeper may outlive the terminal it writes to."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return int(self._stream.write(text))
        except (OSError, ValueError):
            return len(text)

    def flush(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._stream.flush()

    def isatty(self) -> bool:
        try:
            return bool(self._stream.isatty())
        except (OSError, ValueError):
            return False
