"""A supervised run: Terraform as a child, its lock kept alive and, whatever happens, its
own lock (and never anyone else's) removed when it is gone. Used for commands that take
the state lock on an S3 backend (``commands.Command.takes_lock``).
"""

from __future__ import annotations

import os
import sys
import time

from tfwrap import exitcodes
from tfwrap.commands import Command
from tfwrap.supervise.child import Child, pending_stop_signal
from tfwrap.supervise.lockevents import LogPlan, LogWatcher

TYPE_CHECKING = False  # only what starting Terraform needs is imported before it starts
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from tfwrap.checks.policy import Policy
    from tfwrap.lock.heartbeat import Heartbeat, Locks

MAX_LOCK_RETRIES = 5  # a lock failure retrying cannot fix (AccessDenied, KMS) stops here


def supervise(real: str, command: Command, policy: Policy) -> int:
    """Run Terraform under supervision; returns the exit status for tfwrap to exit with."""
    # A private directory for Terraform's log: mkdir fails on an existing name (no races).
    base = os.environ.get("XDG_RUNTIME_DIR") or os.environ.get("TMPDIR") or "/tmp"  # noqa: S108
    private = os.path.join(base, f"tfwrap-{os.getpid()}-{time.time_ns()}")
    os.mkdir(private, 0o700)
    try:
        return _attempts(real, command, policy, private)
    finally:
        for name in os.listdir(private):
            os.remove(os.path.join(private, name))
        os.rmdir(private)


def _attempts(real: str, command: Command, policy: Policy, private: str) -> int:
    argv = list(command.argv)
    budget = -1.0  # read from the arguments only if a run fails at the lock
    started = time.monotonic()
    retries = 0
    orphan_retried = False
    attempt = 0
    while True:
        attempt += 1
        status, relayed, heartbeat, cleaned = _one_run(real, argv, command, policy, private, attempt)
        if relayed is not None:
            return exitcodes.from_signal(relayed)
        if heartbeat is None:
            return status
        # Retry only a run that failed at lock acquisition: Terraform tried, never held it,
        # so it changed nothing.
        failed_at_lock = status == 1 and bool(heartbeat.attempted) and not heartbeat.locked
        if not failed_at_lock or heartbeat.locks is None:
            return status
        from tfwrap.lock.cleanup import SELF_ORPHAN
        from tfwrap.supervise.lockargs import lock_timeout, with_lock_timeout

        if budget < 0:
            budget = lock_timeout(command.effective_args())
        left = budget - (time.monotonic() - started)
        if cleaned == SELF_ORPHAN and not orphan_retried:
            # Issue 7 §3 (OpenTofu #4405): the SDK retried a lock write whose first try had
            # succeeded, and the retry was refused by that very lock. Once, even without
            # -lock-timeout: that run changed nothing.
            orphan_retried = True
            _say(
                "running Terraform once more: its lock request had failed only against its own "
                "lock (an SDK retry of a write that had succeeded); the failed run changed nothing"
            )
            if budget > 0:
                argv = with_lock_timeout(command, argv, max(left, 1))
            continue
        if left < 1 or retries >= MAX_LOCK_RETRIES:
            return status
        retries += 1
        _say(
            "Terraform could not take the state lock and gave up before -lock-timeout ran out "
            "(it does when the holder releases the lock as Terraform reads it); "
            f"retry {retries} of {MAX_LOCK_RETRIES} within the {left:.0f} s left"
        )
        stopped = _wait_until_free(heartbeat.locks, started + budget)
        if stopped is not None:
            return exitcodes.from_signal(stopped)
        left = budget - (time.monotonic() - started)
        if left < 1:
            return status
        # What is left, never the whole timeout again: the run's total wait stays within
        # what the user asked (issue 7 §6).
        argv = with_lock_timeout(command, argv, left)


def _one_run(  # noqa: PLR0917 - private, one caller
    real: str, argv: list[str], command: Command, policy: Policy, private: str, attempt: int
) -> tuple[int, int | None, Heartbeat | None, str]:
    """One Terraform run. Once Terraform has started, its status is what tfwrap returns:
    a failure in tfwrap's own bookkeeping is reported, never turned into another code."""
    plan = LogPlan(dict(os.environ), private, attempt)  # each attempt its own log (issue 7 §6)
    child = Child(real, argv, plan.child_env)
    watcher = LogWatcher(plan)
    heartbeat: Heartbeat | None = None
    cleaned = ""
    try:
        from tfwrap.lock.heartbeat import Heartbeat  # after the start: Terraform does not wait

        heartbeat = Heartbeat(
            watcher,
            lambda: _connect(command),
            interval=policy.heartbeat_seconds,
            lease_seconds=policy.lease_seconds,
            terraform_pid=child.pid,
        )
        heartbeat.start()
    except Exception as exc:  # noqa: BLE001 - Terraform runs on; the lock is Terraform's alone
        _say(f"heartbeat disabled ({type(exc).__name__}: {exc})")
        heartbeat = None
    status = child.wait(grace=policy.grace_seconds)
    if heartbeat is None:
        watcher.poll()  # the user's log lines still reach their file or stderr
    else:
        try:
            heartbeat.stop()
            if heartbeat.needs_cleanup:
                heartbeat.ready.wait(10)
                if heartbeat.locks is None and heartbeat.connect_error:
                    _connect_again(heartbeat, command)  # what failed at start may work now
                from tfwrap.lock.cleanup import clean_up

                cleaned = clean_up(heartbeat, status)
        except Exception as exc:  # noqa: BLE001 - same: report, keep Terraform's status
            _say(f"lock bookkeeping failed after Terraform exited ({type(exc).__name__}: {exc})")
            heartbeat = None
    return status, child.relayed, heartbeat, cleaned


def _connect(command: Command) -> Locks | None:
    """Clients for this state's lock (after the child started: imports cost ~250 ms)."""
    from tfwrap.aws import clients
    from tfwrap.backend import config

    backend = config.load(command) if command.name == "init" else config.load_initialised(command)
    if backend is None or not backend.is_s3:
        return None
    session = clients.session(backend)
    # The heartbeat backs off on its own (retries off: it must see every failure); cleanup
    # gets clients that retry, so one 503 does not leave a lock behind (issue 7 §9).
    locks = _locks(backend, session, retries=False, cleanup=lambda: _locks(backend, session, retries=True))
    from tfwrap.checks import store

    if store.heartbeat_unsafe(backend):
        # Issue 9: an If-Match the store ignores could bring back a released lock;
        # own-lock cleanup still runs.
        locks.heartbeat_off = "if-match-unreliable"
        _say("heartbeat disabled for this endpoint because if-match-unreliable")
    return locks


def _connect_again(heartbeat: Heartbeat, command: Command) -> None:
    from tfwrap.lock.heartbeat import describe_failure

    try:
        heartbeat.locks = _connect(command)
    except Exception as exc:  # noqa: BLE001 - _clean_up says why, with the lock ID
        heartbeat.connect_error = describe_failure(exc)


def _locks(backend: Any, session: Any, retries: bool, cleanup: Callable[[], Locks] | None = None) -> Locks:
    from tfwrap.aws import clients
    from tfwrap.lock.heartbeat import Locks
    from tfwrap.lock.lockfile import DynamoLock, S3LockFile

    s3 = S3LockFile(clients.client(backend, "s3", session, retries=retries), backend)
    dynamo = None
    if backend.dynamodb_table:
        dynamo = DynamoLock(clients.client(backend, "dynamodb", session, retries=retries), backend)
    return Locks(s3, dynamo, cleanup)


def _wait_until_free(locks: Locks, deadline: float) -> int | None:
    """Wait for the holder's lock to go; returns a stop signal if one arrives meanwhile."""
    while time.monotonic() < deadline:
        try:
            if locks.s3.read() is None:
                return None
        except Exception:  # noqa: BLE001 - the retry itself will report
            return None
        stopped = pending_stop_signal(0.25)
        if stopped is not None:
            return stopped
    return None


def _say(message: str) -> None:
    sys.stderr.write(f"tfwrap: {message}\n")
    sys.stderr.flush()
