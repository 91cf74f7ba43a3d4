"""``tfwrap migrate --all``: every DynamoDB-locked stack of a tree through the single-stack
phases, with the real engine and a loopback S3/DynamoDB: interrupted and resumed, one failing
stack reported while the others finish, finalize and cleanup-table only where ready, a shared
lock table deleted only once its last state has left."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.world import (
    Tools,
    ddb_client,
    engine,
    make_bucket,
    make_table,
    run,
    s3_client,
    write_config,
)
from tests.test_migrate import a_state, journal
from tfwrap.backend.config import JOURNAL_SUFFIX
from tfwrap.demo.server import S3Server

pytestmark = [pytest.mark.engine, pytest.mark.shim]


def tfwrap(root: Path, env: dict[str, str], *args: str, **extra: str) -> Any:
    return run(["tfwrap", "migrate", *args], root, {**env, **extra}, timeout=600)


def items(url: str, table: str) -> set[str]:
    got = ddb_client(url).scan(TableName=table, ConsistentRead=True)["Items"]
    return {i["LockID"]["S"] for i in got}


def tables(url: str) -> set[str]:
    return set(ddb_client(url).list_tables()["TableNames"])


def test_migrate_all_resumes_reports_a_failure_and_deletes_a_shared_table_last(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools
) -> None:
    root = tmp_path / "estate"
    make_bucket(s3.url, bucket_name)
    shared = make_table(s3.url, f"{bucket_name}-shared")
    own = make_table(s3.url, f"{bucket_name}-own")
    for name, table in (("a", shared), ("b", shared), ("c", own)):
        a_state(
            s3,
            bucket_name,
            root / name,
            tools,
            env,
            key=f"{name}/terraform.tfstate",
            table=table,
            new_bucket=False,
        )
    # A stack whose lock table does not exist: its migration fails, the others go on.
    write_config(
        root / "broken", s3.url, bucket_name, key="broken/tfstate", use_lockfile=None, dynamodb_table="nope"
    )
    assert items(s3.url, shared) == {
        f"{bucket_name}/a/terraform.tfstate-md5",
        f"{bucket_name}/b/terraform.tfstate-md5",
    }

    dry = tfwrap(root, env, "--all", "--dry-run", ".")
    assert dry.returncode == 92, dry.stderr
    assert dry.stderr.count("+++ backend.tf (after)") == 3, dry.stderr  # the combined diff
    assert "use_lockfile" not in (root / "a" / "backend.tf").read_text()  # nothing changed

    # Interrupted: every stack stops after its init step (as a Ctrl-C at stack N would).
    stopped = tfwrap(root, env, "--all", ".", TFWRAP_TEST_MIGRATE_STOP_AFTER="dual/init")
    assert stopped.returncode == 92, stopped.stderr
    assert stopped.stderr.count("FAILED (exit 130): stopped after dual/init") == 3, stopped.stderr
    resumed = tfwrap(root, env, "--all", ".")
    assert resumed.returncode == 92, resumed.stderr
    for name in ("a", "b", "c"):
        assert f"tfwrap: {name}: ok:" in resumed.stderr, resumed.stderr
        assert journal(root / name)["steps"]["dual/verify"]
    assert "edit: done at" in resumed.stderr  # recorded steps were skipped, not repeated
    assert "tfwrap: broken: FAILED (exit" in resumed.stderr
    assert "3 of 4 stacks done, 1 failed, 0 skipped, 0 not ready" in resumed.stderr
    again = tfwrap(root, env, "--all", ".")
    assert again.stderr.count(": ok: nothing to do: dual locking was verified") == 3, again.stderr

    status = tfwrap(root, env, "status", "--all", "--json", "--soak", "0s", ".")
    assert status.returncode == 0, status.stderr  # every stack could be read (broken too)
    doc = {Path(d["stack"]).name: d for d in json.loads(status.stdout)}
    assert {n: doc[n]["phase"] for n in ("a", "b", "c")} == dict.fromkeys("abc", "dual")
    assert doc["a"]["next"]["command"].startswith("tfwrap migrate finalize")
    human = tfwrap(root, env, "status", "--all", ".")
    assert human.stdout.splitlines()[0].split()[:3] == ["STACK", "PHASE", "SINCE"]
    waiting = tfwrap(root, env, "finalize", "--all", ".")  # the default 24 h soak has not passed
    assert "a: not ready: dual locking verified at" in waiting.stderr and "after the soak" in waiting.stderr
    assert "0 of 0 stacks done" in waiting.stderr

    # Only a finalized a: the shared table waits for b.
    one = tfwrap(root, env, "finalize", "--soak", "0s", "-chdir", str(root / "a"))
    assert one.returncode == 0, one.stderr
    early = tfwrap(root, env, "cleanup-table", "--all", ".")
    assert f"lock table {shared}: not ready: still used by b" in early.stderr, early.stderr
    assert shared in tables(s3.url)

    done = tfwrap(root, env, "finalize", "--all", "--soak", "0s", ".")
    assert "tfwrap: b: ok:" in done.stderr and "tfwrap: c: ok:" in done.stderr, done.stderr
    assert items(s3.url, shared) == set() and items(s3.url, own) == set()  # digests removed, no lock left
    cleaned = tfwrap(root, env, "cleanup-table", "--all", ".")
    assert cleaned.stderr.count(": ok:") == 2, cleaned.stderr
    assert shared not in tables(s3.url) and own not in tables(s3.url)


def test_migrate_all_migrates_each_state_of_a_partial_backend_with_its_own_file(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools
) -> None:
    """`backend "s3" {}` with one -backend-config file per environment: each file is a state,
    migrated with its own file (one after the other: they share the directory's .terraform),
    and the use_lockfile edit lands in the file that holds the settings."""
    root = tmp_path / "estate"
    make_bucket(s3.url, bucket_name)
    table = make_table(s3.url, f"{bucket_name}-locks")
    stack = write_config(root / "app", s3.url, bucket_name)
    (stack / "backend.tf").write_text('terraform {\n  backend "s3" {}\n}\n')
    for env_name in ("prod", "staging"):
        (stack / f"{env_name}.s3.tfbackend").write_text(
            f'bucket         = "{bucket_name}"\n'
            f'key            = "{env_name}/terraform.tfstate"\n'
            'region         = "us-east-1"\n'
            f'dynamodb_table = "{table}"\n'
            f'endpoints      = {{ s3 = "{s3.url}", dynamodb = "{s3.url}" }}\n'
            "use_path_style = true\n"
            "skip_credentials_validation = true\n"
            "skip_requesting_account_id  = true\n"
            "skip_metadata_api_check     = true\n"
        )
        init = [str(tools.engine), "init", "-reconfigure", "-no-color", "-input=false"]
        done = run([*init, f"-backend-config={env_name}.s3.tfbackend"], stack, env)
        assert done.returncode == 0, done.stderr
        done = engine(tools, stack, env, "apply", "-auto-approve", "-no-color", "-input=false")
        assert done.returncode == 0, done.stderr

    migrated = tfwrap(root, env, "--all", ".")
    assert migrated.returncode == 0, migrated.stderr
    for env_name in ("prod", "staging"):
        assert f"app (-backend-config {env_name}.s3.tfbackend): ok:" in migrated.stderr.replace(
            str(root) + "/", ""
        ), migrated.stderr
        assert "use_lockfile" in (stack / f"{env_name}.s3.tfbackend").read_text()
        got = s3_client(s3.url).get_object(
            Bucket=bucket_name, Key=f"{env_name}/terraform.tfstate{JOURNAL_SUFFIX}"
        )
        assert "dual/verify" in json.loads(got["Body"].read())["steps"]
    assert "2 of 2 stacks done, 0 failed" in migrated.stderr, migrated.stderr
    assert "use_lockfile" not in (stack / "backend.tf").read_text()  # the block stays partial
    status = tfwrap(root, env, "status", "--all", "--json", "--soak", "0s", ".")
    assert status.returncode == 0, status.stderr
    doc = json.loads(status.stdout)
    assert sorted(Path(d["backend_file"]).name for d in doc) == ["prod.s3.tfbackend", "staging.s3.tfbackend"]
    assert all(d["phase"] == "dual" and "-backend-config=" in d["next"]["command"] for d in doc), doc
