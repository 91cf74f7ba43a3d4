"""Reading a state's versions: the state object's, its ``.tflock``'s and the ``state_backup``
copies, from ONE ``ListObjectVersions`` of the state key as prefix (all three keys start
with it), then bodies by version ID, a few at a time.

Times are the store's (``Last-Modified``), never this machine's clock.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from tfwrap.aws import sse
from tfwrap.backend.config import BackendConfig

BACKUP_INFIX = ".tfwrap-backup/"  # <state key>.tfwrap-backup/<serial>
CURRENT = "current"  # the version ID shown for an object of a bucket without versioning
_PARALLEL = 8  # bodies read at once: enough to hide a round trip, few enough for any store


@dataclass(frozen=True)
class Version:
    """One version of one key, as listed (no body)."""

    key: str
    version_id: str
    written: dt.datetime  # Last-Modified, the store's clock
    size: int
    etag: str
    latest: bool
    deleted: bool = False  # a delete marker

    @property
    def is_backup(self) -> bool:
        return BACKUP_INFIX in self.key


@dataclass
class Listing:
    """Everything one listing of the state key's prefix found, newest first per key."""

    state: list[Version]
    lock: list[Version]
    backups: list[Version]
    requests: int = 0


def sse_c(backend: BackendConfig) -> dict[str, Any]:
    """The SSE-C parameters of every state read and write (none without a customer key), as
    Terraform sends them: ``tfwrap.aws.sse``, the one builder."""
    return sse.params(backend)


def backup_key(backend: BackendConfig, serial: int) -> str:
    return f"{backend.state_key}{BACKUP_INFIX}{serial:012d}"


def versioning(s3: Any, bucket: str) -> str:
    """``Enabled``, ``Suspended`` or "" (never enabled)."""
    return str(s3.get_bucket_versioning(Bucket=bucket).get("Status") or "")


def list_all(s3: Any, backend: BackendConfig, versioned: bool) -> Listing:
    """The versions of the state, its lock and its backups.

    A bucket without versioning has one "version" per object (``list_objects_v2``): the
    current state and the ``state_backup`` copies.
    """
    state_key, lock_key = backend.state_key, backend.lock_key
    listing = Listing([], [], [])
    if versioned:
        pages = s3.get_paginator("list_object_versions").paginate(Bucket=backend.bucket, Prefix=state_key)
        for page in pages:
            listing.requests += 1
            for entry in page.get("Versions") or []:
                _sort_into(listing, state_key, lock_key, _version(entry, deleted=False))
            for entry in page.get("DeleteMarkers") or []:
                _sort_into(listing, state_key, lock_key, _version(entry, deleted=True))
    else:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=backend.bucket, Prefix=state_key)
        for page in pages:
            listing.requests += 1
            for entry in page.get("Contents") or []:
                item = dict(entry, VersionId=CURRENT, IsLatest=True)
                _sort_into(listing, state_key, lock_key, _version(item, deleted=False))
    for versions in (listing.state, listing.lock, listing.backups):
        # Newest first; the listing's own order breaks ties (the store knows the true order
        # of one key's versions, its Last-Modified has whole seconds only).
        order = {id(v): i for i, v in enumerate(versions)}
        versions.sort(key=lambda v: (-v.written.timestamp(), order[id(v)]))
    return listing


def _sort_into(listing: Listing, state_key: str, lock_key: str, version: Version) -> None:
    if version.key == state_key:
        listing.state.append(version)
    elif version.key == lock_key:
        listing.lock.append(version)
    elif version.key.startswith(state_key + BACKUP_INFIX) and not version.deleted:
        listing.backups.append(version)


def _version(entry: dict[str, Any], deleted: bool) -> Version:
    return Version(
        key=str(entry["Key"]),
        version_id=str(entry.get("VersionId") or "null"),
        written=entry["LastModified"],
        size=int(entry.get("Size") or 0),
        etag=str(entry.get("ETag") or ""),
        latest=bool(entry.get("IsLatest")),
        deleted=deleted,
    )


def read_body(s3: Any, backend: BackendConfig, version: Version) -> bytes:
    """The body of one version (the current object when the bucket has no versioning)."""
    params: dict[str, Any] = {"Bucket": backend.bucket, "Key": version.key, **sse_c(backend)}
    if version.version_id != CURRENT:
        params["VersionId"] = version.version_id
    got = s3.get_object(**params)
    body: bytes = got["Body"].read()
    return body


def read_bodies(s3: Any, backend: BackendConfig, versions: Iterable[Version]) -> dict[str, bytes]:
    """Bodies by version ID (delete markers have none), read in parallel."""
    wanted = [v for v in versions if not v.deleted]
    with ThreadPoolExecutor(max_workers=_PARALLEL) as pool:
        bodies = list(pool.map(lambda v: read_body(s3, backend, v), wanted))
    return {_ident(v): body for v, body in zip(wanted, bodies, strict=True)}


def _ident(version: Version) -> str:
    return version.version_id if version.version_id != CURRENT else version.key


def ident(version: Version) -> str:
    """How a version is named to the user: its version ID, or a backup's key."""
    return _ident(version)


def lock_fields(body: bytes) -> dict[str, Any]:
    """Terraform's lock fields from a ``.tflock`` body ({} when it is not lock JSON)."""
    try:
        fields = json.loads(body)
    except ValueError:
        return {}
    return fields if isinstance(fields, dict) else {}
