"""``tfwrap bootstrap`` without ``--key`` bounds the versions locks leave behind, and
``--write-backend`` on a one-line block writes HCL the real Terraform accepts."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.world import Tools, make_bucket, run, s3_client
from tfwrap import exitcodes
from tfwrap.backend import config
from tfwrap.bootstrap import standard
from tfwrap.bootstrap.bucket import Bucket
from tfwrap.demo.server import S3Server

TFWRAP = str(Path(sys.prefix) / "bin" / "tfwrap")
KEY = "app/terraform.tfstate"


def bootstrap(*args: str, cwd: Path = Path("/")) -> subprocess.CompletedProcess[str]:
    return run([TFWRAP, "bootstrap", *args], cwd)


def rules(url: str, bucket: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = s3_client(url).get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    return found


def the_bound(url: str, bucket: str) -> dict[str, Any]:
    (rule,) = [r for r in rules(url, bucket) if r["ID"] == standard.BOUND_RULE_ID]
    return rule


# --- the bucket-wide bound ---------------------------------------------------------------------


def test_fresh_bucket_without_key_gets_the_bucket_wide_bound(s3: S3Server, bucket_name: str) -> None:
    args = ["--bucket", bucket_name, "--region", "us-east-1", "--endpoint-url", s3.url]
    result = bootstrap(*args)
    assert result.returncode == 0, result.stderr
    assert "no --key, so no lifecycle rule" not in result.stderr
    assert "keeping the newest 100 noncurrent versions of every object" in result.stderr
    rule = the_bound(s3.url, bucket_name)
    assert rule["Status"] == "Enabled" and rule["Filter"] == {"Prefix": ""}
    # moto keeps NoncurrentDays only; what was sent is checked in test_the_rule_sent_keeps_n_versions
    assert rule["NoncurrentVersionExpiration"]["NoncurrentDays"] == 90
    assert rule["Expiration"] == {"ExpiredObjectDeleteMarker": True}
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
    again = bootstrap(*args, "--check")
    assert again.returncode == 0, again.stderr
    assert (
        again.stderr.splitlines()[-1] == f"tfwrap: bucket {bucket_name} meets the standard; nothing changed"
    )


def test_check_reports_the_missing_bound_and_fix_adds_it_beside_other_rules(
    s3: S3Server, bucket_name: str
) -> None:
    make_bucket(s3.url, bucket_name)
    theirs = {
        "ID": "archive-logs",
        "Status": "Enabled",
        "Filter": {"Prefix": "logs/"},
        "Expiration": {"Days": 30},
    }
    s3_client(s3.url).put_bucket_lifecycle_configuration(
        Bucket=bucket_name, LifecycleConfiguration={"Rules": [theirs]}
    )
    args = ["--bucket", bucket_name, "--region", "us-east-1", "--endpoint-url", s3.url]
    checked = bootstrap(*args, "--check")
    assert checked.returncode == exitcodes.DRIFT, checked.stderr
    assert "tfwrap: drift: no lifecycle rule bounds noncurrent versions" in checked.stderr
    assert "hashicorp/terraform#36445" in checked.stderr
    assert rules(s3.url, bucket_name) == [theirs]  # --check changes nothing
    fixed = bootstrap(*args, "--fix")
    assert fixed.returncode == 0, fixed.stderr
    found = rules(s3.url, bucket_name)
    assert found[0] == theirs and len(found) == 2  # kept, ours beside it
    assert found[1]["ID"] == standard.BOUND_RULE_ID


@pytest.mark.parametrize(
    "stricter",
    [
        {
            "ID": "mine",
            "Status": "Enabled",
            "Filter": {},
            "NoncurrentVersionExpiration": {"NoncurrentDays": 3},
        },
        {
            "ID": standard.BOUND_RULE_ID,  # ours once, tightened by hand
            "Status": "Enabled",
            "Filter": {"Prefix": ""},
            "NoncurrentVersionExpiration": {"NoncurrentDays": 7, "NewerNoncurrentVersions": 5},
        },
    ],
)
def test_an_existing_bound_is_never_weakened_or_replaced(
    s3: S3Server, bucket_name: str, stricter: dict[str, Any]
) -> None:
    make_bucket(s3.url, bucket_name)
    s3_client(s3.url).put_bucket_lifecycle_configuration(
        Bucket=bucket_name, LifecycleConfiguration={"Rules": [stricter]}
    )
    before = rules(s3.url, bucket_name)
    args = ["--bucket", bucket_name, "--region", "us-east-1", "--endpoint-url", s3.url]
    result = bootstrap(*args, "--fix")
    assert result.returncode == 0, result.stderr
    assert "nothing changed" in result.stderr
    assert rules(s3.url, bucket_name) == before


def test_a_disabled_rule_of_ours_is_drift_never_rewritten(s3: S3Server, bucket_name: str) -> None:
    make_bucket(s3.url, bucket_name)
    disabled = {**standard.bound_rule(100, 90), "Status": "Disabled"}
    s3_client(s3.url).put_bucket_lifecycle_configuration(
        Bucket=bucket_name, LifecycleConfiguration={"Rules": [disabled]}
    )
    before = rules(s3.url, bucket_name)
    result = bootstrap("--bucket", bucket_name, "--region", "us-east-1", "--endpoint-url", s3.url, "--fix")
    assert result.returncode == exitcodes.DRIFT
    assert f"lifecycle rule '{standard.BOUND_RULE_ID}' exists but does not bound" in result.stderr
    assert "an existing rule is never changed" in result.stderr
    assert rules(s3.url, bucket_name) == before


def test_flags_shape_the_bound_or_leave_it_out(s3: S3Server, bucket_name: str) -> None:
    args = ["--region", "us-east-1", "--endpoint-url", s3.url]
    shaped = bootstrap("--bucket", bucket_name, *args, "--keep-versions", "20", "--noncurrent-days", "30")
    assert shaped.returncode == 0, shaped.stderr
    assert the_bound(s3.url, bucket_name)["NoncurrentVersionExpiration"]["NoncurrentDays"] == 30
    other = bucket_name + "-none"
    none = bootstrap("--bucket", other, *args, "--no-version-bound")
    assert none.returncode == 0, none.stderr
    assert "note: --no-version-bound and no --key: nothing bounds the noncurrent versions" in none.stderr
    with pytest.raises(ClientError, match="NoSuchLifecycleConfiguration"):
        s3_client(s3.url).get_bucket_lifecycle_configuration(Bucket=other)
    # ... and the opted-out bucket is not drift on a later check that opts out too
    assert bootstrap("--bucket", other, *args, "--no-version-bound", "--check").returncode == 0


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--keep-versions", "101"], "101 is not in the range 1<=x<=100"),
        (["--noncurrent-days", "0"], "0 is not in the range"),
        (["--key", KEY, "--keep-versions", "5"], "only without --key"),
        (["--no-version-bound", "--noncurrent-days", "5"], "never with --no-version-bound"),
    ],
)
def test_bound_flags_are_checked_before_any_call(bucket_name: str, extra: list[str], words: str) -> None:
    result = bootstrap("--bucket", bucket_name, "--region", "us-east-1", *extra)
    assert result.returncode == exitcodes.USAGE, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("tfwrap: ") and words in lines[0]


def test_with_a_key_the_lock_rule_stays_and_no_bound_is_added(s3: S3Server, bucket_name: str) -> None:
    result = bootstrap(
        "--bucket", bucket_name, "--region", "us-east-1", "--endpoint-url", s3.url, "--key", KEY
    )
    assert result.returncode == 0, result.stderr
    rule, own = rules(s3.url, bucket_name)
    assert rule["ID"] == standard.rule_id(KEY + ".tflock")
    assert own["ID"] == standard.rule_id(KEY + ".tfwrap-")  # the journal and probe objects


def test_the_rule_sent_keeps_n_versions(s3: S3Server, bucket_name: str) -> None:
    """What goes over the wire (the server drops NewerNoncurrentVersions when it stores it)."""
    make_bucket(s3.url, bucket_name)
    client = s3_client(s3.url)
    sent: list[dict[str, Any]] = []
    client.meta.events.register(
        "provide-client-params.s3.PutBucketLifecycleConfiguration",
        lambda params, **_: sent.append(copy.deepcopy(params)),
    )
    wanted = standard.Standard(bucket=bucket_name, region="us-east-1", keep_versions=20, noncurrent_days=30)
    said: list[str] = []
    result = standard.run(Bucket(client, wanted, s3.url), standard.FIX, said.append)
    assert result.changed == ["lifecycle"] and not result.drift
    (params,) = sent
    (rule,) = params["LifecycleConfiguration"]["Rules"]
    assert rule == standard.bound_rule(20, 30)
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30, "NewerNoncurrentVersions": 20}


def test_which_rules_bound_the_whole_bucket() -> None:
    nve = {"Status": "Enabled", "NoncurrentVersionExpiration": {"NoncurrentDays": 30}}
    assert standard.bounds(standard.bound_rule(100, 90))
    assert standard.bounds({**nve, "Filter": {}}) and standard.bounds({**nve, "Prefix": ""})
    assert not standard.bounds({**nve, "Filter": {"Prefix": "app/"}})  # one prefix only
    assert not standard.bounds({**nve, "Filter": {"Tag": {"Key": "k", "Value": "v"}}})
    assert not standard.bounds({**nve, "Status": "Disabled", "Filter": {}})
    assert not standard.bounds({"Status": "Enabled", "Filter": {}, "Expiration": {"Days": 1}})


# --- --write-backend on one-line blocks: checked by the real Terraform ------------------------

ONE_LINE = {
    "empty": 'terraform {\n  backend "s3" {}\n}\n',
    "empty-spaced": 'terraform {\n  required_version = ">= 1.10"\n  backend "s3" {   }\n}\n',
    "one-attribute": 'terraform {\n  backend "s3" { key = "app/terraform.tfstate" }\n}\n',
}


@pytest.mark.engine
@pytest.mark.parametrize("shape", sorted(ONE_LINE))
def test_write_backend_on_a_one_line_block_is_valid_hcl(
    s3: S3Server, bucket_name: str, tmp_path: Path, tools: Tools, env: dict[str, str], shape: str
) -> None:
    path = tmp_path / "backend.tf"
    path.write_text(ONE_LINE[shape])
    args = ["--bucket", bucket_name, "--region", "us-east-1", "--key", KEY, "--endpoint-url", s3.url]
    result = bootstrap(*args, "--use-path-style", "--write-backend", str(path))
    assert result.returncode == 0, result.stderr
    assert f"tfwrap: backend: updated {path}" in result.stderr
    engine = str(tools.engine)
    fmt = run([engine, "fmt", "-check", "-diff", str(path)], tmp_path, env)
    assert fmt.returncode == 0, path.read_text() + fmt.stdout + fmt.stderr
    init = run([engine, "init", "-backend=false", "-input=false", "-no-color"], tmp_path, env)
    assert init.returncode == 0, path.read_text() + init.stderr
    valid = run([engine, "validate", "-no-color"], tmp_path, env)
    assert valid.returncode == 0, path.read_text() + valid.stdout + valid.stderr
    settings = config.file_settings(path)
    assert settings is not None
    assert settings["bucket"] == bucket_name and settings["key"] == KEY
    assert settings["use_lockfile"] is True and settings["endpoints"] == {"s3": s3.url}


@pytest.mark.engine
def test_write_backend_leaving_dynamodb_is_valid_hcl(
    s3: S3Server, bucket_name: str, tmp_path: Path, tools: Tools, env: dict[str, str]
) -> None:
    path = tmp_path / "backend.tf"
    path.write_text(
        'terraform {\n  backend "s3" {\n    bucket         = "' + bucket_name + '"\n'
        '    key            = "app/terraform.tfstate"\n    region         = "us-east-1"\n'
        '    dynamodb_table = "tf-locks" # the old way\n  }\n}\n'
    )
    args = ["--bucket", bucket_name, "--region", "us-east-1", "--endpoint-url", s3.url]
    result = bootstrap(*args, "--write-backend", str(path))
    assert result.returncode == 0, result.stderr
    engine = str(tools.engine)
    init = run([engine, "init", "-backend=false", "-input=false", "-no-color"], tmp_path, env)
    assert init.returncode == 0, path.read_text() + init.stderr
    valid = run([engine, "validate", "-no-color"], tmp_path, env)
    assert valid.returncode == 0, path.read_text() + valid.stdout + valid.stderr
    settings = config.file_settings(path)
    assert settings is not None and "dynamodb_table" not in settings and settings["use_lockfile"] is True


def test_write_backend_refuses_a_file_that_sets_a_setting_twice(
    s3: S3Server, bucket_name: str, tmp_path: Path
) -> None:
    path = tmp_path / "backend.tf"
    text = (
        'terraform {\n  backend "s3" {\n    bucket = "' + bucket_name + '"\n'
        '    key    = "app/terraform.tfstate"\n    bucket = "other"\n  }\n}\n'
    )
    path.write_text(text)
    args = ["--bucket", bucket_name, "--region", "us-east-1", "--endpoint-url", s3.url]
    result = bootstrap(*args, "--write-backend", str(path))
    assert result.returncode == exitcodes.BACKEND_CONFIG, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "bucket is set twice in backend.tf (lines 3 and 5)" in lines[0], lines
    assert path.read_text() == text  # the file is left as it was
    with pytest.raises(ClientError):  # refused before any AWS call: no bucket was made
        s3_client(s3.url).head_bucket(Bucket=bucket_name)
