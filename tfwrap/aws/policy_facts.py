"""What the state bucket's policy, access logging and KMS key say: facts for the checks.

Plain JSON (cached with the other bucket facts). Each is a value, or the failure that kept it
unknown with the IAM action that was needed. KMS is reached as the SDK reaches it
(``AWS_ENDPOINT_URL_KMS``, else AWS). The KMS key is asked about without touching any
data: ``DescribeKey``, then ``GenerateDataKey`` with ``DryRun`` (the answer
``DryRunOperationException`` means "you may"); nothing is ever decrypted.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from tfwrap.aws.errors import classify, error_code
from tfwrap.backend.config import BackendConfig


def _policy(s3: Any, bucket: str) -> dict[str, Any]:
    try:
        text = s3.get_bucket_policy(Bucket=bucket)["Policy"]
    except Exception as exc:
        if error_code(exc) == "NoSuchBucketPolicy":
            return {"statements": []}
        raise
    try:
        doc = json.loads(text)
    except ValueError:
        return {"statements": [], "unreadable": True}
    statements = doc.get("Statement") if isinstance(doc, dict) else None
    if isinstance(statements, dict):
        statements = [statements]
    return {"statements": [s for s in statements or [] if isinstance(s, dict)]}


def _logging(s3: Any, bucket: str) -> dict[str, Any]:
    enabled = s3.get_bucket_logging(Bucket=bucket).get("LoggingEnabled") or {}
    if not enabled:
        return {"enabled": False, "target": None}
    return {
        "enabled": True,
        "target": f"s3://{enabled.get('TargetBucket')}/{enabled.get('TargetPrefix') or ''}",
    }


def kms_key(backend: BackendConfig, facts: dict[str, Any]) -> str | None:
    """The key Terraform's writes are encrypted with: ``kms_key_id``, else the bucket's default."""
    if backend.get("kms_key_id"):
        return str(backend.get("kms_key_id"))
    encryption = facts.get("encryption") or {}
    if encryption.get("algorithm") in ("aws:kms", "aws:kms:dsse") and encryption.get("kms_key"):
        return str(encryption["kms_key"])
    return None


def _kms(backend: BackendConfig, key: str) -> dict[str, Any]:
    from tfwrap.aws import clients

    kms: Any = clients.client(backend, "kms", retries=False)
    state = kms.describe_key(KeyId=key)["KeyMetadata"]
    if state.get("KeyState") != "Enabled":
        return {"key": key, "usable": False, "detail": f"the key is {state.get('KeyState')}"}
    try:
        kms.generate_data_key(KeyId=key, KeySpec="AES_256", DryRun=True)
    except Exception as exc:
        if error_code(exc) != "DryRunOperationException":
            raise
    return {"key": key, "usable": True}


def gather(s3: Any, backend: BackendConfig, facts: dict[str, Any]) -> dict[str, Any]:
    """The policy, logging and KMS facts (``facts``: what is already known, for the key)."""
    out: dict[str, Any] = {}
    bucket = backend.bucket
    key = kms_key(backend, facts)
    probes: list[tuple[str, str, str | None, Callable[[], dict[str, Any]]]] = [
        ("policy", "s3:GetBucketPolicy", backend.s3_endpoint, lambda: _policy(s3, bucket)),
        ("logging", "s3:GetBucketLogging", backend.s3_endpoint, lambda: _logging(s3, bucket)),
    ]
    # A custom S3 endpoint (another store, a test server) without a KMS endpoint of its own:
    # AWS KMS is not what encrypts its objects, so there is nothing to ask.
    kms_reachable = not backend.s3_endpoint or bool(os.environ.get("AWS_ENDPOINT_URL_KMS"))
    if key and kms_reachable:
        probes.append(("kms", "kms:DescribeKey", None, lambda: _kms(backend, key)))
    for name, action, endpoint, probe in probes:
        try:
            out[name] = probe()
        except Exception as exc:  # noqa: BLE001 - every failure is a fact, none raised
            failure = classify(exc, endpoint)
            if name == "kms" and failure.kind == "access-denied":
                # Denied either call: the runner cannot use the key, whichever was refused.
                denied = "kms:GenerateDataKey" if "GenerateDataKey" in str(exc) else action
                out[name] = {"key": key, "usable": False, "detail": f"{denied} was denied"}
                continue
            out[name] = {"error": failure.kind, "detail": failure.detail, "action": action}
    return out
