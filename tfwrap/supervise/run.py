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
    from tfwrap.checks.policy import Policy
    from tfwrap.lock.heartbeat import Heartbeat, Locks
    from tfwrap.lock.takeover import TookOver
    from tfwrap.supervise.stale import Watch

MAX_LOCK_RETRIES = 5  # a lock failure retrying cannot fix (AccessDenied, KMS) stops here
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def lock_timeout(args: list[str]) -> float:
    """Seconds of ``-lock-timeout`` (a Go duration such as ``2m30s``); 0 when absent."""
    import re  # only when a run failed at the lock: not before Terraform starts

    value = ""
    for arg in args:
        if arg.startswith(("-lock-timeout=", "--lock-timeout=")):
            value = arg.split("=", 1)[1]
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", value)
    if not parts or "".join(n + u for n, u in parts) != value:
        return 0.0
    return sum(float(n) * _UNITS[u] for n, u in parts)


def _with_lock_timeout(argv: list[str], seconds: float) -> list[str]:
    out = []
    for arg in argv:
        if arg.startswith(("-lock-timeout=", "--lock-timeout=")):
            arg = f"-lock-timeout={max(1, int(seconds))}s"  # noqa: PLW2901 - rewritten on purpose
        out.append(arg)
    return out


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
    took_over: TookOver | None = None
    while True:
        status, relayed, heartbeat, watch = _one_run(
            real, argv, command, policy, private, took_over=took_over
        )
        if relayed is not None:
            return exitcodes.from_signal(relayed)
        if heartbeat is None:
            return status
        if budget < 0 and heartbeat.attempted and not heartbeat.locked:
            budget = lock_timeout(command.effective_args())
        left = budget - (time.monotonic() - started)
        # Retry only a run that failed at lock acquisition: Terraform tried, never held it,
        # so it changed nothing (issue 3: the 412-then-404 race in statemgr.LockWithContext).
        failed_at_lock = status == 1 and heartbeat.attempted and not heartbeat.locked
        if not failed_at_lock or heartbeat.locks is None or retries >= MAX_LOCK_RETRIES:
            return status
        # Issue 8: say who holds the lock; take a stale one over when the policy allows
        # (without -lock-timeout, one attempt after a takeover: never a second takeover).
        from tfwrap.supervise import stale

        after = stale.after_failed_lock(
            heartbeat.locks,
            policy.stale_locks,
            watch,
            command.chdir or ".",
            out_of_time=left < 1,
            may_take=took_over is None or left >= 1,
        )
        if after == stale.GIVE_UP:
            return status
        if not isinstance(after, str):
            took_over, retries = after, retries + 1
            argv = _with_lock_timeout(argv, left) if left >= 1 else argv
            continue
        if left < 1:
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
        argv = _with_lock_timeout(argv, left)


def _one_run(
    real: str,
    argv: list[str],
    command: Command,
    policy: Policy,
    private: str,
    *,
    took_over: TookOver | None,
) -> tuple[int, int | None, Heartbeat | None, Watch | None]:
    """One Terraform run. Once Terraform has started, its status is what tfwrap returns:
    a failure in tfwrap's own bookkeeping is reported, never turned into another code."""
    plan = LogPlan(dict(os.environ), private)
    child = Child(real, argv, plan.child_env)
    heartbeat: Heartbeat | None = None
    watch: Watch | None = None
    try:
        from tfwrap.lock.heartbeat import Heartbeat  # after the start: Terraform does not wait

        heartbeat = Heartbeat(
            LogWatcher(plan),
            lambda: _connect(command),
            interval=policy.heartbeat_seconds,
            lease_seconds=policy.lease_seconds,
            terraform_pid=child.pid,
        )
        heartbeat.took_over = took_over
        heartbeat.start()
        if policy.stale_locks == "take-over":
            from tfwrap.supervise.stale import Watch

            watch = Watch(heartbeat, child.pid)
    except Exception as exc:  # noqa: BLE001 - Terraform runs on; the lock is Terraform's alone
        _say(f"heartbeat disabled ({type(exc).__name__}: {exc})")
        heartbeat = None
    status = child.wait(grace=policy.grace_seconds, on_tick=watch, tick=0.2 if watch else 0.5)
    if heartbeat is not None:
        try:
            heartbeat.stop()
            if heartbeat.needs_cleanup:
                heartbeat.ready.wait(10)
                _clean_up(heartbeat, status)
        except Exception as exc:  # noqa: BLE001 - same: report, keep Terraform's status
            _say(f"lock bookkeeping failed after Terraform exited ({type(exc).__name__}: {exc})")
            heartbeat = None
    return status, child.relayed, heartbeat, watch


def _connect(command: Command) -> Locks | None:
    """Clients for this state's lock (after the child started: imports cost ~250 ms)."""
    from tfwrap.aws import clients
    from tfwrap.backend import config
    from tfwrap.lock.heartbeat import Locks
    from tfwrap.lock.lockfile import DynamoLock, S3LockFile

    backend = config.load(command) if command.name == "init" else config.load_initialised(command)
    if backend is None or not backend.is_s3:
        return None
    session = clients.session(backend)
    s3 = S3LockFile(clients.client(backend, "s3", session), backend)
    dynamo = None
    if backend.dynamodb_table:
        dynamo = DynamoLock(clients.client(backend, "dynamodb", session), backend)
    return Locks(s3, dynamo)


def _clean_up(heartbeat: Heartbeat, status: int) -> None:
    """Remove the lock our child took and left behind; never anyone else's."""
    locks = heartbeat.locks
    if locks is None:
        return
    if heartbeat.locked and not heartbeat.unlocked:
        ours, why = heartbeat.locked, f"Terraform exited ({_describe(status)}) still holding its lock"
    elif heartbeat.attempted and not heartbeat.locked:
        # The retry orphan (OpenTofu #4405): the SDK retried a PutObject whose first try
        # had succeeded; the retry got 412 against the child's own lock.
        ours, why = heartbeat.attempted, "Terraform's lock request was refused by its own earlier attempt"
    else:
        return
    try:
        removed_s3 = locks.s3.delete_if_held_by(ours) is not None
        removed_ddb = locks.dynamo.delete_if_held_by(ours) if locks.dynamo is not None else False
    except Exception as exc:  # noqa: BLE001 - say it plainly; the lock ID lets a human finish
        reason = getattr(exc, "response", {}).get("Error", {}).get("Code") or type(exc).__name__
        _say(
            f"could not check whether Terraform left its lock {ours} behind ({reason}); "
            f"`tfwrap lock status` shows it, `tfwrap lock clear --id {ours}` removes it"
        )
        return
    where = " and ".join(w for w, done in (("S3", removed_s3), ("DynamoDB", removed_ddb)) if done)
    if where:
        _say(f"{why}; removed its lock {ours} from {where}")


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


def _describe(status: int) -> str:
    return f"killed by signal {status - 128}" if status > 128 else f"exit {status}"


def _say(message: str) -> None:
    sys.stderr.write(f"tfwrap: {message}\n")
    sys.stderr.flush()
