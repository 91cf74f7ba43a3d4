"""Terraform's lock, where it lives: the ``<state key>.tflock`` object and the DynamoDB item.

Terraform releases with GetObject, compare ``ID``, then an *unconditional* DeleteObject
(DOMAIN.md). So every write tfwrap makes to a lock is conditional: a rewrite carries
``If-Match`` with the ETag last seen (it can never bring back a released lock), and a
delete carries both the holder's ``ID`` check and ``If-Match`` (it can never remove a
lock taken a moment later by someone else).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any

from tfwrap.aws import sse
from tfwrap.aws.errors import error_code
from tfwrap.backend.config import BackendConfig

_INFO_FIELD = re.compile(rb'"Info":"(?:[^"\\]|\\.)*"')


class LockChanged(Exception):
    """The lock is gone or was rewritten since we read it: leave it alone."""


@dataclass(frozen=True)
class LockObject:
    """A ``.tflock`` object as read: raw body, parsed fields, ETag, encryption."""

    body: bytes
    fields: dict[str, Any]
    etag: str
    content_type: str
    encryption: str | None
    kms_key: str | None
    written: dt.datetime | None = None  # Last-Modified: the store's clock
    server_time: dt.datetime | None = None  # the Date of the response that read it

    @property
    def id(self) -> str:
        return str(self.fields.get("ID", ""))

    @property
    def info(self) -> str:
        return str(self.fields.get("Info", ""))


def splice_info(body: bytes, info: str) -> bytes:
    """The same body with only ``Info`` replaced: every other byte stays as Terraform wrote it."""
    encoded = b'"Info":' + json.dumps(info).encode()
    new, count = _INFO_FIELD.subn(lambda _: encoded, body, count=1)
    if count != 1:
        raise ValueError("lock body has no Info field")
    return new


def server_date(response: Any) -> dt.datetime | None:
    """The ``Date`` header of an S3 answer (or of the error it raised): the store's clock."""
    from email.utils import parsedate_to_datetime

    headers = (response or {}).get("ResponseMetadata", {}).get("HTTPHeaders", {})
    try:
        return parsedate_to_datetime(headers["date"]).astimezone(dt.timezone.utc)
    except (KeyError, TypeError, ValueError):
        return None


_code = error_code


class S3LockFile:
    """Conditional operations on one state's ``.tflock`` object."""

    def __init__(self, s3: Any, backend: BackendConfig) -> None:
        self.s3 = s3
        self.bucket = backend.bucket
        self.key = backend.lock_key
        self.checksum = backend.get("skip_s3_checksum") is not True
        self.acl = backend.get("acl")
        self._sse = sse.params(backend)  # as Terraform sends it (backend or AWS_SSE_CUSTOMER_KEY)
        self.sse_customer_key = self._sse.get("SSECustomerKey")
        self.server_time: dt.datetime | None = None  # the store's clock at the last read

    def _sse_c(self) -> dict[str, Any]:
        return self._sse

    def read(self) -> LockObject | None:
        """The lock as it is now, or None when there is none."""
        try:
            got = self.s3.get_object(Bucket=self.bucket, Key=self.key, **self._sse_c())
        except Exception as exc:
            if _code(exc) in ("NoSuchKey", "404"):
                self.server_time = server_date(getattr(exc, "response", None))
                return None
            raise
        self.server_time = server_date(got)
        body = got["Body"].read()
        try:
            fields = json.loads(body)
        except ValueError:
            fields = {}
        return LockObject(
            body=body,
            fields=fields if isinstance(fields, dict) else {},
            etag=got["ETag"],
            content_type=got.get("ContentType") or "application/json",
            encryption=got.get("ServerSideEncryption"),
            kms_key=got.get("SSEKMSKeyId"),
            written=got.get("LastModified"),
            server_time=self.server_time,
        )

    def _put(self, body: bytes, content_type: str, **extra: str) -> Any:
        """PUT the lock with Terraform's settings (SSE-C, checksum, ACL) plus ``extra``
        (the condition, the SSE/KMS settings)."""
        params: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": self.key,
            "Body": body,
            "ContentType": content_type,
            **self._sse_c(),
            **extra,
        }
        if self.checksum:
            params["ChecksumAlgorithm"] = "SHA256"
        if self.acl:
            params["ACL"] = self.acl
        return self.s3.put_object(**params)

    def create(self, body: bytes, encryption: dict[str, str] | None = None) -> str | None:
        """Take the lock as Terraform does (create-only PUT, the state's SSE/KMS settings in
        ``encryption``); its ETag, or None when someone holds it."""
        try:
            put = self._put(body, "application/json", IfNoneMatch="*", **(encryption or {}))
        except Exception as exc:
            if _code(exc) in ("PreconditionFailed", "412", "ConditionalRequestConflict", "409"):
                return None
            raise
        return str(put["ETag"])

    def rewrite_info(self, current: LockObject, info: str) -> LockObject:
        """Write ``info`` into the lock if it is still exactly ``current``; else LockChanged."""
        body = splice_info(current.body, info)
        encryption: dict[str, str] = {}
        if current.encryption == "aws:kms":
            encryption["ServerSideEncryption"] = "aws:kms"
            if current.kms_key:
                encryption["SSEKMSKeyId"] = current.kms_key
        elif current.encryption == "AES256" and not self.sse_customer_key:
            encryption["ServerSideEncryption"] = "AES256"
        try:
            put = self._put(body, current.content_type, IfMatch=current.etag, **encryption)
        except Exception as exc:
            # A 409 ConditionalRequestConflict is "try again" (DOMAIN.md), not a changed lock.
            if _code(exc) in ("PreconditionFailed", "NoSuchKey", "412", "404"):
                raise LockChanged(str(exc)) from exc
            raise
        fields = dict(current.fields, Info=info)
        return LockObject(
            body, fields, put["ETag"], current.content_type, current.encryption, current.kms_key
        )

    def delete_if_held_by(self, lock_id: str) -> LockObject | None:
        """Delete the lock only if its ``ID`` is ``lock_id`` (and it did not change since read)."""
        current = self.read()
        if current is None or current.id != lock_id:
            return None
        return current if self.delete_exact(current) else None

    def delete_exact(self, judged: LockObject) -> bool:
        """Delete the lock only if it is byte for byte the one read (same ETag).

        A heartbeat renewal keeps the ID but changes the ETag: a lock renewed while a
        human was deciding survives (``tfwrap lock clear --stale``).
        """
        try:
            self.s3.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=judged.etag)
        except Exception as exc:
            if _code(exc) in ("PreconditionFailed", "NoSuchKey", "412", "404"):
                return False
            raise
        return True


def item_info(item: dict[str, Any] | None) -> dict[str, Any] | None:
    """A DynamoDB lock item (as GetItem or Scan returns it) as ``DynamoLock.read`` gives it:
    Terraform's lock fields from ``Info``, plus ``_raw``, the exact text a removal compares."""
    if not item or "S" not in (item.get("Info") or {}):
        return None
    try:
        info = json.loads(item["Info"]["S"])
    except ValueError:
        return None
    if not isinstance(info, dict):
        return None
    info["_raw"] = item["Info"]["S"]
    return info


class DynamoLock:
    """The DynamoDB lock item of dual locking: ``LockID = "<bucket>/<state key>"``."""

    def __init__(self, ddb: Any, backend: BackendConfig) -> None:
        self.ddb = ddb
        self.table = backend.dynamodb_table
        self.lock_id = f"{backend.bucket}/{backend.state_key}"

    def read(self) -> dict[str, Any] | None:
        """The item's ``Info`` JSON (Terraform's lock info), or None when there is no lock."""
        item = self.ddb.get_item(
            TableName=self.table, Key={"LockID": {"S": self.lock_id}}, ConsistentRead=True
        ).get("Item")
        return item_info(item)

    def create(self, raw: str) -> bool:
        """Take the item as Terraform does (only if absent); False when it is held."""
        try:
            self.ddb.put_item(
                TableName=self.table,
                Item={"LockID": {"S": self.lock_id}, "Info": {"S": raw}},
                ConditionExpression="attribute_not_exists(LockID)",
            )
        except Exception as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def rewrite_info(self, current: dict[str, Any], info: str) -> dict[str, Any]:
        """Set the item's ``Info.Info`` only if the item is still exactly ``current``."""
        raw = current["_raw"]
        new_raw = splice_info(raw.encode(), info).decode()
        try:
            self.ddb.update_item(
                TableName=self.table,
                Key={"LockID": {"S": self.lock_id}},
                UpdateExpression="SET #i = :new",
                ConditionExpression="#i = :old",  # a released item is never recreated
                ExpressionAttributeNames={"#i": "Info"},
                ExpressionAttributeValues={":new": {"S": new_raw}, ":old": {"S": raw}},
            )
        except Exception as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                raise LockChanged(str(exc)) from exc
            raise
        return {**current, "Info": info, "_raw": new_raw}

    def delete_if_held_by(self, lock_id: str) -> bool:
        current = self.read()
        if current is None or current.get("ID") != lock_id:
            return False
        return self.delete_exact(current)

    def delete_exact(self, judged: dict[str, Any]) -> bool:
        """Delete the item only if its ``Info`` is still exactly the one read."""
        try:
            self.ddb.delete_item(
                TableName=self.table,
                Key={"LockID": {"S": self.lock_id}},
                ConditionExpression="#i = :old",
                ExpressionAttributeNames={"#i": "Info"},
                ExpressionAttributeValues={":old": {"S": judged["_raw"]}},
            )
        except Exception as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True
