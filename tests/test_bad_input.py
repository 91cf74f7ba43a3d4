"""Every refusal: one line on stderr naming the problem and the fix, a documented exit code,
no traceback, nothing on stdout, no state touched, no secret shown."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from tests.support.world import Tools, make_bucket, run, write_config
from tfwrap.aws import clients
from tfwrap.demo.server import S3Server

pytestmark = [pytest.mark.shim]
QUIET = ["-no-color", "-input=false"]


def refusal(result: object, code: int) -> str:
    """Assert a one-line refusal with ``code``; return the line."""
    assert result.returncode == code, (result.returncode, result.stderr)  # type: ignore[attr-defined]
    assert result.stdout == ""  # type: ignore[attr-defined]
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]  # type: ignore[attr-defined]
    assert len(lines) == 1, result.stderr  # type: ignore[attr-defined]
    assert lines[0].startswith("tfwrap: ") and "Traceback" not in lines[0]
    return lines[0]


def fake_terraform(directory: Path, body: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    exe = directory / "terraform"
    exe.write_text("#!/bin/sh\n" + body + "\n")
    exe.chmod(0o755)
    return exe


def test_invalid_mode(tmp_path: Path, env: dict[str, str]) -> None:
    line = refusal(run(["terraform", "plan"], tmp_path, {**env, "TFWRAP_MODE": "strict"}), 81)
    assert "TFWRAP_MODE='strict'" in line and "enforce, warn, off" in line


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("mode = [", "not valid TOML"),
        ('colour = "blue"', "unknown setting 'colour'"),
        ('[severity]\nbucket-versionin = "off"', "unknown finding id 'bucket-versionin'"),
        ('[severity]\nbucket-versioning = "loud"', "use error, warning, info or off"),
        ('min_terraform_version = "one"', "is not a version"),
    ],
)
def test_bad_policy_file(tmp_path: Path, env: dict[str, str], content: str, expected: str) -> None:
    (tmp_path / ".tfwrap.toml").write_text(content)
    sub = tmp_path / "deeper"
    sub.mkdir()
    line = refusal(run(["terraform", "plan"], sub, env), 81)  # found walking up
    assert expected in line


def test_unreadable_policy_file(tmp_path: Path, env: dict[str, str]) -> None:
    policy = tmp_path / ".tfwrap.toml"
    policy.write_text("")
    policy.chmod(0)
    if os.access(policy, os.R_OK):  # root reads anything: make it a directory instead
        policy.chmod(0o600)
        policy.unlink()
        policy.mkdir()
    line = refusal(run(["terraform", "plan"], tmp_path, env), 81)
    assert "cannot read" in line and ".tfwrap.toml" in line


def test_malformed_hcl(tmp_path: Path, env: dict[str, str]) -> None:
    (tmp_path / "backend.tf").write_text('terraform {\n  backend "s3" {\n    bucket = \n')
    line = refusal(run(["terraform", "plan"], tmp_path, env), 82)
    assert "cannot parse backend.tf" in line and "terraform validate" in line


def test_version_that_is_not_json(
    tmp_path: Path, env: dict[str, str], s3: S3Server, bucket_name: str
) -> None:
    make_bucket(s3.url, bucket_name)
    work = write_config(tmp_path / "work", s3.url, bucket_name)
    fake = fake_terraform(tmp_path / "fake", 'echo "Terraform v1.15.5"; exit 0')
    result = run(["terraform", "init"], work, {**env, "TFWRAP_TERRAFORM": str(fake)})
    assert result.returncode == 80 and result.stdout == ""
    assert "[terraform-version-unknown]" in result.stderr and "no version JSON" in result.stderr


def test_fake_1_10_0_with_default_retention(
    tmp_path: Path, env: dict[str, str], s3: S3Server, bucket_name: str
) -> None:
    make_bucket(s3.url, bucket_name, retention={"Mode": "GOVERNANCE", "Days": 1})
    work = write_config(tmp_path / "work", s3.url, bucket_name)
    fake = fake_terraform(tmp_path / "fake", 'echo \'{"terraform_version":"1.10.0"}\'')
    result = run(["terraform", "init"], work, {**env, "TFWRAP_TERRAFORM": str(fake)})
    assert result.returncode == 80, result.stderr
    assert "[terraform-version-retention-bug]" in result.stderr and "#36113" in result.stderr
    assert "warning [terraform-version-experimental]" in result.stderr


def test_no_real_terraform(tmp_path: Path, tools: Tools) -> None:
    env = {**os.environ, "PATH": f"{tools.shim_dir}:/usr/bin:/bin"}
    line = refusal(run(["terraform", "plan"], tmp_path, env), 127)
    assert "no real terraform found on PATH" in line


def test_not_executable(tmp_path: Path, env: dict[str, str]) -> None:
    binary = tmp_path / "terraform"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o644)
    line = refusal(run(["terraform", "version"], tmp_path, {**env, "TFWRAP_TERRAFORM": str(binary)}), 126)
    assert "not an executable file" in line


def test_recursion_is_impossible(tmp_path: Path, tools: Tools, env: dict[str, str]) -> None:
    """The shim on PATH twice (and through a symlink) still finds the real binary."""
    again = tmp_path / "again"
    again.mkdir()
    (again / "terraform").symlink_to(tools.shim_dir / "terraform")
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "terraform").write_bytes((tools.shim_dir / "terraform").read_bytes())
    (copy / "terraform").chmod(0o755)
    path = f"{again}:{copy}:{env['PATH']}"
    result = run(["terraform", "version"], tmp_path, {**env, "PATH": path}, timeout=20)
    assert result.returncode == 0 and result.stdout.startswith("Terraform v1.15.5")
    line = refusal(
        run(["terraform", "version"], tmp_path, {**env, "TFWRAP_TERRAFORM": str(copy / "terraform")}), 84
    )
    assert "is a tfwrap shim" in line
    # A "real" terraform that calls terraform through PATH again: stopped, not a fork bomb.
    loop = fake_terraform(tmp_path / "loop", 'exec terraform "$@"')
    result = run(
        ["terraform", "version"],
        tmp_path,
        {**env, "PATH": f"{tools.shim_dir}:{loop.parent}:/usr/bin:/bin"},
        timeout=20,
    )
    assert result.returncode == 84 and "calls itself through tfwrap" in result.stderr


def test_unreachable_endpoint_is_bounded(tmp_path: Path, env: dict[str, str], bucket_name: str) -> None:
    with socket.socket() as held:  # bound, never listening: refused, and no one else can take it
        held.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{held.getsockname()[1]}"
        work = write_config(tmp_path / "work", dead, bucket_name)
        started = time.monotonic()
        result = run(["terraform", "init", *QUIET], work, env, timeout=120)
        took = time.monotonic() - started
    # Bounded by tfwrap's own time-outs (every attempt timing out, plus start-up on a loaded
    # box), not by Terraform's retries, which go on for minutes.
    assert took < 4 * (clients.CONNECT_TIMEOUT + clients.READ_TIMEOUT) + 15  # 4: its most attempts
    assert result.returncode == 80 and "[endpoint-unreachable]" in result.stderr
    assert not (work / ".terraform").exists()


def test_bucket_missing_and_no_secret_in_output(
    tmp_path: Path, env: dict[str, str], s3: S3Server, bucket_name: str
) -> None:
    work = write_config(tmp_path / "work", s3.url, bucket_name)
    result = run(["terraform", "init", *QUIET], work, {**env, "TFWRAP_LOG_LEVEL": "debug"})
    assert result.returncode == 80 and "[bucket-missing]" in result.stderr
    assert env["AWS_SECRET_ACCESS_KEY"] not in result.stderr + result.stdout
    assert env["AWS_ACCESS_KEY_ID"] not in result.stderr + result.stdout


def test_no_credentials(tmp_path: Path, env: dict[str, str], s3: S3Server, bucket_name: str) -> None:
    make_bucket(s3.url, bucket_name)
    work = write_config(tmp_path / "work", s3.url, bucket_name)
    bare = {k: v for k, v in env.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    result = run(["terraform", "init", *QUIET], work, bare)
    assert result.returncode == 80 and "[no-credentials]" in result.stderr
    assert "Traceback" not in result.stderr


def test_non_s3_backend_passes_through_untouched(tmp_path: Path, env: dict[str, str]) -> None:
    (tmp_path / "main.tf").write_text(
        'terraform {\n  backend "local" {}\n}\nresource "terraform_data" "x" {}\n'
    )
    result = run(["terraform", "init", *QUIET], tmp_path, env)
    assert result.returncode == 0 and "tfwrap" not in result.stderr


def test_force_unlock_is_never_blocked(
    tmp_path: Path, env: dict[str, str], s3: S3Server, bucket_name: str
) -> None:
    make_bucket(s3.url, bucket_name, versioning=False, object_lock=False)
    work = write_config(tmp_path / "work", s3.url, bucket_name)
    assert run(["terraform", "init", *QUIET], work, {**env, "TFWRAP_MODE": "warn"}).returncode == 0
    result = run(["terraform", "force-unlock", "-force", "no-such-lock"], work, env)
    assert "[bucket-versioning]" in result.stderr  # reported...
    assert result.returncode == 1 and "stopped before Terraform ran" not in result.stderr  # ...not blocked
