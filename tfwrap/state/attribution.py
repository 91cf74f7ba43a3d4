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


def _seconds(lock_versions: list[Version]) -> list[list[Version]]:
    """The lock's versions oldest first, grouped by the second they were written in."""
    groups: list[list[Version]] = []
    for version in reversed(lock_versions):
        if groups and groups[-1][0].written == version.written:
            groups[-1].append(version)
        else:
            groups.append([version])
    return groups


def ids_needed(lock_versions: list[Version]) -> list[Version]:
    """The lock versions whose ``ID`` must be read to order a second that holds both a
    release and a PUT: those PUTs, and the newest PUT before that second (the holding the
    second starts in). Everywhere else the delete markers alone separate the holdings."""
    wanted: list[Version] = []
    before: Version | None = None
    for group in _seconds(lock_versions):
        puts = [v for v in group if not v.deleted]
        if puts and len(puts) < len(group):
            wanted += ([before] if before is not None else []) + puts
        if puts:
            before = puts[-1]
    return list(dict.fromkeys(wanted))


def since_release(lock_versions: list[Version], moment: dt.datetime) -> list[Version]:
    """The lock versions from the last second before ``moment`` that held a release and no
    PUT (newest first): no holding is open there, so ordering the seconds after it tells every
    holding that can enclose a write at or after ``moment``. All of them when there is none."""
    groups = _seconds(lock_versions)
    for at in range(len(groups) - 1, -1, -1):
        group = groups[at]
        if group[0].written < moment and all(v.deleted for v in group):
            return [v for g in reversed(groups[at:]) for v in reversed(g)]
    return list(lock_versions)


def holdings(lock_versions: list[Version], ids: dict[str, str] | None = None) -> list[Holding]:
    """The lock's holdings, newest first, from its versions (newest first).

    Within one second the listing gives the PUTs in order and the delete markers in order,
    but not how the two interleave: there a PUT with the ID of the open holding continues
    it (a heartbeat rewrite), and a PUT with another ID comes after a release (``ids``:
    version ID -> lock ID, for ``ids_needed``)."""
    known = ids or {}
    found: list[Holding] = []
    current: list[Version] = []  # object versions of the open holding, oldest first

    def close(marker: Version) -> None:
        nonlocal current
        if current:
            found.append(Holding(current[0].written, marker.written, current[-1]))
        current = []

    for group in _seconds(lock_versions):
        markers = [v for v in group if v.deleted]
        for put in (v for v in group if not v.deleted):
            open_id = known.get(current[-1].version_id) if current else None
            if current and markers and known.get(put.version_id) != open_id:
                close(markers.pop(0))  # released, then taken again within the second
            current.append(put)
        if markers:
            close(markers[0])  # the rest: deletes of a lock already gone
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
