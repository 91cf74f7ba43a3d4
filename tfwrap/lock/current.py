"""The lock of one state as read now: the ``.tflock`` object, the DynamoDB item, the store's
clock at that moment, and the verdict on them (``verdict.py``).

Reading costs one GetObject (its answer carries the body, the ETag, ``Last-Modified`` and
the store's ``Date``) and, with ``dynamodb_table``, one GetItem.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from tfwrap.lock import verdict
from tfwrap.lock.lockfile import DynamoLock, LockObject, S3LockFile


@dataclass
class CurrentLock:
    """What was read, and what tfwrap thinks of it; removals act on exactly this."""

    lockfile: S3LockFile
    dynamo: DynamoLock | None
    s3: LockObject | None
    item: dict[str, Any] | None
    verdict: verdict.Verdict | None  # None: no lock held
    server_time: dt.datetime | None  # the store's clock when it was read

    @property
    def locked(self) -> bool:
        return self.s3 is not None or self.item is not None

    @property
    def where(self) -> str:
        return f"s3://{self.lockfile.bucket}/{self.lockfile.key}"

    @property
    def item_where(self) -> str:
        if self.dynamo is None:
            return "no DynamoDB item"
        return f"DynamoDB item LockID={self.dynamo.lock_id} in {self.dynamo.table}"


def read(lockfile: S3LockFile, dynamo: DynamoLock | None, here: verdict.Here | None = None) -> CurrentLock:
    """Read the lock (object, then item) and judge it; AWS errors propagate."""
    s3 = lockfile.read()
    item = dynamo.read() if dynamo is not None else None
    return judged(lockfile, dynamo, s3, item, here)


def judged(
    lockfile: S3LockFile,
    dynamo: DynamoLock | None,
    s3: LockObject | None,
    item: dict[str, Any] | None,
    here: verdict.Here | None = None,
) -> CurrentLock:
    """The verdict on parts just read (``lockfile.read()`` first: its answer dates them)."""
    server_now = lockfile.server_time
    s3_fields = s3.fields if s3 is not None else None
    s3_age, item_age = verdict.ages(s3_fields, s3.written if s3 else None, item, server_now)
    judged = verdict.judge_lock(s3_fields, item, s3_age=s3_age, dynamodb_age=item_age, here=here)
    return CurrentLock(lockfile, dynamo, s3, item, judged, server_now)


def migration_table(s3: Any, backend: Any) -> str:
    """After ``tfwrap migrate finalize`` removed ``dynamodb_table`` and before ``cleanup-table``
    deleted the table: the journal's lock table, where a run still on the old configuration
    locks ("" otherwise, or when the journal cannot be read). Without it a straggler's lock
    would show as "no lock held" (docs/decisions/061-stragglers-by-evidence.md)."""
    from tfwrap.lock.soak import journal_table

    return journal_table(s3, backend) or ""
