"""Every lock in view: the ``.tflock`` objects of some buckets and the DynamoDB lock items of
the tables the stacks name, each read and judged exactly as ``tfwrap lock status`` judges one.

Read: per bucket one ListObjectsV2 (every page), per table one Scan (every page), then one
GetObject per lock, run concurrently with a bound. Decide: ``current.judged`` (the same
verdict as ``lock status``). What a row shows and removing stale rows are the caller's
(``cli/lock.py``, ``bulk.py``). Why the rows are read this way:
docs/decisions/070-lock-listing.md.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from tfwrap.backend.config import BackendConfig
from tfwrap.lock import current, verdict
from tfwrap.lock.current import CurrentLock
from tfwrap.lock.lockfile import DynamoLock, S3LockFile, item_info, server_date

SUFFIX = ".tflock"
CONCURRENCY = 32  # requests in flight at once: loopback and AWS alike answer this many well


@dataclass(frozen=True)
class StackStates:
    """The states one stack may lock: its key in every workspace."""

    key: str
    workspace_prefix: str  # "" when workspace_key_prefix is set to ""
    stack: Path

    def owns(self, state_key: str) -> bool:
        if state_key == self.key:
            return True
        head = f"{self.workspace_prefix}/" if self.workspace_prefix else ""
        tail = f"/{self.key}"
        if not (state_key.startswith(head) and state_key.endswith(tail)):
            return False
        workspace = state_key[len(head) : len(state_key) - len(tail)]
        return bool(workspace) and "/" not in workspace


@dataclass
class Place:
    """One bucket (reached as ``backend`` reaches it) and what of it to list."""

    backend: BackendConfig  # endpoint, region, credentials, bucket; its key is not used
    prefixes: set[str] = field(default_factory=set)  # list under these ("" for all)
    states: list[StackStates] = field(default_factory=list)  # the stacks' states in this bucket
    tables: set[str] = field(default_factory=set)  # DynamoDB lock tables the stacks name

    @property
    def bucket(self) -> str:
        return self.backend.bucket

    def stack_of(self, state_key: str) -> Path | None:
        return next((s.stack for s in self.states if s.owns(state_key)), None)

    def wants(self, state_key: str) -> bool:
        """A stack's state, or a key under a prefix asked for by name."""
        return self.stack_of(state_key) is not None or any(state_key.startswith(p) for p in self.prefixes)


@dataclass
class Row:
    """One lock: where it is, which stack it belongs to (if known), and as read and judged."""

    backend: BackendConfig  # pointed at this state (and its table, when an item was found)
    found: CurrentLock
    stack: Path | None = None

    @property
    def bucket(self) -> str:
        return self.backend.bucket

    @property
    def state_key(self) -> str:
        return self.backend.state_key

    @property
    def verdict(self) -> str:
        return self.found.verdict.verdict if self.found.verdict else ""

    @property
    def age(self) -> int | None:
        """Seconds since the lock was last written, by the store's clock (None: unknown)."""
        s3 = self.found.s3
        now = self.found.server_time
        if s3 is not None and s3.written is not None and now is not None:
            return max(0, int((now - s3.written).total_seconds()))
        v = self.found.verdict
        return v.heartbeat_age if v is not None else None


@dataclass(frozen=True)
class Problem:
    """A bucket, table or lock that could not be read: what, and why (one line)."""

    where: str
    detail: str


@dataclass
class Listing:
    rows: list[Row] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    buckets: int = 0
    requests: int = 0  # calls made to S3 and DynamoDB, for the benchmark


def _identity(backend: BackendConfig) -> tuple[Any, ...]:
    """What decides which client reaches a bucket: two stacks alike share one."""
    return (
        backend.s3_endpoint,
        backend.dynamodb_endpoint,
        backend.region,
        backend.profile,
        backend.path_style,
        str(sorted(backend.assume_role.items())),
        backend.get("access_key"),
        backend.get("shared_credentials_files") and str(backend.get("shared_credentials_files")),
        backend.get("insecure"),
    )


def places_from_stacks(stacks: Iterable[Any]) -> list[Place]:
    """One place per bucket (and the way it is reached) of the stacks ``audit`` discovers."""
    by_bucket: dict[tuple[Any, ...], Place] = {}
    for stack in stacks:
        backend: BackendConfig = stack.backend
        if getattr(stack, "error", None) or not backend.bucket or not backend.key:
            continue
        ident = (backend.bucket, *_identity(backend))
        place = by_bucket.setdefault(ident, Place(backend))
        prefix = backend.get("workspace_key_prefix")
        place.states.append(StackStates(backend.key, "env:" if prefix is None else str(prefix), stack.path))
        if backend.dynamodb_table:
            place.tables.add(backend.dynamodb_table)
    return list(by_bucket.values())


def place_for_bucket(bucket: str, prefix: str, like: BackendConfig | None = None) -> Place:
    """A bucket named on the command line: reached through the environment (or as ``like``)."""
    if like is not None:
        backend = dataclasses.replace(like, settings={**like.settings, "bucket": bucket, "key": ""})
    else:
        here = Path.cwd()
        backend = BackendConfig(here, here / ".terraform", "default", "s3", {"bucket": bucket})
    return Place(backend, prefixes={prefix})


class _Clients:
    """One client per service and identity, shared by every thread (botocore clients are)."""

    def __init__(self) -> None:
        self._made: dict[tuple[Any, ...], Any] = {}
        self._lock = threading.Lock()
        self.requests = 0

    def get(self, backend: BackendConfig, service: str) -> Any:
        from tfwrap.aws import clients

        key = (service, *_identity(backend))
        with self._lock:
            if key not in self._made:
                made = clients.client(backend, service, pool=CONCURRENCY)
                made.meta.events.register("before-send", self._count)
                self._made[key] = made
            return self._made[key]

    def _count(self, **_: Any) -> None:
        with self._lock:
            self.requests += 1


def _state_backend(base: BackendConfig, state_key: str) -> BackendConfig:
    """``base`` pointed at one state: its lock key is ``state_key + ".tflock"``."""
    return dataclasses.replace(base, workspace="default", settings={**base.settings, "key": state_key})


def _problem(exc: BaseException, what: str, endpoint: str | None) -> Problem:
    from tfwrap.aws.errors import classify

    failure = classify(exc, endpoint)
    return Problem(what, f"{failure.detail} [{failure.kind}]")


def _list_bucket(place: Place, clients: _Clients) -> tuple[list[str], dt.datetime | None]:
    """The state keys of every ``.tflock`` object the place wants, and the store's clock."""
    s3 = clients.get(place.backend, "s3")
    keys: list[str] = []
    when: dt.datetime | None = None
    for prefix in sorted(place.prefixes or {""}):
        params: dict[str, Any] = {"Bucket": place.bucket, "Prefix": prefix}
        while True:
            page = s3.list_objects_v2(**params)
            when = when or server_date(page)
            for obj in page.get("Contents") or []:
                key = str(obj["Key"])
                if key.endswith(SUFFIX) and place.wants(key[: -len(SUFFIX)]):
                    keys.append(key[: -len(SUFFIX)])
            if not page.get("IsTruncated"):
                break
            params["ContinuationToken"] = page["NextContinuationToken"]
    return sorted(set(keys)), when


def _scan_table(place: Place, table: str, clients: _Clients) -> dict[str, dict[str, Any]]:
    """State key -> the lock item of every state of this bucket the place wants."""
    ddb = clients.get(place.backend, "dynamodb")
    head = f"{place.bucket}/"
    items: dict[str, dict[str, Any]] = {}
    params: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        page = ddb.scan(**params)
        for item in page.get("Items") or []:
            lock_id = str((item.get("LockID") or {}).get("S", ""))
            state_key = lock_id[len(head) :]
            if not lock_id.startswith(head) or lock_id.endswith("-md5") or not place.wants(state_key):
                continue
            info = item_info(item)
            if info is not None:
                items[state_key] = info
        if not page.get("LastEvaluatedKey"):
            return items
        params["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _read_place(
    place: Place, clients: _Clients, pool: ThreadPoolExecutor, out: Listing, here: verdict.Here
) -> list[Any]:
    """List one bucket and its tables; return the pending reads of its locks."""
    try:
        keys, when = _list_bucket(place, clients)
    except (BotoCoreError, ClientError) as exc:  # one bucket's failure is reported, the others go on
        out.problems.append(_problem(exc, f"s3://{place.bucket}", place.backend.s3_endpoint))
        return []
    by_table: dict[str, dict[str, dict[str, Any]]] = {}
    for table in sorted(place.tables):
        try:
            by_table[table] = _scan_table(place, table, clients)
        except (BotoCoreError, ClientError) as exc:  # reported; the bucket's objects are still listed
            out.problems.append(_problem(exc, f"DynamoDB table {table}", place.backend.dynamodb_endpoint))
    states = set(keys) | {k for items in by_table.values() for k in items}
    listed = set(keys)
    return [
        pool.submit(
            _read_one,
            place,
            state_key,
            has_object=state_key in listed,
            by_table=by_table,
            when=when,
            clients=clients,
            here=here,
        )
        for state_key in sorted(states)
    ]


def _read_one(
    place: Place,
    state_key: str,
    *,
    has_object: bool,
    by_table: dict[str, dict[str, dict[str, Any]]],
    when: dt.datetime | None,
    clients: _Clients,
    here: verdict.Here,
) -> Row | Problem | None:
    backend = _state_backend(place.backend, state_key)
    lockfile = S3LockFile(clients.get(backend, "s3"), backend)
    try:
        s3 = lockfile.read() if has_object else None
    except (BotoCoreError, ClientError) as exc:  # reported as a lock that could not be read
        return _problem(exc, f"s3://{place.bucket}/{lockfile.key}", backend.s3_endpoint)
    if not has_object:
        lockfile.server_time = when  # no object to GET: the listing's answer dates the item
    dynamo: DynamoLock | None = None
    item: dict[str, Any] | None = None
    shown = backend
    # The item of a state in a table its stack names is part of its lock (dual locking, or a
    # straggler still on DynamoDB), as ``lock status`` reads it.
    for table, items in sorted(by_table.items()):
        if state_key in items:
            with_table = dataclasses.replace(backend, settings={**backend.settings, "dynamodb_table": table})
            dynamo = DynamoLock(clients.get(with_table, "dynamodb"), with_table)
            item, shown = items[state_key], with_table
            break
    found = current.judged(lockfile, dynamo, s3, item, here)
    if not found.locked:
        return None  # released between the listing and the read: no lock to show
    return Row(shown, found, place.stack_of(state_key))


def collect(places: list[Place], concurrency: int = CONCURRENCY) -> Listing:
    """Read and judge every lock of these places (AWS failures become ``problems``)."""
    out = Listing(buckets=len({p.bucket for p in places}))
    clients = _Clients()
    # This machine (boot id, PID namespace, machine id, host name) once for every row, not
    # read again from /proc and /etc for each of a thousand locks.
    here = verdict.this_machine()
    with ThreadPoolExecutor(max(1, concurrency)) as pool:
        listed = list(pool.map(lambda p: _read_place(p, clients, pool, out, here), places))
        seen: set[tuple[str, str]] = set()
        for pending in listed:
            for future in pending:
                got = future.result()
                if isinstance(got, Problem):
                    out.problems.append(got)
                elif got is not None and (got.bucket, got.state_key) not in seen:
                    seen.add((got.bucket, got.state_key))
                    out.rows.append(got)
    out.rows.sort(key=lambda r: (r.bucket, r.state_key))
    out.requests = clients.requests
    return out
