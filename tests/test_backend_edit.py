"""Editing backend settings changes only the lines that must change."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import hcl2

from tests.support.world import Tools
from tfwrap.backend import edit

ODD = """\
# The state lives in the shared bucket.
terraform {
  required_version = ">= 1.10" # keep in step with CI

  backend "s3" {
    bucket         = "acme-state"   # owned by platform
    key            = "net/terraform.tfstate"
    region         = "eu-west-1"
    dynamodb_table = "acme-locks"   /* the old way */
    endpoints = {
      s3 = "https://s3.example"     # "quoted" } brace in a comment
    }
    encrypt = true
  }
}

resource "terraform_data" "x" {}
"""


def changed_lines(before: str, after: str) -> tuple[list[str], list[str]]:
    b, a = before.splitlines(), after.splitlines()
    return [ln for ln in b if ln not in a], [ln for ln in a if ln not in b]


def test_add_use_lockfile_keeps_everything_else(tmp_path: Path) -> None:
    path = tmp_path / "backend.tf"
    path.write_text(ODD)
    change = edit.set_setting(path, "use_lockfile", True)
    removed, added = changed_lines(ODD, change.after)
    assert removed == [] and added == ["    use_lockfile = true"]
    assert change.after.index("use_lockfile") < change.after.index("  }\n}")
    settings = hcl2.loads(change.after)["terraform"][0]["backend"][0]['"s3"']
    assert settings["use_lockfile"] is True and "dynamodb_table" in settings
    assert path.read_text() == ODD  # nothing written until apply()
    change.apply()
    assert path.read_text() == change.after
    assert "+    use_lockfile = true" in change.diff()


def test_remove_dynamodb_table_removes_one_line(tmp_path: Path) -> None:
    path = tmp_path / "backend.tf"
    path.write_text(ODD)
    change = edit.remove_setting(path, "dynamodb_table")
    removed, added = changed_lines(ODD, change.after)
    assert removed == ['    dynamodb_table = "acme-locks"   /* the old way */'] and added == []
    assert edit.remove_setting(path, "no_such_setting").changed is False


def test_replace_value_keeps_alignment_and_comment(tmp_path: Path) -> None:
    path = tmp_path / "backend.tf"
    path.write_text(ODD)
    change = edit.set_setting(path, "bucket", "other-state")
    removed, added = changed_lines(ODD, change.after)
    assert added == ['    bucket         = "other-state"   # owned by platform']
    assert removed == ['    bucket         = "acme-state"   # owned by platform']


def test_result_is_what_terraform_fmt_accepts(tmp_path: Path, tools: Tools) -> None:
    path = tmp_path / "backend.tf"
    path.write_text(ODD.replace("   # owned", " # owned").replace("   /* the", " /* the"))
    formatted = subprocess.run(
        [str(tools.engine), "fmt", "-"], input=path.read_text(), capture_output=True, text=True, check=False
    )
    path.write_text(formatted.stdout)
    after = edit.set_setting(path, "use_lockfile", True).after
    again = subprocess.run(
        [str(tools.engine), "fmt", "-"], input=after, capture_output=True, text=True, check=False
    )
    assert again.returncode == 0 and again.stdout == after


def test_backend_config_file_and_tf_json(tmp_path: Path) -> None:
    hcl = tmp_path / "prod.s3.tfbackend"
    hcl.write_text('bucket = "b"\n# locks\ndynamodb_table = "t"\n')
    assert edit.remove_setting(hcl, "dynamodb_table").after == 'bucket = "b"\n# locks\n'
    doc = {"terraform": {"backend": {"s3": {"bucket": "b", "dynamodb_table": "t"}}}}
    js = tmp_path / "backend.tf.json"
    js.write_text(json.dumps(doc, indent=4) + "\n")
    after = json.loads(edit.set_setting(js, "use_lockfile", True).after)
    assert after["terraform"]["backend"]["s3"] == {"bucket": "b", "dynamodb_table": "t", "use_lockfile": True}


def test_render_backend_is_fmt_clean(tools: Tools) -> None:
    text = edit.render_backend(
        {"bucket": "b", "key": "k/terraform.tfstate", "region": "us-east-1", "use_lockfile": True}
    )
    formatted = subprocess.run(
        [str(tools.engine), "fmt", "-"], input=text, capture_output=True, text=True, check=False
    )
    assert formatted.stdout == text


HEREDOC_FIRST = """\
locals {
  generated = <<-EOT
    terraform {
      backend "s3" {
        bucket = "decoy"
      }
    }
  EOT
}

terraform {
  backend "s3" {
    bucket         = "real"
    dynamodb_table = "locks"
  }
}
"""


def test_edit_skips_a_backend_block_inside_a_heredoc(tmp_path: Path) -> None:
    """Stacks that generate backend files hold `backend "s3" {...}` in a heredoc: text, not code."""
    path = tmp_path / "main.tf"
    path.write_text(HEREDOC_FIRST)
    after = edit.set_setting(path, "use_lockfile", True).after
    decoy, real = after.split("EOT\n}\n")
    assert "use_lockfile" not in decoy and "use_lockfile = true" in real
    removed = edit.remove_setting(path, "dynamodb_table").after
    assert removed == HEREDOC_FIRST.replace('    dynamodb_table = "locks"\n', "")
    replaced = edit.set_setting(path, "bucket", "other").after
    assert replaced == HEREDOC_FIRST.replace('"real"', '"other"')
