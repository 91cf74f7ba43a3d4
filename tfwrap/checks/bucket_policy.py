"""The bucket's policy, access logging and KMS key, as Terraform's writes meet them.

- ``bucket-policy-conditional-writes`` (error): a ``Deny`` on ``s3:PutObject`` or
  ``s3:DeleteObject`` conditioned on ``s3:if-none-match``/``s3:if-match``, over the state or
  ``.tflock`` key. Terraform writes state and deletes its lock unconditionally (DOMAIN.md), so
  such a policy fails its next write or unlock with 403: stop before Terraform runs.
- ``kms-key-access`` (error): the runner cannot use the KMS key the state and lock are written
  with; the first lock write would fail with an opaque 403.
- ``bucket-policy-tls`` (warning): nothing denies ``aws:SecureTransport = false``, so the
  state can be read over plain HTTP. Not raised for a plain ``http://`` endpoint, where such a
  statement would lock Terraform out (``bootstrap`` skips it there too).
- ``bucket-access-logging`` (warning): server access logging is off (the guide recommends it);
  reported by ``audit``, ``doctor`` and ``bootstrap --check``, not before every run (``hygiene``).

Why these severities: docs/decisions/071-bucket-policy-findings.md.
"""

from __future__ import annotations

import fnmatch
from typing import Any

from tfwrap.backend.config import BackendConfig
from tfwrap.findings.finding import Finding, make

_WRITES = ("s3:putobject", "s3:deleteobject")
_CONDITION_KEYS = ("s3:if-none-match", "s3:if-match")


def _list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value] if isinstance(value, list) else []


def _matches(patterns: list[str], value: str) -> bool:
    return any(fnmatch.fnmatchcase(value.lower(), p.lower()) for p in patterns)


def _keys_in_condition(condition: Any) -> set[str]:
    if not isinstance(condition, dict):
        return set()
    return {k.lower() for block in condition.values() if isinstance(block, dict) for k in block}


def conditional_write_denials(statements: list[dict[str, Any]], bucket: str, keys: list[str]) -> list[str]:
    """The ``Sid`` (or ``#N``) of every statement that denies Terraform's unconditional writes."""
    found = []
    for n, st in enumerate(statements):
        if str(st.get("Effect", "")).lower() != "deny":
            continue
        actions = _list(st.get("Action"))
        if not any(_matches(actions, a) for a in _WRITES):
            continue
        if not _keys_in_condition(st.get("Condition")) & set(_CONDITION_KEYS):
            continue
        resources = _list(st.get("Resource")) or ["*"]
        if any(
            _matches(resources, f"arn:*:s3:::{bucket}/{k}") or _covers(resources, bucket, k) for k in keys
        ):
            found.append(str(st.get("Sid") or f"#{n + 1}"))
    return found


def _covers(resources: list[str], bucket: str, key: str) -> bool:
    """Whether a resource pattern (``arn:aws:s3:::b/*``) names ``b/key`` in any partition."""
    for pattern in resources:
        tail = pattern.split(":::", 1)[-1] if ":::" in pattern else pattern
        if fnmatch.fnmatchcase(f"{bucket}/{key}", tail) or pattern == "*":
            return True
    return False


def denies_plain_http(statements: list[dict[str, Any]]) -> bool:
    for st in statements:
        if str(st.get("Effect", "")).lower() != "deny":
            continue
        condition = st.get("Condition") or {}
        for operator, block in condition.items() if isinstance(condition, dict) else ():
            if not str(operator).lower().startswith("bool") or not isinstance(block, dict):
                continue
            for key, value in block.items():
                if key.lower() == "aws:securetransport" and "false" in [v.lower() for v in _list(value)]:
                    return True
    return False


NOT_IMPLEMENTED = frozenset({"NotImplemented", "501", "MethodNotAllowed", "405"})


def lacks_api(what: str, fact: dict[str, Any], backend: BackendConfig) -> Finding | None:
    """``check-failed`` for a store that does not implement the API asked (s3rver, some
    S3-compatible stores): no permission would help, so none is advised. None otherwise."""
    if fact.get("detail") not in NOT_IMPLEMENTED:
        return None
    where = backend.s3_endpoint or "the endpoint"
    return make(
        "check-failed",
        f"cannot check {what}: {where} does not implement {fact.get('action')} ({fact.get('detail')})",
        'nothing to grant: this store lacks the API; if that is expected, set severity.check-failed = "off" '
        "in .tfwrap.toml",
    )


def _unknown(what: str, bucket: str, fact: dict[str, Any], backend: BackendConfig) -> Finding:
    denied = fact.get("error") == "access-denied"
    lacking = None if denied else lacks_api(f"{what} of bucket {bucket!r}", fact, backend)
    if lacking is not None:
        return lacking
    why = "was denied" if denied else f"failed: {fact.get('detail')}"
    return make(
        "access-denied" if denied else "check-failed",
        f"cannot check {what} of bucket {bucket!r}: {fact.get('action')} {why}",
        f"grant {fact.get('action')} to the identity running Terraform (`tfwrap iam-policy` lists it)",
    )


def evaluate(backend: BackendConfig, facts: dict[str, Any]) -> list[Finding]:
    bucket = backend.bucket
    found: list[Finding] = []
    policy = facts.get("policy")
    if isinstance(policy, dict) and "error" in policy:
        found.append(_unknown("the policy", bucket, policy, backend))
    elif isinstance(policy, dict):
        statements = policy.get("statements") or []
        keys = [backend.state_key, backend.lock_key] if backend.key else ["*"]
        sids = conditional_write_denials(statements, bucket, keys)
        if sids:
            found.append(
                make(
                    "bucket-policy-conditional-writes",
                    f"bucket {bucket!r} policy statement {', '.join(sids)} denies PutObject/DeleteObject "
                    "without If-None-Match/If-Match: Terraform writes state and removes its lock "
                    "unconditionally, so its next write or unlock will fail with 403",
                    f"exclude the state and .tflock keys ({keys[0]}*) from statement {sids[0]}, "
                    "or drop its s3:if-none-match/s3:if-match condition for them",
                )
            )
        https = not str(backend.s3_endpoint or "https://").lower().startswith("http://")
        if https and not denies_plain_http(statements):
            found.append(
                make(
                    "bucket-policy-tls",
                    f"bucket {bucket!r} policy does not deny aws:SecureTransport = false: "
                    "the state can be read and written over plain HTTP",
                    f"tfwrap bootstrap --bucket {bucket} --fix (adds the TLS-only statement)",
                )
            )
    kms = facts.get("kms")
    if isinstance(kms, dict) and "error" in kms:
        found.append(_unknown("the KMS key", bucket, kms, backend))
    elif isinstance(kms, dict) and not kms.get("usable"):
        found.append(
            make(
                "kms-key-access",
                f"the KMS key {kms.get('key')} of bucket {bucket!r} cannot be used by this identity "
                f"({kms.get('detail')}): Terraform's first lock or state write would fail with 403",
                "grant kms:DescribeKey, kms:GenerateDataKey, kms:Encrypt and kms:Decrypt on the key "
                "to the identity running Terraform (in the key policy or an IAM policy)",
            )
        )
    return found


def hygiene(backend: BackendConfig, facts: dict[str, Any]) -> list[Finding]:
    """What ``audit``, ``doctor`` and ``bootstrap --check`` add to the guard's findings: server
    access logging (not the guard's: it does not change whether this run is safe; see
    docs/decisions/071-bucket-policy-findings.md)."""
    bucket = backend.bucket
    logging = facts.get("logging")
    if isinstance(logging, dict) and "error" in logging:
        return [_unknown("access logging", bucket, logging, backend)]
    if isinstance(logging, dict) and not logging.get("enabled"):
        return [
            make(
                "bucket-access-logging",
                f"bucket {bucket!r} has server access logging off: "
                "who read or changed the state is not recorded",
                f"tfwrap bootstrap --bucket {bucket} --log-bucket LOGS --fix",
            )
        ]
    return []
