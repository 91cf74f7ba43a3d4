"""Reading the backend configuration the way Terraform does (no AWS, no engine)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tfwrap import exitcodes
from tfwrap.backend import config
from tfwrap.checks import locking
from tfwrap.errors import BackendConfigError
from tfwrap.terraform import commands

BLOCK = """
terraform {
  # comment
  backend "s3" {
    bucket = "b1"
    key    = "app/terraform.tfstate"
    region = "eu-west-1"
    %s
  }
}
"""


def load(tmp_path: Path, *argv: str, env: dict[str, str] | None = None) -> config.BackendConfig:
    return config.load(commands.parse([f"-chdir={tmp_path}", *argv]), env or {})


def test_reads_hcl_block_with_string_bools_as_terraform_does(tmp_path: Path) -> None:
    (tmp_path / "backend.tf").write_text(BLOCK % 'use_lockfile = "1"\n    encrypt = "true"')
    cfg = load(tmp_path, "plan")
    assert cfg.is_s3 and cfg.bucket == "b1" and cfg.region == "eu-west-1"
    assert cfg.use_lockfile is True  # cty converts "1" and "true" to true
    assert cfg.get("encrypt") is True
    assert cfg.lock_key == "app/terraform.tfstate.tflock"


def test_string_that_terraform_rejects_is_not_true(tmp_path: Path) -> None:
    (tmp_path / "backend.tf").write_text(BLOCK % 'use_lockfile = "yes"')
    assert load(tmp_path, "plan").use_lockfile is False


def test_reads_tf_json(tmp_path: Path) -> None:
    doc = {"terraform": {"backend": {"s3": {"bucket": "jb", "key": "k", "dynamodb_table": "locks"}}}}
    (tmp_path / "backend.tf.json").write_text(json.dumps(doc))
    cfg = load(tmp_path, "plan")
    assert cfg.bucket == "jb" and cfg.dynamodb_table == "locks"


def test_backend_config_file_and_key_values_on_init(tmp_path: Path) -> None:
    (tmp_path / "backend.tf").write_text('terraform {\n  backend "s3" {}\n}\n')
    (tmp_path / "dev.s3.tfbackend").write_text('bucket = "fromfile"\nkey = "f/k"\ndynamodb_table = "t"\n')
    env = {"TF_CLI_ARGS_init": "-backend-config=use_lockfile=true"}
    cfg = load(tmp_path, "init", "-backend-config=dev.s3.tfbackend", "-backend-config", "key=x/y", env=env)
    assert cfg.bucket == "fromfile" and cfg.key == "x/y" and cfg.use_lockfile is True
    wheres = [s.where for s in cfg.sources if s.settings.get("dynamodb_table")]
    assert wheres == ["-backend-config=dev.s3.tfbackend"]


def test_non_init_commands_use_the_initialised_copy_and_report_disagreement(tmp_path: Path) -> None:
    (tmp_path / "backend.tf").write_text(BLOCK % "use_lockfile = true")
    data = tmp_path / ".terraform"
    data.mkdir()
    initialised = {
        "bucket": "b1",
        "key": "app/terraform.tfstate",
        "use_lockfile": None,
        "dynamodb_table": "old",
    }
    (data / "terraform.tfstate").write_text(json.dumps({"backend": {"type": "s3", "config": initialised}}))
    cfg = load(tmp_path, "plan")
    assert cfg.dynamodb_table == "old" and cfg.use_lockfile is False
    ids = {f.id for f in locking.evaluate(cfg)}
    assert ids == {"locking-dynamodb-only", "locking-disagree"}
    assert load(tmp_path, "init").use_lockfile is True  # init reads the files


def test_workspace_moves_state_and_lock_key(tmp_path: Path) -> None:
    (tmp_path / "backend.tf").write_text(BLOCK % "use_lockfile = true")
    (tmp_path / ".terraform").mkdir()
    (tmp_path / ".terraform" / "environment").write_text("staging")
    cfg = load(tmp_path, "plan")
    assert cfg.lock_key == "env:/staging/app/terraform.tfstate.tflock"
    cfg = load(tmp_path, "plan", env={"TF_WORKSPACE": "prod"})
    assert cfg.state_key == "env:/prod/app/terraform.tfstate"
    (tmp_path / "backend.tf").write_text(BLOCK % 'use_lockfile = true\n    workspace_key_prefix = "ws"')
    assert load(tmp_path, "plan", env={"TF_WORKSPACE": "prod"}).state_key == "ws/prod/app/terraform.tfstate"


def test_endpoint_precedence_config_then_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "backend.tf").write_text(BLOCK % "use_lockfile = true")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:1111")
    assert load(tmp_path, "plan").s3_endpoint == "http://127.0.0.1:1111"
    (tmp_path / "backend.tf").write_text(BLOCK % 'endpoints = { s3 = "http://127.0.0.1:2222" }')
    assert load(tmp_path, "plan").s3_endpoint == "http://127.0.0.1:2222"
    (tmp_path / "backend.tf").write_text(BLOCK % 'endpoint = "http://127.0.0.1:3333"')
    assert load(tmp_path, "plan").s3_endpoint == "http://127.0.0.1:3333"


def test_malformed_hcl_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "backend.tf").write_text('terraform {\n  backend "s3" {\n    bucket = \n')
    with pytest.raises(BackendConfigError) as err:
        load(tmp_path, "plan")
    assert err.value.code == exitcodes.BACKEND_CONFIG
    assert "backend.tf" in err.value.message and "\n" not in err.value.message


def test_secrets_never_reach_the_cacheable_copy(tmp_path: Path) -> None:
    (tmp_path / "backend.tf").write_text(BLOCK % 'access_key = "AKIAXX"\n    secret_key = "s3cr3t-value"')
    dumped = json.dumps(config.to_json(load(tmp_path, "plan")))
    assert "s3cr3t-value" not in dumped and "AKIAXX" not in dumped
