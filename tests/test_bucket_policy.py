"""The bucket's policy, access logging and KMS key: findings that say before Terraform runs
that its unconditional writes will be denied, that plain HTTP is allowed, that the key cannot
be used, and (in ``audit``/``doctor``) that access logging is off."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.support.world import make_bucket, run, s3_client, write_config
from tfwrap.backend.config import BackendConfig
from tfwrap.checks import bucket_policy
from tfwrap.demo.server import S3Server

QUIET = ["-no-color", "-input=false"]
KEY = "app/terraform.tfstate"


def backend(endpoint: str = "", **settings: Any) -> BackendConfig:
    base = {"bucket": "acme", "key": KEY, "region": "us-east-1", **settings}
    if endpoint:
        base["endpoints"] = {"s3": endpoint}
    return BackendConfig(Path(), Path(".terraform"), "default", "s3", base)


def create_only(
    sid: str = "RequireCreateOnly", resource: str = "arn:aws:s3:::acme/*", **kw: Any
) -> dict[str, Any]:
    """The AWS-documented statement that enforces conditional writes on PutObject."""
    return {
        "Sid": sid,
        "Effect": "Deny",
        "Principal": "*",
        "Action": kw.get("action", "s3:PutObject"),
        "Resource": resource,
        "Condition": kw.get("condition", {"Null": {"s3:if-none-match": "true"}}),
    }


TLS_ONLY = {
    "Sid": "DenyInsecureTransport",
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:*",
    "Resource": ["arn:aws:s3:::acme", "arn:aws:s3:::acme/*"],
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}


def ids(found: list[Any]) -> list[str]:
    return [f.id for f in found]


def test_a_deny_without_if_none_match_on_the_state_or_lock_is_an_error_naming_its_sid() -> None:
    keys = [KEY, KEY + ".tflock"]
    assert bucket_policy.conditional_write_denials([create_only()], "acme", keys) == ["RequireCreateOnly"]
    # DeleteObject with If-Match, by wildcard action, in another partition, without a Sid.
    delete = create_only(action=["s3:Delete*"], condition={"Null": {"s3:if-match": "true"}})
    del delete["Sid"]
    other = create_only("Gov", "arn:aws-us-gov:s3:::acme/app/*", action="s3:*")
    assert bucket_policy.conditional_write_denials([TLS_ONLY, delete, other], "acme", keys) == ["#2", "Gov"]
    # Not Terraform's keys, not a Deny, not a conditional-write key: nothing to say.
    logs = create_only(resource="arn:aws:s3:::acme/logs/*")
    allow = {**create_only(), "Effect": "Allow"}
    tagged = create_only(condition={"StringEquals": {"s3:RequestObjectTag/team": "a"}})
    assert bucket_policy.conditional_write_denials([logs, allow, tagged, TLS_ONLY], "acme", keys) == []


def test_tls_and_kms_findings_from_the_facts() -> None:
    https = backend("https://s3.example")
    facts: dict[str, Any] = {"policy": {"statements": [create_only()]}}
    found = bucket_policy.evaluate(https, facts)
    assert ids(found) == ["bucket-policy-conditional-writes", "bucket-policy-tls"]
    assert found[0].severity == "error" and "RequireCreateOnly" in found[0].message
    assert "app/terraform.tfstate*" in found[0].fix
    assert ids(bucket_policy.evaluate(https, {"policy": {"statements": [TLS_ONLY]}})) == []
    # A plain-HTTP endpoint cannot be TLS-only: such a statement would lock Terraform out.
    assert ids(bucket_policy.evaluate(backend("http://127.0.0.1:9"), {"policy": {"statements": []}})) == []
    kms = {
        "kms": {
            "key": "arn:aws:kms:us-east-1:1:key/k",
            "usable": False,
            "detail": "kms:DescribeKey was denied",
        }
    }
    (denied,) = bucket_policy.evaluate(https, kms)
    assert (
        denied.id == "kms-key-access" and denied.severity == "error" and "kms:DescribeKey" in denied.message
    )
    unread = {"policy": {"error": "access-denied", "detail": "access denied", "action": "s3:GetBucketPolicy"}}
    (unknown,) = bucket_policy.evaluate(https, unread)
    assert unknown.id == "access-denied" and "s3:GetBucketPolicy was denied" in unknown.message
    assert ids(bucket_policy.hygiene(https, {"logging": {"enabled": False}})) == ["bucket-access-logging"]
    assert bucket_policy.hygiene(https, {"logging": {"enabled": True, "target": "s3://l/"}}) == []


@pytest.mark.engine
@pytest.mark.shim
def test_an_enforced_if_none_match_policy_stops_terraform_before_it_fails(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str]
) -> None:
    make_bucket(s3.url, bucket_name)
    statement = create_only(resource=f"arn:aws:s3:::{bucket_name}/*")
    s3_client(s3.url).put_bucket_policy(
        Bucket=bucket_name, Policy=json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    )
    work = write_config(tmp_path / "work", s3.url, bucket_name)
    enforce = {**env, "TFWRAP_MODE": "enforce"}
    init = run(["terraform", "init", *QUIET], work, enforce)
    assert init.returncode == 80, init.stderr
    line = next(x for x in init.stderr.splitlines() if "[bucket-policy-conditional-writes]" in x)
    assert line.startswith("tfwrap: error [bucket-policy-conditional-writes]")
    assert "statement RequireCreateOnly denies PutObject/DeleteObject" in line
    assert "stopped before Terraform ran" in init.stderr
    assert not (work / ".terraform").exists()  # Terraform never started

    audit = run(["tfwrap", "audit", "--format", "json"], tmp_path, env)
    assert audit.returncode == 80, audit.stderr
    found = {f["id"] for f in json.loads(audit.stdout)["findings"]}
    assert "bucket-policy-conditional-writes" in found and "bucket-access-logging" not in found


@pytest.mark.engine
@pytest.mark.shim
def test_access_logging_off_is_audits_and_doctors_not_the_guards(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str]
) -> None:
    make_bucket(s3.url, bucket_name, access_logging=False)
    work = write_config(tmp_path / "work", s3.url, bucket_name)
    init = run(["terraform", "init", *QUIET], work, env)
    assert init.returncode == 0 and "tfwrap" not in init.stderr, init.stderr  # quiet before every run
    audit = run(["tfwrap", "audit", "--format", "json"], tmp_path, env)
    (logging,) = [f for f in json.loads(audit.stdout)["findings"] if f["id"] == "bucket-access-logging"]
    assert logging["severity"] == "warning" and bucket_name in logging["message"]
    doctor = run(["tfwrap", "doctor", "--json", "-chdir", str(work)], work, env)
    assert doctor.returncode == 0, doctor.stderr
    assert "bucket-access-logging" in {f["id"] for f in json.loads(doctor.stdout)["findings"]}


@pytest.mark.shim
def test_two_stacks_on_one_bucket_with_different_kms_keys_are_each_checked_with_their_own_key(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str]
) -> None:
    """The KMS fact is part of the bucket's cached facts: the second stack's key is never
    judged by what the first stack's key was found to be."""
    make_bucket(s3.url, bucket_name)
    kms = boto3.client("kms", endpoint_url=s3.url, region_name="us-east-1")
    usable = kms.create_key(Description="state key")["KeyMetadata"]["Arn"]
    retired = kms.create_key(Description="retired key")["KeyMetadata"]
    kms.disable_key(KeyId=retired["KeyId"])
    disabled = retired["Arn"]
    here = {**env, "AWS_ENDPOINT_URL_KMS": s3.url}

    def kms_findings(name: str, key: str) -> list[dict[str, Any]]:
        work = write_config(tmp_path / name, s3.url, bucket_name, encrypt=True, kms_key_id=key)
        done = run(["tfwrap", "check", "--json", "-chdir", str(work)], work, here)
        assert done.stdout, done.stderr
        return [f for f in json.loads(done.stdout)["findings"] if f["id"] == "kms-key-access"]

    assert kms_findings("first", usable) == []  # its facts, the KMS key's included, now cached
    (found,) = kms_findings("second", disabled)
    assert found["severity"] == "error" and "the key is Disabled" in found["message"], found
    assert disabled in found["message"]
    assert kms_findings("first-again", usable) == []  # and the first key's entry still holds
