"""The least-privilege IAM policy for Terraform's S3 backend plus tfwrap's checks and heartbeat.

Pure functions: a ``Target`` (bucket, key, workspaces, KMS key, DynamoDB table) in, a policy
document out. Each statement has one purpose and a readable ``Sid``; every S3 action in the
base policy is one Terraform or tfwrap calls (DOMAIN.md, "What the user's tutorial gets
wrong"). The tutorial's ``s3:PutObjectLegalHold`` / ``s3:PutObjectRetention`` are not here:
Terraform's lock is a conditional write (``If-None-Match``), never an Object Lock.

``s3:ListBucket`` carries no ``s3:prefix`` condition, on purpose. Terraform lists
``<workspace_key_prefix>/`` (``env:/``) to find workspaces, so a condition would have to
allow that prefix, not the state key as often written. More importantly, S3 answers 404
for a missing object only to a caller allowed ``s3:ListBucket``; others get 403. Terraform's
first read of a new state, its read of a lock released a moment ago, and tfwrap's cleanup
after Terraform released its lock all rely on that 404.

tfwrap's heartbeat needs nothing more on S3: it reads and rewrites ``<key>.tflock``
(``GetObject``, ``PutObject`` with ``If-Match``) and removes it (``DeleteObject``), which
Terraform's own lock statement already allows. With dual locking it adds
``dynamodb:UpdateItem`` (the item's ``Info``), in its own statement.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from tfwrap.backend.config import JOURNAL_SUFFIX

Statement = dict[str, Any]
Policy = dict[str, Any]

VERSION = "2012-10-17"
DEFAULT_WORKSPACE_KEY_PREFIX = "env:"

# Read by tfwrap's checks (tfwrap.aws.bucket_facts): one action per probe.
CHECK_ACTIONS = (
    "s3:GetBucketVersioning",
    "s3:GetBucketObjectLockConfiguration",
    "s3:GetEncryptionConfiguration",
    "s3:GetBucketPublicAccessBlock",
    "s3:GetBucketPolicy",  # tfwrap.aws.policy_facts: conditional-write denials, TLS-only
    "s3:GetBucketLogging",
)
STATE_ACTIONS = ("s3:GetObject", "s3:PutObject")
LOCK_FILE_ACTIONS = ("s3:GetObject", "s3:PutObject", "s3:DeleteObject")
# tfwrap's conditional-write probe: scratch objects next to the lock object,
# ``<key>.tfwrap-probe-*`` (tfwrap.aws.probe.SCRATCH_MARK), created and removed by version ID
# (a versioned bucket keeps nothing of them), and the store's verdict shared beside them
# (``<key>.tfwrap-probe-verdict.json``, read and written).
PROBE_ACTIONS = ("s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion")
PROBE_SUFFIX = ".tfwrap-probe-*"
# With `acl` in the backend every PutObject (state and lock file) carries x-amz-acl, which S3
# authorises as s3:PutObjectAcl too.
ACL_ACTIONS = ("s3:PutObjectAcl",)
# kms:DescribeKey: tfwrap's check that the key is usable (with a GenerateDataKey dry run).
KMS_ACTIONS = ("kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey")
# Dual locking: the lock item and the state digest item (``<bucket>/<key>-md5``).
DYNAMODB_LOCK_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem")
DYNAMODB_HEARTBEAT_ACTIONS = ("dynamodb:UpdateItem",)
# `tfwrap migrate`, on top: the Get* of versioning and Object Lock are in TfwrapChecks, and
# reading, refreshing or deleting each state's digest item (dynamodb:GetItem/PutItem/DeleteItem
# on `<bucket>/<state key>-md5`) is in TerraformDynamoDBLock. It reads every workspace's state
# (to compute those digests), not only the current one's.
MIGRATION_STATE_ACTIONS = ("s3:GetObject",)
MIGRATION_BUCKET_ACTIONS = ("s3:PutBucketVersioning", "s3:PutBucketObjectLockConfiguration")
MIGRATION_TABLE_ACTIONS = ("dynamodb:DescribeTable", "dynamodb:Scan", "dynamodb:DeleteTable")
# The migration journal, next to the state: <state key>.tfwrap-migrate.json.
MIGRATION_JOURNAL_ACTIONS = ("s3:GetObject", "s3:PutObject")
MIGRATION_JOURNAL_SUFFIX = JOURNAL_SUFFIX
# `tfwrap state history|diff|restore|undo`, on top: listing the versions of the state and its
# lock (s3:ListBucketVersions, on the bucket) and reading old ones (s3:GetObjectVersion). The
# restore's writes (state PUT, the lock, the digest item) are Terraform's own actions, above.
RECOVERY_BUCKET_ACTIONS = ("s3:ListBucketVersions",)
RECOVERY_VERSION_ACTIONS = ("s3:GetObjectVersion",)
# state_backup = true: copies next to the state, <state key>.tfwrap-backup/<serial>.
RECOVERY_BACKUP_ACTIONS = ("s3:GetObject", "s3:PutObject", "s3:DeleteObject")
RECOVERY_BACKUP_SUFFIX = ".tfwrap-backup/*"


@dataclass(frozen=True)
class Target:
    """What the policy is for: one backend, as Terraform's ``backend "s3"`` names it."""

    bucket: str
    key: str
    workspace: str = "default"
    workspace_key_prefix: str = DEFAULT_WORKSPACE_KEY_PREFIX
    all_workspaces: bool = False
    object_acl: bool = False
    kms_key_arn: str | None = None
    dynamodb_table: str | None = None
    region: str = "*"
    account_id: str = "*"
    partition: str = "aws"


def workspace_state_key(key: str, workspace: str, prefix: str = DEFAULT_WORKSPACE_KEY_PREFIX) -> str:
    """The state object's key in ``workspace``, as Terraform builds it (``path.Join``)."""
    if workspace == "default":
        return key
    return f"{prefix}/{workspace}/{key}" if prefix else f"{workspace}/{key}"


def state_keys(target: Target) -> list[str]:
    """The state keys the policy covers: the current workspace's, or every workspace's."""
    if target.all_workspaces:
        return [target.key, workspace_state_key(target.key, "*", target.workspace_key_prefix)]
    return [workspace_state_key(target.key, target.workspace, target.workspace_key_prefix)]


def bucket_arn(target: Target) -> str:
    return f"arn:{target.partition}:s3:::{target.bucket}"


def object_arns(target: Target, suffix: str = "") -> list[str]:
    return [f"{bucket_arn(target)}/{key}{suffix}" for key in state_keys(target)]


def table_arn(target: Target) -> str:
    return (
        f"arn:{target.partition}:dynamodb:{target.region}:{target.account_id}:table/{target.dynamodb_table}"
    )


def kms_key_arn(key: str, *, region: str = "*", account_id: str = "*", partition: str = "aws") -> str:
    """A KMS key ARN from an ARN or a bare key ID; IAM cannot match a key by its alias."""
    if ":alias/" in key or key.startswith("alias/"):
        raise ValueError(f"{key} is a KMS alias; IAM policies name KMS keys by key ARN: pass the key's ARN")
    if key.startswith("arn:"):
        if ":kms:" not in key or ":key/" not in key:
            raise ValueError(f"{key} is not a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID)")
        return key
    return f"arn:{partition}:kms:{region}:{account_id}:key/{key}"


def _statement(sid: str, actions: tuple[str, ...], resources: list[str]) -> Statement:
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Action": list(actions),
        "Resource": resources[0] if len(resources) == 1 else resources,
    }


def statements(target: Target, *, migration: bool = False, recovery: bool = False) -> list[Statement]:
    """Every statement, one per purpose, in a stable order."""
    if migration and not target.dynamodb_table:
        raise ValueError("the migration policy needs the DynamoDB lock table (--dynamodb-table)")
    bucket = bucket_arn(target)
    acl = ACL_ACTIONS if target.object_acl else ()
    found = [
        _statement("TerraformListBucket", ("s3:ListBucket",), [bucket]),
        _statement("TerraformState", STATE_ACTIONS + acl, object_arns(target)),
        _statement("TerraformLockFile", LOCK_FILE_ACTIONS + acl, object_arns(target, ".tflock")),
        _statement("TfwrapChecks", CHECK_ACTIONS, [bucket]),
        _statement("TfwrapProbe", PROBE_ACTIONS, object_arns(target, PROBE_SUFFIX)),
    ]
    if target.kms_key_arn:
        found.append(_statement("TerraformKMS", KMS_ACTIONS, [target.kms_key_arn]))
    if target.dynamodb_table:
        table = table_arn(target)
        found.append(_statement("TerraformDynamoDBLock", DYNAMODB_LOCK_ACTIONS, [table]))
        found.append(_statement("TfwrapHeartbeatDynamoDB", DYNAMODB_HEARTBEAT_ACTIONS, [table]))
    if migration:
        found.append(_statement("TfwrapMigrationBucket", MIGRATION_BUCKET_ACTIONS, [bucket]))
        found.append(_statement("TfwrapMigrationTable", MIGRATION_TABLE_ACTIONS, [table_arn(target)]))
        journals = object_arns(target, MIGRATION_JOURNAL_SUFFIX)
        found.append(_statement("TfwrapMigrationJournal", MIGRATION_JOURNAL_ACTIONS, journals))
        if not target.all_workspaces:  # else TerraformState already allows reading them all
            every = object_arns(dataclasses.replace(target, all_workspaces=True))
            found.append(_statement("TfwrapMigrationStates", MIGRATION_STATE_ACTIONS, every))
    if recovery:
        found.append(_statement("TfwrapRecoveryList", RECOVERY_BUCKET_ACTIONS, [bucket]))
        old = object_arns(target) + object_arns(target, ".tflock")
        found.append(_statement("TfwrapRecoveryVersions", RECOVERY_VERSION_ACTIONS, old))
        backups = object_arns(target, RECOVERY_BACKUP_SUFFIX)
        found.append(_statement("TfwrapRecoveryBackups", RECOVERY_BACKUP_ACTIONS, backups))
    return found


def policy(target: Target, *, migration: bool = False, recovery: bool = False) -> Policy:
    """The IAM policy document (identity-based: attach it to the user or role running Terraform)."""
    return {"Version": VERSION, "Statement": statements(target, migration=migration, recovery=recovery)}
