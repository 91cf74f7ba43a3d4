"""The state bucket the team's standard wants, the drift of an existing bucket, and its fixes.

The standard: Object Lock enabled (the team's policy; Terraform's ``use_lockfile`` itself does
not need it), versioning ``Enabled``, default encryption (SSE-S3, or SSE-KMS with a bucket key
when a KMS key is asked for), all four public access blocks on, a bucket policy that denies
any request not made over TLS, a lifecycle rule that expires noncurrent versions of the lock
objects, and, when asked for, server access logging to a named bucket.

Never weaker, never deleting: an existing setting is only ever made stricter or merged into.
SSE-KMS (or DSSE-KMS) is kept rather than replaced by AES256; an Object Lock default retention
is kept; existing lifecycle rules and policy statements are kept and ours are added beside
them; a different KMS key or log destination is reported, never replaced. No ``Delete*`` call
is ever made.

Lifecycle rule for the ``.tflock`` objects: S3 lifecycle filters select keys by prefix (plus
tags and object size), never by suffix, so ``*.tflock`` cannot be one rule. Terraform does not
tag lock objects, and a size filter would also catch small state files (an empty state is
~180 bytes, a lock ~250), whose old versions are the one thing versioning is for. So the rule
is one per lock object: ``Filter.Prefix = "<state key>.tflock"``, which matches that object
only (state keys end in ``.tfstate``, so nothing else starts with it), with
``NoncurrentVersionExpiration`` after 1 day and ``ExpiredObjectDeleteMarker`` (every release
leaves a delete marker). An existing enabled rule whose prefix-only filter already covers the
lock key and expires noncurrent versions counts as meeting the standard. Non-default
workspaces keep their state at ``<workspace_key_prefix>/<workspace>/<key>``: each needs its
own rule. With an Object Lock default retention, lifecycle removes a version only once its
retention has passed.

Without lock keys (no ``--key``: a bucket shared by many states) one bucket-wide rule bounds the
versions instead: ``NoncurrentVersionExpiration {NoncurrentDays: 90,
NewerNoncurrentVersions: 100}`` keeps the newest 100 noncurrent versions of every object for
good and expires older ones 90 days after they became noncurrent, ``ExpiredObjectDeleteMarker``
removes the markers unlocks leave, and ``AbortIncompleteMultipartUpload`` (7 days) drops
abandoned uploads. Any enabled rule over the whole bucket that expires noncurrent versions
already counts as the bound and is kept as it is; where rules overlap S3 applies the expiration
that comes first, so adding ours never lengthens anyone's.

The policy statement denying non-TLS access (``aws:SecureTransport = false``) is not added when
the endpoint itself is plain ``http://`` (an S3-compatible store, a local test server): every
request through it is non-TLS, so the statement would lock Terraform out of its own state. A
note says so; AWS endpoints are always HTTPS.

Every AWS failure becomes a one-line :class:`~tfwrap.errors.TfwrapError` naming the IAM action
that was refused. botocore is used through :mod:`tfwrap.aws.clients` only.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tfwrap import exitcodes
from tfwrap.bootstrap import hygiene, names, policy_checks
from tfwrap.bootstrap.bucket import Bucket, refusal
from tfwrap.errors import TfwrapError

PAB_FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
TLS_SID = "DenyInsecureTransport"
LOCK_VERSION_DAYS = 1
RULE_ID_PREFIX = "tfwrap-tflock:"
# The bucket-wide bound (README "Why 100 and 90"): N is S3's own maximum for
# NewerNoncurrentVersions; 90 days outlasts a quarter's worth of "what did the state look like".
BOUND_RULE_ID = "tfwrap-noncurrent-bound"
KEEP_VERSIONS = 100
NONCURRENT_DAYS = 90
MULTIPART_DAYS = 7
# Modes: report drift only / create a missing bucket, report drift / also fix drift.
CHECK, REPORT, FIX = "check", "report", "fix"
# Every IAM action bootstrap may need (for `tfwrap iam-policy` and the docs).
ACTIONS = (
    "s3:ListBucket",
    "s3:GetBucketLocation",
    "s3:CreateBucket",
    "s3:GetBucketVersioning",
    "s3:PutBucketVersioning",
    "s3:GetBucketObjectLockConfiguration",
    "s3:PutBucketObjectLockConfiguration",
    "s3:GetEncryptionConfiguration",
    "s3:PutEncryptionConfiguration",
    "s3:GetBucketPublicAccessBlock",
    "s3:PutBucketPublicAccessBlock",
    "s3:GetBucketPolicy",
    "s3:PutBucketPolicy",
    "s3:GetLifecycleConfiguration",
    "s3:PutLifecycleConfiguration",
    "s3:GetBucketLogging",
    "s3:PutBucketLogging",
)


@dataclass(frozen=True)
class Standard:
    """What the bucket must be."""

    bucket: str
    region: str
    kms_key: str | None = None
    lock_keys: tuple[str, ...] = ()
    log_bucket: str | None = None
    log_prefix: str = ""
    # Without lock keys: the bucket-wide bound on noncurrent versions (None: opted out).
    keep_versions: int | None = KEEP_VERSIONS
    noncurrent_days: int = NONCURRENT_DAYS
    skip: tuple[str, ...] = ()  # aspects the policy turns off (bucket-object-lock = "off": "Object Lock")
    workspace_prefix: str = "env:"  # where other workspaces' states live (hygiene.py finds them)

    @property
    def arn(self) -> str:
        return f"arn:{names.partition(self.region)}:s3:::{self.bucket}"


@dataclass
class Change:
    """One way the bucket differs from the standard, and the call that fixes it (if any)."""

    aspect: str
    before: str
    after: str
    drift: str
    apply: Callable[[], None] | None = None
    why_not: str = ""  # when ``apply`` is None: why it is not fixed automatically


@dataclass
class Result:
    """What a run did and found."""

    created: bool = False
    changed: list[str] = field(default_factory=list)
    drift: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # fixes AWS refused: the line names the IAM action

    @property
    def meets_standard(self) -> bool:
        return not self.drift


# --- what the standard wants, aspect by aspect ------------------------------------------------


def assess(bucket: Bucket) -> tuple[list[Change], list[str]]:
    """Read the bucket; every way it differs from the standard (in fixing order), and notes.

    Aspects are independent: one that cannot be read becomes a drift item naming the refused
    action, and the others are still assessed."""
    notes: list[str] = []
    aspects: tuple[tuple[str, Callable[[], list[Change]]], ...] = (
        ("versioning", lambda: _versioning(bucket)),
        ("Object Lock", lambda: _object_lock(bucket, notes)),
        ("default encryption", lambda: _encryption(bucket, notes)),
        ("bucket policy", lambda: _policy(bucket, notes)),
        ("public access block", lambda: _public_access(bucket)),
        ("lifecycle", lambda: _lifecycle(bucket)),
        ("access logging", lambda: _logging(bucket)),
    )
    changes: list[Change] = []
    for aspect, read in aspects:
        if aspect in bucket.standard.skip:
            continue
        try:
            changes.extend(read())
        except TfwrapError as exc:
            if exc.code != exitcodes.AWS_FAILURE:
                raise
            changes.append(
                Change(aspect, "unknown", "checked", f"{aspect}: {exc.message}", None, "cannot read it")
            )
    return changes, notes


def _versioning(bucket: Bucket) -> list[Change]:
    status = bucket.call("s3:GetBucketVersioning", "get_bucket_versioning").get("Status") or ""
    if status == "Enabled":
        return []
    before = status or "off (never enabled)"
    return [
        Change(
            "versioning",
            before,
            "Enabled",
            f"versioning is {before}",
            lambda: _put(
                bucket,
                "s3:PutBucketVersioning",
                "put_bucket_versioning",
                VersioningConfiguration={"Status": "Enabled"},
            ),
        )
    ]


def _put(bucket: Bucket, action: str, method: str, **params: Any) -> None:
    bucket.call(action, method, **params)


def _object_lock(bucket: Bucket, notes: list[str]) -> list[Change]:
    answer = bucket.read(
        "s3:GetBucketObjectLockConfiguration",
        "get_object_lock_configuration",
        "ObjectLockConfigurationNotFoundError",
    )
    conf = (answer or {}).get("ObjectLockConfiguration") or {}
    if conf.get("ObjectLockEnabled") != "Enabled":
        return [
            Change(
                "Object Lock",
                "off",
                "Enabled (no default retention; cannot be turned off again)",
                "Object Lock off (the team's standard; Terraform itself does not need it)",
                lambda: _put(
                    bucket,
                    "s3:PutBucketObjectLockConfiguration",
                    "put_object_lock_configuration",
                    ObjectLockConfiguration={"ObjectLockEnabled": "Enabled"},
                ),
            )
        ]
    retention = (conf.get("Rule") or {}).get("DefaultRetention") or {}
    if retention:
        span = f"{retention['Days']} days" if retention.get("Days") else f"{retention.get('Years')} years"
        note = f"Object Lock default retention {retention.get('Mode')} {span} kept (stricter than none)"
        if retention.get("Mode") == "COMPLIANCE":
            note += "; every lock and heartbeat leaves a version nobody can delete until it expires"
        notes.append(note)
    return []


def _same_key(found: str, wanted: str) -> bool:
    """KMS keys as ARN, key id or alias: the same when equal or one is the other's tail."""
    return found == wanted or found.endswith(("/" + wanted, ":" + wanted)) or wanted.endswith("/" + found)


def _describe_sse(rule: dict[str, Any]) -> str:
    default = rule.get("ApplyServerSideEncryptionByDefault") or {}
    algorithm = default.get("SSEAlgorithm")
    if algorithm == "AES256":
        return "AES256 (SSE-S3)"
    key = default.get("KMSMasterKeyID") or "the AWS managed key aws/s3"
    bucket_key = "bucket key on" if rule.get("BucketKeyEnabled") else "bucket key off"
    return f"{algorithm} with {key}, {bucket_key}"


def _encryption(bucket: Bucket, notes: list[str]) -> list[Change]:
    answer = bucket.read(
        "s3:GetEncryptionConfiguration",
        "get_bucket_encryption",
        "ServerSideEncryptionConfigurationNotFoundError",
    )
    rules: list[dict[str, Any]] = ((answer or {}).get("ServerSideEncryptionConfiguration") or {}).get(
        "Rules"
    ) or []
    current = rules[0] if rules else {}
    default = current.get("ApplyServerSideEncryptionByDefault") or {}
    algorithm, key = default.get("SSEAlgorithm"), default.get("KMSMasterKeyID")
    wanted = bucket.standard.kms_key

    def change(drift: str, rule: dict[str, Any]) -> Change:
        before = _describe_sse(current) if algorithm else "none"
        return Change(
            "default encryption",
            before,
            _describe_sse(rule),
            drift,
            lambda: _put(
                bucket,
                "s3:PutEncryptionConfiguration",
                "put_bucket_encryption",
                ServerSideEncryptionConfiguration={"Rules": [rule, *rules[1:]]},
            ),
        )

    def kms_rule(kms_key: str | None) -> dict[str, Any]:
        rule = copy.deepcopy(current)  # keeps any field we do not know about
        by_default: dict[str, Any] = {"SSEAlgorithm": "aws:kms"}
        if kms_key:
            by_default["KMSMasterKeyID"] = kms_key
        rule["ApplyServerSideEncryptionByDefault"] = by_default
        rule["BucketKeyEnabled"] = True
        return rule

    if not algorithm:
        if wanted:
            return [change("no default encryption", kms_rule(wanted))]
        return [
            change(
                "no default encryption", {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
            )
        ]
    if algorithm == "AES256":
        if wanted:
            return [change(f"default encryption is AES256, not aws:kms with {wanted}", kms_rule(wanted))]
        return []
    if algorithm not in ("aws:kms", "aws:kms:dsse"):
        notes.append(f"default encryption {algorithm} kept")
        return []
    if wanted and key and not _same_key(key, wanted):
        return [
            Change(
                "default encryption",
                _describe_sse(current),
                f"{algorithm} with {wanted}",
                f"default encryption uses KMS key {key}, not --kms-key {wanted}",
                why_not="re-keying the bucket is left to you",
            )
        ]
    if algorithm == "aws:kms:dsse":
        return []  # stricter than the standard; bucket keys do not apply to DSSE-KMS
    if wanted and not key:
        return [change(f"default encryption uses the AWS managed key, not {wanted}", kms_rule(wanted))]
    if not current.get("BucketKeyEnabled"):
        return [change("SSE-KMS without a bucket key (every request calls KMS)", kms_rule(key))]
    return []


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def tls_statement(standard: Standard, sid: str = TLS_SID) -> dict[str, Any]:
    """Deny every request to the bucket and its objects that is not made over TLS."""
    return {
        "Sid": sid,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [standard.arn, f"{standard.arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def denies_insecure(statement: dict[str, Any], standard: Standard) -> bool:
    """Whether a policy statement denies all non-TLS access to the bucket and its objects."""
    if statement.get("Effect") != "Deny" or "NotAction" in statement or "NotResource" in statement:
        return False
    principal = statement.get("Principal")
    if principal != "*" and not (isinstance(principal, dict) and _as_list(principal.get("AWS")) == ["*"]):
        return False
    if not {"s3:*", "*"} & set(_as_list(statement.get("Action"))):
        return False
    resources = set(_as_list(statement.get("Resource")))
    if not ("*" in resources or {standard.arn, f"{standard.arn}/*"} <= resources):
        return False
    conditions = statement.get("Condition") or {}
    if set(conditions) != {"Bool"} or len(conditions["Bool"]) != 1:
        return False  # further conditions narrow the denial
    (name, value), *_ = conditions["Bool"].items()
    return name.lower() == "aws:securetransport" and str(_as_list(value)[0]).lower() == "false"


def _policy(bucket: Bucket, notes: list[str]) -> list[Change]:
    answer = bucket.read("s3:GetBucketPolicy", "get_bucket_policy", "NoSuchBucketPolicy")
    text = (answer or {}).get("Policy")
    doc: dict[str, Any] = json.loads(text) if text else {"Version": "2012-10-17", "Statement": []}
    statements = _as_list(doc.get("Statement"))
    breaking = policy_checks.conditional_write_drift(bucket, statements)
    if any(isinstance(s, dict) and denies_insecure(s, bucket.standard) for s in statements):
        return breaking
    if (bucket.endpoint or "").lower().startswith("http://"):
        notes.append(
            f"{bucket.endpoint} is plain HTTP: no statement denying non-TLS access is added "
            "(it would refuse every request made through this endpoint, Terraform's included)"
        )
        return breaking
    sids = {s.get("Sid") for s in statements if isinstance(s, dict)}
    sid = TLS_SID if TLS_SID not in sids else "Tfwrap" + TLS_SID
    merged = {**doc, "Statement": [*statements, tls_statement(bucket.standard, sid)]}
    before = f"{len(statements)} statement(s), none denying non-TLS access" if statements else "none"
    after = "denies non-TLS access" + (
        f" (statement {sid} added, {len(statements)} kept)" if statements else ""
    )
    return [
        *breaking,
        Change(
            "bucket policy",
            before,
            after,
            "bucket policy does not deny non-TLS access (aws:SecureTransport = false)",
            lambda: _put(bucket, "s3:PutBucketPolicy", "put_bucket_policy", Policy=json.dumps(merged)),
        ),
    ]


def _public_access(bucket: Bucket) -> list[Change]:
    answer = bucket.read(
        "s3:GetBucketPublicAccessBlock", "get_public_access_block", "NoSuchPublicAccessBlockConfiguration"
    )
    conf = (answer or {}).get("PublicAccessBlockConfiguration") or {}
    off = [flag for flag in PAB_FLAGS if not conf.get(flag)]
    if not off:
        return []
    return [
        Change(
            "public access block",
            f"off for {', '.join(off)}",
            "all four on",
            f"public access block off for {', '.join(off)}",
            lambda: _put(
                bucket,
                "s3:PutBucketPublicAccessBlock",
                "put_public_access_block",
                PublicAccessBlockConfiguration=dict.fromkeys(PAB_FLAGS, True),
            ),
        )
    ]


def rule_id(lock_key: str) -> str:
    return (RULE_ID_PREFIX + lock_key)[:255]


def lock_rule(lock_key: str) -> dict[str, Any]:
    """Expire noncurrent versions (and the lone delete marker) of one lock object."""
    return {
        "ID": rule_id(lock_key),
        "Status": "Enabled",
        "Filter": {"Prefix": lock_key},
        "NoncurrentVersionExpiration": {"NoncurrentDays": LOCK_VERSION_DAYS},
        "Expiration": {"ExpiredObjectDeleteMarker": True},
    }


def _noncurrent_prefix(rule: dict[str, Any]) -> str | None:
    """The key prefix whose noncurrent versions an enabled rule expires; None when the rule does
    not (disabled, no noncurrent expiry, or filtered by tags or sizes: not every version)."""
    if rule.get("Status") != "Enabled":
        return None
    if not (rule.get("NoncurrentVersionExpiration") or {}).get("NoncurrentDays"):
        return None
    flt = rule.get("Filter")
    if flt is None:
        return str(rule.get("Prefix") or "")  # the legacy top-level prefix
    return None if set(flt) - {"Prefix"} else str(flt.get("Prefix") or "")


def covers(rule: dict[str, Any], lock_key: str) -> bool:
    """Whether an existing rule already expires noncurrent versions of ``lock_key``."""
    prefix = _noncurrent_prefix(rule)
    return prefix is not None and lock_key.startswith(prefix)


def bound_rule(keep: int, days: int) -> dict[str, Any]:
    """The bucket-wide bound: every object keeps its newest ``keep`` noncurrent versions for good,
    older ones go ``days`` after they became noncurrent; lone delete markers and abandoned
    multipart uploads go too (without it, lock versions pile up forever)."""
    return {
        "ID": BOUND_RULE_ID,
        "Status": "Enabled",
        "Filter": {"Prefix": ""},
        "NoncurrentVersionExpiration": {"NoncurrentDays": days, "NewerNoncurrentVersions": keep},
        "Expiration": {"ExpiredObjectDeleteMarker": True},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": MULTIPART_DAYS},
    }


def bounds(rule: dict[str, Any]) -> bool:
    """Whether an existing rule already bounds the noncurrent versions of every object."""
    return _noncurrent_prefix(rule) == ""


def _lifecycle(bucket: Bucket) -> list[Change]:
    wanted = bucket.standard
    keys = hygiene.keys_to_bound(bucket)  # every workspace's lock, journal and probe objects
    bound = wanted.keep_versions is not None and not keys  # a bucket for many states
    if not keys and not bound:
        return []
    answer = bucket.read(
        "s3:GetLifecycleConfiguration", "get_bucket_lifecycle_configuration", "NoSuchLifecycleConfiguration"
    )
    rules: list[dict[str, Any]] = list((answer or {}).get("Rules") or [])
    taken = {r.get("ID") for r in rules}
    missing = [k for k in keys if not any(covers(r, k) for r in rules)]
    changes = [
        Change(
            "lifecycle",
            f"rule {rule_id(k)!r} present but not expiring noncurrent versions of {k}",
            "(unchanged)",
            f"lifecycle rule {rule_id(k)!r} exists but does not expire noncurrent versions of {k}",
            why_not="an existing rule is never changed; fix or rename it by hand",
        )
        for k in missing
        if rule_id(k) in taken
    ]
    new = [lock_rule(k) for k in missing if rule_id(k) not in taken]
    befores, afters, drifts = [], [], []
    if new:
        lock_keys = ", ".join(r["Filter"]["Prefix"] for r in new)
        befores.append(f"no rule expiring noncurrent versions of {lock_keys}")
        afters.append(f"{len(new)} rule(s) expiring them after {LOCK_VERSION_DAYS} day")
        drifts.append(f"no lifecycle rule expires noncurrent versions of {lock_keys}")
    if bound and not any(bounds(r) for r in rules):
        keep, days = wanted.keep_versions or 0, wanted.noncurrent_days
        if BOUND_RULE_ID in taken:
            changes.append(
                Change(
                    "lifecycle",
                    f"rule {BOUND_RULE_ID!r} present but not bounding noncurrent versions",
                    "(unchanged)",
                    f"lifecycle rule {BOUND_RULE_ID!r} exists but does not bound noncurrent versions",
                    why_not="an existing rule is never changed; fix or rename it by hand",
                )
            )
        else:
            new.append(bound_rule(keep, days))
            befores.append("nothing bounds noncurrent versions")
            afters.append(
                f"rule {BOUND_RULE_ID!r} keeping the newest {keep} noncurrent versions of every object "
                f"and expiring older ones after {days} days, removing expired delete markers and "
                f"aborting multipart uploads after {MULTIPART_DAYS} days"
            )
            drifts.append(
                "no lifecycle rule bounds noncurrent versions: every lock, heartbeat and unlock leaves "
                "one, kept forever (hashicorp/terraform#36445)"
            )
    if not new:
        return changes
    extra: dict[str, Any] = {}
    minimum = (answer or {}).get("TransitionDefaultMinimumObjectSize")
    if minimum:  # sent back as found: a PUT without it would reset it
        extra["TransitionDefaultMinimumObjectSize"] = minimum
    kept = f", {len(rules)} existing rule(s) kept" if rules else ""
    changes.append(
        Change(
            "lifecycle",
            "; ".join(befores),
            "; ".join(afters) + kept,
            "; ".join(drifts),
            lambda: _put(
                bucket,
                "s3:PutLifecycleConfiguration",
                "put_bucket_lifecycle_configuration",
                LifecycleConfiguration={"Rules": [*rules, *new]},
                **extra,
            ),
        )
    )
    return changes


def _logging(bucket: Bucket) -> list[Change]:
    standard = bucket.standard
    if not standard.log_bucket:
        return []
    enabled = bucket.call("s3:GetBucketLogging", "get_bucket_logging").get("LoggingEnabled") or {}
    wanted = f"s3://{standard.log_bucket}/{standard.log_prefix}"
    if not enabled:
        return [
            Change(
                "access logging",
                "off",
                f"to {wanted}",
                f"access logging off (wanted to {wanted})",
                lambda: _enable_logging(bucket),
            )
        ]
    found = f"s3://{enabled.get('TargetBucket')}/{enabled.get('TargetPrefix') or ''}"
    if found == wanted:
        return []
    return [
        Change(
            "access logging",
            f"to {found}",
            f"to {wanted}",
            f"access logging goes to {found}, not {wanted}",
            why_not="an existing log destination is never replaced",
        )
    ]


def _enable_logging(bucket: Bucket) -> None:
    """The log target's policy first (policy_checks.py), then the logging itself."""
    from botocore.exceptions import ClientError

    standard = bucket.standard
    policy_checks.grant_log_delivery(bucket)
    enabled = {"LoggingEnabled": {"TargetBucket": standard.log_bucket, "TargetPrefix": standard.log_prefix}}
    try:
        bucket.s3.put_bucket_logging(Bucket=bucket.name, BucketLoggingStatus=enabled)
    except ClientError as exc:
        raise policy_checks.logging_refused(exc, bucket) or refusal(
            exc, "s3:PutBucketLogging", bucket.name, bucket.endpoint
        ) from exc


# --- the run ---------------------------------------------------------------------------------


def run(bucket: Bucket, mode: str, say: Callable[[str], None]) -> Result:
    """Create (unless ``check``), read the drift, fix it (``fix``, or a bucket just created)."""
    result = Result()
    standard = bucket.standard
    if not bucket.exists():
        if mode == CHECK:
            message = f"bucket {standard.bucket!r} does not exist in {standard.region}"
            say(f"drift: {message} (run without --check to create it)")
            result.drift.append(message)
            return result
        result.created = bucket.create()
        if result.created:
            say(
                f"created bucket {standard.bucket} in {standard.region}"
                + (
                    " with Object Lock enabled (which turns versioning on)"
                    if "Object Lock" not in standard.skip
                    else ""
                )
            )
    changes, notes = assess(bucket)
    for note in notes:
        say(f"note: {note}")
    fixing = mode == FIX or result.created
    for change in changes:
        if change.apply is None:
            say(f"drift: {change.drift} (not fixed: {change.why_not})")
            result.drift.append(change.drift)
        elif fixing:
            try:  # a refused fix does not stop the independent ones after it
                change.apply()
            except TfwrapError as exc:
                if exc.code != exitcodes.AWS_FAILURE:
                    raise
                result.refused.append(f"{change.aspect}: {exc.message}")
                result.drift.append(change.drift)
                continue
            say(f"{change.aspect}: {change.before} -> {change.after}")
            result.changed.append(change.aspect)
        else:
            say(f"drift: {change.drift} (run with --fix)")
            result.drift.append(change.drift)
    for aspect in standard.skip:
        say(f"note: {aspect} not checked: the policy turns it off")
    if not standard.lock_keys and standard.keep_versions is None:
        say(
            "note: --no-version-bound and no --key: nothing bounds the noncurrent versions every "
            "lock, heartbeat and unlock leaves (S3 lifecycle filters match key prefixes, not .tflock)"
        )
    return result
