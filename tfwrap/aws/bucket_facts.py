"""What the state bucket is: versioning, Object Lock, encryption, public access block (and its
policy, access logging and KMS key: ``policy_facts.py``).

Facts are plain JSON (cached between runs); each is either a value or the failure that
kept it unknown, with the IAM action that was needed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tfwrap.aws import clients
from tfwrap.aws.errors import classify, error_code
from tfwrap.backend.config import BackendConfig

Facts = dict[str, Any]
# A failure of one of these means no other call can succeed either: stop asking.
FATAL = frozenset({"no-credentials", "bad-credentials", "endpoint-unreachable", "bucket-missing"})
_PAB_FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


def gather(backend: BackendConfig, s3: Any = None) -> Facts:
    """Ask S3 about the bucket; never raises for AWS failures (they become facts).

    ``s3``: a client to reuse (``tfwrap audit`` asks many buckets through one).
    """
    facts: Facts = {}
    try:
        s3 = s3 or clients.client(backend, "s3", retries=False)  # the fast check: one try, short time-outs
    except Exception as exc:  # noqa: BLE001 - profile/role errors become a finding
        failure = classify(exc, backend.s3_endpoint)
        return {"fatal": {"kind": failure.kind, "detail": failure.detail, "action": "sts:AssumeRole"}}
    bucket = backend.bucket
    probes: tuple[tuple[str, str, Callable[[], dict[str, Any]]], ...] = (
        ("versioning", "s3:GetBucketVersioning", lambda: _versioning(s3, bucket)),
        ("object_lock", "s3:GetBucketObjectLockConfiguration", lambda: read_object_lock(s3, bucket)),
        ("encryption", "s3:GetEncryptionConfiguration", lambda: _encryption(s3, bucket)),
        (
            "public_access_block",
            "s3:GetBucketPublicAccessBlock",
            lambda: _public_access(s3, bucket),
        ),
    )
    for name, action, probe in probes:
        try:
            facts[name] = probe()
        except Exception as exc:  # noqa: BLE001 - every AWS failure is reported, none raised
            failure = classify(exc, backend.s3_endpoint)
            if failure.kind in FATAL:
                return {"fatal": {"kind": failure.kind, "detail": failure.detail, "action": action}}
            facts[name] = {"error": failure.kind, "detail": failure.detail, "action": action}
    from tfwrap.aws import policy_facts

    facts.update(policy_facts.gather(s3, backend, facts))
    return facts


def _versioning(s3: Any, bucket: str) -> dict[str, Any]:
    return {"status": s3.get_bucket_versioning(Bucket=bucket).get("Status", "")}


def read_object_lock(s3: Any, bucket: str) -> dict[str, Any]:
    """``{"enabled": bool, "retention": DefaultRetention or None}`` (also used by migrate)."""
    try:
        conf = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    except Exception as exc:
        if error_code(exc) == "ObjectLockConfigurationNotFoundError":
            return {"enabled": False, "retention": None}
        raise
    retention = (conf.get("Rule") or {}).get("DefaultRetention")
    return {"enabled": conf.get("ObjectLockEnabled") == "Enabled", "retention": retention or None}


def _encryption(s3: Any, bucket: str) -> dict[str, Any]:
    try:
        rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    except Exception as exc:
        if error_code(exc) == "ServerSideEncryptionConfigurationNotFoundError":
            return {"algorithm": None}
        raise
    default = (rules[0] if rules else {}).get("ApplyServerSideEncryptionByDefault") or {}
    return {"algorithm": default.get("SSEAlgorithm"), "kms_key": default.get("KMSMasterKeyID")}


def _public_access(s3: Any, bucket: str) -> dict[str, Any]:
    try:
        conf = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    except Exception as exc:
        if error_code(exc) == "NoSuchPublicAccessBlockConfiguration":
            return dict.fromkeys(_PAB_FLAGS, False)
        raise
    return {flag: bool(conf.get(flag)) for flag in _PAB_FLAGS}


def cacheable(facts: Facts) -> bool:
    """Failures that may pass (an endpoint down, missing credentials) are never cached."""
    return "fatal" not in facts and not any(
        isinstance(v, dict) and v.get("error") == "check-failed" for v in facts.values()
    )
