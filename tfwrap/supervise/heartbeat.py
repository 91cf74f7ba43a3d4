"""The heartbeat: while Terraform holds its lock, keep the lock's ``Info`` current.

A thread follows Terraform's lock events (from its log), annotates the lock within a poll
tick of "Locked", renews it every interval, and stops at "Unlocked" or when a read shows
the lock gone or carrying another ID. Every write is conditional (lockfile.py); every
failure, of the connection or of a renewal, is said, backed off and retried while
Terraform lives, and never changes what Terraform does or returns.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time

from tfwrap import log, testhooks
from tfwrap.aws.errors import error_code
from tfwrap.output import say

# Imported by the supervisor right after Terraform starts: nothing heavy at module level
# (~55 ms of imports here slowed Terraform's own start-up); the thread imports the rest.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from tfwrap.lock.lockfile import DynamoLock, LockObject, S3LockFile
    from tfwrap.supervise.lockevents import LockEvent, LogWatcher

POLL_SECONDS = 0.1  # how often Terraform's log is read: annotation within ~0.1 s of "Locked"
STARTUP_WAIT = 0.5  # at most this long for Terraform's first log line before connecting
# Nor before this long after Terraform's start: a command done by then (a plan on a small
# state, ~100 ms) never pays the ~250 ms of CPU a connection costs
# (docs/decisions/092-heartbeat-connects-after-a-quarter-second.md).
CONNECT_AFTER = 0.25


class Locks:
    """The S3 lock file and (with dual locking) the DynamoDB item of one state.

    ``cleanup`` makes the same with clients that retry: the heartbeat's own clients do not
    (it backs off by itself and must see each failure), cleanup must not stop at one 503.
    """

    def __init__(
        self, s3: S3LockFile, dynamo: DynamoLock | None, cleanup: Callable[[], Locks] | None = None
    ) -> None:
        self.s3 = s3
        self.dynamo = dynamo
        self._cleanup = cleanup
        # Why the heartbeat must not write here (an If-Match the store ignores
        # could bring back a released lock); own-lock cleanup still runs.
        self.heartbeat_off = ""
        # Why no lock may be removed by a judgement here (a DELETE If-Match the store does
        # not honour, or not atomically): a stale lock is reported, never taken over.
        self.takeover_off = ""

    def for_cleanup(self) -> Locks:
        return self._cleanup() if self._cleanup is not None else self


class Heartbeat(threading.Thread):
    """Follows lock events and keeps the heartbeat; ``stop()`` then read the event state."""

    def __init__(
        self,
        watcher: LogWatcher,
        connect: Callable[[], Locks | None],
        interval: float,
        lease_seconds: int,
        terraform_pid: int,
    ) -> None:
        super().__init__(name="tfwrap-heartbeat", daemon=True)
        self.watcher = watcher
        self._connect = connect
        self.interval = interval
        self.lease_seconds = lease_seconds
        self.terraform_pid = terraform_pid
        self.started_at = time.time()
        self._created = time.monotonic()  # just before Terraform's exec (keeper.py)
        self.ci = ""
        self.host = ""
        self.machine_id = ""
        self.attempted: str = ""  # the ID Terraform tried to take
        self.locked: str = ""  # the ID Terraform reported holding
        self.unlocked = False
        self.unlocking = False
        self.mode = ""
        self.locks: Locks | None = None
        self.ready = threading.Event()
        self.annotations = 0
        self._halt = threading.Event()
        self._poll_lock = threading.Lock()
        self._s3_seen: LockObject | None = None
        self._ddb_seen: dict[str, Any] | None = None
        self._next_beat = 0.0
        self._backoff = 0.0
        self._failing = ""  # the cause of the renewals failing now, said once
        self._beating = False
        self.connect_error = ""  # why the backend could not be reached or read, if it could not
        self.cleaned = ""  # what own-lock cleanup did (lock/cleanup.py), reported by the keeper
        self._connect_failures = 0
        self._connects = 0
        self._next_connect = 0.0
        self._said_connect = False
        # Who this holder is (boot id, PID namespace, process start ticks), the stale lock
        # it replaced (set by the supervisor), and self-fencing state
        # (docs/decisions/106-stale-locks-liveness-before-age.md).
        self.took_over: Any = None  # takeover.TookOver | None
        self.machine: tuple[str, str, int, int] = ("", "", 0, 0)
        self._renewed_at = 0.0
        self._fence_said = False
        self.crashed = ""  # why the thread ended on an exception, if it did
        self.on_crash: Callable[[str], None] | None = None
        self._crash_after = _hook_number(testhooks.HEARTBEAT_CRASH_AFTER)

    def stop(self) -> None:
        """Stop beating and read Terraform's last words; never waits for a slow connect.

        A quick command may end before the AWS clients are ready (~250 ms of imports):
        its exit must not wait for them unless there is a lock to clean up.
        """
        self._halt.set()
        if self.ready.is_set():
            self.join(timeout=10)
        with self._poll_lock:
            for event in self.watcher.poll():  # whatever Terraform logged last
                self._on(event)

    @property
    def needs_cleanup(self) -> bool:
        """Terraform left holding (or having just taken) a lock with its own ID."""
        return bool((self.locked and not self.unlocked) or (self.attempted and not self.locked))

    def run(self) -> None:
        """The thread; an exception in it (a bug) ends it through ``on_crash``: in the keeper,
        that ends the process, so tfwrap replaces it (a heartbeat that silently stopped while
        its process lived on was never replaced)."""
        try:
            self._run()
        except BaseException as exc:  # noqa: BLE001 - said and handed over, never a traceback
            self.crashed = f"{type(exc).__name__}: {exc}"
            log.info("heartbeat thread failed", error=self.crashed)
            if self.on_crash is not None:
                self.on_crash(self.crashed)

    def _run(self) -> None:
        # Nice this thread (Linux nices threads one by one): its ~250 ms of imports must
        # not slow Terraform's own start-up on a 2-core runner (≤ 30 ms added).
        with contextlib.suppress(OSError, AttributeError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        # And start them only once Terraform has started (its first log line): its lock
        # comes 150-350 ms later, time enough to connect, and its start is not slowed.
        self._halt.wait(max(0.0, self._created + CONNECT_AFTER - time.monotonic()))
        deadline = self._created + STARTUP_WAIT
        while not self.watcher.has_output() and time.monotonic() < deadline and not self._halt.is_set():
            time.sleep(0.005)
        try:
            from tfwrap.lock import info as lockinfo

            self.ci, self.host = lockinfo.ci_run_url(), lockinfo.hostname()
            self.machine_id = lockinfo.machine_id()
            self.machine = (
                lockinfo.boot_id(),
                lockinfo.pid_namespace(),
                lockinfo.process_start(os.getpid()) or 0,
                lockinfo.process_start(self.terraform_pid) or 0,
            )
        except Exception as exc:  # noqa: BLE001 - a heartbeat problem never stops Terraform
            log.debug("holder details unavailable", error=repr(exc))
        self._try_connect()
        self.ready.set()
        while not self._halt.wait(POLL_SECONDS):
            with self._poll_lock:
                for event in self.watcher.poll():
                    self._on(event)
            now = time.monotonic()
            if self.locks is None and self._connect_failures and now >= self._next_connect:
                self._try_connect()
            if self._beating and now >= self._next_beat:
                self._beat()

    def _try_connect(self) -> None:
        """Connect to the lock; on failure retry with back-off while Terraform lives.

        A read of ``.terraform/terraform.tfstate`` can meet Terraform rewriting it (it does,
        when the backend hash it stored differs): a failed connect is retried, never taken as
        a configuration error for the whole run.
        """
        try:
            self._connects += 1
            self.locks = self._connect_or_hook()
        except Exception as exc:  # noqa: BLE001 - a heartbeat problem never stops Terraform
            self._connect_failures += 1
            self.connect_error = describe_failure(exc)
            delay = min(0.1 * 2**self._connect_failures, max(self.interval, 1.0))
            self._next_connect = time.monotonic() + delay
            log.debug("heartbeat cannot connect yet", error=self.connect_error)
            # A passing race is retried in silence; one that outlasts a second, or a lock
            # taken while unconnected, is said once (what is wrong, and that it retries).
            if not self._said_connect and (self._connect_failures >= 4 or self.locked):
                self._said_connect = True
                say(f"heartbeat not running yet: {self.connect_error}; retrying while Terraform runs")
            return
        if self._connect_failures:
            self._connect_failures = 0
            if self._said_connect:
                say("heartbeat connected to the backend")
            self._beating = bool(self.locked and not self.unlocked) and self._may_beat()
            self._next_beat = 0.0

    def _connect_or_hook(self) -> Locks | None:
        if self._connects <= _hook_number(testhooks.HEARTBEAT_CONNECT_FAILURES):
            raise ConnectionError("test hook: this connect fails")
        return self._connect()

    def _may_beat(self) -> bool:
        """The one rule for starting to rewrite the lock, whichever path connected: never on
        a store whose conditional writes cannot be trusted (``Locks.heartbeat_off``)."""
        return self.locks is not None and not self.locks.heartbeat_off and not self._halt.is_set()

    def _on(self, event: LockEvent) -> None:
        if event.kind == "attempt":
            self.attempted, self.mode = event.lock_id, event.mode
        elif event.kind == "locked":
            if self.attempted and event.lock_id != self.attempted:
                # Only a lock ID this child itself attempted is ever ours.
                log.warning("ignored a Locked line for an ID this run did not attempt", lock_id=event.lock_id)
                return
            self.locked, self.mode, self.unlocked = event.lock_id, event.mode, False
            self._beating = self._may_beat()
            self._next_beat = 0.0
            self._renewed_at = time.monotonic()
        elif event.kind == "unlock-attempt" and event.lock_id == self.locked:
            self.unlocking = True  # Terraform's own release: a lock gone from now on is no alarm
        elif event.kind == "unlocked" and event.lock_id == self.locked:
            self.unlocked, self._beating = True, False

    def holder_line(self) -> str:
        import datetime as dt

        from tfwrap.lock import info as lockinfo

        boot, pidns, tfwrap_start, terraform_start = self.machine
        took = self.took_over
        return lockinfo.Holder(
            heartbeat=lockinfo.now(),
            lease_seconds=self.lease_seconds,
            host=self.host,
            terraform_pid=self.terraform_pid,
            tfwrap_pid=os.getpid(),
            started=dt.datetime.fromtimestamp(int(self.started_at), dt.timezone.utc),
            ci=self.ci,
            boot_id=boot,
            pidns=pidns,
            tfwrap_start=tfwrap_start,
            terraform_start=terraform_start,
            took_over=took.lock_id if took else "",
            took_over_host=took.host if took else "",
            took_over_ci=took.ci if took else "",
            interval_seconds=math.ceil(self.interval),
            machine_id=self.machine_id,
        ).line()

    def _beat(self) -> None:
        if self.locks is None:
            return
        line = self.holder_line()
        try:
            if "S3" in self.mode:
                self._s3_seen = self._beat_s3(self.locks.s3, line)
            if "DynamoDB" in self.mode and self.locks.dynamo is not None:
                self._ddb_seen = self._beat_dynamo(self.locks.dynamo, line)
        except LockGone:
            self._beating = False  # a read confirmed it: released or taken over, never touch it again
            log.info("heartbeat stopped: the lock is gone or no longer ours", lock_id=self.locked)
            self._say_if_taken_over()
            return
        except Exception as exc:  # noqa: BLE001 - 409, throttling, 5xx, timeouts, AccessDenied
            if _reason(exc) == "InvalidRequest" and not self.locks.s3.sse_customer_key:
                # An SSE-C lock cannot be read (or rewritten) without the key: say so once.
                self._beating = False
                say(
                    "heartbeat skipped: the lock is SSE-C encrypted and tfwrap has no key "
                    "(set sse_customer_key or AWS_SSE_CUSTOMER_KEY)"
                )
                return
            # Never give up while Terraform lives (two 409 ConditionalRequestConflict
            # in a row stopped it for good): back off, re-read next time, try again.
            self._s3_seen, self._ddb_seen = None, None
            self._backoff = min(max(1.0, self._backoff * 2), self.interval)
            self._next_beat = time.monotonic() + self._backoff
            reason = _reason(exc)
            if reason != self._failing:  # said once per cause, not every back-off of an outage
                say(f"heartbeat failed ({reason}); retrying in {self._backoff:.0f} s")
            self._failing = reason
            log.info("heartbeat failed", reason=reason, retry_in=self._backoff)
            self._fence()
            return
        if self._failing:
            say("heartbeat renewed again")
        self._failing = ""
        self._backoff = 0.0
        self._renewed_at = time.monotonic()
        self.annotations += 1
        log.info("heartbeat", lock_id=self.locked, mode=self.mode, beat=self.annotations)
        self._next_beat = time.monotonic() + self.interval
        if self._crash_after and self.annotations >= self._crash_after:
            raise RuntimeError("test hook: a bug in the heartbeat thread")

    def _fence(self) -> None:
        """Self-fencing: say once, loudly, that the lock may be taken over."""
        lapsed = time.monotonic() - self._renewed_at
        if self._fence_said or lapsed <= self.lease_seconds - self.interval:
            return
        self._fence_said = True
        say(
            f"WARNING: the heartbeat of lock {self.locked} has not been renewed for {lapsed:.0f} s "
            f"(lease {self.lease_seconds} s): another run may judge it stale and take it over, and "
            "Terraform's state writes would then no longer be protected"
        )

    def _say_if_taken_over(self) -> None:
        """The lock is gone or carries another ID while Terraform still runs (not its own
        release): its state writes are no longer protected. Said once, loudly, with who holds
        the lock now, if anyone (a taker that already released leaves no lock to name)."""
        from tfwrap.lock import info as lockinfo
        from tfwrap.lock.report import bounded

        for event in self.watcher.poll():  # Terraform's "Attempting to unlock" may be unread
            self._on(event)
        if self.unlocking or self.unlocked or self._halt.is_set():
            return
        try:
            current = self.locks.s3.read() if self.locks is not None else None
        except Exception:  # noqa: BLE001 - the warning is said without the new holder
            current = None
        unprotected = (
            "Terraform's state writes from this run are no longer protected by the lock; "
            "stop it and check the state"
        )
        if current is None:
            say(
                f"WARNING: lock {self.locked} is gone while Terraform still runs (removed by another "
                f"run or by hand): {unprotected}"
            )
            return
        holder = lockinfo.parse(current.info)
        how = " as stale" if holder is not None and holder.took_over == self.locked else ""
        where = ""
        if holder is not None:
            run = f", run {bounded(holder.ci)}" if holder.ci else ""
            where = f" (host {bounded(holder.host) or '?'}{run})"
        say(
            f"WARNING: lock {self.locked} was taken over{how} by lock {bounded(current.id)}{where} "
            f"while Terraform still runs: {unprotected}"
        )

    def _beat_s3(self, lockfile: S3LockFile, line: str) -> LockObject | None:
        from tfwrap.lock.lockfile import LockChanged

        current = self._s3_seen
        if current is None or current.id != self.locked:
            current = lockfile.read()
        if current is None or current.id != self.locked:
            raise LockGone
        try:
            return lockfile.rewrite_info(current, line)
        except LockChanged:
            # Our previous write may have landed after its answer timed out: the lock then
            # has an ETag we never saw. Lock IDs are unique per run, so a lock still
            # carrying ours is still ours; the retry stays conditional on what we read.
            # Refused again: a failure like any other (backed off), not the end.
            fresh = lockfile.read()
            if fresh is None or fresh.id != self.locked:
                raise LockGone from None
            return lockfile.rewrite_info(fresh, line)

    def _beat_dynamo(self, dynamo: DynamoLock, line: str) -> dict[str, Any]:
        from tfwrap.lock.lockfile import LockChanged

        current = self._ddb_seen
        if current is None or current.get("ID") != self.locked:
            current = dynamo.read()
        if current is None or current.get("ID") != self.locked:
            raise LockGone
        try:
            return dynamo.rewrite_info(current, line)
        except LockChanged:  # as for S3: a late-answered write of ours
            fresh = dynamo.read()
            if fresh is None or fresh.get("ID") != self.locked:
                raise LockGone from None
            return dynamo.rewrite_info(fresh, line)


class LockGone(Exception):
    """A read confirmed the lock is gone or carries another ID: the heartbeat ends."""


def describe_failure(exc: BaseException) -> str:
    """What stopped the connection, in the user's words (a configuration
    error is not "cannot reach")."""
    from tfwrap.errors import BackendConfigError

    if isinstance(exc, BackendConfigError):
        return f"cannot read the backend configuration ({exc})"
    name = type(exc).__name__
    if "Credential" in name or "Token" in name:
        return f"no usable AWS credentials ({name})"
    if "Endpoint" in name or "Connect" in name or "Timeout" in name:
        return f"cannot reach the backend ({name})"
    return f"cannot connect to the backend ({_reason(exc)}: {exc})"


def _reason(exc: BaseException) -> str:
    if type(exc).__name__ == "LockChanged" and exc.__cause__ is not None:
        exc = exc.__cause__  # the store's answer (PreconditionFailed), not our name for it
    return error_code(exc) or type(exc).__name__


def _hook_number(name: str) -> int:
    value = testhooks.get(name)
    return int(value) if value.isdigit() else 0
