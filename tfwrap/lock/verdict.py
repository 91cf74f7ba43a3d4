"""Whether a held lock is still in use: ``alive``, ``stale`` or ``unknown``.

Pure: the caller passes the lock as read, the time, and (for tests) how to ask whether a
process exists and which host this is. Nothing here touches AWS.

- ``alive``: the lock's ``Info`` carries a tfwrap heartbeat no older than its lease (and,
  when the holder ran on this host, its tfwrap or Terraform process still exists).
- ``stale``: the heartbeat is older than the lease, or the holder ran on this host and
  both its tfwrap and its Terraform process are gone.
- ``unknown``: no tfwrap heartbeat; the lock was taken by a run not under tfwrap, and
  nothing tells whether that run is still going.

With dual locking the ``.tflock`` object and the DynamoDB item are judged one by one and
the most careful answer wins: ``alive`` over ``unknown`` over ``stale``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tfwrap.lock import info as lockinfo

ALIVE = "alive"
STALE = "stale"
UNKNOWN = "unknown"

_CARE = {ALIVE: 0, UNKNOWN: 1, STALE: 2}  # lower: more careful, wins when parts disagree


@dataclass(frozen=True)
class Verdict:
    """What tfwrap thinks of a lock, why (one sentence), and what to show about it."""

    verdict: str  # ALIVE, STALE or UNKNOWN
    reason: str
    lock_id: str
    who: str
    operation: str
    created: str
    path: str
    holder: lockinfo.Holder | None  # None: no tfwrap heartbeat
    heartbeat_age: int | None  # seconds since the last heartbeat (negative: clock skew)
    where: str = ""  # which part was judged: "s3" or "dynamodb"

    @property
    def since(self) -> str:
        """When the holder started: tfwrap's ``started``, else Terraform's ``Created``."""
        if self.holder is not None and self.holder.started is not None:
            return lockinfo.stamp(self.holder.started)
        from tfwrap.timestamps import to_second

        return to_second(self.created) if self.created else "an unknown time"

    def holder_line(self) -> str:
        """``root@vm (ID 1234..., OperationTypeApply) since 2026-...``: for refusals."""
        what = f"ID {self.lock_id or '(none)'}" + (f", {self.operation}" if self.operation else "")
        return f"{self.who or 'an unknown holder'} ({what}) since {self.since}"


def _default_pid_exists(pid: int) -> bool:
    import psutil  # deferred: +38 ms, only when a holder ran on this host

    return bool(psutil.pid_exists(pid))


def _ago(seconds: int) -> str:
    if seconds < 0:
        return f"{-seconds} s in the future (clock skew)"
    return f"{seconds} s ago"


def judge(
    fields: Mapping[str, Any],
    now: dt.datetime,
    *,
    pid_exists: Callable[[int], bool] | None = None,
    host: str | None = None,
    where: str = "",
) -> Verdict:
    """Judge one lock from Terraform's lock fields (``ID``, ``Who``, ``Info``, ...)."""
    holder = lockinfo.parse(str(fields.get("Info") or ""))
    base = {
        "lock_id": str(fields.get("ID") or ""),
        "who": str(fields.get("Who") or ""),
        "operation": str(fields.get("Operation") or ""),
        "created": str(fields.get("Created") or ""),
        "path": str(fields.get("Path") or ""),
        "where": where,
    }
    if holder is None:
        return Verdict(
            UNKNOWN,
            "no tfwrap heartbeat: the lock was taken by a run not under tfwrap, "
            "so nothing tells whether it is still running",
            holder=None,
            heartbeat_age=None,
            **base,
        )
    age = int((now - holder.heartbeat).total_seconds())
    beat = f"last heartbeat {_ago(age)}"
    if age > holder.lease_seconds:
        return Verdict(
            STALE,
            f"{beat}, longer than its {holder.lease_seconds} s lease: the holder stopped renewing it",
            holder=holder,
            heartbeat_age=age,
            **base,
        )
    this_host = host if host is not None else lockinfo.hostname()
    pids = (holder.tfwrap_pid, holder.terraform_pid)
    if holder.host == this_host and all(p > 0 for p in pids):
        exists = pid_exists or _default_pid_exists
        if not any(exists(p) for p in pids):
            return Verdict(
                STALE,
                f"the holder ran on this host ({this_host}) and its tfwrap (pid {holder.tfwrap_pid}) "
                f"and Terraform (pid {holder.terraform_pid}) processes are both gone",
                holder=holder,
                heartbeat_age=age,
                **base,
            )
    return Verdict(
        ALIVE,
        f"{beat}, within its {holder.lease_seconds} s lease: a tfwrap run on {holder.host or '?'} holds it",
        holder=holder,
        heartbeat_age=age,
        **base,
    )


def judge_lock(
    s3: Mapping[str, Any] | None,
    dynamodb: Mapping[str, Any] | None,
    now: dt.datetime,
    *,
    pid_exists: Callable[[int], bool] | None = None,
    host: str | None = None,
) -> Verdict | None:
    """Judge the ``.tflock`` fields and/or the DynamoDB item's ``Info``; None: no lock held.

    ``s3`` is ``LockObject.fields``; ``dynamodb`` is what ``DynamoLock.read`` returns.
    """
    parts = [
        judge(fields, now, pid_exists=pid_exists, host=host, where=where)
        for where, fields in (("s3", s3), ("dynamodb", dynamodb))
        if fields is not None
    ]
    if not parts:
        return None
    # Most careful verdict first; among equals, the freshest heartbeat; then the .tflock object.
    chosen = min(
        parts, key=lambda v: (_CARE[v.verdict], v.heartbeat_age if v.heartbeat_age is not None else 0)
    )
    if len({p.lock_id for p in parts}) > 1:
        ids = " and ".join(f"{p.where} ID {p.lock_id or '(none)'}" for p in parts)
        return Verdict(
            chosen.verdict,
            f"{chosen.reason} (the two locks differ: {ids})",
            chosen.lock_id,
            chosen.who,
            chosen.operation,
            chosen.created,
            chosen.path,
            chosen.holder,
            chosen.heartbeat_age,
            chosen.where,
        )
    return chosen
