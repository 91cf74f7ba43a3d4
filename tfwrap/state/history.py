"""Reading a state's history: its versions (or, on a bucket without versioning, the current
state and its ``state_backup`` copies), which run wrote each, and their summaries.

Cost: one GetBucketVersioning, one ListObjectVersions page per 1,000 versions of the state
and its lock together, then one GetObject per state version shown and one per lock holding
that encloses one of them (docs/decisions/080-attributing-state-writes.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tfwrap import exitcodes
from tfwrap.backend.config import BackendConfig
from tfwrap.errors import TfwrapError
from tfwrap.state import attribution, summary, versions
from tfwrap.state.attribution import Attributed, Holding
from tfwrap.state.versions import Listing, Version


@dataclass
class History:
    backend: BackendConfig
    versioned: bool
    listing: Listing
    holdings: list[Holding]
    attributed: list[Attributed]  # every state version, newest first
    summaries: dict[str, summary.Summary] = field(default_factory=dict)  # by versions.ident
    requests: int = 0

    @property
    def entries(self) -> list[Version]:
        return [a.version for a in self.attributed]

    def find(self, wanted: str) -> Version:
        """The version named ``wanted`` (a version ID or a backup's key), else refused (93)."""
        for version in [*self.entries, *self.listing.backups]:
            if wanted in (version.version_id, version.key) and (
                version.version_id != versions.CURRENT or wanted == version.key
            ):
                if version.deleted:
                    raise TfwrapError(
                        f"version {wanted} is a delete marker, not a state: pick another from "
                        "`tfwrap state history`",
                        exitcodes.VERSION_NOT_FOUND,
                    )
                return version
        raise TfwrapError(
            f"version {wanted} is not a version of s3://{self.backend.bucket}/{self.backend.state_key}: "
            "pick one from `tfwrap state history`",
            exitcodes.VERSION_NOT_FOUND,
        )

    def summary_of(self, s3: Any, version: Version) -> summary.Summary:
        self.read_summaries(s3, [version])
        return self.summaries[versions.ident(version)]

    def read_summaries(self, s3: Any, wanted: list[Version]) -> None:
        missing = list(
            {
                versions.ident(v): v
                for v in wanted
                if not v.deleted and versions.ident(v) not in self.summaries
            }.values()
        )
        bodies = versions.read_bodies(s3, self.backend, missing)
        self.requests += len(missing)
        for name, body in bodies.items():
            self.summaries[name] = summary.summarise(body)

    def read_holders(self, s3: Any, wanted: list[Holding]) -> None:
        # One read per holding, however many versions name it as a candidate.
        missing = list({id(h): h for h in wanted if not h.fields}.values())
        bodies = versions.read_bodies(s3, self.backend, [h.newest for h in missing])
        self.requests += len(missing)
        for holding in missing:
            holding.fields = versions.lock_fields(bodies.get(holding.newest.version_id, b""))


def load(s3: Any, backend: BackendConfig, shown: int = 0) -> History:
    """List everything and attribute the newest ``shown`` versions (0: all) exactly; refused
    (93) when there is nothing to recover from."""
    status = versions.versioning(s3, backend.bucket)
    versioned = status in ("Enabled", "Suspended")
    listing = versions.list_all(s3, backend, versioned)
    if not versioned and not listing.backups:
        raise TfwrapError(
            f"bucket {backend.bucket} keeps no versions of the state, and no state_backup copies exist: "
            f"nothing to recover from; `tfwrap bootstrap --bucket {backend.bucket} --fix` enables "
            "versioning (or set state_backup = true in .tfwrap.toml on a store without it)",
            exitcodes.NO_VERSIONING,
        )
    oldest = [v.written for v in (listing.state[:shown] if shown else listing.state)]
    near = attribution.since_release(listing.lock, min(oldest)) if oldest else []
    tied = attribution.ids_needed(near)
    bodies = versions.read_bodies(s3, backend, tied)
    ids = {name: str(versions.lock_fields(body).get("ID") or "") for name, body in bodies.items()}
    holdings = attribution.holdings(listing.lock, ids)
    state = listing.state
    if not versioned:
        # The current object, then its copies, newest first: no lock versions to attribute by.
        state = sorted(
            [*listing.state, *listing.backups], key=lambda v: (v.is_backup, -v.written.timestamp())
        )
    attributed = attribution.attribute(state, holdings)
    return History(
        backend, versioned, listing, holdings, attributed, requests=1 + listing.requests + len(bodies)
    )


def undo_plan(history: History, s3: Any, shown: int = 0) -> attribution.UndoPlan:
    """What ``undo`` restores: by lock holdings when versioned (among the newest ``shown``
    versions, those ``load`` attributed exactly), else the newest backup older than the
    current state."""
    if history.versioned:
        return attribution.undo_plan(history.attributed[:shown] if shown else history.attributed)
    current = [v for v in history.entries if not v.is_backup]
    if not current:
        return attribution.UndoPlan(None, None, (), "there is no current state")
    history.read_summaries(s3, history.entries)
    now = history.summaries[versions.ident(current[0])].serial or 0
    older = [v for v in history.listing.backups if (history.summaries[versions.ident(v)].serial or 0) < now]
    older.sort(key=lambda v: -(history.summaries[versions.ident(v)].serial or 0))
    if not older:
        return attribution.UndoPlan(None, None, (), "no state_backup copy is older than the current state")
    return attribution.UndoPlan(older[0], None, (current[0],))
