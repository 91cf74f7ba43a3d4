"""The layouts real estates use, each built from files the test writes: partial backends with
-backend-config files, Terragrunt trees, and where Terraform's reading differs from a naive one
(BOM, override files, duplicate blocks). Each asserts the exact stacks, states and findings, and
that the guard (``tfwrap check --json``) and ``tfwrap audit`` agree."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest

from tests.support.world import Tools, engine, make_bucket, make_table, run
from tfwrap.demo.server import S3Server

AUDIT = [sys.executable, "-m", "tfwrap", "audit"]
LOCKING = {"locking-dynamodb-only", "locking-dual", "locking-none", "backend-config-missing"}


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def audit(cwd: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    done = run([*AUDIT, "--offline", "--format", "json", *args], cwd, env=dict(os.environ))
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, json.loads(done.stdout) if done.stdout else {}, done.stderr


def by_state(doc: dict[str, Any]) -> dict[tuple[str, str | None], set[str]]:
    """(stack, backend file) -> finding ids."""
    out: dict[tuple[str, str | None], set[str]] = {
        (s["path"], s["backend_file"]): set() for s in doc["stacks"]
    }
    for f in doc["findings"]:
        out[f["stack"], f["backend_file"]].add(f["id"])
    return out


def guard(work: Path, env: dict[str, str], *args: str) -> tuple[int, list[dict[str, Any]], str]:
    done = run(["tfwrap", "check", "--json", *args], work, env)
    findings = json.loads(done.stdout)["findings"] if done.stdout.strip() else []
    return done.returncode, findings, done.stderr


def line_of(path: Path, number: int) -> str:
    return path.read_text().splitlines()[number - 1].strip()


def moto_settings(url: str) -> str:
    return (
        f'endpoints = {{ s3 = "{url}", dynamodb = "{url}" }}\n'
        "use_path_style = true\nskip_credentials_validation = true\n"
        "skip_requesting_account_id = true\nskip_metadata_api_check = true\n"
    )


# --- partial backends ----------------------------------------------------------------------------


def partial_stack(root: Path, url: str, bucket: str, table: str) -> Path:
    """``backend "s3" {}`` and three environment files; staging still locks with DynamoDB."""
    work = root / "app"
    write(work / "main.tf", 'terraform {\n  required_version = ">= 1.11"\n  backend "s3" {}\n}\n')
    for env_name, locking in (("prod", "use_lockfile = true"), ("dev", "use_lockfile = true")):
        write(
            work / f"{env_name}.s3.tfbackend",
            f'bucket = "{bucket}"\nkey = "{env_name}/app.tfstate"\nregion = "us-east-1"\n'
            f"encrypt = true\n{locking}\n{moto_settings(url)}",
        )
    write(
        work / "backends" / "staging.backend",
        f'bucket = "{bucket}"\nkey = "staging/app.tfstate"\nregion = "us-east-1"\nencrypt = true\n'
        f'dynamodb_table = "{table}"\n{moto_settings(url)}',
    )
    return work


@pytest.mark.shim
def test_partial_backend_one_state_per_file_and_the_guard_agrees(
    tmp_path: Path, env: dict[str, str], s3: S3Server, bucket_name: str
) -> None:
    make_bucket(s3.url, bucket_name)
    table = make_table(s3.url, f"{bucket_name}-locks")
    work = partial_stack(tmp_path, s3.url, bucket_name, table)
    code, doc, _ = audit(tmp_path)
    assert code == 80
    assert by_state(doc) == {
        ("app", "app/backends/staging.backend"): {"locking-dynamodb-only"},
        ("app", "app/dev.s3.tfbackend"): set(),  # encrypt = true in the file: no false encrypt-missing
        ("app", "app/prod.s3.tfbackend"): set(),
    }
    assert {s["key"] for s in doc["stacks"]} == {"prod/app.tfstate", "dev/app.tfstate", "staging/app.tfstate"}
    assert all((s["file"], s["line"]) == ("app/main.tf", 3) for s in doc["stacks"])  # both places
    (finding,) = doc["findings"]
    assert finding["file"] == "app/backends/staging.backend" and finding["line"] == 5
    assert line_of(tmp_path / finding["file"], finding["line"]).startswith("dynamodb_table")
    assert "tfwrap migrate -backend-config=backends/staging.backend" in finding["fix"]
    assert "backends/staging.backend (-backend-config)" in finding["fix"] and "FILE" not in finding["fix"]
    # the guard, given each file, says the same about locking
    for name, expected in (
        ("prod.s3.tfbackend", set()),
        ("dev.s3.tfbackend", set()),
        ("backends/staging.backend", {"locking-dynamodb-only"}),
    ):
        code, findings, stderr = guard(work, env, f"-backend-config={name}")
        assert {f["id"] for f in findings} & LOCKING == expected, (name, findings, stderr)
        if expected:
            assert f"-backend-config={name}" in findings[0]["fix"]
    # no file: both say backend-config-missing, and name the files that are there
    (work / "backends" / "staging.backend").unlink()
    for name in ("prod.s3.tfbackend", "dev.s3.tfbackend"):
        (work / name).rename(work / f"{name}.off")
    code, doc, _ = audit(tmp_path)
    assert code == 80 and [f["id"] for f in doc["findings"]] == ["backend-config-missing"]
    code, findings, _ = guard(work, env, "--init")
    assert code == 80 and [f["id"] for f in findings] == ["backend-config-missing"]
    assert findings[0]["fix"] == doc["findings"][0]["fix"]
    assert "FILE" not in findings[0]["fix"] and "app.s3.tfbackend" in findings[0]["fix"]


@pytest.mark.shim
def test_audit_is_green_after_tfwrap_migrate_changed_the_backend_file(
    tmp_path: Path, env: dict[str, str], s3: S3Server, bucket_name: str, tools: Tools
) -> None:
    make_bucket(s3.url, bucket_name)
    table = make_table(s3.url, f"{bucket_name}-locks")
    work = partial_stack(tmp_path, s3.url, bucket_name, table)
    write(work / "res.tf", 'resource "terraform_data" "x" {}\n')
    quiet = ["-input=false", "-no-color"]
    staging = "-backend-config=backends/staging.backend"
    for args in (["init", *quiet, staging], ["apply", *quiet, "-auto-approve"]):
        done = engine(tools, work, env, *args)
        assert done.returncode == 0, (args, done.stderr)
    code, doc, _ = audit(tmp_path)
    assert code == 80 and [f["id"] for f in doc["findings"]] == ["locking-dynamodb-only"]
    # the guard on `plan` reads the initialised copy, and names the file it came from
    code, findings, _ = guard(work, env)
    (said,) = [f for f in findings if f["id"] in LOCKING]
    assert said["id"] == "locking-dynamodb-only" and f"tfwrap migrate {staging}" in said["fix"]
    done = run(["tfwrap", "migrate", staging], work, env, timeout=180)
    assert done.returncode == 0, done.stderr
    assert "use_lockfile" in (work / "backends" / "staging.backend").read_text()
    code, doc, _ = audit(tmp_path)  # dual locking is a warning: CI is green after the migration
    assert code == 0 and by_state(doc)["app", "app/backends/staging.backend"] == {"locking-dual"}
    assert "tfwrap migrate finalize -backend-config=backends/staging.backend" in doc["findings"][0]["fix"]


def test_backend_config_option_and_green_after_the_file_changes(tmp_path: Path) -> None:
    work = partial_stack(tmp_path, "http://127.0.0.1:9", "acme-state", "locks")
    code, doc, _ = audit(tmp_path, "--backend-config", str(work / "backends" / "*.backend"))
    assert code == 80 and by_state(doc) == {
        ("app", "app/backends/staging.backend"): {"locking-dynamodb-only"}
    }
    # what `tfwrap migrate -backend-config=...` writes: use_lockfile beside, then without, the table
    staging = work / "backends" / "staging.backend"
    staging.write_text(staging.read_text().replace("dynamodb_table", "use_lockfile = true\ndynamodb_table"))
    code, doc, _ = audit(tmp_path)
    assert code == 0 and by_state(doc)["app", "app/backends/staging.backend"] == {"locking-dual"}
    staging.write_text(re.sub(r"dynamodb_table = .*\n", "", staging.read_text()))
    code, doc, _ = audit(tmp_path)
    assert code == 0 and doc["findings"] == [] and len(doc["stacks"]) == 3
    done = run([*AUDIT, "--backend-config", "nope/*.tfbackend"], tmp_path)
    assert done.returncode == 83 and done.stderr.startswith("tfwrap: --backend-config nope/*.tfbackend")


# --- Terragrunt ------------------------------------------------------------------------------------

COMMON = """\
remote_state {
  backend = "s3"
  config = {
    bucket         = "acme-tg-state"
    key            = "${path_relative_to_include()}/terraform.tfstate"
    region         = "us-east-1"
    encrypt        = true
    dynamodb_table = "tg-locks"
  }
}
"""
GENERATE = """\
generate "backend" {
  path      = "backend.tf"
  if_exists = "overwrite_terragrunt"
  contents  = <<EOF
terraform {
  backend "s3" {
    bucket       = "acme-gen-state"
    key          = "${path_relative_to_include()}/terraform.tfstate"
    region       = "us-east-1"
    encrypt      = true
    use_lockfile = true
    dynamodb_table = "gen-locks"
  }
}
EOF
}
"""


def terragrunt_tree(root: Path) -> Path:
    live = root / "live"
    write(live / "common.hcl", COMMON)
    for unit in ("prod/vpc", "prod/app"):
        write(
            live / unit / "terragrunt.hcl",
            'include "common" {\n  path   = find_in_parent_folders("common.hcl")\n  expose = true\n}\n'
            'terraform {\n  source = "../../../modules/app"\n}\n',
        )
    # the unit's module has `backend "s3" {}`, which remote_state fills: one state, not two
    write(live / "prod" / "app" / "backend.tf", 'terraform {\n  backend "s3" {}\n}\n')
    write(
        live / "dev" / "db" / "terragrunt.hcl",
        'locals {\n  common = read_terragrunt_config(find_in_parent_folders("common.hcl"))\n}\n'
        "remote_state = local.common.remote_state\n",
    )
    write(
        live / "dev" / "cache" / "terragrunt.hcl",
        'locals {\n  common = read_terragrunt_config("../../common.hcl")\n}\n'
        "remote_state = local.common.remote_state\n",
    )
    write(root / "gen" / "root.hcl", GENERATE)
    write(
        root / "gen" / "web" / "terragrunt.hcl",
        'include "root" {\n  path = find_in_parent_folders("root.hcl")\n}\n',
    )
    write(
        root / "odd" / "terragrunt.hcl",
        'include "x" {\n  path = "${get_env("TG_ROOT")}/root.hcl"\n}\n',
    )
    return live


def test_terragrunt_one_state_per_unit_one_finding_each(tmp_path: Path) -> None:
    terragrunt_tree(tmp_path)
    code, doc, _ = audit(tmp_path)
    assert code == 80
    assert by_state(doc) == {
        ("live/prod/vpc", None): {"locking-dynamodb-only"},
        ("live/prod/app", None): {"locking-dynamodb-only"},  # not also locking-none from backend.tf
        ("live/dev/db", None): {"locking-dynamodb-only"},
        ("live/dev/cache", None): {"locking-dynamodb-only"},  # a literal read_terragrunt_config path
        ("gen/web", None): {"locking-dual"},
        ("odd", None): {"backend-dynamic-value"},  # said, not guessed
    }
    stacks = {s["path"]: s for s in doc["stacks"]}
    assert stacks["live/prod/vpc"]["key"] == "prod/vpc/terraform.tfstate"  # path_relative_to_include()
    assert stacks["live/dev/db"]["key"] == "dev/db/terraform.tfstate"
    assert stacks["gen/web"]["key"] == "web/terraform.tfstate"
    assert {s["kind"] for s in doc["stacks"]} == {"terragrunt"}
    got = {f["stack"]: f for f in doc["findings"]}
    vpc = got["live/prod/vpc"]
    assert vpc["file"] == "live/common.hcl" and line_of(tmp_path / vpc["file"], vpc["line"]).startswith(
        "dynamodb_table"
    )
    assert (
        "remote_state's config of ../../common.hcl" in vpc["fix"]
        and "terragrunt init -reconfigure" in vpc["fix"]
    )
    assert "run `tfwrap migrate" not in vpc["fix"]
    web = got["gen/web"]
    assert web["file"] == "gen/root.hcl" and line_of(tmp_path / web["file"], web["line"]).startswith(
        "dynamodb_table"
    )
    assert 'generate "backend" of ../root.hcl' in web["fix"]
    odd = got["odd"]
    assert odd["severity"] == "info" and 'get_env("TG_ROOT")' in odd["message"]
    # text: a line in a shared parent says which unit it is about, and the unit's own fix
    text = run([*AUDIT, "--offline"], tmp_path).stdout.splitlines()
    vpc_line = next(i for i, ln in enumerate(text) if "[live/prod/vpc] state is locked" in ln)
    assert text[vpc_line].startswith("  live/common.hcl:8:5  [live/prod/vpc] ")
    assert any(
        ln.startswith("    fix: add use_lockfile = true beside dynamodb_table in remote_state") for ln in text
    )


@pytest.mark.shim
def test_terragrunt_audit_and_the_guard_on_what_terragrunt_generates_agree(
    tmp_path: Path, env: dict[str, str], s3: S3Server, bucket_name: str
) -> None:
    """Terragrunt writes the generate block's contents as backend.tf; the guard checks that."""
    make_bucket(s3.url, bucket_name)
    table = make_table(s3.url, f"{bucket_name}-locks")
    contents = GENERATE.replace("acme-gen-state", bucket_name).replace("gen-locks", table)
    contents = contents.replace(
        "    dynamodb_table", "    " + moto_settings(s3.url).replace("\n", "\n    ") + "dynamodb_table"
    )
    write(tmp_path / "gen" / "root.hcl", contents)
    write(
        tmp_path / "gen" / "web" / "terragrunt.hcl",
        'include "root" {\n  path = find_in_parent_folders("root.hcl")\n}\n',
    )
    _, doc, _ = audit(tmp_path)
    audited = by_state(doc)["gen/web", None]
    heredoc = contents.split("<<EOF\n", 1)[1].split("EOF\n", 1)[0]
    cache = tmp_path / "gen" / "web" / ".terragrunt-cache" / "x"
    write(cache / "backend.tf", heredoc.replace("${path_relative_to_include()}", "web"))
    _, findings, stderr = guard(cache, env, "--init")
    assert {f["id"] for f in findings} & LOCKING == audited & LOCKING == {"locking-dual"}, stderr
    # ... and both say which .hcl to change, not `tfwrap migrate` (which refuses Terragrunt)
    (said,) = [f["fix"] for f in findings if f["id"] == "locking-dual"]
    assert said == next(f["fix"] for f in doc["findings"] if f["id"] == "locking-dual")
    assert 'generate "backend" of ../root.hcl' in said and "tfwrap migrate finalize" not in said


@pytest.mark.shim
def test_terragrunt_remote_state_audit_and_the_guard_in_the_cache_agree(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """Without generate, Terragrunt runs `terraform init -backend-config=k=v ...` in its cache,
    on the module's `backend "s3" {}`: the guard sees that, and says what the audit says."""
    terragrunt_tree(tmp_path)
    _, doc, _ = audit(tmp_path)
    audited = next(f for f in doc["findings"] if f["stack"] == "live/prod/app")
    cache = tmp_path / "live" / "prod" / "app" / ".terragrunt-cache" / "abc" / "app"
    write(cache / "backend.tf", 'terraform {\n  backend "s3" {}\n}\n')
    args = ["bucket=acme-tg-state", "key=prod/app/terraform.tfstate", "region=us-east-1"]
    args += ["encrypt=true", "dynamodb_table=tg-locks"]
    _, findings, stderr = guard(
        cache, {**env, "AWS_MAX_ATTEMPTS": "1"}, *(f"-backend-config={a}" for a in args)
    )
    (said,) = [f for f in findings if f["id"] in LOCKING]
    assert said["id"] == audited["id"] == "locking-dynamodb-only", stderr
    assert said["fix"] == audited["fix"]  # which .hcl to change, the same words
    assert "remote_state's config of ../../common.hcl" in said["fix"]


# --- Terraform's own reading ---------------------------------------------------------------------


@pytest.mark.shim
def test_a_bom_is_not_part_of_the_text_for_audit_guard_and_terraform(
    tmp_path: Path, env: dict[str, str], s3: S3Server, bucket_name: str, tf_direct: str
) -> None:
    make_bucket(s3.url, bucket_name)
    table = make_table(s3.url, f"{bucket_name}-locks")
    work = tmp_path / "bom"
    work.mkdir()
    block = (
        f'terraform {{\n  required_version = ">= 1.11"\n  backend "s3" {{\n    bucket = "{bucket_name}"\n'
        f'    key = "bom/terraform.tfstate"\n    region = "us-east-1"\n    encrypt = true\n'
        f'    dynamodb_table = "{table}"\n    {moto_settings(s3.url)}  }}\n}}\n'
    )
    (work / "main.tf").write_bytes(b"\xef\xbb\xbf" + block.encode())
    (work / "res.tf").write_text('resource "terraform_data" "x" {}\n')
    code, doc, _ = audit(tmp_path)
    assert by_state(doc) == {("bom", None): {"locking-dynamodb-only"}} and code == 80
    code, findings, _ = guard(work, env, "--init")
    assert {f["id"] for f in findings} & LOCKING == {"locking-dynamodb-only"}
    # Terraform itself reads the file: init configures the S3 backend and apply writes state there
    direct = {**env, "PATH": os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if "shim" not in p)}
    done = run([tf_direct, "init", "-input=false", "-no-color"], work, direct)
    assert done.returncode == 0, done.stderr
    assert 'Successfully configured the backend "s3"' in done.stdout
    # ... and the shim blocks it, as the guard said (checked, not passed through unchecked)
    shim = run(["terraform", "plan", "-input=false", "-no-color"], work, env)
    assert shim.returncode == 80 and "[locking-dynamodb-only]" in shim.stderr


PRIMARY = 'terraform {\n  backend "s3" {\n    bucket = "b"\n    key = "k"\n    dynamodb_table = "t"\n  }\n}\n'


@pytest.mark.shim
def test_override_with_cloud_or_state_store_removes_the_backend(tmp_path: Path, env: dict[str, str]) -> None:
    for name, block in (
        ("cloud", 'cloud {\n    organization = "acme"\n  }'),
        ("store", 'state_store "x" {\n  }'),
    ):
        work = tmp_path / name
        write(
            work / "main.tf",
            PRIMARY,
        )
        write(work / "override.tf", f"terraform {{\n  {block}\n}}\n")
        done = run(["tfwrap", "check", "--init"], work, env)
        assert done.returncode == 0 and "nothing to check" in done.stdout, done.stdout + done.stderr
    # a backend in an override replaces the primary one whole (Terraform: no merge of settings)
    work = tmp_path / "replaced"
    write(
        work / "main.tf",
        'terraform {\n  backend "s3" {\n    bucket = "b"\n    key = "k"\n    dynamodb_table = "t"\n  }\n}\n',
    )
    write(
        work / "backend_override.tf",
        PRIMARY.replace('dynamodb_table = "t"', "use_lockfile = true\n    encrypt = true"),
    )
    write(tmp_path / "atmos.yaml", "components:\n  terraform:\n    base_path: components/terraform\n")
    code, doc, _ = audit(tmp_path)
    assert code == 0 and by_state(doc) == {("replaced", None): {"required-version-pre-lockfile"}}
    assert doc["stacks"][0]["file"] == "replaced/backend_override.tf"
    (work / "backend_override.tf").unlink()
    (work / "main.tf").unlink()
    done = run([*AUDIT, "--offline"], tmp_path)
    assert done.returncode == 91 and done.stdout.startswith("0 stacks")
    assert "Atmos (backends in YAML), which tfwrap does not read" in done.stderr
    assert run([*AUDIT, "--offline", "--allow-no-stacks"], tmp_path).returncode == 0


@pytest.mark.shim
def test_duplicate_blocks_and_settings_are_unreadable_as_terraform_says(
    tmp_path: Path, env: dict[str, str], tf_direct: str
) -> None:
    two = tmp_path / "two"
    write(two / "a.tf", 'terraform {\n  backend "s3" {\n    bucket = "b"\n    key = "k"\n  }\n}\n')
    write(two / "b.tf", '\nterraform {\n  backend "s3" {\n    bucket = "c"\n    key = "k"\n  }\n}\n')
    again = tmp_path / "again"
    write(
        again / "main.tf",
        'terraform {\n  backend "s3" {\n    bucket = "b"\n    key = "k"\n    bucket = "c"\n  }\n}\n',
    )
    local = tmp_path / "local"
    write(local / "main.tf", 'terraform {\n  backend "local" {\n    path = $invalid\n  }\n}\n')
    code, doc, _ = audit(tmp_path)
    assert code == 80 and by_state(doc) == {
        ("again", None): {"backend-unreadable"},
        ("two", None): {"backend-unreadable"},
    }
    messages = {f["stack"]: f["message"] for f in doc["findings"]}
    assert 'backend "s3" in a.tf:2 and backend "s3" in b.tf:3' in messages["two"]
    assert "Duplicate 'backend' configuration block" in messages["two"]
    assert "bucket is set twice in main.tf (lines 3 and 5)" in messages["again"]
    for work, said in ((two, messages["two"]), (again, messages["again"])):
        done = run(["tfwrap", "check", "--init"], work, env)
        assert done.returncode == 82 and done.stderr.strip() == f"tfwrap: {said}"
    # the real engine refuses both
    for work, terraform_says in (
        (two, "Duplicate 'backend' configuration block"),
        (again, "Attribute redefined"),
    ):
        done = run([tf_direct, "init", "-backend=false", "-input=false", "-no-color"], work, env)
        assert done.returncode == 1 and terraform_says in done.stderr, done.stderr


# --- audit outcomes --------------------------------------------------------------------------------


@pytest.mark.shim
def test_could_not_check_is_88_and_not_a_misconfiguration(tmp_path: Path, env: dict[str, str]) -> None:
    write(
        tmp_path / "app" / "main.tf",
        'terraform {\n  required_version = ">= 1.11"\n  backend "s3" {\n    bucket = "acme"\n'
        '    key = "k"\n    region = "us-east-1"\n    encrypt = true\n    use_lockfile = true\n'
        '    endpoints = { s3 = "http://127.0.0.1:9" }\n    use_path_style = true\n  }\n}\n',
    )
    done = run(["tfwrap", "audit", "--format", "json"], tmp_path, {**env, "AWS_MAX_ATTEMPTS": "1"})
    assert done.returncode == 90, done.stderr
    doc = json.loads(done.stdout)
    assert doc["summary"]["errors"] == 0 and doc["summary"]["unchecked"] == 1
    assert {f["id"] for f in doc["findings"]} == {"endpoint-unreachable"}
    assert all(f["unchecked"] for f in doc["findings"])


def test_sarif_fingerprints_survive_moved_lines_and_junit_reports_each_state(tmp_path: Path) -> None:
    partial_stack(tmp_path, "http://127.0.0.1:9", "acme-state", "locks")
    terragrunt_tree(tmp_path)

    def sarif() -> list[dict[str, Any]]:
        done = run([*AUDIT, "--offline", "--format", "sarif"], tmp_path)
        return json.loads(done.stdout)["runs"][0]["results"]

    before = sarif()
    staging = tmp_path / "app" / "backends" / "staging.backend"
    staging.write_text("# moved down\n\n" + staging.read_text())
    after = sarif()
    assert len({r["partialFingerprints"]["tfwrapFinding/v1"] for r in before}) == len(before) == 7
    key = {r["partialFingerprints"]["tfwrapFinding/v1"]: r for r in after}
    for old in before:
        new = key[old["partialFingerprints"]["tfwrapFinding/v1"]]
        assert new["ruleId"] == old["ruleId"]
    moved = next(
        r
        for r in after
        if r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].endswith(".backend")
    )
    assert moved["locations"][0]["physicalLocation"]["region"]["startLine"] == 7
    assert moved["relatedLocations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "app/main.tf"
    done = run([*AUDIT, "--offline", "--format", "junit"], tmp_path)
    assert done.returncode == 80
    suite = ET.fromstring(done.stdout).find("testsuite")  # noqa: S314 - our own output
    assert suite is not None
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert set(cases) == {
        "app (app/backends/staging.backend)",
        "app (app/dev.s3.tfbackend)",
        "app (app/prod.s3.tfbackend)",
        "live/prod/vpc",
        "live/prod/app",
        "live/dev/db",
        "live/dev/cache",
        "gen/web",
        "odd",
    }
    assert (suite.get("tests"), suite.get("failures")) == ("9", "5")
    failure = cases["app (app/backends/staging.backend)"].find("failure")
    assert failure is not None and failure.get("type") == "locking-dynamodb-only"
    assert cases["app (app/prod.s3.tfbackend)"].find("failure") is None


def test_pre_commit_hook_pattern_matches_backend_files() -> None:
    import yaml

    here = Path(__file__).resolve().parent.parent
    (hook,) = yaml.safe_load((here / ".pre-commit-hooks.yaml").read_text())
    pattern = re.compile(hook["files"])
    for name in ("main.tf", "x.tf.json", "common.hcl", "prod.s3.tfbackend", "integration.blue.backend"):
        assert pattern.search(name), name
    assert not pattern.search("README.md")
    assert "--allow-no-stacks" in hook["entry"]  # a commit touching only a module is not "nothing found"


def test_units_counted_once_when_included_terragrunt_hcl_is_the_parent(tmp_path: Path) -> None:
    """The legacy layout: a root terragrunt.hcl that units include with find_in_parent_folders()."""
    write(tmp_path / "terragrunt.hcl", COMMON)
    for unit in ("a", "b"):
        write(tmp_path / unit / "terragrunt.hcl", "include {\n  path = find_in_parent_folders()\n}\n")
    code, doc, _ = audit(tmp_path)
    assert [s["path"] for s in doc["stacks"]] == ["a", "b"] and code == 80
    assert {s["key"] for s in doc["stacks"]} == {"a/terraform.tfstate", "b/terraform.tfstate"}


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(subprocess.call([sys.executable, "-m", "pytest", __file__]))
