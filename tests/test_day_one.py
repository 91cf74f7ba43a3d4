"""Day one: a team installs the shim before it migrates. Adopting gradually, warnings that do
not drown the output, suppression, and policy files that merge from the repository root down."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.world import Tools, make_bucket, make_table, run, write_config
from tfwrap.demo.server import S3Server
from tfwrap.findings import suppress

QUIET = ["-no-color", "-input=false"]


def tf(work: Path, env: dict[str, str], *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return run(["terraform", *args, *QUIET], work, {**env, **extra})


def tfwrap(work: Path, env: dict[str, str], *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return run(["tfwrap", *args], work, {**env, **extra}, timeout=180)


def findings_in(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith(("tfwrap: warning [", "tfwrap: error ["))]


def day_one(s3: S3Server, bucket: str, work: Path, tools: Tools, env: dict[str, str]) -> Path:
    """DynamoDB locking only, on a bucket without Object Lock: two errors on every plan."""
    make_bucket(s3.url, bucket, object_lock=False)
    table = make_table(s3.url, f"{bucket}-locks")
    write_config(work, s3.url, bucket, use_lockfile=None, dynamodb_table=table)
    assert run([str(tools.engine), "init", *QUIET], work, env).returncode == 0
    return work


@pytest.mark.engine
@pytest.mark.shim
def test_adopt_gradually_then_warnings_once_a_day_and_quiet(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools
) -> None:
    work = day_one(s3, bucket_name, tmp_path / "work", tools, env)
    blocked = tf(work, env, "plan")
    assert blocked.returncode == 80, blocked.stderr
    assert "`tfwrap check --init-config`" in blocked.stderr  # said once...
    again = tf(work, env, "plan")
    assert again.returncode == 80 and "--init-config" not in again.stderr  # ...and not again

    wrote = tfwrap(work, env, "check", "--init-config")
    assert wrote.returncode == 0, wrote.stderr
    policy = (work / ".tfwrap.toml").read_text()
    assert 'bucket-object-lock = "warning"' in policy and 'locking-dynamodb-only = "warning"' in policy
    refused = tfwrap(work, env, "check", "--init-config")  # never overwrites the team's file
    assert refused.returncode == 83 and refused.stderr.startswith("tfwrap: ") and "exists" in refused.stderr

    first = tf(work, env, "plan")
    assert first.returncode == 0, first.stderr
    full = findings_in(first.stderr)
    assert len(full) == 2 and all(" — fix: " in ln for ln in full), full
    second = tf(work, env, "plan")
    assert second.returncode == 0, second.stderr
    short = findings_in(second.stderr)
    assert len(short) == 2 and all("(as shown today;" in ln and " — fix: " not in ln for ln in short), short
    assert all(len(ln) < 120 for ln in short)
    assert findings_in(tf(work, env, "plan", TFWRAP_QUIET="1").stderr) == []
    (work / ".tfwrap.toml").write_text(policy + "\n")  # the setting, not the variable
    (work / ".tfwrap.toml").write_text("quiet = true\n" + policy)
    assert findings_in(tf(work, env, "plan").stderr) == []
    # an error is never shortened nor hidden
    (work / ".tfwrap.toml").write_text("quiet = true\n")
    for _ in range(2):
        still = tf(work, env, "plan")
        assert (
            still.returncode == 80 and len([ln for ln in findings_in(still.stderr) if " — fix: " in ln]) == 2
        )


@pytest.mark.engine
@pytest.mark.shim
def test_inline_ignore_with_a_reason_on_the_backend_block(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools
) -> None:
    work = day_one(s3, bucket_name, tmp_path / "work", tools, env)
    text = (work / "backend.tf").read_text()
    marked = text.replace(
        '  backend "s3" {',
        '  # tfwrap:ignore bucket-object-lock the org standard does not apply to sandboxes\n  backend "s3" {',
    )
    assert marked != text
    marked = marked.replace(
        '  backend "s3" {', '  backend "s3" {\n    # tfwrap:ignore locking-dynamodb-only', 1
    )
    (work / "backend.tf").write_text(marked)
    plan = tf(work, env, "plan")
    assert plan.returncode == 80, plan.stderr  # no reason given for locking-dynamodb-only
    said = findings_in(plan.stderr)
    assert len(said) == 1 and "[locking-dynamodb-only]" in said[0], said
    assert "gives no reason, so it is not honoured" in said[0] and "backend.tf:" in said[0]
    (work / "backend.tf").write_text(
        marked.replace(
            "# tfwrap:ignore locking-dynamodb-only", "# tfwrap:ignore locking-dynamodb-only migrating Q3"
        )
    )
    plan = tf(work, env, "plan")
    assert plan.returncode == 0, plan.stderr
    assert findings_in(plan.stderr) == []
    check = json.loads(tfwrap(work, env, "check", "--json").stdout)
    assert check["findings"] == [] and check["schema_version"] == 1


def test_inline_ignores_are_read_only_on_the_backend_block() -> None:
    text = (
        "# tfwrap:ignore encrypt-missing not on the block\n"
        "\n"
        "terraform {\n"
        "  // tfwrap:ignore bucket-versioning logs bucket, versioned elsewhere\n"
        '  backend "s3" {\n'
        '    bucket = "b"  # tfwrap:ignore locking-none reason here\n'
        "    # tfwrap:ignore locking-dual\n"
        "  }\n"
        "}\n"
        "# tfwrap:ignore public-access-block after the block\n"
    )
    assert suppress.ignores_in(text) == {
        "bucket-versioning": ("logs bucket, versioned elsewhere", 4),
        "locking-none": ("reason here", 6),
        "locking-dual": ("", 7),
    }


def test_policy_files_merge_from_the_root_down_with_user_file_and_tfwrap_config(
    tmp_path: Path, env: dict[str, str]
) -> None:
    repo = tmp_path / "repo"
    stack = repo / "envs" / "prod"
    stack.mkdir(parents=True)
    (repo / ".git").mkdir()
    (tmp_path / ".tfwrap.toml").write_text('mode = "off"\n')  # above the repository: not read
    (repo / ".tfwrap.toml").write_text(
        'cache_ttl_seconds = 60\n[severity]\nbucket-object-lock = "warning"\nencrypt-missing = "off"\n'
    )
    (stack / ".tfwrap.toml").write_text('[severity]\nencrypt-missing = "error"\n')
    user = tmp_path / "xdg" / "tfwrap"
    user.mkdir(parents=True)
    (user / "config.toml").write_text('stale_locks = "take-over"\ncache_ttl_seconds = 5\n')
    extra = tmp_path / "ci.toml"
    extra.write_text("grace_seconds = 3\n")
    env = {**env, "XDG_CONFIG_HOME": str(tmp_path / "xdg"), "TFWRAP_CONFIG": str(extra)}

    shown = tfwrap(stack, env, "check", "--show-config", "--json")
    assert shown.returncode == 0, shown.stderr
    doc = json.loads(shown.stdout)
    assert doc["schema_version"] == 1
    assert doc["files"] == [
        str(user / "config.toml"),
        str(repo / ".tfwrap.toml"),
        str(stack / ".tfwrap.toml"),
        str(extra),
    ]
    got = {s["name"]: (s["value"], s["from"]) for s in doc["settings"]}
    assert got["mode"] == ("enforce", "default")  # the file above the repository root is not read
    assert got["cache_ttl_seconds"] == (60, str(repo / ".tfwrap.toml"))  # nearer than the user's
    assert got["stale_locks"] == ("take-over", str(user / "config.toml"))
    assert got["grace_seconds"] == (3.0, str(extra))
    assert got["severity.bucket-object-lock"] == ("warning", str(repo / ".tfwrap.toml"))  # kept
    assert got["severity.encrypt-missing"] == ("error", str(stack / ".tfwrap.toml"))  # nearest wins
    text = tfwrap(stack, {**env, "TFWRAP_MODE": "warn"}, "check", "--show-config")
    assert text.returncode == 0, text.stderr
    assert any(
        ln.startswith('mode = "warn"') and ln.endswith("# TFWRAP_MODE") for ln in text.stdout.splitlines()
    )
    missing = tfwrap(stack, {**env, "TFWRAP_CONFIG": str(tmp_path / "nope.toml")}, "check", "--show-config")
    assert (
        missing.returncode == 81 and "TFWRAP_CONFIG=" in missing.stderr and "Traceback" not in missing.stderr
    )


def write_stack(directory: Path, **settings: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    body = "\n".join(f'    {k} = "{v}"' for k, v in settings.items())
    (directory / "backend.tf").write_text(
        'terraform {\n  required_version = ">= 1.11"\n  backend "s3" {\n'
        f'    bucket = "acme"\n    key = "{directory.name}.tfstate"\n    region = "us-east-1"\n'
        f"    encrypt = true\n{body}\n  }}\n}}\n"
    )


def test_audit_baseline_and_skip_path(tmp_path: Path) -> None:
    audit = [sys.executable, "-m", "tfwrap", "audit", "--offline", "--format", "json"]
    environ = dict(os.environ)
    write_stack(tmp_path / "envs" / "prod", dynamodb_table="locks")
    write_stack(tmp_path / "examples" / "demo", dynamodb_table="locks")
    before = run(audit, tmp_path, environ)
    assert before.returncode == 80, before.stderr
    assert len(json.loads(before.stdout)["findings"]) == 2

    skipped = run([*audit, "--skip-path", "examples/*"], tmp_path, environ)
    assert skipped.returncode == 80
    assert [f["stack"] for f in json.loads(skipped.stdout)["findings"]] == ["envs/prod"]
    assert "1 stack(s) skipped" in skipped.stderr

    wrote = run([*audit, "--write-baseline", "baseline.json"], tmp_path, environ)
    assert wrote.returncode == 0, wrote.stderr
    known = json.loads((tmp_path / "baseline.json").read_text())
    assert known["schema_version"] == 1 and {f["id"] for f in known["findings"]} == {"locking-dynamodb-only"}
    quiet = run([*audit, "--baseline", "baseline.json"], tmp_path, environ)
    assert quiet.returncode == 0, quiet.stderr
    assert json.loads(quiet.stdout)["findings"] == [] and "2 in the baseline" in quiet.stderr
    write_stack(tmp_path / "envs" / "dev")  # a new stack: no locking at all, a new finding
    new = run([*audit, "--baseline", "baseline.json"], tmp_path, environ)
    assert new.returncode == 80
    assert [(f["stack"], f["id"]) for f in json.loads(new.stdout)["findings"]] == [
        ("envs/dev", "locking-none")
    ]
    bad = run([*audit, "--baseline", "nope.json"], tmp_path, environ)
    assert bad.returncode == 83 and "--write-baseline" in bad.stderr and "Traceback" not in bad.stderr
