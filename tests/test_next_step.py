"""Issue 11: every message leads to the next right step, end to end (the installed shim, the
real Terraform engine, the S3/DynamoDB API server on loopback)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.world import Tools, make_bucket, make_table, run, s3_client, write_config
from tfwrap.demo.server import S3Server

pytestmark = [pytest.mark.engine, pytest.mark.shim]

QUIET = ["-no-color", "-input=false"]
NO_OBJECT_LOCK = '[severity]\nbucket-object-lock = "off"\n'


def tf(work: Path, env: dict[str, str], *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return run(["terraform", *args, *QUIET], work, {**env, **extra})


def tfwrap(work: Path, env: dict[str, str], *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return run(["tfwrap", *args], work, {**env, **extra}, timeout=180)


def enable_versioning(s3: S3Server, bucket: str) -> None:
    """The fix the bucket-versioning finding prints, done as the user would."""
    s3_client(s3.url).put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})


def unversioned(s3: S3Server, bucket: str, work: Path, **config: Any) -> Path:
    make_bucket(s3.url, bucket, versioning=False, object_lock=False)
    write_config(work, s3.url, bucket, **config)
    (work / ".tfwrap.toml").write_text(NO_OBJECT_LOCK)
    return work


# --- 1. fixing a finding takes effect at once -------------------------------------------------


def test_fix_then_rerun_goes_through_at_once(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str]
) -> None:
    work = unversioned(s3, bucket_name, tmp_path / "work")
    blocked = tf(work, env, "init")
    assert blocked.returncode == 80 and "[bucket-versioning]" in blocked.stderr
    again = tf(work, env, "init")  # the verdict is cached now: still blocked, still right
    assert again.returncode == 80 and "[bucket-versioning]" in again.stderr
    enable_versioning(s3, bucket_name)
    fixed = tf(work, env, "init")  # at once, not after cache_ttl_seconds
    assert fixed.returncode == 0, fixed.stderr
    assert "bucket-versioning" not in fixed.stderr
    # a passing warm run stays on the cache: no second check
    assert tf(work, env, "plan").returncode == 0
    warm = tf(work, env, "plan", TFWRAP_LOG_LEVEL="debug")
    assert warm.returncode == 0, warm.stderr
    assert "check cache hit" in warm.stderr and "checking again" not in warm.stderr


def test_check_no_cache_refreshes_what_the_shim_reads(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools
) -> None:
    work = unversioned(s3, bucket_name, tmp_path / "work")
    assert run([str(tools.engine), "init", *QUIET], work, env).returncode == 0
    assert tf(work, env, "plan").returncode == 80
    assert tfwrap(work, env, "check").returncode == 80
    enable_versioning(s3, bucket_name)
    assert tfwrap(work, env, "check", "--no-cache").returncode == 0
    plan = tf(work, env, "plan", TFWRAP_LOG_LEVEL="debug")
    assert plan.returncode == 0, plan.stderr
    # the verdict tfwrap check --no-cache wrote is what the shim read: no re-check was needed
    assert "check cache hit" in plan.stderr and "checking again" not in plan.stderr


def test_bootstrap_fix_invalidates_the_buckets_cached_facts(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools
) -> None:
    work = unversioned(s3, bucket_name, tmp_path / "work")
    assert run([str(tools.engine), "init", *QUIET], work, env).returncode == 0
    assert tf(work, env, "plan").returncode == 80
    fix = tfwrap(
        work,
        env,
        "bootstrap",
        "--bucket",
        bucket_name,
        "--region",
        "us-east-1",
        "--endpoint-url",
        s3.url,
        "--use-path-style",
        "--fix",
        TFWRAP_LOG_LEVEL="warning",
    )
    assert "versioning: " in fix.stderr, fix.stderr
    plan = tf(work, env, "plan", TFWRAP_LOG_LEVEL="debug")
    assert plan.returncode == 0, plan.stderr
    # the verdict was forgotten: a fresh check, not a refusal caught by the re-check
    assert "check cache miss" in plan.stderr and "checking again" not in plan.stderr


def test_migrate_dual_enabling_versioning_takes_effect_at_once(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools
) -> None:
    make_bucket(s3.url, bucket_name, versioning=False, object_lock=False)
    table = make_table(s3.url, f"{bucket_name}-locks")
    work = write_config(tmp_path / "work", s3.url, bucket_name, use_lockfile=None, dynamodb_table=table)
    (work / ".tfwrap.toml").write_text(NO_OBJECT_LOCK)
    engine = str(tools.engine)
    assert run([engine, "init", *QUIET], work, env).returncode == 0
    assert run([engine, "apply", *QUIET, "-auto-approve"], work, env).returncode == 0
    before = tf(work, env, "plan")
    assert before.returncode == 80 and "[bucket-versioning]" in before.stderr
    dual = tfwrap(work, env, "migrate")
    assert dual.returncode == 0, dual.stderr
    after = tf(work, env, "plan", TFWRAP_LOG_LEVEL="debug")
    assert after.returncode == 0, after.stderr
    assert "bucket-versioning" not in after.stderr and "[locking-dual]" in after.stderr
    assert "checking again" not in after.stderr  # migrate forgot the bucket's facts itself
