"""The bucket policy statements bootstrap reports but never writes, and the log target's policy.

- A statement that denies ``PutObject``/``DeleteObject`` without ``If-None-Match``/``If-Match``
  on Terraform's keys breaks Terraform (its state write and unlock are unconditional): it is
  drift, never fixed (a statement of yours is never removed), and bootstrap never adds one.
- Server access logging needs the target bucket to let the logging service write to it
  (``logging.s3.amazonaws.com``, ``s3:PutObject`` under the prefix, for this bucket and
  account); without it ``PutBucketLogging`` fails with ``InvalidTargetBucketForLogging``. The
  statement is added to the target bucket's policy first, beside what is there.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from tfwrap import exitcodes
from tfwrap.checks.bucket_policy import conditional_write_denials
from tfwrap.errors import TfwrapError

if TYPE_CHECKING:
    from tfwrap.bootstrap.bucket import Bucket
    from tfwrap.bootstrap.standard import Change

LOG_DELIVERY_SID = "TfwrapS3ServerAccessLogs"
LOG_SERVICE = "logging.s3.amazonaws.com"


def conditional_write_drift(bucket: Bucket, statements: list[Any]) -> list[Change]:
    from tfwrap.bootstrap.standard import Change

    keys = [k.removesuffix(".tflock") for k in bucket.standard.lock_keys] or ["*"]
    keys += [f"{k}.tflock" for k in keys if k != "*"]
    sids = conditional_write_denials([s for s in statements if isinstance(s, dict)], bucket.name, keys)
    return [
        Change(
            "bucket policy",
            f"statement {sid} denies PutObject/DeleteObject without If-None-Match/If-Match",
            "(unchanged)",
            f"bucket policy statement {sid} denies Terraform's unconditional state write and unlock "
            "(they would fail with 403)",
            why_not=f"a statement is never removed; exclude the state and .tflock keys from {sid} by hand",
        )
        for sid in sids
    ]


def _delivery_statement(target: str, prefix: str, source: Bucket, account: str | None) -> dict[str, Any]:
    from tfwrap.bootstrap import names

    partition = names.partition(source.standard.region)
    condition: dict[str, Any] = {"ArnLike": {"aws:SourceArn": source.standard.arn}}
    if account:
        condition["StringEquals"] = {"aws:SourceAccount": account}
    return {
        "Sid": LOG_DELIVERY_SID,
        "Effect": "Allow",
        "Principal": {"Service": LOG_SERVICE},
        "Action": "s3:PutObject",
        "Resource": f"arn:{partition}:s3:::{target}/{prefix}*",
        "Condition": condition,
    }


def _allows_delivery(statement: Any, target: str) -> bool:
    if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
        return False
    principal = statement.get("Principal") or {}
    services = principal.get("Service") if isinstance(principal, dict) else None
    actions = statement.get("Action")
    actions = [actions] if isinstance(actions, str) else list(actions or [])
    resources = statement.get("Resource")
    resources = [resources] if isinstance(resources, str) else list(resources or [])
    return (
        LOG_SERVICE in ([services] if isinstance(services, str) else list(services or []))
        and bool({"s3:PutObject", "s3:*", "*"} & set(actions))
        and any(f":::{target}/" in r for r in resources)
    )


def grant_log_delivery(bucket: Bucket) -> None:
    """Let the logging service write to the target bucket (merged into its policy) if it cannot."""
    from botocore.exceptions import ClientError

    from tfwrap.bootstrap.bucket import refusal

    target, prefix = str(bucket.standard.log_bucket), bucket.standard.log_prefix
    try:
        text = bucket.s3.get_bucket_policy(Bucket=target)["Policy"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "NoSuchBucketPolicy":
            raise refusal(exc, "s3:GetBucketPolicy", target, bucket.endpoint) from exc
        text = ""
    doc: dict[str, Any] = json.loads(text) if text else {"Version": "2012-10-17", "Statement": []}
    statements = doc.get("Statement") or []
    statements = [statements] if isinstance(statements, dict) else list(statements)
    if any(_allows_delivery(s, target) for s in statements):
        return
    account = _account(bucket)
    merged = {**doc, "Statement": [*statements, _delivery_statement(target, prefix, bucket, account)]}
    try:
        bucket.s3.put_bucket_policy(Bucket=target, Policy=json.dumps(merged))
    except ClientError as exc:
        raise refusal(exc, "s3:PutBucketPolicy", target, bucket.endpoint) from exc


def _account(bucket: Bucket) -> str | None:
    """The bucket owner's account, for ``aws:SourceAccount`` (None when it cannot be told)."""
    try:
        owner = bucket.s3.get_bucket_acl(Bucket=bucket.name).get("Owner") or {}
    except Exception:  # noqa: BLE001 - the condition is narrower with it, valid without it
        return None
    found = str(owner.get("ID") or "")
    return found if found.isdigit() and len(found) == 12 else None


def logging_refused(exc: BaseException, bucket: Bucket) -> TfwrapError | None:
    """The hint for ``InvalidTargetBucketForLogging`` (None for any other failure)."""
    from tfwrap.aws.errors import error_code

    if error_code(exc) != "InvalidTargetBucketForLogging":
        return None
    target = bucket.standard.log_bucket
    return TfwrapError(
        f"s3:PutBucketLogging on bucket {bucket.name!r} was refused: the target bucket {target!r} "
        f"does not let {LOG_SERVICE} write to it, or is in another region or account; "
        f"grant it in {target}'s bucket policy (statement {LOG_DELIVERY_SID}) or pick another --log-bucket",
        exitcodes.BLOCKED,
    )
