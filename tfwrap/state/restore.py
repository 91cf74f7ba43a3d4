"""Writing an earlier state version back as the current one, under the state lock.

Order (docs/decisions/082-restore-under-the-lock.md):

1. take the lock as Terraform does: create-only PUT of ``<key>.tflock`` (then the DynamoDB
   item with ``dynamodb_table``), its ``Info`` a tfwrap heartbeat line and its
   ``Operation`` saying what is going on; a lock held by anyone else is refused (86);
2. the current version must still be the one the decision was made on (else 94);
3. PUT the chosen body with ``serial`` = current + 1, ``If-Match`` the current ETag (a write
   that lands meanwhile makes it fail, 94), with Terraform's encryption settings;
4. with ``dynamodb_table``: the digest item ``<bucket>/<key>-md5`` = MD5 of what was written;
5. read it back with the real Terraform (``state pull``, output never shown) and compare;
6. release the lock (item, then object), whatever happened.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from typing import Any

from tfwrap import exitcodes, testhooks
from tfwrap.aws.errors import error_code
from tfwrap.backend.config import BackendConfig, to_bool
from tfwrap.errors import TfwrapError
from tfwrap.lock import info as lockinfo
from tfwrap.lock.lockfile import DynamoLock, S3LockFile
from tfwrap.state import summary
from tfwrap.state.versions import Version, sse_c

OPERATION = "tfwrap state restore"
LEASE_SECONDS = 300  # a restore takes seconds; a crashed one is stale after this
_CONFLICT = ("PreconditionFailed", "412", "ConditionalRequestConflict", "409", "NoSuchKey", "404")


class StateLock:
    """The state lock, taken by tfwrap for a restore, released exactly as taken."""

    def __init__(self, s3: Any, ddb: Any | None, backend: BackendConfig) -> None:
        self.lockfile = S3LockFile(s3, backend)
        self.dynamo = DynamoLock(ddb, backend) if ddb is not None and backend.dynamodb_table else None
        self.backend = backend
        self.lock_id = str(uuid.uuid4())
        self.held_s3 = False
        self.held_item = False

    def body(self, doing: str) -> bytes:
        path = f"{self.backend.bucket}/{self.backend.state_key}"
        return lockinfo.own_lock_body(self.lock_id, f"{OPERATION} ({doing})", path, LEASE_SECONDS)

    def take(self, doing: str) -> None:
        """Take both parts, or neither; a part held by another holder is refused (86)."""
        body = self.body(doing)
        settings = write_params(self.backend)
        encryption = {k: v for k, v in settings.items() if k in ("ServerSideEncryption", "SSEKMSKeyId")}
        if self.lockfile.create(body, encryption) is None:
            raise _held(self)
        self.held_s3 = True
        if self.dynamo is not None:
            if not self.dynamo.create(body.decode()):
                self.release()
                raise _held(self)
            self.held_item = True

    def release(self) -> list[str]:
        """Remove what this restore took, and only that; returns what could not be removed."""
        left = []
        if self.held_item and self.dynamo is not None:
            try:
                if self.dynamo.delete_if_held_by(self.lock_id):
                    self.held_item = False
            except Exception as exc:  # noqa: BLE001 - said below, with the ID to clear it by
                left.append(f"DynamoDB item ({error_code(exc) or type(exc).__name__})")
            if self.held_item:
                left.append(f"DynamoDB item {self.dynamo.lock_id}")
        if self.held_s3:
            try:
                if self.lockfile.delete_if_held_by(self.lock_id) is not None:
                    self.held_s3 = False
            except Exception as exc:  # noqa: BLE001 - same
                left.append(f".tflock ({error_code(exc) or type(exc).__name__})")
            if self.held_s3:
                left.append(f"s3://{self.lockfile.bucket}/{self.lockfile.key}")
        return left


def _held(lock: StateLock) -> TfwrapError:
    """The shim's verdict line for the holder that has the lock (exit 86)."""
    from tfwrap.lock import current, report

    found = current.read(lock.lockfile, lock.dynamo)
    return TfwrapError(f"state not restored: {report.verdict_line(found)}", exitcodes.LOCK_HELD)


def current_version(s3: Any, backend: BackendConfig, versioned: bool) -> tuple[str, str] | None:
    """(version ID, ETag) of the state as it is now, or None when there is none."""
    try:
        head = s3.head_object(Bucket=backend.bucket, Key=backend.state_key, **sse_c(backend))
    except Exception as exc:
        if error_code(exc) in ("NoSuchKey", "404", "NotFound"):
            return None
        raise
    version_id = str(head.get("VersionId") or "null") if versioned else "current"
    return version_id, str(head.get("ETag") or "")


def write_params(backend: BackendConfig) -> dict[str, Any]:
    """What Terraform sends with a state PUT: content type, encryption, checksum, ACL."""
    params: dict[str, Any] = {"ContentType": "application/json", **sse_c(backend)}
    kms = backend.get("kms_key_id")
    if kms and not params.get("SSECustomerKey"):
        params.update(ServerSideEncryption="aws:kms", SSEKMSKeyId=str(kms))
    elif to_bool(backend.get("encrypt")) and not params.get("SSECustomerKey"):
        params["ServerSideEncryption"] = "AES256"
    if to_bool(backend.get("skip_s3_checksum")) is not True:
        params["ChecksumAlgorithm"] = "SHA256"
    if backend.get("acl"):
        params["ACL"] = str(backend.get("acl"))
    return params


_SECOND = 1.05  # a little over the store's one-second resolution


def write(
    s3: Any,
    ddb: Any | None,
    backend: BackendConfig,
    *,
    body: bytes,
    expected: Version | None,
    current_serial: int,
    versioned: bool,
) -> tuple[str, bytes, str | None]:
    """Steps 2-4 (the lock is held): the conditional PUT and the digest. ``expected`` None:
    the state is deleted now, and the PUT is create-only.

    The store's times have whole seconds, and ``history`` ties a state write to the lock
    holding around it: the write lands at least a second after the lock was taken and the
    lock is held a second after it, so no other holding ever shares the restore's second
    (docs/decisions/080-attributing-state-writes.md)."""
    now = current_version(s3, backend, versioned)
    unchanged = (
        now is None
        if expected is None
        else now is not None and now[1] == expected.etag and (not versioned or now[0] == expected.version_id)
    )
    if not unchanged:
        raise TfwrapError(
            f"state not restored: s3://{backend.bucket}/{backend.state_key} was written since it was "
            "read (another run wrote it): nothing was changed; look at `tfwrap state history` and run again",
            exitcodes.STATE_CHANGED,
        )
    time.sleep(_SECOND)  # the If-Match below still refuses a write that lands meanwhile
    pause = testhooks.get(testhooks.STATE_PAUSE_BEFORE_WRITE)
    if pause:
        time.sleep(float(pause))
    condition = {"IfMatch": now[1]} if now is not None else {"IfNoneMatch": "*"}
    new_body = summary.with_serial(body, current_serial + 1)
    try:
        put = s3.put_object(
            Bucket=backend.bucket, Key=backend.state_key, Body=new_body, **condition, **write_params(backend)
        )
    except Exception as exc:
        if error_code(exc) in _CONFLICT:
            raise TfwrapError(
                f"state not restored: s3://{backend.bucket}/{backend.state_key} was written while the "
                "restore held the lock (a run without the lock, -lock=false?): its write stands, nothing "
                "was overwritten; look at `tfwrap state history` and run again",
                exitcodes.STATE_CHANGED,
            ) from exc
        raise
    digest = None
    if ddb is not None and backend.dynamodb_table:
        digest = hashlib.md5(new_body).hexdigest()  # noqa: S324 - Terraform's digest is MD5
        ddb.put_item(
            TableName=backend.dynamodb_table,
            Item={"LockID": {"S": f"{backend.bucket}/{backend.state_key}-md5"}, "Digest": {"S": digest}},
        )
    time.sleep(_SECOND)
    return str(put.get("VersionId") or "current"), new_body, digest


def verify(backend: BackendConfig, expected: bytes) -> str:
    """Read the state back with the real Terraform (``state pull``) and compare; "" when it
    matches, else why not. Terraform's output holds the state: it is never shown."""
    from tfwrap import fs
    from tfwrap.terraform import realbin
    from tfwrap.terraform.child import Child
    from tfwrap.terraform.environment import child_environment

    if not (backend.data_dir / "terraform.tfstate").is_file():
        return "not verified: the directory is not initialised (run terraform init there)"
    private = fs.private_dir("tfwrap-state")
    if private is None:
        return "not verified: no private directory for Terraform's output (set TMPDIR)"
    try:
        real = realbin.find()
        out_path, err_path = os.path.join(private, "out"), os.path.join(private, "err")
        with open(out_path, "wb") as out, open(err_path, "wb") as err, open(os.devnull, "rb") as null:
            child = Child(
                real,
                ["state", "pull"],
                child_environment(dict(os.environ)),
                cwd=str(backend.workdir),
                stdio=(null.fileno(), out.fileno(), err.fileno()),
                terminal=False,
            )
            code = child.wait(grace=7.0)
        with open(out_path, "rb") as f:
            pulled = summary.summarise(f.read())
    finally:
        fs.remove_tree(private)
    want = summary.summarise(expected)
    if code != 0:
        return f"terraform state pull failed (exit {code}): the restored state could not be read back"
    if (pulled.serial, pulled.lineage, sorted(pulled.instances)) != (
        want.serial,
        want.lineage,
        sorted(want.instances),
    ):
        return (
            f"terraform state pull read serial {pulled.serial} lineage {pulled.lineage or '?'}, "
            f"expected serial {want.serial} lineage {want.lineage}"
        )
    return ""
