"""A supervised run: Terraform as a child, its lock kept alive and, whatever happens, its
own lock (and never anyone else's) removed when it is gone. Used for commands that take
the state lock on an S3 backend (``commands.Command.takes_lock``).
"""

from __future__ import annotations

import os
import sys
import time

from tfwrap import exitcodes, handoff
from tfwrap.commands import Command
from tfwrap.supervise import private as private_dir
from tfwrap.supervise.child import Child, pending_stop_signal
from tfwrap.supervise.keeper import STATUS_UNKNOWN, Keeper, Report
from tfwrap.supervise.lockevents import LogPlan, LogWatcher

TYPE_CHECKING = False  # only what starting Terraform needs is imported before it starts
if TYPE_CHECKING:
    from tfwrap.checks.policy import Policy
    from tfwrap.lock.heartbeat import Heartbeat, Locks

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
    private = private_dir.make()
    if private is None:  # never a reason to block a run (issue 7 §6)
        _say(
            "no private directory for Terraform's log (XDG_RUNTIME_DIR, TMPDIR and /tmp refused one): "
            "running Terraform without a heartbeat; set TMPDIR to a writable directory"
        )
        return handoff.exec_terraform(real, command)
    try:
        return _attempts(real, command, policy, private)
    except Exception as exc:
        # Once Terraform has started, its status is tfwrap's: a failure of tfwrap after
        # that is reported, and Terraform is never run again because of it (issue 7 §6).
        child = Child.latest
        if child is None:
            raise
        _say(f"internal error after Terraform started ({type(exc).__name__}: {exc}); its exit status stands")
        return child.final_status()
    finally:
        private_dir.remove(private)


def _attempts(real: str, command: Command, policy: Policy, private: str) -> int:
    argv = list(command.argv)
    budget = -1.0  # read from the arguments only if a run fails at the lock
    started = time.monotonic()
    retries = 0
    while True:
        status, relayed, heartbeat = _one_run(real, argv, command, policy, private)
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
        if not failed_at_lock or left < 1 or heartbeat.locks is None or retries >= MAX_LOCK_RETRIES:
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
    real: str, argv: list[str], command: Command, policy: Policy, private: str
) -> tuple[int, int | None, Report | None]:
    """One Terraform run. Once Terraform has started, its status is what tfwrap returns:
    a failure in tfwrap's own bookkeeping is reported, never turned into another code.

    The heartbeat runs in the keeper, a process outside the shell's job (keeper.py): it
    renews the lock while Terraform is stopped with the job, and outlives a killed tfwrap.
    """
    plan = LogPlan(dict(os.environ), private)

    def start(terraform_pid: int) -> Heartbeat:  # in the keeper
        from tfwrap.lock.heartbeat import Heartbeat  # after the start: Terraform does not wait

        heartbeat = Heartbeat(
            LogWatcher(plan),
            lambda: _connect(command),
            interval=policy.heartbeat_seconds,
            lease_seconds=policy.lease_seconds,
            terraform_pid=terraform_pid,
        )
        heartbeat.start()
        return heartbeat

    def finish(heartbeat: Heartbeat | None, status: int) -> None:  # in the keeper
        if heartbeat is None:
            return
        try:
            heartbeat.stop()
            if heartbeat.needs_cleanup:
                heartbeat.ready.wait(10)
                _clean_up(heartbeat, status)
        except Exception as exc:  # noqa: BLE001 - same: report, keep Terraform's status
            _say(f"lock bookkeeping failed after Terraform exited ({type(exc).__name__}: {exc})")

    keeper = Keeper.spawn(start, finish, grace=policy.grace_seconds)
    try:
        child = Child(real, argv, plan.child_env, before_exec=keeper.before_exec if keeper else None)
    except BaseException:
        if keeper is not None:
            keeper.abandon()
        raise
    replace = (lambda: keeper.replace_if_dead(child.pid)) if keeper is not None else None
    status = child.wait(grace=policy.grace_seconds, on_sigchld=replace)
    heartbeat = keeper.finish(status, lambda: _connect(command)) if keeper is not None else None
    return status, child.relayed, heartbeat


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
    if status == STATUS_UNKNOWN:
        return "status unknown: tfwrap was killed"
    return f"killed by signal {status - 128}" if status > 128 else f"exit {status}"


def _say(message: str) -> None:
    sys.stderr.write(f"tfwrap: {message}\n")
    sys.stderr.flush()
