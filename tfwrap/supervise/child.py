"""Terraform as a child process: its own process group, the terminal handed over, signals
relayed exactly once, and the whole tree killed if it does not stop in time.

Why a process group of its own (issue 3, DOMAIN.md "Signals"): a Ctrl-C in a terminal
reaches the whole foreground group, so a wrapper in the same group that also relays the
signal turns one Ctrl-C into "Two interrupts received" (tflocal, terragrunt#2559,
tenv#340). With Terraform as the terminal's foreground group, a Ctrl-C reaches Terraform
alone; a signal sent to tfwrap (docker stop, Kubernetes, a CI runner) reaches tfwrap
alone, and tfwrap relays it once. A second signal is never relayed: after the grace
period, tfwrap kills the tree instead.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import time
from collections.abc import Callable

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
_BLOCKED = {*STOP_SIGNALS, signal.SIGCHLD, signal.SIGTTOU, signal.SIGTTIN}
_PR_SET_PDEATHSIG = 1


def pending_stop_signal(timeout: float) -> int | None:
    """Wait up to ``timeout`` for a stop signal sent while no child runs (between retries)."""
    info = signal.sigtimedwait(STOP_SIGNALS, timeout)
    return info.si_signo if info is not None else None


def _foreground_tty() -> int | None:
    """A terminal fd when tfwrap is the terminal's foreground process group, else None."""
    for fd in (0, 2, 1):
        try:
            if os.isatty(fd) and os.tcgetpgrp(fd) == os.getpgrp():
                return fd
        except OSError:
            continue
    return None


def child_setup(parent: int, libc: ctypes.CDLL) -> None:
    """In a forked Terraform, before exec: its own process group, a parent-death SIGTERM
    (it stops gracefully and releases its lock if tfwrap is SIGKILLed), and default signal
    dispositions (Python ignores SIGPIPE/SIGXFSZ; those settings must not leak)."""
    os.setpgid(0, 0)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # tfwrap died before prctl took effect
        os._exit(128 + signal.SIGTERM)
    for sig in (signal.SIGPIPE, signal.SIGXFSZ, *STOP_SIGNALS):
        signal.signal(sig, signal.SIG_DFL)


class Child:
    """A running Terraform; ``wait()`` returns its exit status the way a shell reports it."""

    def __init__(self, real: str, argv: list[str], env: dict[str, str]) -> None:
        self.tty = _foreground_tty()
        libc = ctypes.CDLL(None, use_errno=True)
        parent = os.getpid()
        # Stop signals stay blocked in tfwrap until it exits: one arriving while tfwrap
        # cleans up a lock must not kill it halfway. The child gets the mask it had.
        self._mask = signal.pthread_sigmask(signal.SIG_BLOCK, _BLOCKED) - _BLOCKED
        pid = os.fork()
        if pid == 0:  # the child: only async-signal-safe-ish steps, then exec
            try:
                child_setup(parent, libc)
                if self.tty is not None:
                    with contextlib.suppress(OSError):
                        os.tcsetpgrp(self.tty, os.getpid())
                signal.pthread_sigmask(signal.SIG_SETMASK, self._mask)
                os.execve(real, [real, *argv], env)
            finally:
                os._exit(127)
        self.pid = pid
        with contextlib.suppress(OSError):
            os.setpgid(pid, pid)  # also here: whichever runs first wins the race
        if self.tty is not None:
            with contextlib.suppress(OSError):
                os.tcsetpgrp(self.tty, pid)
        self.started = time.time()
        self.relayed: int | None = None  # the signal tfwrap was stopped by, if any
        self.killed_tree = False

    def wait(self, grace: float, on_tick: Callable[[], None] | None = None, tick: float = 0.5) -> int:
        """Wait for Terraform, relaying the first stop signal; returns the child's status."""
        deadline: float | None = None
        try:
            while True:
                status = self._reap()
                if status is not None:
                    if self.relayed is not None or status > 128:
                        self._kill_leftovers()
                    return status
                timeout = tick if deadline is None else max(0.0, min(tick, deadline - time.monotonic()))
                info = signal.sigtimedwait(_BLOCKED, timeout)
                if on_tick is not None:
                    on_tick()
                if info is not None and info.si_signo in STOP_SIGNALS and self.relayed is None:
                    self.relayed = info.si_signo
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(self.pid, signal.SIGINT)  # exactly one interrupt
                    deadline = time.monotonic() + grace
                if deadline is not None and time.monotonic() >= deadline:
                    self.kill_tree()
                    deadline = None
        finally:
            self._restore_terminal()

    def _reap(self) -> int | None:
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG | os.WUNTRACED)
        except ChildProcessError:
            return 0
        if pid == 0:
            return None
        if os.WIFSTOPPED(status):
            if self.tty is not None:  # Ctrl-Z reached Terraform's group: stop with it, as a shell job
                self._suspend()
            return None
        if os.WIFSIGNALED(status):
            return 128 + os.WTERMSIG(status)
        return os.WEXITSTATUS(status)

    def _suspend(self) -> None:
        self._restore_terminal()
        os.kill(os.getpid(), signal.SIGSTOP)
        # continued by the shell (fg/bg): give Terraform the terminal back and wake it
        if self.tty is not None:
            with contextlib.suppress(OSError):
                os.tcsetpgrp(self.tty, self.pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGCONT)

    def _restore_terminal(self) -> None:
        if self.tty is not None:
            with contextlib.suppress(OSError):
                os.tcsetpgrp(self.tty, os.getpgrp())  # SIGTTOU is blocked here

    def _kill_leftovers(self) -> None:
        """A stopped or killed Terraform can orphan provisioner processes (its local-exec
        shell's children): they are still in its process group, so they go with it."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)

    def kill_tree(self) -> None:
        """Kill Terraform and everything it started (provisioners included)."""
        import psutil

        self.killed_tree = True
        try:
            victims = [psutil.Process(self.pid), *psutil.Process(self.pid).children(recursive=True)]
        except psutil.Error:
            victims = []
        for proc in victims:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
