"""The soak hold: during a migration's soak, a run on S3 native locking also holds the
DynamoDB lock item that a colleague still on the old configuration would take.

After ``tfwrap migrate finalize`` removed ``dynamodb_table`` and before ``cleanup-table``
deleted the table, a straggler locks only in DynamoDB and a run on ``use_lockfile`` only in
S3: on their own they exclude nobody, and both write the state. While the journal names the
table, a supervised run takes the item first (as Terraform would, only if absent), keeps it
for the whole run, and removes exactly what it took (docs/decisions/112-the-soak-hold.md).
"""

from __future__ import annotations

from tfwrap.output import say

# Imported before Terraform starts on every supervised run: the standard library and the
# cache only, until the cache says this state is in its soak.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from tfwrap.backend.config import BackendConfig
    from tfwrap.lock.lockfile import DynamoLock
    from tfwrap.terraform.commands import Command

OPERATION = "tfwrap soak hold (a run on use_lockfile)"
LEASE_SECONDS = 3600  # never renewed: alive or dead is told by its process, not its age
POLL = 1.0  # how often a held item is read again within -lock-timeout


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


def table(command: Command, ttl: float) -> tuple[BackendConfig, str] | None:
    """The backend and the journal's lock table when this state is in its soak; None
    otherwise. Cached by the configuration's files, so a warm run makes no AWS call."""
    from tfwrap.findings import cache

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
