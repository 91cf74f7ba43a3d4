"""A supervised run: Terraform as a child, its lock kept alive and, whatever happens, its
own lock (and never anyone else's) removed when it is gone. Used for commands that take
the state lock on an S3 backend (``commands.Command.takes_lock``).
Why: docs/decisions/104-housekeeping-never-fails-a-run.md.
"""

from __future__ import annotations

import os
import time

from tfwrap import exitcodes, fs
from tfwrap.output import say
from tfwrap.supervise.keeper import Keeper, Report, end_on_crash
from tfwrap.supervise.lockevents import LogPlan, LogWatcher
from tfwrap.terraform import handoff
from tfwrap.terraform.child import Child, Started, pending_stop_signal
from tfwrap.terraform.commands import Command

TYPE_CHECKING = False  # only what starting Terraform needs is imported before it starts
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from tfwrap.findings.policy import Policy
    from tfwrap.lock.soak import SoakHold
    from tfwrap.lock.takeover import TookOver
    from tfwrap.supervise.heartbeat import Heartbeat, Locks
    from tfwrap.supervise.stale import Watch

MAX_LOCK_RETRIES = 5  # a lock failure retrying cannot fix (AccessDenied, KMS) stops here


def supervise(real: str, command: Command, policy: Policy) -> int:
    """Run Terraform under supervision; returns the exit status for tfwrap to exit with."""
    private = fs.private_dir()
    if private is None:  # never a reason to block a run
        say(
            "no private directory for Terraform's log (XDG_RUNTIME_DIR, TMPDIR and /tmp refused one): "
            "running Terraform without a heartbeat; set TMPDIR to a writable directory"
        )
        return handoff.exec_terraform(real, command)
    if policy.state_backup:  # opt-in, for stores without versioning (docs/state-recovery.md)
        from tfwrap.state import backup

        backup.before_apply(command)
    started = Started()
    hold = _soak_hold(command, policy)  # before Terraform: a refusal leaves it unstarted
    try:
        return _attempts(real, command, policy, private, started)
    except Exception as exc:
        # Once Terraform has started, its status is tfwrap's: a failure of tfwrap after
        # that is reported, and Terraform is never run again because of it.
        child = started.child
        if child is None:
            raise
        say(f"internal error after Terraform started ({type(exc).__name__}: {exc}); its exit status stands")
        return child.final_status()
    finally:
        if hold is not None:
            hold.release()
        fs.remove_tree(private)


def _soak_hold(command: Command, policy: Policy) -> SoakHold | None:
    """During a migration's soak: the DynamoDB item a straggler would take, held for this run
    (docs/decisions/112-the-soak-hold.md). ``supervise`` runs only commands that lock."""
    from tfwrap.lock import soak
    from tfwrap.terraform.lockargs import lock_timeout

    found = soak.table(command, policy.cache_ttl_seconds)
    if found is None:
        return None
    return soak.take(*found, timeout=lock_timeout(command.effective_args()))


def _attempts(real: str, command: Command, policy: Policy, private: str, started_child: Started) -> int:  # noqa: PLR0912 - one retry loop, one branch per documented case
    argv = list(command.argv)
    budget = -1.0  # read from the arguments only if a run fails at the lock
    started = time.monotonic()
    retries = 0
    orphan_retried = False
    attempt = 0
    took_over: TookOver | None = None
    while True:
        attempt += 1
        status, relayed, heartbeat, watch = _one_run(
            real, argv, command, policy, private, attempt, took_over=took_over, started=started_child
        )
        if relayed is not None:
            return exitcodes.from_signal(relayed)
        if heartbeat is None:
            return status
        raced = watch is not None and _met_its_own_lock(watch, status, heartbeat)
        if raced is None:
            return status
        # Retry only a run that failed at lock acquisition: Terraform tried, never held it,
        # so it changed nothing (or held it only until tfwrap's interrupt stopped it, before
        # its apply phase).
        failed_at_lock = raced or (status == 1 and bool(heartbeat.attempted) and not heartbeat.locked)
        if not failed_at_lock or heartbeat.locks is None:
            return status
        from tfwrap.supervise.cleanup import SELF_ORPHAN
        from tfwrap.terraform.lockargs import lock_timeout, with_lock_timeout

        if budget < 0:
            budget = lock_timeout(command.effective_args())
        left = budget - (time.monotonic() - started)
        if getattr(heartbeat, "cleaned", "") == SELF_ORPHAN and not orphan_retried:
            # The SDK retried a lock write whose first try had succeeded, and the retry was
            # refused by that very lock (docs/decisions/108-the-retry-orphan.md). Once, even
            # without -lock-timeout: that run changed nothing.
            orphan_retried = True
            say(
                "running Terraform once more: its lock request had failed only against its own "
                "lock (an SDK retry of a write that had succeeded); the failed run changed nothing"
            )
            if budget > 0:
                argv = with_lock_timeout(command, argv, max(left, 1))
            continue
        if watch is not None and watch.released:
            # tfwrap interrupted Terraform's wait because the lock was released: try again
            # at once, within what is left of the user's timeout (never counted as a failure).
            if left < 1:
                return status
            # Terraform's error box above is from the wait tfwrap stopped: one line says so
            # (docs/decisions/023-handoff.md); its stderr itself is never filtered.
            say(
                "the state lock was released while Terraform waited for it: tfwrap stopped the wait "
                f"(the lock error above is from it) and runs Terraform again at once, {left:.0f} s of "
                "-lock-timeout left"
            )
            argv = with_lock_timeout(command, argv, left)
            continue
        if retries >= MAX_LOCK_RETRIES:
            return status
        # Say who holds the lock; take a stale one over when the policy allows (without
        # -lock-timeout, one attempt after a takeover: never a second takeover), as
        # docs/decisions/106-stale-locks-liveness-before-age.md records.
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
            argv = with_lock_timeout(command, argv, left) if left >= 1 else argv
            continue
        if left < 1:
            return status
        retries += 1
        if after == stale.RETRY:  # stale.RETRY_SAID: the takeover's loss was said already
            say(
                f"Terraform stopped waiting for the state lock with {left:.0f} s of -lock-timeout "
                f"left; running it again (retry {retries} of {MAX_LOCK_RETRIES})"
            )
        stopped = pending_stop_signal(0)
        if stopped is not None:
            return exitcodes.from_signal(stopped)
        # The new run waits within what is left (never the whole timeout again), and its
        # watch judges whatever lock is there then: a new holder that died is taken over too.
        argv = with_lock_timeout(command, argv, left)


def _met_its_own_lock(watch: Watch, status: int, report: Report) -> bool | None:
    """Whether tfwrap's handoff interrupt reached a Terraform that had just taken the lock
    itself (docs/decisions/111-a-handoff-that-met-terraforms-own-lock.md).

    True when Terraform stopped before its apply phase (it changed nothing: a lock retry),
    None when it stopped during it (said; its status stands), False for any other run.
    """
    if not watch.released or status == 0 or not report.locked or report.locked != report.attempted:
        return False
    seen = watch.heartbeat
    seen.refresh()  # the lines Terraform wrote as it stopped
    if seen.applying:
        say(
            "Terraform took the state lock just as tfwrap interrupted its wait for it, and stopped "
            "during its apply: its exit status stands; run `terraform plan`, then apply again"
        )
        return None
    say(
        "Terraform took the state lock just as tfwrap interrupted its wait for it, and stopped "
        "before its apply phase (nothing changed); running it again"
    )
    return True


def _one_run(  # noqa: PLR0917 - private, one caller
    real: str,
    argv: list[str],
    command: Command,
    policy: Policy,
    private: str,
    attempt: int,
    *,
    took_over: TookOver | None,
    started: Started,
) -> tuple[int, int | None, Report | None, Watch | None]:
    """One Terraform run. Once Terraform has started, its status is what tfwrap returns:
    a failure in tfwrap's own bookkeeping is reported, never turned into another code.

    The heartbeat runs in the keeper, a process outside the shell's job (keeper.py): it
    renews the lock while Terraform is stopped with the job, and outlives a killed tfwrap.
    """
    plan = LogPlan(dict(os.environ), private, attempt)  # each attempt its own log

    def start(terraform_pid: int) -> Heartbeat:  # in the keeper
        from tfwrap.supervise.heartbeat import Heartbeat  # after the start: Terraform does not wait

        heartbeat = Heartbeat(
            LogWatcher(plan),
            lambda: _connect(command),
            interval=policy.heartbeat_seconds,
            lease_seconds=policy.lease_seconds,
            terraform_pid=terraform_pid,
        )
        heartbeat.took_over = took_over
        heartbeat.on_crash = end_on_crash
        heartbeat.start()
        return heartbeat

    def finish(heartbeat: Heartbeat | None, status: int) -> None:  # in the keeper
        if heartbeat is None:
            return
        try:
            heartbeat.stop()
            if heartbeat.needs_cleanup:
                heartbeat.ready.wait(10)
                if heartbeat.locks is None and heartbeat.connect_error:
                    _connect_again(heartbeat, command)  # what failed at start may work now
                from tfwrap.supervise.cleanup import clean_up

                # A public field: the keeper reports it to tfwrap (the retry orphan)
                heartbeat.cleaned = clean_up(heartbeat, status)
        except Exception as exc:  # noqa: BLE001 - same: report, keep Terraform's status
            say(f"lock bookkeeping failed after Terraform exited ({type(exc).__name__}: {exc})")

    keeper = Keeper.spawn(start, finish, grace=policy.grace_seconds)
    try:
        child = Child(
            real, argv, plan.child_env, before_exec=keeper.before_exec if keeper else None, started=started
        )
    except BaseException:
        if keeper is not None:
            keeper.abandon()
        raise
    # tfwrap reads Terraform's log itself (the heartbeat is in the keeper) to watch a lock
    # Terraform waits for: a released one is retried at once, a stale one taken over (policy).
    from tfwrap.supervise.stale import Seen, Watch

    watch: Watch | None = Watch(
        Seen(plan, lambda: _connect(command)), child.pid, take_over=policy.stale_locks == "take-over"
    )

    def replace() -> None:
        assert keeper is not None  # noqa: S101 - only passed when there is one
        lost = keeper.lost
        keeper.replace_if_dead(child.pid)
        if keeper.lost and not lost:
            _mark_renewals_stopped(command, child.pid)

    status = child.wait(
        grace=policy.grace_seconds,
        tick=0.2,
        on_sigchld=replace if keeper is not None else None,
        on_tick=watch,
    )
    if keeper is None:
        LogWatcher(plan).poll()  # the user's log lines still reach their file or stderr
        return status, child.relayed, None, watch
    return status, child.relayed, keeper.finish(status, lambda: _connect(command)), watch


def _connect(command: Command) -> Locks | None:
    """Clients for this state's lock (after the child started: imports cost ~250 ms)."""
    from tfwrap.aws import clients
    from tfwrap.backend import config

    backend = config.load(command) if command.name == "init" else config.load_initialised(command)
    if backend is None or not backend.is_s3:
        return None
    session = clients.session(backend)
    # The heartbeat backs off on its own (retries off: it must see every failure); cleanup
    # gets clients that retry, so one 503 does not leave a lock behind.
    locks = _locks(backend, session, retries=False, cleanup=lambda: _locks(backend, session, retries=True))
    from tfwrap.checks import store

    facts = store.cached(backend) or {}
    # An If-Match the store ignores, or lets several writers pass at once, could bring back a
    # released lock or write over the next holder's: no rewrite, no takeover there (the
    # probe's findings). Own-lock cleanup still runs.
    locks.heartbeat_off = store.heartbeat_off(facts)
    locks.takeover_off = store.takeover_off(facts)
    if locks.heartbeat_off:
        say(f"heartbeat disabled for this endpoint because {locks.heartbeat_off}")
    return locks


def _mark_renewals_stopped(command: Command, terraform_pid: int) -> None:
    """No keeper any more: mark this run's lock so that no waiter judges it stale by age
    (it would be taken over while Terraform writes). Only our own heartbeat line is marked,
    conditionally on the object read."""
    from tfwrap.aws.errors import error_code
    from tfwrap.lock import info as lockinfo

    try:
        locks = _connect(command)
        current = locks.s3.read() if locks is not None and not locks.heartbeat_off else None
        holder = lockinfo.parse(current.info) if current is not None else None
        if current is None or holder is None:
            return
        if holder.terraform_pid != terraform_pid or holder.boot_id != lockinfo.boot_id():
            return  # not this run's heartbeat (tfwrap_pid is the keeper's, gone now)
        locks.s3.rewrite_info(current, lockinfo.with_renewals_stopped(current.info))  # type: ignore[union-attr]
    except Exception as exc:  # noqa: BLE001 - said; Terraform runs on
        say(f"could not mark the lock as no longer renewed ({error_code(exc)})")


def _connect_again(heartbeat: Heartbeat, command: Command) -> None:
    from tfwrap.supervise.heartbeat import describe_failure

    try:
        heartbeat.locks = _connect(command)
    except Exception as exc:  # noqa: BLE001 - _clean_up says why, with the lock ID
        heartbeat.connect_error = describe_failure(exc)


def _locks(backend: Any, session: Any, retries: bool, cleanup: Callable[[], Locks] | None = None) -> Locks:
    from tfwrap.aws import clients
    from tfwrap.lock.lockfile import DynamoLock, S3LockFile
    from tfwrap.supervise.heartbeat import Locks

    s3 = S3LockFile(clients.client(backend, "s3", session, retries=retries), backend)
    dynamo = None
    if backend.dynamodb_table:
        dynamo = DynamoLock(clients.client(backend, "dynamodb", session, retries=retries), backend)
    return Locks(s3, dynamo, cleanup)
