"""The backend scanner: only real backend blocks, read as Terraform reads them."""

from __future__ import annotations

import json
from pathlib import Path

import hcl2
import pytest

from tests.support.world import Tools, backend_block, make_bucket, run
from tfwrap.backend import config, scan
from tfwrap.demo.server import S3Server
from tfwrap.errors import BackendConfigError
from tfwrap.terraform import commands

DECOYS = """\
# terraform {
#   backend "s3" { bucket = "hash-comment" }
# }
// terraform {
//   backend "s3" { bucket = "slash-comment" }
// }
/* terraform {
  backend "s3" { bucket = "block-comment" }
} */
locals {
  doc = <<EOF
terraform {
  backend "s3" {
    bucket = "heredoc"
  }
}
EOF
  indented = <<-EOT
    terraform {
      backend "s3" { bucket = "indented-heredoc" }
    }
    EOT
  spanning = <<EOF
${upper(<<INNER
EOF
INNER
)}
terraform {
  backend "s3" { bucket = "heredoc-after-interpolation" }
}
EOF
  quoted   = "terraform {\\n  backend \\"s3\\" { bucket = \\"string\\" }\\n}"
  template = "${jsonencode({ a = "}" })}\\nterraform {"
  dollar   = "$${not a template} terraform { backend \\"s3\\" {} }"
}
resource "terraform_data" "backend" {
  input = "backend"
}
module "terraform" {
  source = "./backend"
}
"""


def real_block(bucket: str = "real") -> str:
    return f'terraform {{\n  backend "s3" {{\n    bucket = "{bucket}"\n    key = "k"\n  }}\n}}\n'


def buckets(text: str) -> list[str]:
    return [b.settings.get("bucket") for t in scan.scan(text) for b in t.backends]


def test_blocks_behind_comments_in_heredocs_and_strings_are_not_read() -> None:
    assert buckets(DECOYS) == []
    assert buckets(DECOYS + real_block()) == ["real"]
    assert buckets(real_block() + DECOYS) == ["real"]


@pytest.mark.parametrize(
    "opener",
    ["/* x", "x = <<EOF\n", 'x = "abc', 'x = "${ "a" '],
)
def test_unterminated_text_is_a_clear_error(tmp_path: Path, opener: str) -> None:
    (tmp_path / "main.tf").write_text(real_block() + opener + "\nterraform {\n")
    with pytest.raises(BackendConfigError) as err:
        config.load(commands.parse([f"-chdir={tmp_path}", "init"]), {})
    assert "cannot parse main.tf" in err.value.message and "line" in err.value.message


def test_values_are_what_terraform_reads() -> None:
    text = real_block().replace(
        '    key = "k"\n',
        '    key = "a\\"b\\u00e9\\U0001F600\\t $${x} %%{y}"  # comment\n'
        "    use_lockfile = true\n    encrypt = false\n    max_retries = 5\n"
        '    endpoints = {\n      s3 = "http://s3" // why\n      "dynamodb" = "http://ddb",\n    }\n'
        '    shared_credentials_files = ["~/a", "~/b",]\n'
        '    assume_role {\n      role_arn = "arn:aws:iam::1:role/r"\n    }\n',
    )
    (block,) = scan.scan(text)[0].backends
    assert block.literal
    assert block.settings == {
        "bucket": "real",
        "key": 'a"b\u00e9\U0001f600\t ${x} %{y}',  # Terraform unescapes $${ and %%{
        "use_lockfile": True,
        "encrypt": False,
        "max_retries": 5,
        "endpoints": {"s3": "http://s3", "dynamodb": "http://ddb"},
        "shared_credentials_files": ["~/a", "~/b"],
        "assume_role": {"role_arn": "arn:aws:iam::1:role/r"},
    }
    # python-hcl2 (the reader before the scanner) agrees wherever it is right; it keeps the
    # quotes of a quoted object key ('"dynamodb"') and of list items, where Terraform does not
    parsed = config._hcl_values(hcl2.loads(block.text)["backend"][0]['"s3"'])
    for name in ("bucket", "use_lockfile", "encrypt", "max_retries", "assume_role"):
        assert parsed[name] == block.settings[name], name
    assert parsed["endpoints"]["s3"] == block.settings["endpoints"]["s3"]
    assert parsed["endpoints"]['"dynamodb"'] == block.settings["endpoints"]["dynamodb"]


def test_places_of_settings_and_of_the_block() -> None:
    text = (
        "\n" + DECOYS + real_block().replace('    key = "k"\n', '    key = "k"\n    dynamodb_table = "t"\n')
    )
    (tf,) = scan.scan(text)
    (block,) = tf.backends
    lines = text.splitlines()
    assert lines[block.line - 1][block.column - 1 :].startswith('backend "s3"')
    line, column = block.places["dynamodb_table"]
    assert lines[line - 1][column - 1 :].startswith("dynamodb_table")
    assert (tf.line, tf.column) == (block.line - 1, 1)


def test_a_block_with_expressions_goes_to_python_hcl2(tmp_path: Path) -> None:
    (tmp_path / "backend.tf").write_text(real_block().replace('"real"', "var.bucket"))
    (block,) = scan.scan((tmp_path / "backend.tf").read_text())[0].backends
    assert not block.literal
    cfg = config.load(commands.parse([f"-chdir={tmp_path}", "init"]), {})
    assert cfg.bucket == "${var.bucket}" and cfg.key == "k"  # as python-hcl2 gives it


def test_two_terraform_blocks_in_different_files(tmp_path: Path) -> None:
    (tmp_path / "versions.tf").write_text(
        'terraform {\n  required_version = ">= 1.11"\n  required_providers {\n'
        '    aws = { source = "hashicorp/aws" }\n  }\n  x = "backend \\"s3\\" {"\n}\n'
    )
    (tmp_path / "main.tf").write_text(DECOYS + real_block("second-file"))
    cfg = config.load(commands.parse([f"-chdir={tmp_path}", "init"]), {})
    assert cfg.bucket == "second-file"
    assert [(s.where, s.backend_type) for s in cfg.sources] == [("main.tf", "s3")]
    (versions,) = scan.scan((tmp_path / "versions.tf").read_text())
    assert versions.required_version == ">= 1.11" and versions.required_version_place == (2, 3)
    assert versions.backends == []


def test_tf_json_with_places(tmp_path: Path) -> None:
    doc = {
        "resource": {"aws_lb_target_group": {"backend": {"name": "backend"}}},
        "terraform": [
            {"required_version": "~> 1.10"},
            {"backend": {"s3": {"bucket": "jb", "key": "k", "dynamodb_table": "locks"}}},
        ],
    }
    text = json.dumps(doc, indent=2)
    (tmp_path / "main.tf.json").write_text(text)
    cfg = config.load(commands.parse([f"-chdir={tmp_path}", "init"]), {})
    assert cfg.bucket == "jb" and cfg.dynamodb_table == "locks"
    (source,) = cfg.sources
    lines = text.splitlines()
    line, column = source.places["dynamodb_table"]
    assert lines[line - 1][column - 1 :].startswith('"dynamodb_table"')
    first, _ = scan.scan_json(text)
    assert first.required_version == "~> 1.10"


def test_a_large_file_of_resources_named_backend_is_not_parsed(tmp_path: Path) -> None:
    resources = "".join(
        f'resource "aws_lb_target_group" "backend{i}" {{\n  name = "backend-${{var.env}}"\n}}\n'
        for i in range(20000)
    )
    (tmp_path / "main.tf").write_text(resources + "resource {\n")  # broken far from any backend
    (tmp_path / "backend.tf").write_text(real_block("big"))
    cfg = config.load(commands.parse([f"-chdir={tmp_path}", "init"]), {})
    assert cfg.bucket == "big" and [s.where for s in cfg.sources] == ["backend.tf"]


@pytest.mark.engine
@pytest.mark.shim
def test_terraform_itself_reads_the_block_the_scanner_finds(
    tmp_path: Path, env: dict[str, str], tools: Tools, s3: S3Server, bucket_name: str
) -> None:
    make_bucket(s3.url, bucket_name)
    (tmp_path / "decoys.tf").write_text(DECOYS.replace('source = "./backend"', 'source = "./mod"'))
    (tmp_path / "mod").mkdir()
    (tmp_path / "mod" / "main.tf").write_text("")
    (tmp_path / "backend.tf").write_text(backend_block(s3.url, bucket_name))
    checked = run(["tfwrap", "check", "--init", "--json"], tmp_path, env)
    assert json.loads(checked.stdout)["backend"]["bucket"] == bucket_name
    init = run(["terraform", "init", "-input=false", "-no-color"], tmp_path, env)
    assert init.returncode == 0, init.stderr
    initialised = json.loads((tmp_path / ".terraform" / "terraform.tfstate").read_text())
    assert initialised["backend"]["config"]["bucket"] == bucket_name  # Terraform's own reading
