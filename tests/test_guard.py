"""End to end: the installed shim, the real Terraform engine, a real S3 API on loopback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.world import Tools, make_bucket, make_table, run, s3_client, write_config
from tfwrap.demo.server import S3Server

pytestmark = [pytest.mark.engine, pytest.mark.shim]

TF = ["terraform"]
QUIET = ["-no-color", "-input=false"]


def init(cwd: Path, env: dict[str, str], *extra: str) -> None:
    result = run([*TF, "init", *QUIET, *extra], cwd, env)
    assert result.returncode == 0, result.stderr


def test_compliant_bucket_runs_init_plan_apply_quietly(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str]
) -> None:
    make_bucket(s3.url, bucket_name)
    work = write_config(tmp_path / "work", s3.url, bucket_name)
    init(work, env)
    plan = run([*TF, "plan", *QUIET, "-detailed-exitcode"], work, env)
    assert plan.returncode == 2, plan.stderr  # changes present, as direct Terraform says
    assert "tfwrap" not in plan.stderr  # quiet when everything passes
    apply = run([*TF, "apply", *QUIET, "-auto-approve"], work, env)
    assert apply.returncode == 0, apply.stderr
    assert "Apply complete! Resources: 1 added" in apply.stdout
    state = s3_client(s3.url).get_object(Bucket=bucket_name, Key="app/terraform.tfstate")
    assert json.loads(state["Body"].read())["serial"] >= 1
    again = run([*TF, "plan", *QUIET, "-detailed-exitcode"], work, env)
    assert again.returncode == 0, again.stderr


def test_output_json_is_byte_identical_to_direct(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools
) -> None:
    make_bucket(s3.url, bucket_name)
    work = write_config(tmp_path / "work", s3.url, bucket_name)
    init(work, env)
    assert run([*TF, "apply", *QUIET, "-auto-approve"], work, env).returncode == 0
    through = run([*TF, "output", "-json"], work, env)
    direct = run([str(tools.engine), "output", "-json"], work, env)
    assert through.returncode == direct.returncode == 0
    assert through.stdout == direct.stdout and '"hello"' in through.stdout
    assert through.stderr == direct.stderr == ""


@pytest.mark.parametrize(
    ("bucket_kwargs", "config_kwargs", "finding"),
    [
        ({"versioning": False, "object_lock": False}, {}, "bucket-versioning"),
        ({"object_lock": False}, {}, "bucket-object-lock"),
        ({"encryption": False}, {}, "bucket-encryption"),
        ({"public_access_block": False}, {}, "public-access-block"),
        ({}, {"use_lockfile": None, "dynamodb_table": "locks"}, "locking-dynamodb-only"),
        ({}, {"use_lockfile": None}, "locking-none"),
    ],
)
def test_each_failing_check_blocks_in_enforce_and_passes_in_warn(
    s3: S3Server,
    bucket_name: str,
    tmp_path: Path,
    env: dict[str, str],
    bucket_kwargs: dict[str, bool],
    config_kwargs: dict[str, object],
    finding: str,
) -> None:
    make_bucket(s3.url, bucket_name, **bucket_kwargs)
    work = write_config(tmp_path / "work", s3.url, bucket_name, **config_kwargs)
    blocked = run([*TF, "init", *QUIET], work, env)
    assert blocked.returncode == 80, blocked.stderr
    assert blocked.stdout == ""  # stdout belongs to Terraform
    lines = [ln for ln in blocked.stderr.splitlines() if ln.startswith("tfwrap: error")]
    assert any(f"[{finding}]" in ln and "fix:" in ln for ln in lines), blocked.stderr
    assert not (work / ".terraform").exists()  # Terraform never started
    warned = run([*TF, "init", *QUIET], work, {**env, "TFWRAP_MODE": "warn"})
    assert warned.returncode == 0, warned.stderr
    assert f"[{finding}]" in warned.stderr and "Terraform has been successfully initialized" in warned.stdout


def test_object_lock_message_does_not_claim_terraform_needs_it(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str]
) -> None:
    make_bucket(s3.url, bucket_name, object_lock=False)
    work = write_config(tmp_path / "work", s3.url, bucket_name)
    result = run([*TF, "init", *QUIET], work, env)
    line = next(ln for ln in result.stderr.splitlines() if "[bucket-object-lock]" in ln)
    assert "does not need it" in line and ".tfwrap.toml" in line
    (work / ".tfwrap.toml").write_text('[severity]\nbucket-object-lock = "off"\n')
    relaxed = run([*TF, "init", *QUIET], work, env)
    assert relaxed.returncode == 0, relaxed.stderr
    assert "bucket-object-lock" not in relaxed.stderr


def test_dual_locking_is_a_warning_and_runs(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str]
) -> None:
    make_bucket(s3.url, bucket_name)
    make_table(s3.url, f"{bucket_name}-locks")
    work = write_config(tmp_path / "work", s3.url, bucket_name, dynamodb_table=f"{bucket_name}-locks")
    result = run([*TF, "init", *QUIET], work, env)
    assert result.returncode == 0, result.stderr
    assert "tfwrap: warning [locking-dual]" in result.stderr and "finish the migration" in result.stderr


def test_leftover_in_initialised_copy_is_found(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools
) -> None:
    """init was run (directly) with -backend-config=dynamodb_table=...: the files are clean."""
    make_bucket(s3.url, bucket_name)
    make_table(s3.url, f"{bucket_name}-old")
    work = write_config(tmp_path / "work", s3.url, bucket_name)
    direct = run(
        [str(tools.engine), "init", *QUIET, f"-backend-config=dynamodb_table={bucket_name}-old"], work, env
    )
    assert direct.returncode == 0, direct.stderr
    result = run([*TF, "plan", *QUIET], work, env)
    assert result.returncode == 0, result.stderr  # dual locking: a warning
    assert "[locking-dual]" in result.stderr and ".terraform/terraform.tfstate" in result.stderr


def test_terraform_too_old_is_stopped(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools
) -> None:
    make_bucket(s3.url, bucket_name)
    work = write_config(tmp_path / "work", s3.url, bucket_name)
    old = {**env, "TFWRAP_TERRAFORM": str(tools.engine_old)}
    result = run([*TF, "init", *QUIET], work, old)
    assert result.returncode == 80, result.stderr
    assert "[terraform-version] Terraform 1.9.8 is older than 1.10.0" in result.stderr


def test_chdir_checks_the_other_directory(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str]
) -> None:
    make_bucket(s3.url, bucket_name, versioning=False, object_lock=False)
    work = write_config(tmp_path / "work", s3.url, bucket_name)
    result = run([*TF, f"-chdir={work}", "init", *QUIET], tmp_path, env)
    assert result.returncode == 80 and "[bucket-versioning]" in result.stderr


def test_workspace_changes_the_lock_key(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str]
) -> None:
    make_bucket(s3.url, bucket_name)
    work = write_config(tmp_path / "work", s3.url, bucket_name)
    init(work, env)
    assert run([*TF, "workspace", "new", "-no-color", "staging"], work, env).returncode == 0
    check = run(["tfwrap", "check", "--json", "-chdir", str(work)], work, {**env, "PATH": env["PATH"]})
    report = json.loads(check.stdout)
    assert report["backend"]["workspace"] == "staging"
    assert report["backend"]["lock_key"] == "env:/staging/app/terraform.tfstate.tflock"
    apply = run([*TF, "apply", *QUIET, "-auto-approve"], work, env)
    assert apply.returncode == 0, apply.stderr
    keys = [o["Key"] for o in s3_client(s3.url).list_objects_v2(Bucket=bucket_name)["Contents"]]
    assert "env:/staging/app/terraform.tfstate" in keys


def test_warm_cache_makes_no_aws_call_and_config_change_invalidates(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str]
) -> None:
    make_bucket(s3.url, bucket_name, object_lock=False)
    work = write_config(tmp_path / "work", s3.url, bucket_name)
    (work / ".tfwrap.toml").write_text('[severity]\nbucket-object-lock = "off"\n')
    init(work, env)
    assert run([*TF, "plan", *QUIET], work, env).returncode == 0  # fills the cache
    # Break the bucket behind tfwrap's back: a warm run trusts its cache (no AWS call)...
    s3_client(s3.url).put_bucket_versioning(
        Bucket=bucket_name, VersioningConfiguration={"Status": "Suspended"}
    )
    assert run([*TF, "plan", *QUIET], work, env).returncode == 0
    # ...a cold one sees it...
    cold = run([*TF, "plan", *QUIET], work, {**env, "TFWRAP_NO_CACHE": "1"})
    assert cold.returncode == 80 and "versioning is Suspended" in cold.stderr
    # ...and so does a warm run after the backend configuration changed.
    (work / "backend.tf").write_text((work / "backend.tf").read_text().replace("app/", "app2/"))
    changed = run([*TF, "init", *QUIET, "-reconfigure"], work, env)
    assert changed.returncode == 80 and "[bucket-versioning]" in changed.stderr


def test_a_cached_verdict_is_only_for_the_identity_that_earned_it(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str]
) -> None:
    """Another AWS identity (which may see less) never reuses a passing verdict: it checks anew."""
    make_bucket(s3.url, bucket_name, object_lock=False)
    work = write_config(tmp_path / "work", s3.url, bucket_name)
    (work / ".tfwrap.toml").write_text('[severity]\nbucket-object-lock = "off"\n')
    init(work, env)
    assert run([*TF, "plan", *QUIET], work, env).returncode == 0  # fills the cache
    s3_client(s3.url).put_bucket_versioning(
        Bucket=bucket_name, VersioningConfiguration={"Status": "Suspended"}
    )
    assert run([*TF, "plan", *QUIET], work, env).returncode == 0  # the same identity: warm
    other = {**env, "AWS_ACCESS_KEY_ID": "AKIAOTHEROTHEROTHER0"}
    cold = run([*TF, "plan", *QUIET], work, other)
    assert cold.returncode == 80 and "versioning is Suspended" in cold.stderr, cold.stderr


def test_tfwrap_check_reports_and_exits_80_on_errors(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str]
) -> None:
    make_bucket(s3.url, bucket_name, encryption=False)
    work = write_config(tmp_path / "work", s3.url, bucket_name)
    human = run(["tfwrap", "check", "-chdir", str(work)], tmp_path, env)
    assert human.returncode == 80 and "[bucket-encryption]" in human.stdout
    report = json.loads(run(["tfwrap", "check", "--json", "-chdir", str(work)], tmp_path, env).stdout)
    assert report["errors"] == 1 and report["findings"][0]["id"] == "bucket-encryption"
    assert report["backend"]["bucket"] == bucket_name and report["blocked"] is True
    s3_client(s3.url).put_bucket_encryption(
        Bucket=bucket_name,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    fixed = run(["tfwrap", "check", "--no-cache", "-chdir", str(work)], tmp_path, env)
    assert fixed.returncode == 0 and "all checks passed" in fixed.stdout


def test_tf_data_dir_and_tf_cli_args_are_honoured(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str]
) -> None:
    make_bucket(s3.url, bucket_name)
    work = write_config(tmp_path / "work", s3.url, bucket_name, use_lockfile=None)
    custom = {**env, "TF_DATA_DIR": "elsewhere", "TF_CLI_ARGS_init": "-backend-config=use_lockfile=true"}
    result = run([*TF, "init", *QUIET], work, custom)
    assert result.returncode == 0, result.stderr  # the argument adds use_lockfile: no [locking-none]
    assert (work / "elsewhere" / "terraform.tfstate").exists() and not (work / ".terraform").exists()
    plan = run([*TF, "plan", *QUIET], work, custom)
    assert plan.returncode == 0 and "tfwrap" not in plan.stderr  # read the initialised copy there
    without = run([*TF, "plan", *QUIET], work, {**env, "TF_DATA_DIR": "elsewhere"})
    assert without.returncode == 0
    bare = run([*TF, "init", *QUIET, "-reconfigure"], work, env)
    assert bare.returncode == 80 and "[locking-none]" in bare.stderr
