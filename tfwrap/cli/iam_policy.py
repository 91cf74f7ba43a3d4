"""``tfwrap iam-policy``: the least-privilege IAM policy for Terraform and tfwrap, as JSON.

The policy itself is built in ``tfwrap.iam``; this command only finds what it is for (the
options, else the backend configuration of ``-chdir DIR`` as ``tfwrap check`` reads it)
and prints it on stdout.
"""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING

import click

from tfwrap import exitcodes
from tfwrap.errors import TfwrapError

if TYPE_CHECKING:
    from tfwrap.backend.config import BackendConfig


@click.command("iam-policy")
@click.option(
    "-chdir",
    "--chdir",
    "chdir",
    default=None,
    help="Read bucket, key, workspace, KMS key and DynamoDB table from this directory's backend.",
)
@click.option("--bucket", help="The state bucket (instead of reading the backend configuration).")
@click.option("--key", help="The state key, as `key` in the backend block.")
@click.option("--workspace", help="The workspace whose state key to allow (default: the current one).")
@click.option(
    "--workspace-key-prefix",
    help="The backend's workspace_key_prefix (default: the backend's, else env:).",
)
@click.option("--workspaces", "all_workspaces", is_flag=True, help="Allow every workspace's state and lock.")
@click.option("--acl", "object_acl", is_flag=True, help="The backend sets `acl` (default: whether it does).")
@click.option(
    "--kms-key",
    help="KMS key ARN the state is encrypted with (kms_key_id, or the bucket's default key).",
)
@click.option("--dynamodb-table", help="DynamoDB lock table (dual locking), default: the backend's.")
@click.option("--region", help="Region in the DynamoDB/KMS ARNs (default: the backend's, else *).")
@click.option("--account-id", default="*", show_default=True, help="Account in the DynamoDB/KMS ARNs.")
@click.option("--partition", help="ARN partition (default: from the region: aws, aws-cn, aws-us-gov).")
@click.option("--migration", is_flag=True, help="Add what `tfwrap migrate` needs on top.")
@click.option("--recovery", is_flag=True, help="Add what `tfwrap state history|diff|restore|undo` needs.")
def iam_policy(  # click passes every option by name
    *,
    chdir: str | None,
    bucket: str | None,
    key: str | None,
    workspace: str | None,
    workspace_key_prefix: str | None,
    all_workspaces: bool,
    object_acl: bool,
    kms_key: str | None,
    dynamodb_table: str | None,
    region: str | None,
    account_id: str,
    partition: str | None,
    migration: bool,
    recovery: bool,
) -> None:
    """Print the least-privilege IAM policy (JSON) for Terraform plus tfwrap's checks and heartbeat.

    One statement per purpose: listing the bucket, the state object, the lock file, tfwrap's
    checks, and with --kms-key / --dynamodb-table / --migration what those need. No
    legal-hold or retention action: Terraform's lock file is a conditional write.
    """
    from tfwrap import iam
    from tfwrap.bootstrap import names

    settings: dict[str, object] = {}
    current_workspace = "default"
    if chdir is not None or not (bucket and key):
        backend = _backend(chdir or ".")
        if backend is not None:
            settings, current_workspace = dict(backend.settings), backend.workspace
            if region is None and backend.region:
                region = backend.region
    bucket = bucket or str(settings.get("bucket") or "")
    key = key or str(settings.get("key") or "")
    if not bucket or not key:
        raise click.UsageError('pass --bucket and --key, or -chdir DIR with a backend "s3" block')
    if workspace_key_prefix is None:
        found = settings.get("workspace_key_prefix")
        workspace_key_prefix = iam.DEFAULT_WORKSPACE_KEY_PREFIX if found is None else str(found)
    region = region or "*"
    partition = partition or names.partition(region)
    kms_key = kms_key or _str(settings.get("kms_key_id"))
    try:
        target = iam.Target(
            bucket=bucket,
            key=key,
            workspace=workspace or current_workspace,
            workspace_key_prefix=workspace_key_prefix,
            all_workspaces=all_workspaces,
            object_acl=object_acl or bool(settings.get("acl")),
            kms_key_arn=(
                iam.kms_key_arn(kms_key, region=region, account_id=account_id, partition=partition)
                if kms_key
                else None
            ),
            dynamodb_table=dynamodb_table or _str(settings.get("dynamodb_table")),
            region=region,
            account_id=account_id,
            partition=partition,
        )
        document = iam.policy(target, migration=migration, recovery=recovery)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    sys.stdout.write(json.dumps(document, indent=2) + "\n")


def _backend(chdir: str) -> BackendConfig | None:
    """The S3 backend configuration of ``chdir`` (as ``terraform plan`` would use it), or None."""
    from tfwrap.backend import config
    from tfwrap.terraform import commands

    if not os.path.isdir(chdir):
        raise TfwrapError(f"{chdir} is not a directory; pass -chdir DIR", exitcodes.USAGE)
    backend = config.load(commands.parse([f"-chdir={chdir}", "plan"]))
    if not backend.backend_type:
        return None
    if not backend.is_s3:
        raise TfwrapError(
            f"the backend in {chdir} is {backend.backend_type!r}, not s3: no IAM policy to print",
            exitcodes.USAGE,
        )
    return backend


def _str(value: object) -> str | None:
    return str(value) if value else None
