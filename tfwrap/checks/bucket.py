"""Checks 2, 3 and 5: the bucket's versioning, Object Lock, encryption and public access block;
its policy, access logging and KMS key in ``bucket_policy.py``."""

from __future__ import annotations

from typing import Any

from tfwrap.backend.config import BackendConfig
from tfwrap.findings.finding import Finding, make

_PAB = "BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true"


def evaluate(backend: BackendConfig, facts: dict[str, Any]) -> list[Finding]:
    bucket = backend.bucket
    if "fatal" in facts:
        return [_unknown(bucket, facts["fatal"], backend)]
    found: list[Finding] = []
    for name, rule in (
        ("versioning", _versioning),
        ("object_lock", _object_lock),
        ("encryption", _encryption),
        ("public_access_block", _public_access),
    ):
        fact = facts.get(name) or {}
        if "error" in fact:
            found.append(_unknown(bucket, fact, backend))
        else:
            found.extend(rule(bucket, fact))
    from tfwrap.checks import bucket_policy

    found.extend(bucket_policy.evaluate(backend, facts))
    return found


def _unknown(bucket: str, failure: dict[str, Any], backend: BackendConfig) -> Finding:
    kind, detail, action = (
        failure.get("kind") or failure["error"],
        failure["detail"],
        failure["action"],
    )
    fixes = {
        "access-denied": f"grant {action} on arn:aws:s3:::{bucket} to the identity running Terraform",
        "no-credentials": "configure AWS credentials (AWS_PROFILE, `aws configure`, "
        "or the backend's profile)",
        "bad-credentials": "refresh the AWS credentials (e.g. `aws sso login`) and run again",
        "bucket-missing": "create it with versioning and Object Lock, or fix `bucket` in the backend block",
        "endpoint-unreachable": "check the network and the backend's endpoints.s3 / AWS_ENDPOINT_URL_S3",
    }
    what = {
        "access-denied": f"cannot check bucket {bucket!r}: {action} was denied",
        "bucket-missing": f"bucket {bucket!r} does not exist at {backend.s3_endpoint or 'AWS'}",
    }.get(kind, f"cannot check bucket {bucket!r}: {detail}")
    from tfwrap.checks.bucket_policy import lacks_api

    lacking = lacks_api(f"bucket {bucket!r}", failure, backend) if kind == "check-failed" else None
    return lacking or make(kind, what, fixes.get(kind, f"check that {action} works for this bucket"))


def _versioning(bucket: str, fact: dict[str, Any]) -> list[Finding]:
    status = fact.get("status") or ""
    if status == "Enabled":
        return []
    return [
        make(
            "bucket-versioning",
            f"bucket {bucket!r} versioning is {status or 'not enabled'}: a bad state write cannot be undone",
            f"aws s3api put-bucket-versioning --bucket {bucket} --versioning-configuration Status=Enabled",
        )
    ]


def _object_lock(bucket: str, fact: dict[str, Any]) -> list[Finding]:
    if not fact.get("enabled"):
        return [
            make(
                "bucket-object-lock",
                f"bucket {bucket!r} has no Object Lock, which your team's standard requires "
                "(Terraform's use_lockfile itself does not need it)",
                f"aws s3api put-object-lock-configuration --bucket {bucket} --object-lock-configuration "
                '\'{"ObjectLockEnabled":"Enabled"}\' (versioning first); or relax the standard with '
                'bucket-object-lock = "off" under [severity] in .tfwrap.toml',
            )
        ]
    retention = fact.get("retention") or {}
    if retention.get("Mode") == "COMPLIANCE":
        span = f"{retention.get('Days')} days" if retention.get("Days") else f"{retention.get('Years')} years"
        return [
            make(
                "object-lock-compliance-retention",
                f"bucket {bucket!r} has a COMPLIANCE default retention of {span}: every lock and "
                "heartbeat leaves a version nobody can delete until it expires",
                "use GOVERNANCE mode or no default retention for the state bucket",
            )
        ]
    return []


def _encryption(bucket: str, fact: dict[str, Any]) -> list[Finding]:
    if fact.get("algorithm"):
        return []
    rules = (
        '{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"AES256"},"BucketKeyEnabled":true}]}'
    )
    return [
        make(
            "bucket-encryption",
            f"bucket {bucket!r} has no default server-side encryption",
            f"aws s3api put-bucket-encryption --bucket {bucket} "
            f"--server-side-encryption-configuration '{rules}'",
        )
    ]


def _public_access(bucket: str, fact: dict[str, Any]) -> list[Finding]:
    off = [flag for flag, on in fact.items() if not on]
    if not off:
        return []
    return [
        make(
            "public-access-block",
            f"bucket {bucket!r} public access block is off for {', '.join(off)}",
            f"aws s3api put-public-access-block --bucket {bucket} --public-access-block-configuration {_PAB}",
        )
    ]
