"""Once Terraform has started it is never run again, and tfwrap's own failures never block a
run or print a traceback: the private directory, its cleanup, the shim's
error path."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.support.lockwatch import SLOW
from tests.support.world import RESOURCE, make_bucket, run, write_config
from tfwrap.demo.server import S3Server

APPLY = ["terraform", "apply", "-auto-approve", "-no-color", "-input=false"]

# The provisioner counts its runs and leaves a directory inside tfwrap's private directory
# (its TF_LOG_PATH's), which the old cleanup could not remove: in warn mode, that failure
# ran the whole apply a second time.
COUNTING = """
resource "terraform_data" "counted" {
  triggers_replace = timestamp()
  provisioner "local-exec" {
    command = "sh ./count.sh"
  }
}
"""


@pytest.mark.engine
@pytest.mark.shim
@pytest.mark.parametrize("runtime_dir", ["missing", "a-file"])
def test_unusable_xdg_runtime_dir_does_not_block_a_run(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], runtime_dir: str
) -> None:
    make_bucket(s3.url, bucket_name)
    work = write_config(tmp_path / "work", s3.url, bucket_name, resource=SLOW % 2)
    assert run(["terraform", "init", "-no-color"], work, env).returncode == 0
    (tmp_path / "a-file").write_text("not a directory\n")
    run_env = {
        **env,
        "XDG_RUNTIME_DIR": str(tmp_path / runtime_dir),
        "TFWRAP_HEARTBEAT_SECONDS": "1",
        "TFWRAP_LOG_LEVEL": "info",
    }
    result = run(APPLY, work, run_env)
    assert result.returncode == 0, result.stderr
    assert "Apply complete!" in result.stdout
    assert "heartbeat" in result.stderr  # still supervised: the private directory went elsewhere


@pytest.mark.engine
@pytest.mark.shim
def test_a_cleanup_failure_after_terraform_ran_never_runs_it_again(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str]
) -> None:
    make_bucket(s3.url, bucket_name)
    work = write_config(tmp_path / "work", s3.url, bucket_name, resource=COUNTING)
    (work / "count.sh").write_text(
        'echo run >> runs.txt\nprivate=$(dirname "$TF_LOG_PATH")\necho "$private" > private.txt\n'
        'mkdir "$private/left-by-provisioner"\n'
    )
    assert run(["terraform", "init", "-no-color"], work, env).returncode == 0
    result = run(APPLY, work, {**env, "TFWRAP_MODE": "warn"})
    assert result.returncode == 0, result.stderr
    assert (work / "runs.txt").read_text() == "run\n"  # one apply, not two
    assert "tfwrap:" not in result.stderr
    assert not Path((work / "private.txt").read_text().strip()).exists()  # removed all the same


@pytest.mark.shim
@pytest.mark.parametrize("config", ['terraform {\n  backend "s3" {\n    bucket = \n', RESOURCE])
def test_a_failure_inside_the_shim_error_path_is_one_line(
    tmp_path: Path, env: dict[str, str], config: str
) -> None:
    """Warn mode runs Terraform after a refusal; if that fails too, it is still one line
    each, never a traceback (the Python entry the sh shim execs, with a missing binary)."""
    (tmp_path / "main.tf").write_text(config)
    missing = tmp_path / "no-such-terraform"
    result = run(
        [sys.executable, "-I", "-m", "tfwrap.shim", str(missing), "plan"],
        tmp_path,
        {**env, "TFWRAP_MODE": "warn", "TFWRAP_TERRAFORM": str(missing)},
    )
    assert "Traceback" not in result.stderr
    assert result.returncode == 127, result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert lines and all(ln.startswith("tfwrap: ") for ln in lines), result.stderr
    assert "cannot be executed" in lines[-1]
