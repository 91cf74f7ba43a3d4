"""Terraform as a child process, the one way tfwrap runs it (the shim and ``tfwrap migrate``
alike): its own process group, the terminal handed over, stop signals relayed
exactly once, job control mirrored, and the whole tree killed if it does not stop in time.

Why a process group of its own (DOMAIN.md "Signals"): a Ctrl-C in a terminal
reaches the whole foreground group, so a wrapper in the same group that also relays the
signal turns one Ctrl-C into "Two interrupts received" (tflocal, terragrunt#2559,
tenv#340). With Terraform as the terminal's foreground group, a Ctrl-C reaches Terraform
alone; a signal sent to tfwrap (docker stop, Kubernetes, a CI runner) reaches tfwrap
alone, and tfwrap relays it once. A second signal is never relayed: after the grace
period, tfwrap kills the tree instead.

Job control: the shell sees tfwrap as the job, so tfwrap behaves as Terraform
would. Terraform stopped by SIGTSTP/SIGTTIN/SIGTTOU (Ctrl-Z, or reading the terminal from
the background): tfwrap gives the terminal back and stops itself with the same signal.
SIGTSTP/SIGTTIN/SIGTTOU sent to tfwrap: relayed to Terraform's group, and tfwrap stops when
Terraform has. SIGCONT (``fg``, ``bg``): Terraform gets the terminal only if tfwrap is in
the foreground, and is continued. Every signal is blocked before the fork and read with
``sigtimedwait``, so none can arrive between the start and the relay and be lost.

The process that forks Terraform runs no threads: ``PR_SET_PDEATHSIG`` fires when the
forking *thread* ends and again at each re-parenting to another thread of the same
process, so a threaded supervisor killed with SIGKILL gave Terraform two interrupts (issue
7 §8). The heartbeat lives in its own process (``keeper.py``).
Why: docs/decisions/110-one-interrupt.md.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import time
from collections.abc import Callable

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
JOB_SIGNALS = (signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU)  # the shell stops the job
_JOB_CONTROL = {*JOB_SIGNALS, signal.SIGCONT, signal.SIGCHLD}
_BLOCKED = {*STOP_SIGNALS, *_JOB_CONTROL}
_PR_SET_PDEATHSIG = 1


def pending_stop_signal(timeout: float) -> int | None:
    """Wait up to ``timeout`` for a stop signal sent while no child runs (between retries)."""
    info = signal.sigtimedwait(STOP_SIGNALS, timeout)
    return info.si_signo if info is not None else None


def controlling_tty() -> int | None:
    """An fd on tfwrap's controlling terminal (foreground or not), else None."""
    for fd in (0, 2, 1):
        try:
            if os.isatty(fd):
                os.tcgetpgrp(fd)  # ENOTTY unless it is our controlling terminal
                return fd
        except OSError:
            continue
    return None


def _foreground(tty: int | None) -> bool:
    try:
        return tty is not None and os.tcgetpgrp(tty) == os.getpgrp()
    except OSError:
        return False


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


class Started:
    """Which Terraform a caller started, if any: passed to ``Child`` explicitly (no global),
    read when the caller fails, to keep that Terraform's status instead of running it again."""

    def __init__(self) -> None:
        self.child: Child | None = None


class Child:
    """A running Terraform; ``wait()`` returns its exit status the way a shell reports it.

    ``started`` (a ``Started``, when given) records the child as soon as it is forked: once
    there is one, no failure of the caller may start Terraform again or replace its status
    (``final_status``).

    ``terminal``: hand it the terminal when tfwrap has it (interactive runs); captured runs
    pass their own ``stdin``/``stdout``/``stderr`` fds and ``cwd``. ``before_exec`` runs in
    the child just before exec (the heartbeat process learns which process to watch).
    """

    def __init__(
        self,
        real: str,
        argv: list[str],
        env: dict[str, str],
        *,
        cwd: str | None = None,
        stdio: tuple[int, int, int] | None = None,
        terminal: bool = True,
        before_exec: Callable[[], None] | None = None,
        started: Started | None = None,
    ) -> None:
        self.tty = controlling_tty() if terminal else None
        libc = ctypes.CDLL(None, use_errno=True)
        parent = os.getpid()
        # Stop signals stay blocked in tfwrap until it exits: one arriving while tfwrap
        # cleans up a lock must not kill it halfway. The child gets the mask it had.
        self._mask = signal.pthread_sigmask(signal.SIG_BLOCK, _BLOCKED) - _BLOCKED
        hand_over = _foreground(self.tty)
        pid = os.fork()
        if pid == 0:  # the child: only async-signal-safe-ish steps, then exec
            try:
                child_setup(parent, libc)
                if hand_over and self.tty is not None:
                    with contextlib.suppress(OSError):
                        os.tcsetpgrp(self.tty, os.getpid())
                if stdio is not None:
                    for target, fd in enumerate(stdio):
                        os.dup2(fd, target)
                if cwd is not None:
                    os.chdir(cwd)
                if before_exec is not None:
                    before_exec()
                signal.pthread_sigmask(signal.SIG_SETMASK, self._mask)
                os.execve(real, [real, *argv], env)
            finally:
                os._exit(127)
        self.pid = pid
        self.status: int | None = None
        if started is not None:
            started.child = self
        with contextlib.suppress(OSError):
            os.setpgid(pid, pid)  # also here: whichever runs first wins the race
        if hand_over and self.tty is not None:
            with contextlib.suppress(OSError):
                os.tcsetpgrp(self.tty, pid)
        self.started = time.time()
        self.relayed: int | None = None  # the signal tfwrap was stopped by, if any
        self.stopped_by: int | None = None  # the job-control signal Terraform is stopped by
        self.killed_tree = False

    def wait(
        self,
        grace: float,
        tick: float = 0.5,
        on_sigchld: Callable[[], None] | None = None,
        on_tick: Callable[[], None] | None = None,
    ) -> int:
        """Wait for Terraform, relaying the first stop signal; returns the child's status.
        ``on_sigchld`` runs when any child of tfwrap changed state (the keeper may have died);
        ``on_tick`` at least every ``tick`` seconds until a stop signal (the takeover watch)."""
        deadline: float | None = None
        try:
            while True:
                status = self._reap()
                if status is not None:
                    self.status = status
                    if self.relayed is not None or status > 128:
                        self._kill_leftovers()
                    return status
                timeout = tick if deadline is None else max(0.0, min(tick, deadline - time.monotonic()))
                info = signal.sigtimedwait(_BLOCKED, timeout)
                signo = info.si_signo if info is not None else None
                if signo in STOP_SIGNALS and self.relayed is None:
                    self.relayed = signo
                    self._signal_group(signal.SIGINT, leader_only=True)  # exactly one interrupt
                    if self.stopped_by is not None:  # a stopped job must wake to stop (as bash's kill)
                        self._signal_group(signal.SIGCONT)
                    deadline = time.monotonic() + grace
                elif signo in JOB_SIGNALS:  # kill -TSTP of tfwrap: stop the job, Terraform first
                    self._signal_group(signo)
                elif signo == signal.SIGCONT:
                    self._resume()
                elif signo == signal.SIGCHLD and on_sigchld is not None:
                    on_sigchld()
                if on_tick is not None and self.relayed is None:
                    on_tick()
                if deadline is not None and time.monotonic() >= deadline:
                    self.kill_tree()
                    deadline = None
        finally:
            self._restore_terminal()
            # Job-control signals are ours to take again (Ctrl-Z between migration steps);
            # stop signals stay blocked (see __init__).
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _JOB_CONTROL)

    def final_status(self) -> int:
        """Terraform's status, waiting for it if it still runs (after a failure of tfwrap)."""
        while self.status is None:
            try:
                _, status = os.waitpid(self.pid, 0)
            except ChildProcessError:
                return self._lost_status()
            if not os.WIFSTOPPED(status):
                self.status = os.waitstatus_to_exitcode(status)
                if self.status < 0:
                    self.status = 128 - self.status
        return self.status

    def _reap(self) -> int | None:
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG | os.WUNTRACED)
        except ChildProcessError:
            return self._lost_status()
        if pid == 0:
            return None
        if os.WIFSTOPPED(status):
            if os.WSTOPSIG(status) in JOB_SIGNALS:  # SIGSTOP is not job control: left alone
                self.stopped_by = os.WSTOPSIG(status)
                self._stop_with_terraform(self.stopped_by)
            return None
        if os.WIFSIGNALED(status):
            return 128 + os.WTERMSIG(status)
        return os.WEXITSTATUS(status)

    def _lost_status(self) -> int:
        """Terraform was reaped behind tfwrap's back: its status is lost. Never 0 (a pipeline
        would take an unknown result for success): the internal-error code, said once."""
        from tfwrap import exitcodes
        from tfwrap.output import say

        if self.status is None:
            self.status = exitcodes.INTERNAL
            say(
                f"Terraform's exit status is unknown (pid {self.pid} was reaped by another "
                f"process); exiting {self.status}: check what the run did before relying on it"
            )
        return self.status

    def _stop_with_terraform(self, signo: int) -> None:
        """Terraform's job stopped: stop tfwrap with the same signal, so the shell sees the
        job stopped; once continued (``fg``/``bg``), continue Terraform."""
        self._restore_terminal()
        while signal.sigtimedwait([signal.SIGCONT], 0) is not None:  # a stop discards a pending CONT
            pass
        os.kill(os.getpid(), signo)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [signo])  # delivered here: tfwrap stops
        signal.pthread_sigmask(signal.SIG_BLOCK, [signo])
        # In an orphaned process group the kernel discards the stop: no SIGCONT follows, and
        # Terraform stays stopped until tfwrap is continued (resuming it now would spin).
        if signal.sigtimedwait([signal.SIGCONT], 0) is not None:
            self._resume()

    def _resume(self) -> None:
        """tfwrap was continued: Terraform gets the terminal if tfwrap has it (``fg``, not
        ``bg``, which must leave the terminal to the shell), and continues if it stopped."""
        if _foreground(self.tty) and self.tty is not None:
            with contextlib.suppress(OSError):
                os.tcsetpgrp(self.tty, self.pid)
        if self.stopped_by is not None:
            self.stopped_by = None
            self._signal_group(signal.SIGCONT)

    def _signal_group(self, signo: int, leader_only: bool = False) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if leader_only:
                os.kill(self.pid, signo)
            else:
                os.killpg(self.pid, signo)

    def _restore_terminal(self) -> None:
        """Take the terminal back only from Terraform's group (never from the shell after
        ``bg``): tcgetpgrp still names Terraform's group after it exited."""
        if self.tty is None:
            return
        with contextlib.suppress(OSError):
            if os.tcgetpgrp(self.tty) == self.pid:
                os.tcsetpgrp(self.tty, os.getpgrp())  # SIGTTOU is blocked here

    def _kill_leftovers(self) -> None:
        """A stopped or killed Terraform can orphan provisioner processes (its local-exec
        shell's children): they are still in its process group, so they go with it."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)

    def kill_tree(self) -> None:
        """Kill Terraform and everything it started (provisioners included)."""
        self.killed_tree = True
        kill_tree(self.pid)


def kill_tree(pid: int) -> None:
    """Kill a process, its descendants and its process group (named by its pid)."""
    import psutil

    try:
        victims = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        victims = []
    for proc in victims:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
