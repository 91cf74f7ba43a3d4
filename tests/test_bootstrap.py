"""``tfwrap bootstrap``: the installed command against a loopback S3 API (moto), the guard's own
checks on what it built, and the real Terraform engine through the shim on it."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from tests.support.iam import IamWorld
from tests.support.world import RESOURCE, Tools, make_bucket, run, s3_client
from tfwrap import cli, exitcodes
from tfwrap.aws import bucket_facts
from tfwrap.backend.config import BackendConfig
from tfwrap.bootstrap import names, standard
from tfwrap.checks import bucket as bucket_checks
from tfwrap.demo.server import S3Server

TFWRAP = str(Path(sys.prefix) / "bin" / "tfwrap")
KEY = "app/terraform.tfstate"
LOCK = KEY + ".tflock"
QUIET = ["-no-color", "-input=false"]
# Terraform needs these against a loopback server; the file --write-backend made stays as written.
SKIPS = [
    "-backend-config=skip_credentials_validation=true",
    "-backend-config=skip_requesting_account_id=true",
    "-backend-config=skip_metadata_api_check=true",
]
KMS = "arn:aws:kms:us-east-1:123456789012:key/0a1b2c3d-1111-2222-3333-444455556666"


def bootstrap(*args: str, cwd: Path = Path("/"), env: dict[str, str] | None = None) -> Any:
    """The installed ``tfwrap bootstrap`` (the environment is the test's: fake keys, dead AWS)."""
    return run([TFWRAP, "bootstrap", *args], cwd, env)


def ok(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""  # stdout is never ours to use
    assert "Traceback" not in result.stderr
    return result.stderr.splitlines()


def refused(result: subprocess.CompletedProcess[str], code: int, *words: str) -> str:
    """A refusal (or drift left): the documented code, a ``tfwrap:`` line last, no traceback."""
    assert result.returncode == code, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr and "Error:" not in result.stderr
    last = result.stderr.splitlines()[-1]
    assert last.startswith("tfwrap: ")
    for word in words:
        assert word in last, last
    return last


def snapshot(url: str, bucket: str) -> dict[str, Any]:
    """Everything bootstrap may set, as S3 reports it (an error code where nothing is set)."""
    s3 = s3_client(url)
    found: dict[str, Any] = {}
    for method in (
        "get_bucket_versioning",
        "get_object_lock_configuration",
        "get_bucket_encryption",
        "get_public_access_block",
        "get_bucket_policy",
        "get_bucket_lifecycle_configuration",
        "get_bucket_logging",
        "get_bucket_location",
    ):
        try:
            answer = getattr(s3, method)(Bucket=bucket)
            answer.pop("ResponseMetadata", None)
            found[method] = answer
        except ClientError as exc:
            found[method] = exc.response["Error"]["Code"]
    return found


def guard_findings(url: str, bucket: str, region: str = "us-east-1") -> list[str]:
    """The guard's bucket checks (versioning, Object Lock, encryption, public access)."""
    backend = BackendConfig(
        workdir=Path("."),
        data_dir=Path(".terraform"),
        workspace="default",
        backend_type="s3",
        settings={"bucket": bucket, "region": region, "endpoints": {"s3": url}, "use_path_style": True},
    )
    return [f.id for f in bucket_checks.evaluate(backend, bucket_facts.gather(backend))]


def policy_statements(url: str, bucket: str) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = json.loads(s3_client(url).get_bucket_policy(Bucket=bucket)["Policy"])[
        "Statement"
    ]
    return statements


def lifecycle_rules(url: str, bucket: str) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = s3_client(url).get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    return rules


def assert_meets_standard(
    url: str, bucket: str, lock_keys: tuple[str, ...] = (LOCK,), *, tls: bool = True
) -> None:
    """The guard's checks pass and every other part of the standard is there. ``tls=False``: the
    endpoint is plain HTTP, where no statement denying non-TLS access may be added."""
    assert guard_findings(url, bucket) == []
    s3 = s3_client(url)
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    lock = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    assert lock["ObjectLockEnabled"] == "Enabled"
    pab = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert pab == dict.fromkeys(standard.PAB_FLAGS, True)
    if tls:
        denying = [s for s in policy_statements(url, bucket) if s.get("Sid", "").endswith(standard.TLS_SID)]
        assert len(denying) == 1
        assert denying[0]["Effect"] == "Deny" and denying[0]["Principal"] == "*"
        assert denying[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        assert set(denying[0]["Resource"]) == {f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"}
    else:
        with pytest.raises(ClientError, match="NoSuchBucketPolicy"):
            s3.get_bucket_policy(Bucket=bucket)
    rules = lifecycle_rules(url, bucket)
    for lock_key in lock_keys:
        assert any(standard.covers(r, lock_key) for r in rules), rules
    # the lock rules touch lock objects only, never the state's versions
    assert not any(standard.covers(r, KEY) for r in rules)


# --- a fresh bucket: the guard passes it, Terraform runs on it ---------------------------------


@pytest.mark.engine
@pytest.mark.shim
def test_fresh_bucket_passes_every_check_and_terraform_runs_on_it(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "main.tf").write_text(RESOURCE)
    backend = work / "backend.tf"
    args = ["--bucket", bucket_name, "--region", "us-east-1", "--key", KEY, "--endpoint-url", s3.url]
    lines = ok(bootstrap(*args, "--use-path-style", "--write-backend", str(backend)))
    assert lines[0] == (
        f"tfwrap: created bucket {bucket_name} in us-east-1 "
        "with Object Lock enabled (which turns versioning on)"
    )
    assert f"tfwrap: backend: wrote {backend}" in lines
    assert lines[-1] == f"tfwrap: bucket {bucket_name} meets the standard"
    assert (
        f"tfwrap: note: {s3.url} is plain HTTP: no statement denying non-TLS access is added "
        "(it would refuse every request made through this endpoint, Terraform's included)"
    ) in lines
    assert_meets_standard(s3.url, bucket_name, tls=False)
    found = snapshot(s3.url, bucket_name)
    assert found["get_bucket_location"].get("LocationConstraint") is None  # us-east-1: none sent
    sse = found["get_bucket_encryption"]["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert sse["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    # One rule for the lock, one for tfwrap's own objects beside the state (journal, probe).
    rule, own = found["get_bucket_lifecycle_configuration"]["Rules"]
    assert rule["Filter"] == {"Prefix": LOCK} and rule["NoncurrentVersionExpiration"]["NoncurrentDays"] == 1
    assert rule["Expiration"] == {"ExpiredObjectDeleteMarker": True} and rule["Status"] == "Enabled"
    assert own["Filter"] == {"Prefix": f"{KEY}.tfwrap-"} and own["Status"] == "Enabled"

    assert backend.read_text() == textwrap.dedent(
        f"""\
        terraform {{
          backend "s3" {{
            bucket         = "{bucket_name}"
            key            = "{KEY}"
            region         = "us-east-1"
            encrypt        = true
            use_lockfile   = true
            endpoints      = {{ s3 = "{s3.url}" }}
            use_path_style = true
          }}
        }}
        """
    )
    fmt = run([str(tools.engine), "fmt", "-check", "-diff"], work, env)
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr  # formatted as terraform fmt would

    check = run(["tfwrap", "check", "--json", "-chdir", str(work)], work, env)
    assert check.returncode == 0, check.stdout + check.stderr
    assert json.loads(check.stdout)["findings"] == []

    init = run(["terraform", "init", *QUIET, *SKIPS], work, env)
    assert init.returncode == 0, init.stderr
    apply = run(["terraform", "apply", *QUIET, "-auto-approve"], work, env)
    assert apply.returncode == 0, apply.stderr
    assert "Apply complete! Resources: 1 added" in apply.stdout
    client = s3_client(s3.url)
    assert client.get_object(Bucket=bucket_name, Key=KEY)["ContentLength"] > 0
    # every lock left versions behind: exactly what the lifecycle rule is for
    versions = client.list_object_versions(Bucket=bucket_name, Prefix=LOCK)
    assert versions.get("Versions") and versions.get("DeleteMarkers")


def test_other_region_sends_its_location_constraint_and_kms_with_bucket_key(
    tls: TlsServer, bucket_name: str
) -> None:
    eu = boto3.client("s3", endpoint_url=tls.url, region_name="eu-west-1")
    log_bucket = f"{bucket_name}-logs"
    eu.create_bucket(Bucket=log_bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    delivery = {
        "Effect": "Allow",
        "Principal": {"Service": "logging.s3.amazonaws.com"},
        "Action": ["s3:PutObject"],
        "Resource": f"arn:aws:s3:::{log_bucket}/*",
    }
    eu.put_bucket_policy(
        Bucket=log_bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [delivery]})
    )
    args = ["--bucket", bucket_name, "--region", "eu-west-1", "--endpoint-url", tls.url, "--key", KEY]
    lines = ok(bootstrap(*args, "--kms-key", KMS, "--log-bucket", log_bucket, "--log-prefix", "state/"))
    assert f"tfwrap: default encryption: none -> aws:kms with {KMS}, bucket key on" in lines
    assert f"tfwrap: access logging: off -> to s3://{log_bucket}/state/" in lines
    found = snapshot(tls.url, bucket_name)
    assert found["get_bucket_location"]["LocationConstraint"] == "eu-west-1"
    (sse,) = found["get_bucket_encryption"]["ServerSideEncryptionConfiguration"]["Rules"]
    assert sse["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": KMS}
    assert sse["BucketKeyEnabled"] is True
    assert found["get_bucket_logging"]["LoggingEnabled"] == {
        "TargetBucket": log_bucket,
        "TargetPrefix": "state/",
    }
    assert guard_findings(tls.url, bucket_name, "eu-west-1") == []
    (denying,) = policy_statements(tls.url, bucket_name)
    assert denying["Resource"] == [f"arn:aws:s3:::{bucket_name}", f"arn:aws:s3:::{bucket_name}/*"]

    # another log destination is reported, never replaced
    again = bootstrap(*args, "--fix", "--log-bucket", f"{bucket_name}-other")
    refused(again, exitcodes.DRIFT, "1 drift item(s) remain")
    assert (
        f"access logging goes to s3://{log_bucket}/state/, not s3://{bucket_name}-other/{bucket_name}/"
        in (again.stderr)
    )
    assert "not fixed: an existing log destination is never replaced" in again.stderr
    assert snapshot(tls.url, bucket_name) == found


def test_workspaces_get_their_own_lock_rule(tls: TlsServer, bucket_name: str) -> None:
    args = ["--bucket", bucket_name, "--region", "us-east-1", "--endpoint-url", tls.url, "--key", KEY]
    ok(bootstrap(*args, "--workspace", "staging", "--workspace", "prod"))
    keys = (LOCK, f"env:/staging/{LOCK}", f"env:/prod/{LOCK}")
    assert_meets_standard(tls.url, bucket_name, keys)
    rules = lifecycle_rules(tls.url, bucket_name)
    assert len(rules) == 6  # each workspace: its lock, and tfwrap's journal and probe objects
    for state in (KEY, f"env:/staging/{KEY}", f"env:/prod/{KEY}"):
        for own in (f"{state}.tfwrap-migrate.json", f"{state}.tfwrap-probe-abc-a"):
            assert any(standard.covers(r, own) for r in rules), own


# --- a TLS S3 API: where a policy denying non-TLS access belongs ------------------------------


@dataclass
class TlsServer:
    """``moto_server`` over HTTPS with a certificate of our own; its request log tells which
    calls each run made."""

    url: str
    ca: Path
    log: Path


def self_signed(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsServer]:
    directory = tmp_path_factory.mktemp("moto-tls")
    cert, key = self_signed(directory)
    log = directory / "moto.log"
    exe = shutil.which("moto_server", path=os.path.dirname(sys.executable))
    assert exe, "moto_server is not installed: run `bash tests/run`"
    # Served on a socket bound here to port 0, as S3Server does (docs/decisions/041-moto-port-zero.md)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    env = {
        **os.environ,
        "HTTPS_PROXY": "",
        "HTTP_PROXY": "",
        "WERKZEUG_RUN_MAIN": "true",
        "WERKZEUG_SERVER_FD": str(listener.fileno()),
    }
    with log.open("ab") as out, listener:
        process = subprocess.Popen(
            [exe, "-H", "127.0.0.1", "-p", str(port), "-c", str(cert), "-k", str(key)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            env=env,
            pass_fds=(listener.fileno(),),
            start_new_session=True,
        )
    server = TlsServer(url=f"https://127.0.0.1:{port}", ca=cert, log=log)
    try:
        context = ssl.create_default_context(cafile=str(cert))
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
        )
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log.read_text()
            try:
                opener.open(server.url + "/moto-api/", timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, f"moto_server over TLS did not answer: {log.read_text()}"
                time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def tls(tls_server: TlsServer, monkeypatch: pytest.MonkeyPatch) -> TlsServer:
    """The TLS server, trusted by boto3 here and by tfwrap in its subprocesses (AWS_CA_BUNDLE)."""
    monkeypatch.setenv("AWS_CA_BUNDLE", str(tls_server.ca))
    return tls_server


_REQUEST = re.compile(r'"(?:\x1b\[[0-9;]*m)*([A-Z]+) /([^ ?/]+)[^ ]* HTTP')


def requests_for(log: Path, bucket: str, start: int) -> list[str]:
    """The HTTP methods of requests on ``bucket`` logged after byte ``start``."""
    with log.open("rb") as f:
        f.seek(start)
        text = f.read().decode(errors="replace")
    return [m.group(1) for m in _REQUEST.finditer(text) if m.group(2) == bucket]


def test_fresh_bucket_over_tls_gets_the_policy_denying_plain_http(tls: TlsServer, bucket_name: str) -> None:
    args = ["--bucket", bucket_name, "--region", "us-east-1", "--endpoint-url", tls.url, "--key", KEY]
    lines = ok(bootstrap(*args))
    assert "tfwrap: bucket policy: none -> denies non-TLS access" in lines
    assert not any("plain HTTP" in ln for ln in lines)
    assert_meets_standard(tls.url, bucket_name)
    (statement,) = policy_statements(tls.url, bucket_name)
    assert statement == standard.tls_statement(standard.Standard(bucket_name, "us-east-1"))


# --- idempotence, recorded: a second run sends no write at all --------------------------------


def test_second_run_changes_nothing(tls: TlsServer, bucket_name: str) -> None:
    server, log = tls, tls.log
    args = ["--bucket", bucket_name, "--region", "us-east-1", "--endpoint-url", server.url, "--key", KEY]
    mark = log.stat().st_size
    ok(bootstrap(*args))
    first = requests_for(log, bucket_name, mark)
    assert first.count("PUT") >= 5  # create, encryption, policy, public access block, lifecycle
    before = snapshot(server.url, bucket_name)
    for flags in ([], ["--fix"], ["--check"]):
        mark = log.stat().st_size
        lines = ok(bootstrap(*args, *flags))
        assert lines == [f"tfwrap: bucket {bucket_name} meets the standard; nothing changed"]
        calls = requests_for(log, bucket_name, mark)
        assert calls and set(calls) <= {"GET", "HEAD"}, calls  # read only
    assert snapshot(server.url, bucket_name) == before


def test_drift_is_reported_by_check_and_fixed_by_fix_never_deleting(tls: TlsServer, bucket_name: str) -> None:
    server, log = tls, tls.log
    make_bucket(server.url, bucket_name, versioning=False, object_lock=False, encryption=False)
    s3 = s3_client(server.url)
    s3.put_bucket_versioning(Bucket=bucket_name, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_versioning(Bucket=bucket_name, VersioningConfiguration={"Status": "Suspended"})
    s3.put_public_access_block(
        Bucket=bucket_name,
        PublicAccessBlockConfiguration={
            **dict.fromkeys(standard.PAB_FLAGS, True),
            "BlockPublicPolicy": False,
        },
    )
    assert set(guard_findings(server.url, bucket_name)) == {
        "bucket-versioning",
        "bucket-object-lock",
        "bucket-encryption",
        "public-access-block",
        "bucket-policy-tls",  # an HTTPS endpoint and no statement denying plain HTTP
    }
    before = snapshot(server.url, bucket_name)
    args = ["--bucket", bucket_name, "--region", "us-east-1", "--endpoint-url", server.url, "--key", KEY]
    mark = log.stat().st_size
    for flags in (["--check"], []):  # without --fix an existing bucket is only reported on
        result = bootstrap(*args, *flags)
        refused(result, exitcodes.DRIFT, "6 drift item(s) remain")
        lines = result.stderr.splitlines()
        assert lines[:-1] == [
            "tfwrap: drift: versioning is Suspended (run with --fix)",
            "tfwrap: drift: Object Lock off (the team's standard; Terraform itself does not need it) "
            "(run with --fix)",
            "tfwrap: drift: no default encryption (run with --fix)",
            "tfwrap: drift: bucket policy does not deny non-TLS access (aws:SecureTransport = false) "
            "(run with --fix)",
            "tfwrap: drift: public access block off for BlockPublicPolicy (run with --fix)",
            f"tfwrap: drift: no lifecycle rule expires noncurrent versions of {LOCK}, {KEY}.tfwrap- "
            "(run with --fix)",
        ]
    assert set(requests_for(log, bucket_name, mark)) <= {"GET", "HEAD"}
    assert snapshot(server.url, bucket_name) == before

    lines = ok(bootstrap(*args, "--fix"))
    assert lines[:3] == [
        "tfwrap: versioning: Suspended -> Enabled",
        "tfwrap: Object Lock: off -> Enabled (no default retention; cannot be turned off again)",
        "tfwrap: default encryption: none -> AES256 (SSE-S3)",
    ]
    assert "tfwrap: public access block: off for BlockPublicPolicy -> all four on" in lines
    assert lines[-1] == f"tfwrap: bucket {bucket_name} meets the standard"
    assert_meets_standard(server.url, bucket_name)
    assert "DELETE" not in requests_for(log, bucket_name, 0)
    assert ok(bootstrap(*args, "--check")) == [
        f"tfwrap: bucket {bucket_name} meets the standard; nothing changed"
    ]


# --- never weaker: stricter settings stay, existing rules and statements are merged -------------


def test_stricter_settings_are_kept_and_own_rules_merged(tls: TlsServer, bucket_name: str) -> None:
    retention = {"Mode": "GOVERNANCE", "Days": 30}
    make_bucket(tls.url, bucket_name, retention=retention)
    client = s3_client(tls.url)
    client.put_bucket_encryption(
        Bucket=bucket_name,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": KMS}}
            ]
        },
    )
    theirs_rule = {
        "ID": "expire-old-logs",
        "Status": "Enabled",
        "Filter": {"And": {"Prefix": "logs/", "Tags": [{"Key": "kind", "Value": "debug"}]}},
        "Expiration": {"Days": 30},
    }
    client.put_bucket_lifecycle_configuration(
        Bucket=bucket_name, LifecycleConfiguration={"Rules": [theirs_rule]}
    )
    theirs_statement = {
        "Sid": "DenyDeleteBucket",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:DeleteBucket",
        "Resource": f"arn:aws:s3:::{bucket_name}",
    }
    client.put_bucket_policy(
        Bucket=bucket_name, Policy=json.dumps({"Version": "2012-10-17", "Statement": [theirs_statement]})
    )
    args = ["--bucket", bucket_name, "--region", "us-east-1", "--endpoint-url", tls.url, "--key", KEY]
    lines = ok(bootstrap(*args, "--fix"))
    assert "tfwrap: note: Object Lock default retention GOVERNANCE 30 days kept (stricter than none)" in lines
    assert (
        f"tfwrap: default encryption: aws:kms with {KMS}, bucket key off -> aws:kms with {KMS}, bucket key on"
        in lines
    )
    found = snapshot(tls.url, bucket_name)
    (sse,) = found["get_bucket_encryption"]["ServerSideEncryptionConfiguration"]["Rules"]
    assert sse["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": KMS}
    rule = found["get_object_lock_configuration"]["ObjectLockConfiguration"]["Rule"]
    assert {k: v for k, v in rule["DefaultRetention"].items() if v} == retention  # moto adds Years: 0
    rules = found["get_bucket_lifecycle_configuration"]["Rules"]
    assert rules[0] == theirs_rule and len(rules) == 3 and rules[1]["Filter"] == {"Prefix": LOCK}
    assert rules[2]["Filter"] == {"Prefix": f"{KEY}.tfwrap-"}
    statements = policy_statements(tls.url, bucket_name)
    assert statements[0] == theirs_statement and len(statements) == 2
    assert_meets_standard(tls.url, bucket_name)

    # without --kms-key, SSE-KMS is never "fixed" to AES256; another key is reported, not applied
    assert ok(bootstrap(*args))[-1] == f"tfwrap: bucket {bucket_name} meets the standard; nothing changed"
    other = KMS.replace("0a1b2c3d", "99999999")
    result = bootstrap(*args, "--fix", "--kms-key", other)
    refused(result, exitcodes.DRIFT, "1 drift item(s) remain")
    assert f"default encryption uses KMS key {KMS}, not --kms-key {other}" in result.stderr
    assert "(not fixed: re-keying the bucket is left to you)" in result.stderr
    assert snapshot(tls.url, bucket_name) == found


def test_kms_key_upgrades_aes256_but_aes256_never_replaces_kms(s3: S3Server, bucket_name: str) -> None:
    make_bucket(s3.url, bucket_name)  # AES256
    args = ["--bucket", bucket_name, "--region", "us-east-1", "--endpoint-url", s3.url, "--key", KEY]
    result = bootstrap(*args, "--check", "--kms-key", KMS)
    refused(result, exitcodes.DRIFT)
    assert f"drift: default encryption is AES256, not aws:kms with {KMS} (run with --fix)" in result.stderr
    lines = ok(bootstrap(*args, "--fix", "--kms-key", KMS))
    assert f"tfwrap: default encryption: AES256 (SSE-S3) -> aws:kms with {KMS}, bucket key on" in lines
    sse = s3_client(s3.url).get_bucket_encryption(Bucket=bucket_name)["ServerSideEncryptionConfiguration"]
    assert sse["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert sse["Rules"][0]["BucketKeyEnabled"] is True


# --- --write-backend on an existing file ------------------------------------------------------

EXISTING = """\
# State for the app; owned by the platform team.
terraform {
  required_version = ">= 1.10" # keep in step with CI

  backend "s3" {
    bucket         = "{bucket}"   # shared
    key            = "app/terraform.tfstate"
    region         = "us-east-1"
    dynamodb_table = "tf-locks"   /* the old way */
    encrypt        = true
    endpoints = {
      s3       = "{url}" # loopback
      dynamodb = "{url}"
    }
    use_path_style              = true
    skip_credentials_validation = true
  }
}
"""


def test_write_backend_on_existing_file_changes_only_the_lines_it_must(
    tls: TlsServer, bucket_name: str, tmp_path: Path
) -> None:
    make_bucket(tls.url, bucket_name)
    path = tmp_path / "backend.tf"
    before = EXISTING.replace("{bucket}", bucket_name).replace("{url}", tls.url)
    path.write_text(before)
    args = ["--bucket", bucket_name, "--region", "us-east-1", "--endpoint-url", tls.url]

    checked = bootstrap(*args, "--check", "--write-backend", str(path))
    refused(checked, exitcodes.DRIFT, "drift item(s) remain")
    assert f"tfwrap: drift: {path} would change (run without --check to write it)" in checked.stderr
    assert path.read_text() == before

    result = bootstrap(*args, "--fix", "--write-backend", str(path))
    lines = ok(result)
    assert f"tfwrap: backend: updated {path}; run `terraform init -reconfigure`" in lines
    assert '-    dynamodb_table = "tf-locks"   /* the old way */' in lines
    assert "+    use_lockfile = true" in lines
    after = path.read_text()
    old, new = before.splitlines(), after.splitlines()
    assert [ln for ln in old if ln not in new] == ['    dynamodb_table = "tf-locks"   /* the old way */']
    assert [ln for ln in new if ln not in old] == ["    use_lockfile = true"]
    assert len(new) == len(old) + 1  # one line out, a blank line and the setting in
    # no --key: the lifecycle rule follows the file's key
    assert_meets_standard(tls.url, bucket_name)
    # written once: a second run leaves the file alone
    lines = ok(bootstrap(*args, "--write-backend", str(path)))
    assert f"tfwrap: backend: {path} already uses this bucket with use_lockfile = true" in lines
    assert path.read_text() == after


def test_write_backend_refuses_a_file_for_another_bucket(
    s3: S3Server, bucket_name: str, tmp_path: Path
) -> None:
    path = tmp_path / "backend.tf"
    before = EXISTING.replace("{bucket}", "someone-elses-state").replace("{url}", s3.url)
    path.write_text(before)
    args = ["--bucket", bucket_name, "--region", "us-east-1", "--endpoint-url", s3.url]
    result = bootstrap(*args, "--write-backend", str(path))
    last = refused(result, exitcodes.USAGE, "bucket = 'someone-elses-state'", f"not {bucket_name!r}")
    assert result.stderr == last + "\n"
    assert path.read_text() == before
    with pytest.raises(ClientError):  # refused before any AWS call: nothing was created
        s3_client(s3.url).head_bucket(Bucket=bucket_name)


# --- refusals: one line, no traceback, the documented code ------------------------------------


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("Tfstate-Upper", "character other than"),
        ("ab", "2 characters long"),
        ("x" * 64, "64 characters long"),
        ("state_bucket", "character other than"),
        ("-leading-dash", "character other than"),
        ("a..b-state", "'..'"),
        ("192.168.10.20", "IP address"),
        ("xn--state-bucket", "prefix 'xn--' is reserved"),
        ("state-s3alias", "suffix '-s3alias' is reserved"),
    ],
)
def test_bad_bucket_names_are_refused_before_any_call(name: str, why: str) -> None:
    # The endpoint is dead: a call would fail with another message and code.
    result = bootstrap("--bucket", name, "--region", "us-east-1")
    last = refused(result, exitcodes.USAGE, f"bucket name {name!r} is not valid", why)
    assert result.stderr == last + "\n"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--check", "--fix"], ["--check and --fix exclude each other"]),
        (["--log-prefix", "p/"], ["--log-prefix needs --log-bucket"]),
        (["--log-bucket", "BUCKET"], ["--log-bucket must be another bucket"]),
        (["--workspace", "staging"], ["--workspace needs --key"]),
        (["--region", "Europe"], ["region 'Europe' is not valid"]),
        (["--write-backend", "NEW/backend.tf"], ["is a new file: pass --key"]),
    ],
)
def test_bad_arguments_are_usage_refusals(
    args: list[str], words: list[str], bucket_name: str, tmp_path: Path
) -> None:
    argv = ["--bucket", bucket_name, "--region", "us-east-1"]
    argv += [a.replace("BUCKET", bucket_name).replace("NEW", str(tmp_path)) for a in args]
    result = bootstrap(*argv)
    last = refused(result, exitcodes.USAGE, *words)
    assert result.stderr == last + "\n"


def test_backend_file_without_an_s3_block_is_refused(bucket_name: str, tmp_path: Path) -> None:
    path = tmp_path / "main.tf"
    path.write_text('terraform {\n  backend "local" {}\n}\n')
    result = bootstrap("--bucket", bucket_name, "--region", "us-east-1", "--write-backend", str(path))
    last = refused(result, exitcodes.BACKEND_CONFIG, 'main.tf has no backend "s3" block')
    assert result.stderr == last + "\n"


def test_new_backend_file_beside_another_backend_block_is_refused(bucket_name: str, tmp_path: Path) -> None:
    (tmp_path / "main.tf").write_text('terraform {\n  backend "s3" {}\n}\n')
    args = ["--bucket", bucket_name, "--region", "us-east-1", "--key", KEY]
    result = bootstrap(*args, "--write-backend", str(tmp_path / "backend.tf"))
    refused(
        result, exitcodes.USAGE, "main.tf already has a backend block", f"--write-backend {tmp_path}/main.tf"
    )
    assert not (tmp_path / "backend.tf").exists()


def test_unreachable_endpoint_is_one_line(bucket_name: str) -> None:
    result = bootstrap("--bucket", bucket_name, "--region", "us-east-1")  # AWS_ENDPOINT_URL: a dead port
    last = refused(result, exitcodes.AWS_FAILURE, "cannot reach S3 at http://127.0.0.1:9", "AWS_ENDPOINT_URL")
    assert result.stderr == last + "\n"


def test_endpoint_from_aws_endpoint_url_s3_is_honoured(s3: S3Server, bucket_name: str) -> None:
    env = {**os.environ, "AWS_ENDPOINT_URL_S3": s3.url}  # before AWS_ENDPOINT_URL, as Terraform
    ok(bootstrap("--bucket", bucket_name, "--region", "us-east-1", "--key", KEY, env=env))
    assert_meets_standard(s3.url, bucket_name, tls=False)


def test_missing_credentials_are_one_line(
    s3: S3Server, bucket_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    result = bootstrap("--bucket", bucket_name, "--region", "us-east-1", "--endpoint-url", s3.url)
    last = refused(result, exitcodes.AWS_FAILURE, "no AWS credentials found")
    assert result.stderr == last + "\n"


def test_region_mismatch_is_refused(s3: S3Server, bucket_name: str) -> None:
    boto3.client("s3", endpoint_url=s3.url, region_name="eu-west-1").create_bucket(
        Bucket=bucket_name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    result = bootstrap("--bucket", bucket_name, "--region", "us-east-1", "--endpoint-url", s3.url, "--fix")
    last = refused(result, exitcodes.USAGE, "is in eu-west-1, not us-east-1: pass --region eu-west-1")
    assert result.stderr == last + "\n"


# Identities on the suite's IAM-enforcing server (tests/support/iam.py) whose policies refuse
# one action each.
DENIED = {"put-lifecycle": "s3:PutLifecycleConfiguration", "get-policy": "s3:GetBucketPolicy", "admin": None}


@pytest.fixture
def iam_users(world: IamWorld) -> tuple[S3Server, dict[str, dict[str, str]]]:
    keys: dict[str, dict[str, str]] = {}
    for user, action in DENIED.items():
        statements: list[dict[str, Any]] = [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]
        if action:
            statements.append({"Effect": "Deny", "Action": action, "Resource": "*"})
        keys[user] = world.user({"Version": "2012-10-17", "Statement": statements})
    return world.server, keys


def as_user(keys: dict[str, str]) -> dict[str, str]:
    return {**os.environ, **keys}


def test_access_denied_names_the_refused_write(
    iam_users: tuple[S3Server, dict[str, dict[str, str]]], bucket_name: str
) -> None:
    server, keys = iam_users
    args = ["--bucket", bucket_name, "--region", "us-east-1", "--endpoint-url", server.url, "--key", KEY]
    result = bootstrap(*args, env=as_user(keys["put-lifecycle"]))
    refused(result, exitcodes.DRIFT, f"bucket {bucket_name}: 1 drift item(s) remain")
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"tfwrap: created bucket {bucket_name}")  # the steps done so far
    denied = [ln for ln in lines if "access denied" in ln]  # said once, in the summary
    assert denied == [
        f"tfwrap: not fixed: lifecycle: access denied: s3:PutLifecycleConfiguration on bucket "
        f"{bucket_name!r} was refused; grant it to the identity running tfwrap bootstrap"
    ]


def test_access_denied_names_the_refused_read(
    iam_users: tuple[S3Server, dict[str, dict[str, str]]], bucket_name: str
) -> None:
    server, keys = iam_users
    admin = boto3.client(
        "s3",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id=keys["admin"]["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=keys["admin"]["AWS_SECRET_ACCESS_KEY"],
    )
    admin.create_bucket(Bucket=bucket_name, ObjectLockEnabledForBucket=True)
    args = ["--bucket", bucket_name, "--region", "us-east-1", "--endpoint-url", server.url, "--check"]
    result = bootstrap(*args, env=as_user(keys["get-policy"]))
    refused(result, exitcodes.DRIFT, "drift item(s) remain")
    # the other aspects are still assessed; the refused read is one drift line
    denied = [ln for ln in result.stderr.splitlines() if "access denied" in ln]
    assert len(denied) == 1 and f"access denied: s3:GetBucketPolicy on bucket {bucket_name!r}" in denied[0]


def test_unknown_credentials_are_named_not_mistaken_for_a_taken_name(
    iam_users: tuple[S3Server, dict[str, dict[str, str]]], bucket_name: str
) -> None:
    server, _ = iam_users  # HeadBucket answers a bare 403: the follow-up call says why
    result = bootstrap("--bucket", bucket_name, "--region", "us-east-1", "--endpoint-url", server.url)
    last = refused(result, exitcodes.AWS_FAILURE, "AWS rejected the credentials (InvalidAccessKeyId)")
    assert result.stderr == last + "\n"


# A bucket owned by another account cannot be staged on moto (it does not isolate accounts):
# the same command in-process, on a client whose answers are AWS's for that case.


def stubbed_main(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], stub: Any, argv: list[str]
) -> tuple[int, str]:
    from tfwrap.aws import clients

    monkeypatch.setattr(clients, "client", lambda backend, service, sess=None: stub.client)
    with stub:
        code = cli.main(["bootstrap", *argv])
    captured = capsys.readouterr()
    assert captured.out == ""
    return code, captured.err


def aws_client() -> Any:
    return boto3.client("s3", region_name="us-east-1", endpoint_url="http://127.0.0.1:9")


def test_name_taken_by_another_account_on_create(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], bucket_name: str
) -> None:
    stub = Stubber(aws_client())
    stub.add_client_error("head_bucket", "404", http_status_code=404)
    stub.add_client_error("create_bucket", "BucketAlreadyExists", http_status_code=409)
    code, err = stubbed_main(monkeypatch, capsys, stub, ["--bucket", bucket_name, "--region", "us-east-1"])
    assert code == exitcodes.USAGE
    assert err == (
        f"tfwrap: bucket name {bucket_name!r} is taken by another AWS account (bucket names are global); "
        "choose another name\n"
    )
    stub.assert_no_pending_responses()


def test_bucket_of_another_account_on_head(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], bucket_name: str
) -> None:
    stub = Stubber(aws_client())
    stub.add_client_error("head_bucket", "403", http_status_code=403)
    stub.add_client_error("get_bucket_location", "AccessDenied", http_status_code=403)
    code, err = stubbed_main(monkeypatch, capsys, stub, ["--bucket", bucket_name, "--region", "us-east-1"])
    assert code == exitcodes.BLOCKED
    assert err.count("\n") == 1 and "belongs to another AWS account" in err and "s3:ListBucket" in err
    stub.assert_no_pending_responses()


# --- the pure rules ---------------------------------------------------------------------------


def test_bucket_name_rules() -> None:
    for good in ("tfstate-abc", "a.b.c", "abc", "x" * 63, "my-state.2026"):
        assert names.bucket_problem(good) is None, good
    for bad in ("a-.b", "a.-b", "abc-", "sthree-x", "amzn-s3-demo-x", "x--ol-s3", "x.mrap", "x--x-s3"):
        assert names.bucket_problem(bad), bad
    assert names.partition("cn-north-1") == "aws-cn" and names.partition("us-gov-west-1") == "aws-us-gov"
    assert names.partition("eu-west-1") == "aws"


def test_which_lifecycle_rules_cover_a_lock() -> None:
    nve = {"NoncurrentVersionExpiration": {"NoncurrentDays": 7}, "Status": "Enabled"}
    assert standard.covers(standard.lock_rule(LOCK), LOCK)
    assert not standard.covers(standard.lock_rule(LOCK), KEY)  # never the state's own versions
    assert standard.covers({**nve, "Filter": {}}, LOCK)  # the whole bucket
    assert standard.covers({**nve, "Filter": {"Prefix": "app/"}}, LOCK)
    assert standard.covers({**nve, "Prefix": ""}, LOCK)  # legacy form
    assert not standard.covers({**nve, "Filter": {"Prefix": "other/"}}, LOCK)
    assert not standard.covers({**nve, "Status": "Disabled", "Filter": {}}, LOCK)
    assert not standard.covers({**nve, "Filter": {"ObjectSizeLessThan": 1000}}, LOCK)
    assert not standard.covers({**nve, "Filter": {"Tag": {"Key": "k", "Value": "v"}}}, LOCK)
    assert not standard.covers({"Status": "Enabled", "Filter": {}, "Expiration": {"Days": 1}}, LOCK)


def test_which_policy_statements_deny_plain_http() -> None:
    want = standard.Standard(bucket="tfstate-abc", region="us-east-1")
    ours = standard.tls_statement(want)
    assert standard.denies_insecure(ours, want)
    assert standard.denies_insecure(
        {**ours, "Principal": {"AWS": "*"}, "Action": ["*"], "Resource": "*"}, want
    )
    assert standard.denies_insecure({**ours, "Condition": {"Bool": {"aws:securetransport": False}}}, want)
    assert not standard.denies_insecure({**ours, "Effect": "Allow"}, want)
    assert not standard.denies_insecure({**ours, "Action": "s3:GetObject"}, want)
    assert not standard.denies_insecure({**ours, "Resource": "arn:aws:s3:::tfstate-abc/*"}, want)
    assert not standard.denies_insecure({**ours, "Principal": {"AWS": "arn:aws:iam::1:root"}}, want)
    narrowed = {"Bool": {"aws:SecureTransport": "false"}, "StringEquals": {"aws:PrincipalAccount": "1"}}
    assert not standard.denies_insecure({**ours, "Condition": narrowed}, want)
    china = standard.Standard(bucket="tfstate-abc", region="cn-north-1")
    assert standard.tls_statement(china)["Resource"][0] == "arn:aws-cn:s3:::tfstate-abc"
