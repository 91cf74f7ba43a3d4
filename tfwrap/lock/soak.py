"""The soak hold: during a migration's soak, a run on S3 native locking also holds the
DynamoDB lock item that a colleague still on the old configuration would take.

After ``tfwrap migrate finalize`` removed ``dynamodb_table`` and before ``cleanup-table``
deleted the table, a straggler locks only in DynamoDB and a run on ``use_lockfile`` only in
S3: on their own they exclude nobody, and both write the state. While the journal names the
table, a supervised run takes the item first (as Terraform would, only if absent), keeps it
for the whole run, and removes exactly what it took (docs/decisions/112-the-soak-hold.md).
"""

from __future__ import annotations

import time

from tfwrap.output import say

# Imported before Terraform starts on every supervised run: the standard library and the
# cache only, until the cache says this state is in its soak.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from tfwrap.backend.config import BackendConfig
    from tfwrap.lock.lockfile import DynamoLock
    from tfwrap.terraform.commands import Command

    Read = tuple[str, float]  # the journal's lock table ("": none) and when it was read

OPERATION = "tfwrap soak hold (a run on use_lockfile)"
LEASE_SECONDS = 3600  # never renewed: alive or dead is told by its process, not its age
POLL = 1.0  # how often a held item is read again within -lock-timeout

# What this process's check learned about the soak (the prefetch child's read, or the cached
# verdict's): the supervised run then asks neither the cache nor S3 again.
_checked: tuple[Command, Read] | None = None


class SoakHold:
    """The item this run took in the journal's table; ``release`` removes exactly it."""

    def __init__(self, item: DynamoLock, lock_id: str) -> None:
        self.item, self.lock_id = item, lock_id

    def release(self) -> None:
        from tfwrap.aws.errors import error_code

        try:
            if self.item.delete_if_held_by(self.lock_id):
                return
            why = "it is no longer this run's"
        except Exception as exc:  # noqa: BLE001 - said; Terraform's status stands
            why = error_code(exc) or type(exc).__name__
        say(
            f"could not remove this run's soak hold {self.item.lock_id} in DynamoDB table "
            f"{self.item.table} ({why}); `tfwrap lock status` shows it"
        )


def known(command: Command, read: object) -> None:
    """Remember what the check read for ``command`` (``[table, when]``, as the verdict and the
    prefetch child carry it; anything else is no answer and leaves ``table`` to ask)."""
    global _checked  # noqa: PLW0603 - one check, one supervised run, one process
    if isinstance(read, list | tuple) and len(read) == 2 and isinstance(read[0], str):
        _checked = (command, (read[0], float(read[1])))


def table(command: Command, ttl: float) -> tuple[BackendConfig, str] | None:
    """The backend and the journal's lock table when this state is in its soak; None
    otherwise. Cached by the configuration's files, so a warm run makes no AWS call; read
    by the cold check's prefetch, so a cold run makes none here either."""
    from tfwrap.findings import cache

    checked = _checked[1] if _checked is not None and _checked[0] is command else None
    if checked is not None and time.time() - checked[1] <= ttl:
        if not checked[0]:
            return None
        from tfwrap.backend import config

        backend = config.load(command) if command.name == "init" else config.load_initialised(command)
        if backend is not None and backend.is_s3 and backend.bucket and not backend.dynamodb_table:
            return backend, checked[0]
    key = cache.config_fingerprint(command)
    cached = cache.get("soak", key, max_age=ttl)
    if cached is not None and not cached.get("table"):
        return None
    from tfwrap.backend import config

    backend = config.load(command) if command.name == "init" else config.load_initialised(command)
    if backend is None or not backend.is_s3 or not backend.bucket or backend.dynamodb_table:
        cache.put("soak", key, {"table": ""})  # decided by the files alone
        return None
    if cached is not None:
        return backend, str(cached["table"])
    from tfwrap.aws import clients
    from tfwrap.aws.errors import error_code
    from tfwrap.lock.current import migration_table

    try:
        found = migration_table(clients.client(backend, "s3"), backend)
    except Exception as exc:  # noqa: BLE001 - no client: Terraform's own check says why
        say(f"could not read this state's migration journal ({error_code(exc) or type(exc).__name__})")
        return None
    cache.put("soak", key, {"table": found})
    return (backend, found) if found else None


def settled(command: Command, backend: BackendConfig | None, ttl: float, use_cache: bool) -> Read | None:
    """In the prefetch child: the soak where no AWS call is needed (decided by the files, or
    cached as ``table`` caches it); None when the journal must be read."""
    from tfwrap.findings import cache

    key = cache.config_fingerprint(command)
    if backend is None or not backend.is_s3 or not backend.bucket or backend.dynamodb_table:
        cache.put("soak", key, {"table": ""})  # decided by the files alone
        return "", time.time()
    cached = cache.get("soak", key, max_age=ttl) if use_cache else None
    if cached is None:
        return None
    return str(cached.get("table") or ""), float(cached.get("_time") or 0)


def read(command: Command, backend: BackendConfig, s3: Any) -> Read | None:
    """In the prefetch child: the journal read with the check's client and cached; None when
    it could not be read (the supervised run asks again, with retries). Never raises."""
    from tfwrap.findings import cache

    try:
        found = journal_table(s3, backend)
    except Exception:  # noqa: BLE001 - no answer: asked again before Terraform starts
        return None
    if found is None:
        return None
    cache.put("soak", cache.config_fingerprint(command), {"table": found})
    return found, time.time()


def journal_table(s3: Any, backend: Any) -> str | None:
    """As ``migration_table``, but None when the journal could not be read (a refusal, the
    endpoint down): "" is only for no journal, a journal naming no table, or none to name.
    The cold check's prefetch reads it in one try and leaves a failure to the supervised run,
    which asks again with retries (docs/decisions/112-the-soak-hold.md)."""
    import json

    from tfwrap.aws.errors import error_code
    from tfwrap.backend.journal import watched

    if backend.dynamodb_table:
        return ""
    key = backend.get("sse_customer_key")
    params = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": str(key)} if key else {}
    try:
        body = s3.get_object(Bucket=backend.bucket, Key=backend.journal_key, **params)["Body"].read()
    except Exception as exc:  # noqa: BLE001 - a missing journal is an answer, the rest is not
        return "" if error_code(exc) in ("NoSuchKey", "404") else None
    try:
        data = json.loads(body)
    except ValueError:  # a journal that is not JSON names no table, as before
        return ""
    return watched(data) if isinstance(data, dict) else ""


def take(backend: BackendConfig, table_name: str, timeout: float) -> SoakHold | None:
    """Take the item within ``timeout`` seconds (``-lock-timeout``), or refuse (86) naming
    its holder. None when the table is gone (``cleanup-table`` ran: nothing to hold)."""
    import dataclasses
    import time
    import uuid

    from tfwrap import exitcodes
    from tfwrap.aws import clients
    from tfwrap.aws.errors import error_code
    from tfwrap.errors import TfwrapError
    from tfwrap.lock import info as lockinfo
    from tfwrap.lock.lockfile import DynamoLock

    with_table = dataclasses.replace(backend, settings={**backend.settings, "dynamodb_table": table_name})
    item = DynamoLock(clients.client(with_table, "dynamodb"), with_table)
    lock_id = str(uuid.uuid4())
    body = lockinfo.own_lock_body(lock_id, OPERATION, item.lock_id, LEASE_SECONDS).decode()
    deadline = time.monotonic() + timeout
    while True:
        try:
            if item.create(body):
                return SoakHold(item, lock_id)
            holder = item.read()
        except Exception as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return None
            raise TfwrapError(
                f"cannot hold the state's DynamoDB lock item in table {table_name} during the "
                f"migration's soak ({error_code(exc) or type(exc).__name__}); grant dynamodb:PutItem, "
                "GetItem and DeleteItem on it, or finish with `tfwrap migrate cleanup-table`",
                exitcodes.AWS_FAILURE,
            ) from exc
        if holder is not None and time.monotonic() >= deadline:
            raise TfwrapError(_held_line(table_name, holder), exitcodes.LOCK_HELD)
        time.sleep(POLL)


def _held_line(table_name: str, holder: dict[str, Any]) -> str:
    from tfwrap.lock import info as lockinfo

    who = lockinfo.bounded(str(holder.get("Who") or "?"))
    since = lockinfo.bounded(str(holder.get("Created") or "?"))
    operation = str(holder.get("Operation") or "?").removeprefix("OperationType")
    return (
        f"the state lock is held in DynamoDB table {table_name} by {who} since {since} "
        f"({operation}): a run still on dynamodb_table during the migration's soak; Terraform was "
        "not started. Wait for it (-lock-timeout), and have them pull the backend change"
    )
