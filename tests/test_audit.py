"""``tfwrap audit``: every stack of a repository, offline and against the S3 API server."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.support.world import backend_block, make_bucket, run
from tfwrap.audit import constraint
from tfwrap.demo.server import S3Server

AUDIT = [sys.executable, "-m", "tfwrap", "audit"]
# A werkzeug access line; 4xx lines are coloured ("\x1b[33mGET /b?object-lock HTTP/1.1\x1b[0m" 404).
_REQUEST = re.compile(r'"(?:\x1b\[[\d;]*m)?([A-Z]+) (\S+) HTTP/[\d.]+(?:\x1b\[[\d;]*m)?" (\d{3})')


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def stack(directory: Path, *, version: str | None = ">= 1.11", **settings: Any) -> Path:
    """A root module: backend.tf with ``settings``, two resource files and a module call."""
    body = {"bucket": "acme-state", "key": f"{directory.name}/terraform.tfstate", "region": "us-east-1"}
    body.update(settings)
    lines = [
        f"    {k} = {json.dumps(v) if not isinstance(v, bool) else str(v).lower()}" for k, v in body.items()
    ]
    required = f'  required_version = "{version}"\n' if version else ""
    write(
        directory / "backend.tf",
        "terraform {\n" + required + '  backend "s3" {\n' + "\n".join(lines) + "\n  }\n}\n",
    )
    write(directory / "main.tf", 'resource "terraform_data" "backend" {\n  input = "backend"\n}\n')
    write(directory / "more.tf", 'module "net" {\n  source = "../../modules/net"\n}\n')
    return directory


def audit(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run([*AUDIT, *args], cwd, env=env or dict(os.environ))


def findings(cwd: Path, *args: str) -> tuple[int, dict[str, Any]]:
    done = audit(cwd, "--format", "json", *args)
    assert done.returncode in (0, 80), done.stderr
    return done.returncode, json.loads(done.stdout)


def points_at(cwd: Path, finding: dict[str, Any], text: str) -> bool:
    line = (cwd / finding["file"]).read_text().splitlines()[finding["line"] - 1]
    return line[finding["column"] - 1 :].startswith(text)


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def test_discovery_skips_tool_directories_and_gitignored_paths(tmp_path: Path) -> None:
    good = {"use_lockfile": True, "encrypt": True}
    stack(tmp_path / "envs" / "prod", **good)
    stack(tmp_path / "envs" / "dev", **good)
    for hidden in (".terraform/modules/x", ".terragrunt-cache/abc/def", "ignored/stack", "envs/tmp-ignored"):
        stack(tmp_path / hidden, dynamodb_table="locks")
    write(tmp_path / "modules" / "net" / "main.tf", 'variable "backend" {}\n')
    write(tmp_path / ".gitignore", "ignored/\n*-ignored/\n")
    git(tmp_path, "init", "-q")
    code, doc = findings(tmp_path, "--offline")
    assert [s["path"] for s in doc["stacks"]] == ["envs/dev", "envs/prod"]
    assert code == 0 and doc["findings"] == []
    # outside a git repository the tool directories are still skipped (no .gitignore without git)
    (tmp_path / ".git").rename(tmp_path / "not-git")
    _, doc = findings(tmp_path, "--offline")
    assert [s["path"] for s in doc["stacks"]] == [
        "envs/dev",
        "envs/prod",
        "envs/tmp-ignored",
        "ignored/stack",
    ]


def test_offline_locking_version_and_encrypt_findings_point_at_their_lines(tmp_path: Path) -> None:
    stack(tmp_path / "none", version=None)
    stack(tmp_path / "ddb", dynamodb_table="locks", encrypt=True, version=">= 1.5, < 2.0")
    stack(tmp_path / "dual", dynamodb_table="locks", use_lockfile=True, encrypt=False, version="~> 1.10.2")
    stack(tmp_path / "good", use_lockfile=True, encrypt=True, version="~> 1.11")
    disagree = stack(tmp_path / "disagree", use_lockfile=True, encrypt=True)
    write(
        disagree / ".terraform" / "terraform.tfstate",
        json.dumps(
            {"backend": {"type": "s3", "config": {"bucket": "acme-state", "dynamodb_table": "locks"}}}
        ),
    )
    code, doc = findings(tmp_path, "--offline")
    assert code == 80
    got = {(f["stack"], f["id"]): f for f in doc["findings"]}
    assert set(got) == {
        ("none", "locking-none"),
        ("none", "encrypt-missing"),
        ("none", "required-version-pre-lockfile"),
        ("ddb", "locking-dynamodb-only"),
        ("ddb", "required-version-pre-lockfile"),
        ("dual", "locking-dual"),
        ("dual", "encrypt-missing"),
        ("dual", "required-version-experimental"),
        ("disagree", "locking-disagree"),
    }
    assert points_at(tmp_path, got["none", "locking-none"], 'backend "s3"')  # a missing setting: the block
    assert points_at(tmp_path, got["none", "required-version-pre-lockfile"], "terraform {")
    assert points_at(tmp_path, got["ddb", "locking-dynamodb-only"], "dynamodb_table")
    assert points_at(tmp_path, got["ddb", "required-version-pre-lockfile"], "required_version")
    assert points_at(tmp_path, got["dual", "encrypt-missing"], "encrypt")
    assert points_at(tmp_path, got["disagree", "locking-disagree"], "use_lockfile")
    assert got["ddb", "locking-dynamodb-only"]["severity"] == "error"
    assert doc["summary"] == {
        "stacks": 5,
        "buckets": 1,
        "errors": 2,
        "warnings": 6,
        "notes": 1,
        "unchecked": 0,
    }


def test_terragrunt_static_values_are_checked_and_functions_shown_as_written(tmp_path: Path) -> None:
    write(
        tmp_path / "live" / "root.hcl",
        """\
        locals {
          env = "prod"
        }
        # remote_state { backend = "s3" }  (a comment: not read)
        remote_state {
          backend = "s3"
          config = {
            bucket         = "acme-${local.env}-state"
            key            = "${path_relative_to_include()}/terraform.tfstate"
            region         = get_env("AWS_REGION", "us-east-1")
            encrypt        = true
            dynamodb_table = "tf-locks"
          }
        }
        """,
    )
    write(
        tmp_path / "live" / "app" / "terragrunt.hcl",
        'include "root" {\n  path = find_in_parent_folders("root.hcl")\n}\n',
    )
    code, doc = findings(tmp_path)  # online, yet nothing asked: the bucket is not known without guessing
    assert code == 80
    (st,) = doc["stacks"]
    assert (
        st["kind"] == "terragrunt"
        and st["file"] == "live/root.hcl"
        and st["bucket"] == '"acme-${local.env}-state"'  # as written
    )
    got = {(f["id"], f["message"].split(" ")[0]): f for f in doc["findings"]}
    assert set(got) == {
        ("locking-dynamodb-only", "state"),  # a static value: checked
        ("backend-dynamic-value", "bucket"),  # built by functions: shown, never guessed
        ("backend-dynamic-value", "region"),
    }
    region = got["backend-dynamic-value", "region"]
    assert region["message"].startswith(
        'region = get_env("AWS_REGION", "us-east-1") is built by an expression'
    )
    assert points_at(tmp_path, region, "region")
    assert points_at(tmp_path, got["locking-dynamodb-only", "state"], "dynamodb_table")


def test_each_stack_uses_the_policy_file_that_governs_it(tmp_path: Path) -> None:
    stack(tmp_path / "team-a" / "app", dynamodb_table="locks", encrypt=True)
    stack(tmp_path / "team-b" / "app", dynamodb_table="locks", encrypt=True)
    write(
        tmp_path / "team-a" / ".tfwrap.toml",
        '[severity]\nlocking-dynamodb-only = "warning"\nrequired-version-experimental = "off"\n',
    )
    code, doc = findings(tmp_path / "team-a", "--offline")
    assert code == 0  # team A has decided DynamoDB-only is a warning for now
    assert {(f["stack"], f["severity"]) for f in doc["findings"]} == {("app", "warning")}
    assert doc["stacks"][0]["policy_file"] == ".tfwrap.toml"
    code, doc = findings(tmp_path, "--offline")
    assert code == 80
    assert {(f["stack"], f["severity"]) for f in doc["findings"]} == {
        ("team-a/app", "warning"),
        ("team-b/app", "error"),
    }


def test_text_github_and_output_file(tmp_path: Path) -> None:
    stack(tmp_path / "a", dynamodb_table="locks", encrypt=True)
    stack(tmp_path / "b", dynamodb_table="locks", encrypt=True)
    stack(tmp_path / "c", use_lockfile=True, encrypt=True)
    done = audit(tmp_path, "--offline")
    assert done.returncode == 80
    lines = done.stdout.splitlines()
    head = lines.index("error [locking-dynamodb-only] DynamoDB-only state locking (deprecated) (2 stacks)")
    assert lines[head + 2].startswith("  a/backend.tf:7:5  state is locked with DynamoDB only")
    assert lines[head + 3].startswith("  b/backend.tf:7:5  ")
    assert lines[-1] == "3 stacks, 1 bucket: 2 errors, 0 warnings"
    done = audit(tmp_path, "--offline", "--format", "github")
    first = done.stdout.splitlines()[0]
    assert first.startswith(
        "::error file=a/backend.tf,line=7,col=5,title=tfwrap [locking-dynamodb-only]::state is"
    )
    assert "%0A" not in first and "— fix: run `tfwrap migrate`" in first
    out = tmp_path / "report.json"
    done = audit(tmp_path, "--offline", "--format", "json", "--output", str(out))
    assert done.returncode == 80 and done.stdout == ""
    assert done.stderr.strip() == f"tfwrap: 3 stacks, 1 bucket: 2 errors, 0 warnings (report in {out})"
    assert json.loads(out.read_text())["schema_version"] == 1


def test_sarif_is_read_by_a_real_reader_and_matches_the_2_1_0_schema(tmp_path: Path) -> None:
    from pydantic_sarif.model import StaticAnalysisResultsFormatSarifVersion210JsonSchema as SarifLog
    from sarif import loader

    stack(tmp_path / "a", dynamodb_table="locks", version=None)
    stack(tmp_path / "b", use_lockfile=True, encrypt=True)
    out = tmp_path / "audit.sarif"
    assert audit(tmp_path, "--offline", "--format", "sarif", "--output", str(out)).returncode == 80
    doc = json.loads(out.read_text())
    SarifLog.model_validate(doc)  # models generated from sarif-schema-2.1.0.json, extra="forbid"
    sarif = loader.load_sarif_file(str(out))
    records = sarif.get_records()
    assert {r["Code"].split(" ")[0] for r in records} >= {"locking-dynamodb-only", "encrypt-missing"}
    run_ = doc["runs"][0]
    rules = {r["id"]: r for r in run_["tool"]["driver"]["rules"]}
    assert "use_lockfile = true" in rules["locking-dynamodb-only"]["help"]["text"]
    result = next(r for r in run_["results"] if r["ruleId"] == "locking-dynamodb-only")
    region = result["locations"][0]["physicalLocation"]["region"]
    assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "a/backend.tf"
    assert (region["startLine"], region["startColumn"]) == (6, 5)
    assert run_["tool"]["driver"]["rules"][result["ruleIndex"]]["id"] == "locking-dynamodb-only"


def test_required_version_constraints() -> None:
    assert constraint.admits_below([], (1, 10, 0)) is True
    assert constraint.admits_below([">= 1.11"], (1, 10, 0)) is False
    assert constraint.admits_below(["~> 1.10"], (1, 11, 0)) is True
    assert constraint.admits_below(["~> 1.10.0"], (1, 10, 0)) is False
    assert constraint.admits_below([">= 1.5", ">= 1.11.0"], (1, 11, 0)) is False  # every file at once
    assert constraint.admits_below(["> 1.10.5"], (1, 11, 0)) is True
    assert constraint.admits_below(["= 1.10.5"], (1, 10, 0)) is False
    assert constraint.admits_below([">= 1.12, < 1.11"], (1, 11, 0)) is False  # admits nothing
    assert constraint.admits_below(["~> 0.12"], (1, 10, 0)) is True
    assert constraint.admits_below(["banana"], (1, 10, 0)) is None


def requests(log: Path, bucket: str, since: int) -> list[str]:
    """Requests to ``bucket`` in the server's access log after byte ``since``."""
    return [
        f"{m.group(1)} {m.group(2)}"
        for line in log.read_bytes()[since:].decode(errors="replace").splitlines()
        if (m := _REQUEST.search(line)) and m.group(2).startswith(f"/{bucket}")
    ]


@pytest.mark.shim
def test_online_asks_once_per_bucket_in_parallel_and_shares_the_guard_cache(
    tmp_path: Path, env: dict[str, str], s3: S3Server, bucket_name: str
) -> None:
    good, unversioned, locked = (f"{bucket_name}-{n}" for n in ("good", "unver", "lock"))
    make_bucket(s3.url, good)
    make_bucket(s3.url, unversioned, versioning=False, object_lock=False)
    make_bucket(s3.url, locked)
    repo = tmp_path / "repo"
    for i in range(12):
        bucket = (good, unversioned, locked)[i % 3]
        extra = {"skip_s3_checksum": True} if bucket == locked and i == 2 else {}
        directory = repo / f"stack{i:02d}"
        directory.mkdir(parents=True)
        (directory / "backend.tf").write_text(
            backend_block(s3.url, bucket, key=f"s{i}/tfstate", encrypt=True, **extra)
        )
        (directory / "versions.tf").write_text('terraform {\n  required_version = ">= 1.11"\n}\n')
    moto_log = Path(s3._log.name)  # type: ignore[union-attr]  # werkzeug's access lines
    since = moto_log.stat().st_size
    done = run(["tfwrap", "audit", "--format", "json", "--jobs", "3"], repo, env)
    assert done.returncode == 80, done.stderr
    doc = json.loads(done.stdout)
    calls = {b: requests(moto_log, b, since) for b in (good, unversioned, locked)}
    assert all(len(c) == 6 for c in calls.values()), calls  # the guard's six reads, once per bucket
    assert doc["summary"]["stacks"] == 12 and doc["summary"]["buckets"] == 3
    got = {(f["stack"], f["id"]) for f in doc["findings"]}
    assert {s for s, i in got if i == "bucket-versioning"} == {f"stack{i:02d}" for i in (1, 4, 7, 10)}
    assert {s for s, i in got if i == "skip-s3-checksum-object-lock"} == {"stack02"}
    checksum = next(f for f in doc["findings"] if f["id"] == "skip-s3-checksum-object-lock")
    assert points_at(repo, checksum, "skip_s3_checksum")
    versioning = next(f for f in doc["findings"] if f["id"] == "bucket-versioning")
    assert points_at(repo, versioning, "bucket")
    # the guard's cache: a second audit, and a shim check in one of the stacks, ask nothing more
    assert run(["tfwrap", "audit", "--format", "json"], repo, env).returncode == 80
    assert (
        run(["tfwrap", "audit", "--offline", "--format", "json"], repo, env).stdout.count("skip-s3-checksum")
        == 1
    )
    assert run(["tfwrap", "check", "--init"], repo / "stack00", env).returncode == 0
    # ... beyond the check's own conditional-write probe of a custom endpoint, a
    # fact of its own that audit does not gather: its scratch objects and their one delete.
    checked = {
        b: [
            r
            for r in requests(moto_log, b, since)
            if "tfwrap-probe" not in str(r) and "?delete" not in str(r)
        ]
        for b in calls
    }
    assert {b: len(c) for b, c in checked.items()} == dict.fromkeys(calls, 6), checked


@pytest.mark.shim
def test_pre_commit_hook_fails_a_bad_backend_and_passes_a_good_one(
    tmp_path: Path, env: dict[str, str]
) -> None:
    here = Path(__file__).resolve().parent.parent
    repo = tmp_path / "infra"
    stack(repo / "envs" / "prod", use_lockfile=True, encrypt=True)
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    hook_env = {**env, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"), "GIT_CONFIG_NOSYSTEM": "1"}
    for who in ("AUTHOR", "COMMITTER"):  # try-repo commits local changes to a shadow repo
        hook_env.update({f"GIT_{who}_NAME": "tfwrap tests", f"GIT_{who}_EMAIL": "tests@example.invalid"})
    pre_commit = [str(Path(sys.executable).parent / "pre-commit"), "try-repo", str(here), "tfwrap-audit"]
    good = run([*pre_commit, "--all-files"], repo, hook_env)
    assert good.returncode == 0, good.stdout + good.stderr
    assert re.search(r"tfwrap audit .*Passed", good.stdout)
    stack(repo / "envs" / "dev", dynamodb_table="locks", encrypt=True)
    git(repo, "add", "-A")
    bad = run([*pre_commit, "--files", "envs/dev/backend.tf"], repo, hook_env)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert re.search(r"tfwrap audit .*Failed", bad.stdout)
    assert "envs/dev/backend.tf:7:5  state is locked with DynamoDB only" in bad.stdout
    assert "envs/prod" not in bad.stdout.split("Failed", 1)[1]  # only the stack of the changed file


def test_tf_json_stacks_and_terragrunt_attribute_form(tmp_path: Path) -> None:
    doc = {
        "terraform": {
            "required_version": ">= 1.11",
            "backend": {"s3": {"bucket": "jb", "key": "k", "region": "us-east-1", "encrypt": True}},
        }
    }
    doc["terraform"]["backend"]["s3"]["dynamodb_table"] = "locks"
    write(tmp_path / "json-stack" / "main.tf.json", json.dumps(doc, indent=2))
    write(
        tmp_path / "tg" / "terragrunt.hcl",
        """\
        remote_state = {
          backend = "s3"
          config = {
            bucket = "tg-state"
            key    = "tg/terraform.tfstate"
            region = "us-east-1"
          }
        }
        """,
    )
    code, doc_out = findings(tmp_path, "--offline")
    assert code == 80
    got = {(f["stack"], f["id"]): f for f in doc_out["findings"]}
    assert set(got) == {
        ("json-stack", "locking-dynamodb-only"),
        ("tg", "locking-none"),
        ("tg", "encrypt-missing"),
    }
    assert points_at(tmp_path, got["json-stack", "locking-dynamodb-only"], '"dynamodb_table"')
    assert points_at(tmp_path, got["tg", "locking-none"], "remote_state")


def test_an_unreadable_stack_is_a_finding_and_the_others_are_still_audited(tmp_path: Path) -> None:
    stack(tmp_path / "good", use_lockfile=True, encrypt=True)
    write(tmp_path / "broken" / "backend.tf", 'terraform {\n  backend "s3" {\n    bucket = "unterminated\n')
    code, doc = findings(tmp_path, "--offline")
    assert code == 80
    (only,) = doc["findings"]
    assert (only["stack"], only["id"], only["file"]) == ("broken", "backend-unreadable", "broken/backend.tf")
    assert "unterminated string at line 3" in only["message"]
    assert [s["path"] for s in doc["stacks"]] == ["broken", "good"]


def test_a_missing_path_or_unwritable_output_is_one_line_and_83(tmp_path: Path) -> None:
    done = audit(tmp_path, "--offline", "no-such-dir")
    assert done.returncode == 83 and done.stdout == ""
    assert done.stderr == "tfwrap: no-such-dir does not exist; pass directories or files to audit\n"
    done = audit(tmp_path, "--offline", "--output", str(tmp_path / "missing" / "report.txt"))
    assert (
        done.returncode == 83
        and done.stderr.startswith("tfwrap: cannot write ")
        and "Traceback" not in done.stderr
    )
