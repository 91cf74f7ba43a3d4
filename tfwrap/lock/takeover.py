"""Taking over a stale lock (opt-in: ``stale_locks = "take-over"``).

A run blocked by a lock judges it (``current.read``: one GetObject, one GetItem with dual
locking). Only a ``stale`` tfwrap lock is taken over: never an ``unknown`` one (no heartbeat:
nothing tells whether its run still goes), never a DynamoDB-only one (no store clock to age
it by), and with dual locking only when both parts are stale. The removal is exact
(``removal.remove_judged``): a holder that renewed since it was judged keeps its lock.
Then Terraform takes the lock the ordinary way, and the new heartbeat says whose it replaced.

While Terraform waits out ``-lock-timeout`` on a lock, ``WaitWatch`` judges the holder at
the moment its lease runs out; when it is stale, Terraform's wait is interrupted (it holds
nothing yet, so the interrupt changes nothing) and the run goes on as a lock retry:
Terraform's own retries back off to 16 s and would leave the team waiting that long.
Why: docs/decisions/106-stale-locks-liveness-before-age.md.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from tfwrap.lock import verdict
from tfwrap.lock.current import CurrentLock
from tfwrap.lock.lockfile import DynamoLock, S3LockFile
from tfwrap.lock.removal import Removal, remove_judged

MIN_WAIT = 0.2  # never judge the holder more often than this while Terraform waits
MAX_WAIT = 5.0  # nor less often (a fresh heartbeat can still stop)
UNKNOWN_WAIT = 15.0  # an unknown lock is never taken over; look again now and then only


@dataclass(frozen=True)
class TookOver:
    """The lock a run replaced: recorded in its heartbeat and said on stderr."""

    lock_id: str
    host: str
    ci: str
    reason: str


def refusal(found: CurrentLock) -> str | None:
    """Why this lock must not be taken over, or None when it may."""
    v = found.verdict
    if v is None:
        return "no lock is held any more"
    if v.verdict == verdict.UNKNOWN:
        return "it is unknown (no tfwrap heartbeat): only a human can tell whether its run is gone"
    if v.verdict != verdict.STALE:
        return f"it is {v.verdict}"
    if found.s3 is None:
        return "a DynamoDB-only lock is never taken over"
    return None


def take_over(found: CurrentLock) -> tuple[TookOver | None, Removal]:
    """Remove the judged stale lock exactly; the record of it when every part went."""
    v = found.verdict
    assert v is not None and refusal(found) is None  # noqa: S101 - callers check refusal() first
    done = remove_judged(found)
    if done.kept or not done.removed:
        return None, done
    holder = v.holder
    return TookOver(
        lock_id=v.lock_id,
        host=holder.host if holder else "",
        ci=holder.ci if holder else "",
        reason=v.reason,
    ), done


class WaitWatch:
    """Judges the holder while Terraform waits for the lock; ``due()`` says when to look."""

    def __init__(self, lockfile: S3LockFile, dynamo: DynamoLock | None) -> None:
        self.lockfile = lockfile
        self.dynamo = dynamo
        self.judged: CurrentLock | None = None  # the stale lock found, to take over
        self.reads = 0
        self._next = 0.0

    def due(self) -> bool:
        return self.judged is None and time.monotonic() >= self._next

    def look(self) -> CurrentLock | None:
        """Read and judge the lock; the lock when it may be taken over now, else None."""
        from tfwrap.lock import current

        return self.consider(current.read(self.lockfile, self.dynamo))

    def consider(self, found: CurrentLock) -> CurrentLock | None:
        """Judge a lock as read; the lock when it may be taken over now, else None."""
        self.reads += 1
        if refusal(found) is None:
            self.judged = found
            return found
        self._next = time.monotonic() + _wait_after(found)
        return None


def _wait_after(found: CurrentLock) -> float:
    """How long until the holder could be stale: the rest of its lease, by the store's clock."""
    v = found.verdict
    if v is None:
        return MIN_WAIT  # released: Terraform takes it on its next try
    if v.verdict == verdict.UNKNOWN or v.holder is None:
        return UNKNOWN_WAIT
    if v.heartbeat_age is None:
        return MAX_WAIT
    # Last-Modified and Date have whole seconds: the age read is up to a second short, so
    # "age > lease" can show from ``lease - age`` seconds on; from then on, look often.
    left = v.holder.lease_seconds - v.heartbeat_age
    if left < 0:
        return 1.0  # alive past its lease: its processes exist on this machine (stopped?)
    return min(MAX_WAIT, max(MIN_WAIT, float(left)))
