"""``tfwrap bootstrap`` and the new checks: a bare bucket fixed passes them all (TLS-only policy,
access logging with the target's delivery policy), a policy that breaks Terraform's
unconditional writes is reported and never "fixed", and the lock, journal and probe objects of
every workspace found get their versions bounded."""

from __future__ import annotations

import json
from pathlib import Path

from botocore.exceptions import ClientError

from tests.support.world import make_bucket, s3_client
from tests.test_bootstrap import (
    KEY,
    LOCK,
    TlsServer,
    bootstrap,
    guard_findings,
    lifecycle_rules,
    ok,
    tls,
    tls_server,
)
from tests.test_bucket_policy import create_only
from tfwrap.backend.config import BackendConfig
from tfwrap.bootstrap import policy_checks, standard
from tfwrap.checks import bucket_policy

__all__ = ["tls", "tls_server"]  # the TLS server fixtures, used by name


def facts_of(url: str, bucket: str) -> list[str]:
    """Everything the guard, audit and doctor would say about the bucket."""
    from tfwrap.aws import bucket_facts

    backend = BackendConfig(
        Path(),
        Path(".terraform"),
        "default",
        "s3",
        {
            "bucket": bucket,
            "key": KEY,
            "region": "us-east-1",
            "endpoints": {"s3": url},
            "use_path_style": True,
        },
    )
    facts = bucket_facts.gather(backend)
    return [f.id for f in bucket_policy.hygiene(backend, facts)] + guard_findings(url, bucket)


def test_a_bare_bucket_fixed_passes_every_new_check(tls: TlsServer, bucket_name: str) -> None:
    logs = f"{bucket_name}-logs"
    s3 = s3_client(tls.url)
    s3.create_bucket(Bucket=bucket_name, ObjectLockEnabledForBucket=True)
    s3.create_bucket(Bucket=logs)  # no policy: PutBucketLogging alone fails InvalidTargetBucketForLogging
    with_policy = None
    try:
        s3.put_bucket_logging(
            Bucket=bucket_name,
            BucketLoggingStatus={"LoggingEnabled": {"TargetBucket": logs, "TargetPrefix": "x/"}},
        )
    except ClientError as exc:
        with_policy = exc.response["Error"]["Code"]
    assert with_policy == "InvalidTargetBucketForLogging"  # what a bare target does today
    assert {"bucket-policy-tls", "bucket-access-logging"} <= set(facts_of(tls.url, bucket_name))

    args = ["--bucket", bucket_name, "--region", "us-east-1", "--endpoint-url", tls.url, "--key", KEY]
    lines = ok(bootstrap(*args, "--log-bucket", logs, "--fix"))
    assert any(line.startswith("tfwrap: access logging: off -> to s3://") for line in lines), lines
    assert facts_of(tls.url, bucket_name) == []
    (granted,) = json.loads(s3.get_bucket_policy(Bucket=logs)["Policy"])["Statement"]
    assert granted["Sid"] == policy_checks.LOG_DELIVERY_SID and granted["Principal"] == {
        "Service": "logging.s3.amazonaws.com"
    }
    assert granted["Resource"] == f"arn:aws:s3:::{logs}/{bucket_name}/*"
    assert granted["Condition"]["ArnLike"] == {"aws:SourceArn": f"arn:aws:s3:::{bucket_name}"}
    # Nothing bootstrap wrote enforces conditional writes (it would break Terraform).
    statements = json.loads(s3.get_bucket_policy(Bucket=bucket_name)["Policy"])["Statement"]
    assert bucket_policy.conditional_write_denials(statements, bucket_name, ["*"]) == []
    again = ok(bootstrap(*args, "--log-bucket", logs, "--check"))
    assert again == [f"tfwrap: bucket {bucket_name} meets the standard; nothing changed"]


def test_a_policy_denying_unconditional_writes_is_drift_never_fixed(tls: TlsServer, bucket_name: str) -> None:
    make_bucket(tls.url, bucket_name)
    statement = create_only(resource=f"arn:aws:s3:::{bucket_name}/*")
    s3_client(tls.url).put_bucket_policy(
        Bucket=bucket_name, Policy=json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    )
    args = ["--bucket", bucket_name, "--region", "us-east-1", "--endpoint-url", tls.url, "--key", KEY]
    for flags in (["--check"], ["--fix"]):
        done = bootstrap(*args, *flags)
        assert done.returncode == 89, done.stderr  # DRIFT: drift left after --fix
        assert (
            "drift: bucket policy statement RequireCreateOnly denies Terraform's unconditional state write "
            "and unlock (they would fail with 403) (not fixed: a statement is never removed" in done.stderr
        )
    kept = json.loads(s3_client(tls.url).get_bucket_policy(Bucket=bucket_name)["Policy"])["Statement"]
    assert statement in kept  # left as it was, beside the TLS-only statement --fix added
    assert "bucket-policy-conditional-writes" in guard_findings(tls.url, bucket_name)


def test_every_workspace_found_gets_its_lock_journal_and_probe_rules(
    tls: TlsServer, bucket_name: str
) -> None:
    make_bucket(tls.url, bucket_name)
    s3 = s3_client(tls.url)
    for key in (f"env:/dev/{KEY}", f"env:/qa/{LOCK}", f"env:/qa/other/{KEY}", "env:/x/unrelated.tfstate"):
        s3.put_object(Bucket=bucket_name, Key=key, Body=b"{}")
    args = ["--bucket", bucket_name, "--region", "us-east-1", "--endpoint-url", tls.url, "--key", KEY]
    ok(bootstrap(*args, "--fix"))
    rules = lifecycle_rules(tls.url, bucket_name)
    prefixes = {r["Filter"]["Prefix"] for r in rules}
    assert prefixes == {
        LOCK,
        f"env:/dev/{LOCK}",
        f"env:/qa/{LOCK}",
        f"{KEY}.tfwrap-",
        f"env:/dev/{KEY}.tfwrap-",
        f"env:/qa/{KEY}.tfwrap-",
    }
    for r in rules:
        assert r["NoncurrentVersionExpiration"]["NoncurrentDays"] == standard.LOCK_VERSION_DAYS
        assert not standard.covers(r, KEY) and not standard.covers(r, f"env:/dev/{KEY}")  # never the state


def test_an_invalid_log_target_says_how_to_fix_it() -> None:
    bucket = standard.Bucket(None, standard.Standard("b", "us-east-1", log_bucket="logs"), None)
    error = ClientError(
        {"Error": {"Code": "InvalidTargetBucketForLogging", "Message": "x"}}, "PutBucketLogging"
    )
    refusal = policy_checks.logging_refused(error, bucket)
    assert refusal is not None and refusal.code == 80
    assert "does not let logging.s3.amazonaws.com write to it" in refusal.message
    assert (
        policy_checks.logging_refused(ClientError({"Error": {"Code": "AccessDenied"}}, "x"), bucket) is None
    )
