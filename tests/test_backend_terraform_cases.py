"""Terraform's own backend cases (``internal/configs/testdata``: multiple-backends,
conflict-cloud-backend, override-backend, override-backend-no-base, override-backend-with-cloud,
override-backend-with-state-store), written here from what they show, read by tfwrap's reader.
The end-to-end versions, beside the real engine, are in tests/test_layouts.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tfwrap.backend import config, scan
from tfwrap.errors import BackendConfigError
from tfwrap.terraform import commands

S3 = 'terraform {\n  backend "s3" {\n    bucket = "%s"\n    key    = "k"\n  }\n}\n'


def load(directory: Path) -> config.BackendConfig:
    return config.load(commands.parse([f"-chdir={directory}", "init"]), {})


def files(directory: Path, **texts: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        (directory / name.replace("__", ".")).write_text(text)
    return directory


def test_override_backend_replaces_the_primary_one_whole(tmp_path: Path) -> None:
    primary = S3 % "base"
    primary = primary.replace('key    = "k"', 'key = "k"\n    dynamodb_table = "old"')
    d = files(tmp_path, main__tf=primary, override__tf=S3 % "changed")
    cfg = load(d)
    assert cfg.bucket == "changed" and cfg.dynamodb_table == ""  # not merged with the primary block
    assert [s.where for s in cfg.sources] == ["override.tf"]  # the overridden block is no leftover


def test_override_backend_with_no_base(tmp_path: Path) -> None:
    d = files(tmp_path, main__tf='resource "terraform_data" "x" {}\n', override__tf=S3 % "only")
    assert load(d).bucket == "only"


@pytest.mark.parametrize(
    "override",
    [
        'terraform {\n  cloud {\n    organization = "foo"\n  }\n}\n',
        'terraform {\n  state_store "foo_override" {\n    provider "foo" {}\n    custom_attr = "x"\n  }\n}\n',
    ],
)
def test_cloud_or_state_store_in_an_override_removes_the_backend(tmp_path: Path, override: str) -> None:
    d = files(tmp_path, main__tf=S3 % "b", x_override__tf=override)
    cfg = load(d)
    assert not cfg.is_s3 and cfg.backend_type in ("cloud", "state_store")


def test_cloud_in_a_tf_json_override_removes_the_backend(tmp_path: Path) -> None:
    d = files(tmp_path, main__tf=S3 % "b", override__tf__json=json.dumps({"terraform": {"cloud": {}}}))
    assert load(d).backend_type == "cloud"


def test_a_backend_in_an_override_brings_it_back_after_cloud(tmp_path: Path) -> None:
    d = files(
        tmp_path, main__tf='terraform {\n  cloud {\n    organization = "o"\n  }\n}\n', override__tf=S3 % "b"
    )
    assert load(d).bucket == "b"


def test_two_backends_in_two_files_are_refused_with_both_places(tmp_path: Path) -> None:
    d = files(tmp_path, a__tf=S3 % "a", b__tf="\n\n" + S3 % "b")
    with pytest.raises(BackendConfigError) as err:
        load(d)
    assert 'backend "s3" in a.tf:2 and backend "s3" in b.tf:4' in err.value.message


def test_backend_beside_cloud_in_one_file_is_refused(tmp_path: Path) -> None:
    text = 'terraform {\n  backend "s3" {}\n\n  cloud {\n    organization = "o"\n  }\n}\n'
    with pytest.raises(BackendConfigError) as err:
        load(files(tmp_path, main__tf=text))
    assert 'backend "s3" in main.tf:2 and cloud in main.tf:4' in err.value.message
    assert "exclude each other" in err.value.message


def test_two_backends_in_one_override_file_are_refused(tmp_path: Path) -> None:
    text = 'terraform {\n  backend "s3" {}\n  backend "s3" {}\n}\n'
    with pytest.raises(BackendConfigError, match="an override file may hold only one"):
        load(files(tmp_path, main__tf=S3 % "b", override__tf=text))


def test_a_setting_or_a_nested_block_written_twice_is_refused(tmp_path: Path) -> None:
    block = S3 % "b"
    twice = block.replace(
        'key    = "k"',
        'key = "k"\n    assume_role {\n      role_arn = "x"\n    }\n'
        '    assume_role {\n      role_arn = "y"\n    }',
    )
    with pytest.raises(BackendConfigError, match=r"assume_role is set twice in main.tf \(lines 5 and 8\)"):
        load(files(tmp_path, main__tf=twice))
    d = files(tmp_path / "f", main__tf='terraform {\n  backend "s3" {}\n}\n')
    (d / "prod.tfbackend").write_text('bucket = "a"\nkey = "k"\nbucket = "b"\n')
    with pytest.raises(BackendConfigError, match=r"bucket is set twice in prod.tfbackend \(lines 1 and 3\)"):
        config.load(commands.parse([f"-chdir={d}", "init", "-backend-config=prod.tfbackend"]), {})


def test_a_bom_is_not_part_of_the_text(tmp_path: Path) -> None:
    tmp_path.joinpath("main.tf").write_bytes(b"\xef\xbb\xbf" + (S3 % "bom").encode())
    tmp_path.joinpath("prod.tfbackend").write_bytes(b'\xef\xbb\xbfkey = "from-file"\n')
    cfg = config.load(commands.parse([f"-chdir={tmp_path}", "init", "-backend-config=prod.tfbackend"]), {})
    assert cfg.bucket == "bom" and cfg.key == "from-file"


def test_another_backend_is_not_read_as_s3(tmp_path: Path) -> None:
    cfg = load(files(tmp_path, main__tf='terraform {\n  backend "local" {\n    path = $invalid\n  }\n}\n'))
    assert cfg.backend_type == "local" and not cfg.is_s3


def test_scanner_items_and_backend_file_places() -> None:
    text = 'include "root" {\n  path = find_in_parent_folders("root.hcl")\n}\n'
    text += "remote_state = local.c.remote_state\n"
    got = [(i.name, i.labels, i.line, i.is_block) for i in scan.items(text)]
    assert got == [("include", ["root"], 1, True), ("remote_state", [], 4, False)]
    block = scan.attributes('# env\nbucket = "b"\nendpoints = { s3 = "http://x" }\n')
    assert block.literal and block.settings == {"bucket": "b", "endpoints": {"s3": "http://x"}}
    assert block.places["bucket"] == (2, 1) and block.places["endpoints.s3"] == (3, 15)
    with pytest.raises(scan.ScanError):
        scan.attributes('bucket = "unterminated\n')
