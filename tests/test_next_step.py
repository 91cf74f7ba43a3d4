"""Every message leads to the next right step, end to end (the installed shim, the
real Terraform engine, the S3/DynamoDB API server on loopback)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.world import (
    Tools,
    ddb_client,
    engine,
    make_bucket,
    make_table,
    run,
    s3_client,
    write_config,
)
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
    assert run([str(tools.engine), "init", *QUIET], work, env).returncode == 0
    assert engine(tools, work, env, "apply", *QUIET, "-auto-approve").returncode == 0
    before = tf(work, env, "plan")
    assert before.returncode == 80 and "[bucket-versioning]" in before.stderr
    dual = tfwrap(work, env, "migrate")
    assert dual.returncode == 0, dual.stderr
    after = tf(work, env, "plan", TFWRAP_LOG_LEVEL="debug")
    assert after.returncode == 0, after.stderr
    assert "bucket-versioning" not in after.stderr and "[locking-dual]" in after.stderr
    assert "checking again" not in after.stderr  # migrate forgot the bucket's facts itself


# --- 2. fix texts point to the right tool and the right file ---------------------------------


def finding_line(stderr: str, finding: str) -> str:
    return next(ln for ln in stderr.splitlines() if f"[{finding}]" in ln)


def test_fix_texts_name_tfwrap_migrate_and_never_the_initialised_copy(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools
) -> None:
    make_bucket(s3.url, bucket_name)
    table = make_table(s3.url, f"{bucket_name}-locks")
    work = write_config(tmp_path / "work", s3.url, bucket_name, use_lockfile=None, dynamodb_table=table)
    blocked = tf(work, env, "init")
    assert blocked.returncode == 80
    line = finding_line(blocked.stderr, "locking-dynamodb-only")
    assert "run `tfwrap migrate`" in line and 'backend "s3" block in backend.tf' in line

    write_config(work, s3.url, bucket_name, dynamodb_table=table)  # dual
    dual = tf(work, env, "init")
    assert dual.returncode == 0, dual.stderr
    assert "`tfwrap migrate finalize`" in finding_line(dual.stderr, "locking-dual")

    # the files drop dynamodb_table; only Terraform's initialised copy still has it
    write_config(work, s3.url, bucket_name)
    plan = tf(work, env, "plan")
    line = finding_line(plan.stderr, "locking-dual")
    fix = line.split(" — fix: ", 1)[1]
    assert "terraform init -reconfigure" in fix and "terraform.tfstate" not in fix


PARTIAL_BLOCK = 'terraform {\n  backend "s3" {}\n}\n'


def partial_config(s3: S3Server, bucket: str, work: Path, **settings: Any) -> Path:
    """``backend "s3" {}`` in main.tf; everything else in prod.s3.tfbackend (a -backend-config file)."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "backend.tf").write_text(PARTIAL_BLOCK)
    (work / "main.tf").write_text('resource "terraform_data" "example" {\n  input = "hello"\n}\n')
    values = {
        "bucket": bucket,
        "key": "app/terraform.tfstate",
        "region": "us-east-1",
        "use_path_style": True,
        "skip_credentials_validation": True,
        "skip_requesting_account_id": True,
        "skip_metadata_api_check": True,
        **settings,
    }
    lines = [f"{k} = {json.dumps(v)}" for k, v in values.items() if v is not None]
    lines.append(f'endpoints = {{ s3 = "{s3.url}", dynamodb = "{s3.url}" }}')
    (work / "prod.s3.tfbackend").write_text("\n".join(lines) + "\n")
    return work


def test_partial_backend_fix_names_the_backend_config_file(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str]
) -> None:
    make_bucket(s3.url, bucket_name)
    table = make_table(s3.url, f"{bucket_name}-locks")
    work = partial_config(s3, bucket_name, tmp_path / "work", dynamodb_table=table)
    blocked = tf(work, env, "init", "-backend-config=prod.s3.tfbackend")
    assert blocked.returncode == 80, blocked.stderr
    line = finding_line(blocked.stderr, "locking-dynamodb-only")
    assert "prod.s3.tfbackend (-backend-config)" in line
    assert "`tfwrap migrate -backend-config=prod.s3.tfbackend`" in line
    assert "main.tf" not in line and "backend.tf" not in line


# --- 3. partial backends work everywhere ------------------------------------------------------


def test_partial_backend_check_and_init_without_the_file(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str]
) -> None:
    make_bucket(s3.url, bucket_name)
    table = make_table(s3.url, f"{bucket_name}-locks")
    work = partial_config(s3, bucket_name, tmp_path / "work", dynamodb_table=table)
    given = tfwrap(work, env, "check", "-backend-config=prod.s3.tfbackend", "--json")
    assert given.returncode == 80, given.stderr
    assert [f["id"] for f in json.loads(given.stdout)["findings"]] == ["locking-dynamodb-only"]

    for result in (tfwrap(work, env, "check", "--init", "--json"), tfwrap(work, env, "check", "--json")):
        assert result.returncode == 80, result.stderr
        findings = json.loads(result.stdout)["findings"]
        assert [f["id"] for f in findings] == ["backend-config-missing"], findings
        assert "the bucket comes from -backend-config, none given" in findings[0]["message"]
    shim = tf(work, env, "init")
    assert shim.returncode == 80
    lines = [ln for ln in shim.stderr.splitlines() if re.match(r"tfwrap: \w+ \[", ln)]  # findings
    assert len(lines) == 1 and "[backend-config-missing]" in lines[0], shim.stderr
    assert "-backend-config=prod.s3.tfbackend" in lines[0] and "FILE" not in lines[0]  # the real file
    assert "ParamValidationError" not in shim.stderr


def test_partial_backend_migration_reuses_the_journals_backend_config(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools
) -> None:
    make_bucket(s3.url, bucket_name)
    table = make_table(s3.url, f"{bucket_name}-locks")
    work = partial_config(s3, bucket_name, tmp_path / "work", dynamodb_table=table)
    init = [str(tools.engine), "init", *QUIET, "-backend-config=prod.s3.tfbackend"]
    assert run(init, work, env).returncode == 0
    assert engine(tools, work, env, "apply", *QUIET, "-auto-approve").returncode == 0

    dual = tfwrap(work, env, "migrate", "-backend-config=prod.s3.tfbackend")
    assert dual.returncode == 0, dual.stderr
    status = tfwrap(work, env, "migrate", "status", "--json")  # no -backend-config: from the journal
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["backend"]["bucket"] == bucket_name
    assert report["backend"]["backend_config"] == ["prod.s3.tfbackend"]
    assert report["files_locking"] == "dual" and report["phase"] == "dual"
    assert report["next"] == "tfwrap migrate finalize -backend-config=prod.s3.tfbackend"
    text = tfwrap(work, env, "migrate", "status")
    assert f"backend: s3://{bucket_name}/app/terraform.tfstate" in text.stdout and "s3:///" not in text.stdout
    assert text.stdout.splitlines()[-1].startswith("next: tfwrap migrate finalize")

    finalize = tfwrap(work, env, "migrate", "finalize", "--soak", "0s")
    assert finalize.returncode == 0, finalize.stderr
    assert "using -backend-config=prod.s3.tfbackend" in finalize.stderr
    assert "dynamodb_table" not in (work / "prod.s3.tfbackend").read_text()
    assert (work / "backend.tf").read_text() == PARTIAL_BLOCK

    rollback = tfwrap(work, env, "migrate", "rollback")
    assert rollback.returncode == 0, rollback.stderr
    assert f'dynamodb_table = "{table}"' in (work / "prod.s3.tfbackend").read_text()

    # 4. a rollback done on purpose is a warning with its date, not a block on every run
    plan = tf(work, env, "plan")
    assert plan.returncode == 0, plan.stderr
    line = finding_line(plan.stderr, "locking-rolled-back")
    assert line.startswith("tfwrap: warning") and "`tfwrap migrate` resumes" in line
    assert re.search(r"rolled back on \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", line), line


# --- 4. migration and rollback never leave the user blocked by tfwrap itself ---------------------


def native(s3: S3Server, bucket: str, work: Path, tools: Tools, env: dict[str, str]) -> Path:
    make_bucket(s3.url, bucket)
    write_config(work, s3.url, bucket)
    assert run([str(tools.engine), "init", *QUIET], work, env).returncode == 0
    return work


def test_cleanup_table_already_gone_is_nothing_to_do(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools
) -> None:
    work = native(s3, bucket_name, tmp_path / "work", tools, env)
    result = tfwrap(work, env, "migrate", "cleanup-table", "--table", f"{bucket_name}-gone")
    assert result.returncode == 0, result.stderr
    assert f"nothing to do: table {bucket_name}-gone does not exist" in result.stderr


def test_cleanup_table_dry_run_scans_and_says_what_the_run_would(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools
) -> None:
    work = native(s3, bucket_name, tmp_path / "work", tools, env)
    table = make_table(s3.url, f"{bucket_name}-locks")
    other = {"LockID": {"S": "other-bucket/other/terraform.tfstate-md5"}, "Digest": {"S": "0" * 32}}
    ddb_client(s3.url).put_item(TableName=table, Item=other)
    dry = tfwrap(work, env, "migrate", "cleanup-table", "--table", table, "--dry-run")
    real = tfwrap(work, env, "migrate", "cleanup-table", "--table", table)
    assert dry.returncode == real.returncode == 86, (dry.stderr, real.stderr)
    assert dry.stderr.splitlines()[-1] == real.stderr.splitlines()[-1]
    assert "still used by 1 other item(s): other-bucket/other/terraform.tfstate-md5" in real.stderr
    ddb_client(s3.url).delete_item(TableName=table, Key={"LockID": other["LockID"]})
    mine = {"LockID": {"S": f"{bucket_name}/app/terraform.tfstate-md5"}, "Digest": {"S": "0" * 32}}
    ddb_client(s3.url).put_item(TableName=table, Item=mine)  # this state's stale digest only
    clear = tfwrap(work, env, "migrate", "cleanup-table", "--table", table, "--dry-run")
    assert clear.returncode == 0, clear.stderr
    assert "no other state uses it; would remove 1 stale digest item(s)" in clear.stderr
    assert ddb_client(s3.url).describe_table(TableName=table)["Table"]["TableName"] == table


def test_object_lock_step_follows_the_guards_severity(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools
) -> None:
    make_bucket(s3.url, bucket_name, object_lock=False)
    table = make_table(s3.url, f"{bucket_name}-locks")
    work = write_config(tmp_path / "work", s3.url, bucket_name, use_lockfile=None, dynamodb_table=table)
    assert run([str(tools.engine), "init", *QUIET], work, env).returncode == 0
    assert engine(tools, work, env, "apply", *QUIET, "-auto-approve").returncode == 0
    dry = tfwrap(work, env, "migrate", "--dry-run")
    line = next(ln for ln in dry.stderr.splitlines() if "object-lock:" in ln)
    assert ".tfwrap.toml" not in line and "is an error by default" in line  # no such file here
    (work / ".tfwrap.toml").write_text('[severity]\nbucket-object-lock = "warning"\n')
    done = tfwrap(work, env, "migrate")  # moto cannot enable it on this bucket: a warning goes on
    assert done.returncode == 0, done.stderr
    line = next(ln for ln in done.stderr.splitlines() if "object-lock:" in ln)
    assert "is a warning in" in line and "goes on without it" in line and "tfwrap bootstrap --fix" in line


# --- 5. bootstrap --fix fixes what it can, then reports the rest ----------------------------------


def bootstrap(work: Path, env: dict[str, str], s3: S3Server, bucket: str, *args: str) -> Any:
    base = ["bootstrap", "--bucket", bucket, "--region", "us-east-1", "--endpoint-url", s3.url]
    return tfwrap(work, env, *base, "--use-path-style", *args)


def test_bootstrap_fix_goes_on_past_a_refusal_and_honours_off(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str]
) -> None:
    make_bucket(
        s3.url, bucket_name, versioning=False, object_lock=False, encryption=False, public_access_block=False
    )
    client = s3_client(s3.url)
    client.put_object(Bucket=bucket_name, Key="app/terraform.tfstate", Body=b"{}")  # moto: no Object Lock now
    work = tmp_path / "work"
    work.mkdir()
    fix = bootstrap(work, env, s3, bucket_name, "--key", "app/terraform.tfstate", "--fix")
    assert fix.returncode == 89, fix.stderr  # exitcodes.DRIFT: the refused fix is drift left
    refusal = next(ln for ln in fix.stderr.splitlines() if ln.startswith("tfwrap: not fixed: Object Lock:"))
    assert "s3:PutBucketObjectLockConfiguration" in refusal
    # every independent fix after the refused one was still applied
    assert client.get_bucket_versioning(Bucket=bucket_name)["Status"] == "Enabled"
    assert client.get_bucket_encryption(Bucket=bucket_name)["ServerSideEncryptionConfiguration"]["Rules"]
    block = client.get_public_access_block(Bucket=bucket_name)["PublicAccessBlockConfiguration"]
    assert all(block.values())
    assert client.get_bucket_lifecycle_configuration(Bucket=bucket_name)["Rules"]
    summary = fix.stderr.strip().splitlines()
    assert any(ln.startswith("tfwrap: fixed: versioning, default encryption") for ln in summary), fix.stderr
    assert summary[-1] == f"tfwrap: bucket {bucket_name}: 1 drift item(s) remain"

    (work / ".tfwrap.toml").write_text(NO_OBJECT_LOCK)
    again = bootstrap(work, env, s3, bucket_name, "--key", "app/terraform.tfstate", "--fix")
    assert again.returncode == 0, again.stderr
    assert "Object Lock" in again.stderr and "PutBucketObjectLockConfiguration" not in again.stderr


# --- 6. reports to stdout, with --json; each subcommand's help lists only its options -----------


def test_bootstrap_check_json_report(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str]
) -> None:
    make_bucket(s3.url, bucket_name, versioning=False, object_lock=False)
    checked = bootstrap(tmp_path, env, s3, bucket_name, "--check", "--json")
    assert checked.returncode == 89, checked.stderr  # exitcodes.DRIFT
    report = json.loads(checked.stdout)
    assert report["bucket"] == bucket_name and report["mode"] == "check"
    assert report["meets_standard"] is False and report["changed"] == []
    assert "versioning is off (never enabled)" in report["drift"]  # 8: the wording
    assert "never enabled" in checked.stderr and "is never enabled" not in checked.stderr


def test_migrate_status_help_lists_only_its_options(tmp_path: Path, env: dict[str, str]) -> None:
    helped = tfwrap(tmp_path, env, "migrate", "status", "--help")
    assert helped.returncode == 0
    for option in ("--json", "--soak", "-chdir", "-backend-config"):
        assert option in helped.stdout
    for option in ("--dry-run", "--plan-arg", "--lock-timeout"):
        assert option not in helped.stdout
    refused = tfwrap(tmp_path, env, "migrate", "status", "--dry-run")
    assert refused.returncode == 83 and "see tfwrap migrate status --help" in refused.stderr
    cleanup = tfwrap(tmp_path, env, "migrate", "cleanup-table", "--help")
    assert "--dry-run" in cleanup.stdout and "--plan-arg" not in cleanup.stdout


# --- 8. smaller ones ---------------------------------------------------------------------------


def test_unknown_command_says_where_to_look(tmp_path: Path, env: dict[str, str]) -> None:
    result = tfwrap(tmp_path, env, "frobnicate")
    assert result.returncode == 83 and result.stdout == ""
    assert result.stderr.strip().endswith("see tfwrap --help"), result.stderr


STAMP = re.compile(r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z\b")


def test_one_timestamp_format_in_logs_and_lock_status(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools
) -> None:
    work = native(s3, bucket_name, tmp_path / "work", tools, env)
    logged = tf(work, env, "plan", TFWRAP_LOG_LEVEL="debug")
    stamps = [m.group(0) for m in STAMP.finditer(logged.stderr)]
    assert stamps and all(s.endswith("Z") and "." not in s for s in stamps), stamps
    lock = {
        "ID": "8a4a39b4-4c9f-4d9e-9c52-7a2b0c4b4e11",
        "Operation": "OperationTypeApply",
        "Info": "",
        "Who": "someone@elsewhere",
        "Version": "1.11.4",
        "Created": "2026-11-28T08:36:25.123456789Z",
        "Path": f"{bucket_name}/app/terraform.tfstate",
    }
    key = "app/terraform.tfstate.tflock"
    s3_client(s3.url).put_object(Bucket=bucket_name, Key=key, Body=json.dumps(lock).encode())
    status = tfwrap(work, env, "lock", "status")
    assert "2026-11-28T08:36:25Z" in status.stdout and "08:36:25.123" not in status.stdout, status.stdout


def test_package_license_is_an_spdx_expression() -> None:
    from importlib import metadata

    assert metadata.metadata("tfwrap")["License-Expression"] == "MIT"


def test_uninstall_says_it_leaves_the_cache_and_where(tmp_path: Path) -> None:
    install = Path(__file__).resolve().parent.parent / "install.sh"
    home = tmp_path / "home"  # the isolated fixture's: never the real one
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home)}
    result = run(["bash", str(install), "--prefix", str(tmp_path / "p"), "--uninstall"], tmp_path, env)
    assert result.returncode == 0, result.stderr
    cache = home / ".cache" / "tfwrap"
    assert f"install.sh: left the cache directory {cache}" in result.stderr


# --- the journal lives next to the state, for every checkout --------------------------


def test_another_checkout_sees_the_journal_and_the_soak(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools
) -> None:
    make_bucket(s3.url, bucket_name)
    table = make_table(s3.url, f"{bucket_name}-locks")
    laptop = write_config(tmp_path / "laptop", s3.url, bucket_name, use_lockfile=None, dynamodb_table=table)
    assert run([str(tools.engine), "init", *QUIET], laptop, env).returncode == 0
    assert engine(tools, laptop, env, "apply", *QUIET, "-auto-approve").returncode == 0
    assert tfwrap(laptop, env, "migrate").returncode == 0
    assert not (laptop / ".terraform" / "tfwrap-migrate.json").exists()
    journal = s3_client(s3.url).get_object(
        Bucket=bucket_name, Key="app/terraform.tfstate.tfwrap-migrate.json"
    )
    assert "dual/verify" in json.loads(journal["Body"].read())["steps"]

    # CI: a fresh checkout of the same (now dual) configuration, its own .terraform
    ci = tmp_path / "ci"
    ci.mkdir()
    for name in ("backend.tf", "main.tf"):
        (ci / name).write_text((laptop / name).read_text())
    assert run([str(tools.engine), "init", *QUIET], ci, env).returncode == 0
    early = tfwrap(ci, env, "migrate", "finalize")  # the soak counts from the laptop's verify
    assert early.returncode == 80 and "the dual phase is" in early.stderr and "soak" in early.stderr
    status = json.loads(tfwrap(ci, env, "migrate", "status", "--json").stdout)
    assert status["phase"] == "dual" and status["next"] == "tfwrap migrate finalize"
    done = tfwrap(ci, env, "migrate", "finalize", "--soak", "0s")
    assert done.returncode == 0, done.stderr
    assert "dynamodb_table" not in (ci / "backend.tf").read_text()


def test_a_journal_left_in_dot_terraform_is_moved_next_to_the_state(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools
) -> None:
    work = native(s3, bucket_name, tmp_path / "work", tools, env)
    legacy = work / ".terraform" / "tfwrap-migrate.json"
    old = {
        "version": 1,
        "bucket": bucket_name,
        "state_key": "app/terraform.tfstate",
        "workspace": "default",
        "table": "old-locks",
        "steps": {"dual/preflight": {"at": "2026-11-27T08:00:00Z"}},
        "edits": [],
        "history": [],
    }
    legacy.write_text(json.dumps(old))
    status = tfwrap(work, env, "migrate", "status", "--json")
    assert status.returncode == 0, status.stderr
    key = "app/terraform.tfstate.tfwrap-migrate.json"
    assert f"moved the migration journal from {legacy} to s3://{bucket_name}/{key}" in status.stderr
    assert not legacy.exists()
    moved = json.loads(s3_client(s3.url).get_object(Bucket=bucket_name, Key=key)["Body"].read())
    assert moved["steps"] == old["steps"] and json.loads(status.stdout)["lock_table"] == "old-locks"
