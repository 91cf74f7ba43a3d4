"""Whether a held lock is still in use: ``alive``, ``stale`` or ``unknown``.

Pure: the caller passes the lock as read, its age in the store's clock, and (for tests)
what this machine is. Nothing here touches AWS or this machine's clock.

Liveness before age:

- a holder on *this* machine (same kernel boot id, same PID namespace) is ``alive`` while
  its tfwrap or its Terraform process exists, stopped or not, whatever its heartbeat age;
  when both are gone (or their PIDs now belong to processes started later) it is ``stale``
  at once;
- any other tfwrap holder is ``alive`` while its last write is no older than its lease
  and ``stale`` after;
- ``unknown``: no tfwrap heartbeat; the lock was taken by a run not under tfwrap, and
  nothing tells whether that run is still going.

The age is the store's own: the ``.tflock`` object's ``Last-Modified`` against the ``Date``
of the response that read it. With dual locking the ``.tflock`` object and the DynamoDB
item are judged one by one and the most careful answer wins: ``alive`` over ``unknown``
over ``stale`` (so both parts must be stale for the lock to be).
Why: docs/decisions/106-stale-locks-liveness-before-age.md.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tfwrap.findings.policy import MIN_LEASE_SECONDS, lease_floor
from tfwrap.lock import info as lockinfo

ALIVE = "alive"
STALE = "stale"
UNKNOWN = "unknown"
UNREADABLE = "unreadable"  # not a lock any tool can read: garbled, empty, not a JSON object

_CARE = {ALIVE: 0, UNKNOWN: 1, UNREADABLE: 1, STALE: 2}  # lower: more careful, wins when parts disagree


@dataclass(frozen=True)
class Here:
    """This machine, as far as a holder's PIDs are concerned."""

    boot_id: str
    pidns: str
    process_start: Callable[[int], int | None]  # pid -> start tick, None when gone
    machine_id: str = ""  # lockinfo.machine_id(): VMs cloned from one snapshot share a boot id
    host: str = ""  # and every host reports the same PID-namespace inode; host names differ

    def runs(self, holder: lockinfo.Holder) -> bool:
        """Whether the holder ran on this machine, in this PID namespace: same boot id and PID
        namespace, and (when the holder recorded them) the same machine id and host name."""
        if not holder.boot_id or (holder.boot_id, holder.pidns) != (self.boot_id, self.pidns):
            return False
        if holder.machine_id and holder.machine_id != self.machine_id:
            return False
        return not (holder.machine_id and self.host and holder.host != self.host)


def this_machine() -> Here:
    return Here(
        lockinfo.boot_id(),
        lockinfo.pid_namespace(),
        lockinfo.process_start,
        lockinfo.machine_id(),
        lockinfo.hostname(),
    )


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
    heartbeat_age: int | None  # seconds since the holder's last write, in the store's clock
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
        b = lockinfo.bounded
        what = f"ID {b(self.lock_id) or '(none)'}" + (f", {b(self.operation)}" if self.operation else "")
        return f"{b(self.who) or 'an unknown holder'} ({what}) since {b(self.since)}"


def _seconds(later: dt.datetime, earlier: dt.datetime) -> int:
    return int((later - earlier).total_seconds())


def ages(
    s3: Mapping[str, Any] | None,
    s3_written: dt.datetime | None,
    dynamodb: Mapping[str, Any] | None,
    server_now: dt.datetime | None,
) -> tuple[int | None, int | None]:
    """How long ago the ``.tflock`` object and the DynamoDB item were last renewed.

    The object: ``Date`` minus ``Last-Modified``, both the store's clock. DynamoDB keeps
    no write time; the item's heartbeat is compared with the object's, both stamped by
    the same holder's clock, so a skewed clock cancels out. An item alone is aged by the
    holder's stamp against the store's ``Date`` (a DynamoDB-only lock is never taken over).
    """
    s3_age = None
    if s3 is not None and s3_written is not None and server_now is not None:
        s3_age = max(0, _seconds(server_now, s3_written))
    item_age = None
    item_holder = lockinfo.parse(str(dynamodb.get("Info") or "")) if dynamodb is not None else None
    if dynamodb is not None and item_holder is not None:
        s3_holder = lockinfo.parse(str(s3.get("Info") or "")) if s3 is not None else None
        same = s3 is not None and s3.get("ID") == dynamodb.get("ID")
        if same and s3_holder is not None and s3_age is not None:
            item_age = max(0, s3_age - _seconds(item_holder.heartbeat, s3_holder.heartbeat))
        elif server_now is not None:
            item_age = _seconds(server_now, item_holder.heartbeat)
    return s3_age, item_age


def _ago(seconds: int) -> str:
    if seconds < 0:
        return f"{-seconds} s in the future (the holder's clock is ahead)"
    return f"{seconds} s ago"


def _local(holder: lockinfo.Holder, here: Here) -> tuple[str, str] | None:
    """The verdict on a holder on this machine from its processes, or None if unknown."""
    pids = (
        ("tfwrap", holder.tfwrap_pid, holder.tfwrap_start),
        ("Terraform", holder.terraform_pid, holder.terraform_start),
    )
    if not all(pid > 0 for _, pid, _ in pids):
        return None
    living = []
    for name, pid, start in pids:
        now_start = here.process_start(pid)
        if now_start is not None and start in (0, now_start):
            living.append(f"its {name} process (pid {pid}) still exists")
    if living:
        return ALIVE, f"the holder runs on this machine and {' and '.join(living)} (stopped or not)"
    return (
        STALE,
        f"the holder ran on this machine and its tfwrap (pid {holder.tfwrap_pid}) and Terraform "
        f"(pid {holder.terraform_pid}) processes are both gone",
    )


LOCAL_MARGIN = 2  # seconds: the store's whole-second clock, and one slow renewal


def _unrenewed(holder: lockinfo.Holder, age: int | None) -> bool:
    """The store's clock shows no renewal for longer than the holder's interval (plus a margin);
    without a claimed interval (an older tfwrap), its lease is the bound."""
    bound = holder.interval_seconds + LOCAL_MARGIN if holder.interval_seconds else holder.lease_seconds
    return age is not None and age > bound


def judge(
    fields: Mapping[str, Any],
    age: int | None,
    *,
    here: Here | None = None,
    where: str = "",
) -> Verdict:
    """Judge one lock from Terraform's lock fields (``ID``, ``Who``, ``Info``, ...).

    ``age``: seconds since the lock was last written, in the store's clock (None: unknown).
    """
    holder = lockinfo.parse(str(fields.get("Info") or ""))

    def said(kind: str, reason: str) -> Verdict:
        return Verdict(
            kind,
            reason,
            lock_id=str(fields.get("ID") or ""),
            who=str(fields.get("Who") or ""),
            operation=str(fields.get("Operation") or ""),
            created=str(fields.get("Created") or ""),
            path=str(fields.get("Path") or ""),
            holder=holder,
            heartbeat_age=age if holder is not None else None,
            where=where,
        )

    if not isinstance(fields.get("ID"), str) or not fields.get("ID"):
        return said(
            UNREADABLE,
            "the lock object is not a lock any tool can read (garbled, empty, or no ID): neither "
            "Terraform nor tfwrap can tell who holds it",
        )
    if holder is None:
        return said(
            UNKNOWN,
            "no tfwrap heartbeat: the lock was taken by a run not under tfwrap, "
            "so nothing tells whether it is still running",
        )
    if holder.renewals_stopped:
        return said(
            UNKNOWN,
            "its holder said its heartbeat could not be kept (renewals stopped), so its age "
            "tells nothing: only a human can tell whether its run is still going",
        )
    if holder.lease_seconds < MIN_LEASE_SECONDS or (
        holder.interval_seconds and holder.lease_seconds < lease_floor(holder.interval_seconds)
    ):
        # A lease no tfwrap would write (docs/decisions/020-lease-floor.md): forged or broken,
        # it could make any live lock look stale a second after its renewal.
        return said(
            UNKNOWN,
            f"its heartbeat claims a {holder.lease_seconds} s lease, below the {MIN_LEASE_SECONDS:g} s "
            "floor: a claim tfwrap never writes, so nothing tells whether its run is still going",
        )
    machine = here if here is not None else this_machine()
    if machine.runs(holder):
        local = _local(holder, machine)
        if local is not None and local[0] == STALE and not _unrenewed(holder, age):
            # "Its PIDs are gone" is what the Info claims; the store's clock must also show
            # the lock unrenewed for longer than its heartbeat interval, else a rewritten Info
            # or a cloned VM (same boot id) would make a live lock stale at once: judged by
            # its lease, as a remote holder is.
            local = None
        if local is not None:
            beat = f"; last heartbeat {_ago(age)}" if age is not None else ""
            return said(local[0], local[1] + beat)
    lease = holder.lease_seconds
    if age is None:
        return said(UNKNOWN, "the age of its last heartbeat cannot be told from the store's clock")
    beat = f"last heartbeat {_ago(age)}"
    if age > lease:
        return said(
            STALE,
            f"{beat}, {age - lease} s past its {lease} s lease: the holder stopped renewing it",
        )
    return said(
        ALIVE,
        f"{beat}, within its {lease} s lease: a tfwrap run on {holder.host or '?'} holds it",
    )


def judge_lock(
    s3: Mapping[str, Any] | None,
    dynamodb: Mapping[str, Any] | None,
    *,
    s3_age: int | None = None,
    dynamodb_age: int | None = None,
    here: Here | None = None,
) -> Verdict | None:
    """Judge the ``.tflock`` fields and/or the DynamoDB item's ``Info``; None: no lock held.

    ``s3`` is ``LockObject.fields``; ``dynamodb`` is what ``DynamoLock.read`` returns; the
    ages come from ``ages``.
    """
    machine = here if here is not None else this_machine()
    parts = [
        judge(fields, age, here=machine, where=where)
        for where, fields, age in (("s3", s3, s3_age), ("dynamodb", dynamodb, dynamodb_age))
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
