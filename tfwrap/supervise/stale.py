"""What a supervised run does when another holder has the state lock.

- After Terraform gave up on the lock: one line saying whether the holder is alive, stale
  or unknown (one GetObject, plus one GetItem with dual locking), and with
  ``stale_locks = "take-over"`` the stale lock is taken over and Terraform runs once more.
- While Terraform waits out ``-lock-timeout`` (take-over only): ``Watch`` judges the holder
  when its lease can have run out; a stale holder's lock is taken over at once rather than
  after Terraform's next back-off (up to 16 s).
"""

from __future__ import annotations

import contextlib
import os
import signal

from tfwrap import log
from tfwrap.aws.errors import error_code
from tfwrap.output import say

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from tfwrap.lock.takeover import TookOver, WaitWatch
    from tfwrap.supervise.heartbeat import Locks
    from tfwrap.supervise.lockevents import LogPlan

GIVE_UP = "give-up"  # Terraform's status stands
RETRY = "retry"  # the lock may be free: the ordinary lock retry
RETRY_SAID = "retry-said"  # the same, its reason already said (a takeover race lost)


class Seen:
    """What Terraform's log says of its lock, read by tfwrap itself: the heartbeat lives in the
    keeper process, the watch in tfwrap. Passes no line on (the keeper does)."""

    def __init__(self, plan: LogPlan, connect: Callable[[], Locks | None]) -> None:
        import copy

        from tfwrap.supervise.lockevents import LogWatcher

        quiet = copy.copy(plan)
        quiet.copy_to, quiet.relay = "", False
        self._watcher = LogWatcher(quiet)
        self._connect = connect
        self._locks: Locks | None = None
        self.attempted = ""
        self.locked = ""
        self.attempts = 0  # Terraform's tries at the lock so far (one log line each)
        self.attempt_seen = 0.0  # when tfwrap first read the latest one (monotonic)
        self.applying = False  # Terraform began its apply phase

    def refresh(self) -> None:
        import time

        for event in self._watcher.poll():
            if event.kind == "attempt":
                self.attempted = event.lock_id
                self.attempts += 1
                self.attempt_seen = time.monotonic()
            elif event.kind == "locked" and event.lock_id == self.attempted:
                self.locked = event.lock_id
            elif event.kind == "applying":
                self.applying = True

    def trying(self, since: int) -> bool:
        """Whether a try of Terraform's own may take a released lock: one began after the
        ``since``-th, the latest may still be in flight, or the next is about due (its back-off
        doubles from 1 s to 16 s after each try: ``statemgr.LockWithContext``)."""
        import time

        now = time.monotonic()
        next_try = self.attempt_seen + min(2.0 ** (self.attempts - 1), 16.0)
        return self.attempts != since or now - self.attempt_seen < IN_FLIGHT or next_try - now < IN_FLIGHT

    @property
    def locks(self) -> Locks | None:
        if self._locks is None:
            try:
                self._locks = self._connect()
            except Exception as exc:  # noqa: BLE001 - the next tick tries again
                log.info("could not connect to judge the lock holder", error=type(exc).__name__)
        return self._locks


HANDOFF_POLL = 0.25  # how often a waiting run reads the lock: the handoff comes this soon
SETTLE = 0.5  # Terraform's first try takes this long at most: it is waiting only after it
# Not interrupted while a try of Terraform's own may be in flight, or is about to start: that
# try takes the released lock itself (docs/decisions/111-a-handoff-that-met-terraforms-own-lock.md).
IN_FLIGHT = 0.5


class Watch:
    """``Child.wait``'s tick while Terraform runs: watches the lock Terraform is waiting for.

    - Released (no lock any more): Terraform's wait is interrupted at once (it holds nothing,
      so the interrupt changes nothing) and the run goes on as a lock retry, instead of
      Terraform's back-off of up to 16 s (docs/decisions/023-handoff.md). Not while a try of
      Terraform's own may take it (docs/decisions/111-a-handoff-that-met-terraforms-own-lock.md).
    - With ``take_over``: the holder of whatever lock is there is judged each time it may have
      become stale; a stale one is taken over the same way. A new holder that dies in turn is
      judged too (a waiter never stops judging).
    """

    def __init__(self, seen: Seen, terraform_pid: int, *, take_over: bool = False) -> None:
        self.heartbeat = seen
        self.terraform_pid = terraform_pid
        self.take_over = take_over
        self.waiting: WaitWatch | None = None
        self.interrupted = False
        self.released = False  # the interrupt was for a released lock (not a stale one)
        self._waiting_since = 0.0
        self._next_read = 0.0

    def __call__(self) -> None:
        import time

        beat = self.heartbeat
        if self.interrupted:
            return
        beat.refresh()
        if not beat.attempted or beat.locked:
            self._waiting_since = 0.0
            return
        now = time.monotonic()
        if not self._waiting_since:
            self._waiting_since = now
        # Not in the few milliseconds between Terraform's attempt and its "Locked": only a
        # Terraform that is waiting costs a connection (imports) and reads.
        if now - self._waiting_since < SETTLE or now < self._next_read:
            return
        self._next_read = now + HANDOFF_POLL
        locks = beat.locks
        if locks is not None:
            self._look(locks, tries=beat.attempts)

    def _look(self, locks: Locks, tries: int) -> None:
        """Read the lock Terraform waits for, after its ``tries``-th try, and act on it."""
        from tfwrap.lock import current
        from tfwrap.lock.takeover import WaitWatch

        if self.waiting is None:
            self.waiting = WaitWatch(locks.s3, locks.dynamo)
        try:
            found = current.read(locks.s3, locks.dynamo)
        except Exception as exc:  # noqa: BLE001 - Terraform waits on; the next look may work
            log.info("could not read the lock Terraform waits for", error=type(exc).__name__)
            return
        beat = self.heartbeat
        beat.refresh()
        if beat.locked:
            return  # Terraform took it meanwhile
        if found.verdict is None:
            if not beat.trying(since=tries):  # else Terraform's own try takes it, or finds the next holder
                self._interrupt("the lock was released while Terraform waited", released=True)
            return
        if found.verdict.lock_id == beat.attempted:
            return  # Terraform's own lock, its "Locked" line not read yet
        if not self.take_over or locks.takeover_off or not self.waiting.due():
            return
        if self.waiting.consider(found) is not None:
            self._interrupt("stale holder found while Terraform waits", released=False)

    def _interrupt(self, why: str, *, released: bool) -> None:
        """Terraform holds nothing yet: an interrupt ends its wait and changes nothing."""
        if released:
            self._held_back_for_a_test()
        log.info(f"{why}: interrupting its wait")
        self.interrupted, self.released = True, released
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.terraform_pid, signal.SIGINT)

    def _held_back_for_a_test(self) -> None:
        """The test hook that sends the interrupt only once Terraform took the lock itself."""
        from tfwrap import testhooks

        after = testhooks.get(testhooks.HANDOFF_INTERRUPT_AFTER)
        if not after:
            return
        import time

        beat, until = self.heartbeat, time.monotonic() + 120
        while time.monotonic() < until and not (beat.applying if after == "applying" else beat.locked):
            time.sleep(0.005)
            beat.refresh()


def after_failed_lock(
    locks: Locks,
    policy_stale_locks: str,
    watch: Watch | None,
    chdir: str,
    *,
    out_of_time: bool,
    may_take: bool,
) -> str | TookOver:
    """Say who holds the lock; take a stale one over when allowed. GIVE_UP, RETRY or what was taken."""
    from tfwrap.lock import current, report, takeover

    found = watch.waiting.judged if watch is not None and watch.waiting is not None else None
    if found is None and not out_of_time:
        return RETRY  # Terraform gave up early (the 412-then-404 race): the lock may be free
    try:
        if found is None:
            found = current.read(locks.s3, locks.dynamo)
        if policy_stale_locks != "take-over" or not may_take or takeover.refusal(found) is not None:
            say(report.verdict_line(found, chdir))
            return GIVE_UP
        if locks.takeover_off:
            say(
                f"{report.verdict_line(found, chdir)}; not taken over: this endpoint's probe found "
                f"{locks.takeover_off}"
            )
            return GIVE_UP
        took, done = takeover.take_over(found)
        log.info("takeover", removed=len(done.removed), kept=len(done.kept))
    except Exception as exc:  # noqa: BLE001 - Terraform's status stands; say why nothing more
        say(f"could not judge the holder of the state lock ({_reason(exc)}); `tfwrap lock status` shows it")
        return GIVE_UP
    if took is None:
        say(
            f"stale lock not taken over: {'; '.join(done.kept)}"
            + (" (run `tfwrap lock status`)" if out_of_time else "; waiting for the lock again")
        )
        return GIVE_UP if out_of_time else RETRY_SAID
    run = f", run {took.ci}" if took.ci else ""
    say(
        f"took over the stale lock {took.lock_id} (host {took.host or '?'}{run}): {took.reason}; "
        f"{' and '.join(done.removed)}; running Terraform again to take the lock"
    )
    return took


def _reason(exc: BaseException) -> str:
    return error_code(exc) or type(exc).__name__
