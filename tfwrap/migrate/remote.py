"""What the migration reads and changes in AWS, each call named by its IAM action.

A failure becomes one line: what could not be done, why, and (when access was denied) the
exact action to grant on the exact resource. Reads use the same clients as the checks
(same endpoint, region, credentials and role as Terraform).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from tfwrap import exitcodes
from tfwrap.aws import sse
from tfwrap.aws.errors import error_code, refused
from tfwrap.backend.config import BackendConfig
from tfwrap.errors import TfwrapError


def aws(what: str, action: str, resource: str, endpoint: str | None) -> AbstractContextManager[None]:
    """An AWS failure as a one-line refusal (exit 80) naming the IAM action to grant."""
    return refused(
        what, endpoint, action=action, grant=f"{action} on {resource} to the identity running tfwrap"
    )


def aws_call(remote: Remote, what: str) -> Any:
    """For a few calls to S3 and DynamoDB together: a failure names the bucket's endpoint."""
    return aws(
        what,
        "s3:GetObject/s3:DeleteObject, dynamodb:GetItem/dynamodb:DeleteItem",
        "the lock",
        remote.backend.s3_endpoint,
    )


@dataclass(frozen=True)
class StateObject:
    key: str
    body: bytes
    etag: str

    @property
    def md5(self) -> str:
        return hashlib.md5(self.body).hexdigest()  # noqa: S324 - Terraform's digest is MD5

    @property
    def doc(self) -> dict[str, Any]:
        try:
            doc = json.loads(self.body)
        except ValueError:
            return {}
        return doc if isinstance(doc, dict) else {}

    @property
    def serial(self) -> int | None:
        value = self.doc.get("serial")
        return value if isinstance(value, int) else None

    @property
    def lineage(self) -> str:
        return str(self.doc.get("lineage") or "")


class Remote:
    """The state bucket and the lock table of one backend."""

    def __init__(self, backend: BackendConfig) -> None:
        self.backend = backend
        self._s3: Any = None
        self._ddb: Any = None

    @property
    def bucket(self) -> str:
        return self.backend.bucket

    @property
    def s3(self) -> Any:
        if self._s3 is None:
            from tfwrap.aws import clients

            with aws("create an S3 client", "sts:AssumeRole", "the backend's role", self.backend.s3_endpoint):
                self._s3 = clients.client(self.backend, "s3")
        return self._s3

    @property
    def ddb(self) -> Any:
        if self._ddb is None:
            from tfwrap.aws import clients

            endpoint = self.backend.dynamodb_endpoint
            with aws("create a DynamoDB client", "sts:AssumeRole", "the backend's role", endpoint):
                self._ddb = clients.client(self.backend, "dynamodb")
        return self._ddb

    def _s3_call(self, what: str, action: str, key: str | None = None) -> Any:
        resource = f"arn:aws:s3:::{self.bucket}" + (f"/{key}" if key is not None else "")
        return aws(what, action, resource, self.backend.s3_endpoint)

    def _ddb_call(self, what: str, action: str, table: str) -> Any:
        return aws(what, action, f"DynamoDB table {table}", self.backend.dynamodb_endpoint)

    def _sse_c(self) -> dict[str, Any]:
        return sse.params(self.backend)  # as Terraform sends it (backend or AWS_SSE_CUSTOMER_KEY)

    # --- the state object --------------------------------------------------------------------

    def read_state(self, key: str | None = None) -> StateObject | None:
        key = key or self.backend.state_key
        where = f"s3://{self.bucket}/{key}"
        with self._s3_call(f"read the state object {where}", "s3:GetObject", key):
            try:
                got = self.s3.get_object(Bucket=self.bucket, Key=key, **self._sse_c())
            except Exception as exc:
                if error_code(exc) in ("NoSuchKey", "404"):
                    return None
                raise
            body = got["Body"].read()
        return StateObject(key, body, str(got.get("ETag", "")))

    def state_etag(self, key: str) -> str | None:
        with self._s3_call(f"read s3://{self.bucket}/{key}", "s3:GetObject", key):
            try:
                got = self.s3.head_object(Bucket=self.bucket, Key=key, **self._sse_c())
            except Exception as exc:
                if error_code(exc) in ("NoSuchKey", "404", "NotFound"):
                    return None
                raise
        return str(got.get("ETag", ""))

    def workspace_state_keys(self) -> list[str]:
        """This configuration's state keys: the default workspace's and every other one's."""
        backend = self.backend
        prefix = backend.settings.get("workspace_key_prefix")
        prefix = "env:" if prefix is None else str(prefix)
        keys = [backend.key]
        listing = prefix + "/" if prefix else ""
        with self._s3_call(f"list the workspaces in bucket {self.bucket}", "s3:ListBucket"):
            pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=listing)
            for page in pages:
                for obj in page.get("Contents") or []:
                    rest = str(obj["Key"])[len(listing) :]
                    workspace, _, key = rest.partition("/")
                    if workspace and key == backend.key:
                        keys.append(str(obj["Key"]))
        if backend.state_key not in keys:
            keys.append(backend.state_key)
        return sorted(set(keys), key=keys.index)

    # --- the migration journal, next to the state --------------------------------------------

    def journal(self) -> JournalObject:
        return JournalObject(self, self.backend.journal_key)

    # --- the bucket --------------------------------------------------------------------------

    def versioning(self) -> str:
        with self._s3_call(f"read bucket {self.bucket}'s versioning", "s3:GetBucketVersioning"):
            return str(self.s3.get_bucket_versioning(Bucket=self.bucket).get("Status") or "")

    def enable_versioning(self) -> None:
        with self._s3_call(f"enable versioning on bucket {self.bucket}", "s3:PutBucketVersioning"):
            self.s3.put_bucket_versioning(Bucket=self.bucket, VersioningConfiguration={"Status": "Enabled"})
        self.forget_cached_facts()

    def object_lock(self) -> dict[str, Any]:
        with self._s3_call(f"read bucket {self.bucket}'s Object Lock", "s3:GetBucketObjectLockConfiguration"):
            from tfwrap.aws.bucket_facts import read_object_lock

            return read_object_lock(self.s3, self.bucket)

    def enable_object_lock(self) -> None:
        with self._s3_call(
            f"enable Object Lock on bucket {self.bucket}", "s3:PutBucketObjectLockConfiguration"
        ):
            self.s3.put_object_lock_configuration(
                Bucket=self.bucket, ObjectLockConfiguration={"ObjectLockEnabled": "Enabled"}
            )
        self.forget_cached_facts()

    def forget_cached_facts(self) -> None:
        """The shim must see the change on its next run, not after the cache's TTL."""
        from tfwrap.findings import cache

        cache.forget_bucket(self.backend.s3_endpoint, self.backend.region, self.bucket)

    # --- locks -------------------------------------------------------------------------------

    def with_table(self, table: str) -> BackendConfig:
        return dataclasses.replace(self.backend, settings={**self.backend.settings, "dynamodb_table": table})

    def lock_holders(self, table: str | None) -> list[tuple[str, dict[str, Any]]]:
        """Who holds this state's lock now (where, Terraform's lock fields): the ``.tflock``
        object and, with ``table``, the DynamoDB item."""
        from tfwrap.lock.lockfile import DynamoLock, S3LockFile

        backend = self.backend
        held: list[tuple[str, dict[str, Any]]] = []
        where = f"s3://{self.bucket}/{backend.lock_key}"
        with self._s3_call(f"read the lock {where}", "s3:GetObject", backend.lock_key):
            lock = S3LockFile(self.s3, backend).read()
        if lock is not None:
            held.append((f"{where} by {_holder(lock.fields)}", lock.fields))
        if table:
            with self._ddb_call(f"read the lock item in DynamoDB table {table}", "dynamodb:GetItem", table):
                item = DynamoLock(self.ddb, self.with_table(table)).read()
            if item is not None:
                lock_id = f"{self.bucket}/{backend.state_key}"
                held.append((f"DynamoDB item LockID={lock_id} in {table} by {_holder(item)}", item))
        return held

    # --- the lock table ----------------------------------------------------------------------

    def describe_table(self, table: str) -> dict[str, Any] | None:
        with self._ddb_call(f"describe DynamoDB table {table}", "dynamodb:DescribeTable", table):
            try:
                described: dict[str, Any] = self.ddb.describe_table(TableName=table)["Table"]
            except Exception as exc:
                if error_code(exc) == "ResourceNotFoundException":
                    return None
                raise
        return described

    def digest(self, table: str, state_key: str) -> str | None:
        lock_id = f"{self.bucket}/{state_key}-md5"
        with self._ddb_call(f"read the digest item {lock_id} in {table}", "dynamodb:GetItem", table):
            item = self.ddb.get_item(
                TableName=table, Key={"LockID": {"S": lock_id}}, ConsistentRead=True
            ).get("Item")
        if not item:
            return None
        return str((item.get("Digest") or {}).get("S", ""))

    def delete_digest(self, table: str, state_key: str) -> None:
        lock_id = f"{self.bucket}/{state_key}-md5"
        with self._ddb_call(f"delete the digest item {lock_id} in {table}", "dynamodb:DeleteItem", table):
            self.ddb.delete_item(TableName=table, Key={"LockID": {"S": lock_id}})

    def put_digest(self, table: str, state_key: str, digest: str, expected: str | None) -> bool:
        """Set the digest if it is still ``expected`` (None: absent); False if it changed."""
        lock_id = f"{self.bucket}/{state_key}-md5"
        if expected is None:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(LockID)"}
        else:
            condition = {
                "ConditionExpression": "Digest = :old",
                "ExpressionAttributeValues": {":old": {"S": expected}},
            }
        with self._ddb_call(f"write the digest item {lock_id} in {table}", "dynamodb:PutItem", table):
            try:
                self.ddb.put_item(
                    TableName=table,
                    Item={"LockID": {"S": lock_id}, "Digest": {"S": digest}},
                    **condition,
                )
            except Exception as exc:
                if error_code(exc) == "ConditionalCheckFailedException":
                    return False
                raise
        return True

    def scan(self, table: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        with self._ddb_call(f"scan DynamoDB table {table}", "dynamodb:Scan", table):
            for page in self.ddb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
                items.extend(page.get("Items") or [])
        return items

    def delete_table(self, table: str) -> None:
        with self._ddb_call(f"delete DynamoDB table {table}", "dynamodb:DeleteTable", table):
            self.ddb.delete_table(TableName=table)


def _holder(fields: dict[str, Any]) -> str:
    who = fields.get("Who") or "unknown"
    operation = str(fields.get("Operation") or "").removeprefix("OperationType") or "?"
    return f"{who} ({operation}, since {fields.get('Created') or '?'}, ID {fields.get('ID') or '?'})"


class JournalObject:
    """The migration journal's object: read with its ETag, written only over that ETag."""

    def __init__(self, remote: Remote, key: str) -> None:
        self.remote = remote
        self.key = key
        self.where = f"s3://{remote.bucket}/{key}"

    def read(self) -> tuple[str, str] | None:
        remote = self.remote
        with remote._s3_call(f"read the migration journal {self.where}", "s3:GetObject", self.key):
            try:
                got = remote.s3.get_object(Bucket=remote.bucket, Key=self.key, **remote._sse_c())
            except Exception as exc:
                if error_code(exc) in ("NoSuchKey", "404"):
                    return None
                raise
            return got["Body"].read().decode(), str(got.get("ETag", ""))

    def write(self, text: str, etag: str | None) -> str:
        remote = self.remote
        params: dict[str, Any] = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
        kms = remote.backend.get("kms_key_id")
        if kms:
            params.update(ServerSideEncryption="aws:kms", SSEKMSKeyId=str(kms))
        with remote._s3_call(f"write the migration journal {self.where}", "s3:PutObject", self.key):
            try:
                put = remote.s3.put_object(
                    Bucket=remote.bucket,
                    Key=self.key,
                    Body=text.encode(),
                    ContentType="application/json",
                    **params,
                    **remote._sse_c(),
                )
            except Exception as exc:
                if error_code(exc) in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                    raise TfwrapError(
                        f"the migration journal {self.where} was changed by another tfwrap migrate while "
                        "this one ran: let that one finish, then run this command again",
                        exitcodes.LOCK_HELD,
                    ) from exc
                raise
        return str(put.get("ETag", ""))
