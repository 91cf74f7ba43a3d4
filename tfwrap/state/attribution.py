"""Which run wrote which state version, and what ``undo`` restores (pure).

Terraform takes the lock with a create-only PUT of ``<key>.tflock`` and releases it with a
DELETE, so on a versioned bucket the lock's versions fall into *holdings*: a run of object
versions (the PUT, then every heartbeat rewrite of the same ID) closed by a delete marker. A
new PUT can only succeed after a delete, so holdings are told apart by the markers alone, and
one body per holding (its newest version: the latest heartbeat Info) names the holder.

A state version was written by the holding whose [first PUT, release] encloses its
Last-Modified. Last-Modified has whole seconds, so a write in the second one run released and
the next took the lock is claimed by both: it is *ambiguous*, never guessed
(docs/decisions/080-attributing-state-writes.md).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from tfwrap.lock import info as lockinfo
from tfwrap.state.versions import Version


@dataclass
class Holding:
    """One lock holding: from its first PUT to the delete marker that released it."""

    start: dt.datetime
    end: dt.datetime | None  # None: still held
    newest: Version  # the version whose body names the holder
    fields: dict[str, Any] = field(default_factory=dict)  # Terraform's lock fields, once read

    @property
    def lock_id(self) -> str:
        return str(self.fields.get("ID") or "")

    @property
    def holder(self) -> lockinfo.Holder | None:
        return lockinfo.parse(str(self.fields.get("Info") or ""))

    def encloses(self, moment: dt.datetime) -> bool:
        return self.start <= moment and (self.end is None or moment <= self.end)

    def name(self) -> str:
        """``who on host (operation, ID …, run …)`` for a person."""
        holder = self.holder
        who = str(self.fields.get("Who") or "?")
        on = f" on {holder.host}" if holder and holder.host else ""
        operation = str(self.fields.get("Operation") or "?").removeprefix("OperationType")
        run = f", run {holder.ci}" if holder and holder.ci else ""
        return f"{who}{on} ({operation}, ID {self.lock_id or '?'}{run})"

    def document(self) -> dict[str, Any]:
        holder = self.holder
        return {
            "lock_id": self.lock_id or None,
            "who": self.fields.get("Who") or None,
            "operation": self.fields.get("Operation") or None,
            "host": (holder.host or None) if holder else None,
            "ci": (holder.ci or None) if holder else None,
            "locked": lockinfo.stamp(self.start),
            "released": lockinfo.stamp(self.end) if self.end else None,
        }


@dataclass(frozen=True)
class Attributed:
    """A state version and the holdings whose lock encloses it (one: its writer)."""

    version: Version
    candidates: tuple[Holding, ...]

    @property
    def writer(self) -> Holding | None:
        return self.candidates[0] if len(self.candidates) == 1 else None

    @property
    def ambiguous(self) -> bool:
        return len(self.candidates) > 1


def holdings(lock_versions: list[Version]) -> list[Holding]:
    """The lock's holdings, newest first, from its versions (newest first)."""
    found: list[Holding] = []
    current: list[Version] = []  # object versions of the holding being built, oldest first
    for version in reversed(lock_versions):  # oldest first
        if version.deleted:
            if current:
                found.append(Holding(current[0].written, version.written, current[-1]))
            current = []
        else:
            current.append(version)
    if current:  # held now (or its release expired)
        found.append(Holding(current[0].written, None, current[-1]))
    found.reverse()
    return found


def needed(state: list[Version], all_holdings: list[Holding]) -> list[Holding]:
    """The holdings that enclose one of ``state``: only their bodies need reading."""
    return [h for h in all_holdings if any(h.encloses(v.written) for v in state if not v.deleted)]


def attribute(state: list[Version], all_holdings: list[Holding]) -> list[Attributed]:
    """Each state version with the holdings that may have written it."""
    return [
        Attributed(v, tuple(h for h in all_holdings if h.encloses(v.written)) if not v.deleted else ())
        for v in state
    ]


@dataclass(frozen=True)
class UndoPlan:
    """What ``undo`` would restore, or why it cannot tell (``refusal``)."""

    target: Version | None
    run: Holding | None
    undone: tuple[Version, ...]  # the versions the last run wrote, newest first
    refusal: str = ""
    candidates: tuple[Version, ...] = ()


def undo_plan(attributed: list[Attributed]) -> UndoPlan:
    """The state the last run started from: the version before its first write."""
    if not attributed:
        return UndoPlan(None, None, (), "the state has no versions")
    latest = attributed[0]
    if latest.version.deleted:
        return UndoPlan(
            None,
            None,
            (),
            "the current state is a delete marker: pick a version with `tfwrap state restore --version V`",
        )
    if latest.ambiguous:
        return UndoPlan(
            None,
            None,
            (),
            "the current version was written while the lock changed hands: cannot tell which run wrote it",
            (latest.version,),
        )
    run = latest.writer
    if run is None:
        return UndoPlan(
            None,
            None,
            (),
            "no lock version encloses the current version (written without the S3 lock, or the "
            "lock's versions expired): cannot tell which run wrote it",
            (latest.version,),
        )
    undone: list[Version] = []
    for entry in attributed:
        if entry.writer is run:
            undone.append(entry.version)
            continue
        if run in entry.candidates:
            return UndoPlan(
                None,
                run,
                tuple(undone),
                "the last run's first write cannot be told apart from the run before it "
                "(both held the lock in that second)",
                (*undone, entry.version),
            )
        if entry.version.deleted:
            return UndoPlan(None, run, tuple(undone), "the version before the last run is a delete marker")
        return UndoPlan(entry.version, run, tuple(undone))
    return UndoPlan(
        None, run, tuple(undone), "the last run wrote the first version of this state: nothing before it"
    )
