"""A colleague left behind during a migration, end to end with the real engine and the loopback
S3/DynamoDB server: a straggler still on ``dynamodb_table`` (a plain ``terraform apply``, the
engine itself, not through the shim) during and after finalize, and a checkout that has not
pulled the migration's backend change."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.lockwatch import wait_for
from tests.support.world import RESOURCE, Tools, ddb_client, holding, run
from tests.test_migrate import (
    QUIET,
    STATE_KEY,
    a_state,
    digest,
    initialised,
    journal,
    journal_object,
    lock_item,
    migrate,
    must,
    refusal,
)
from tfwrap.demo.server import S3Server

pytestmark = [pytest.mark.engine]

BEHIND = "your checkout is behind the migration journal: pull the backend change"


HOLD = """
resource "terraform_data" "held" {
  triggers_replace = timestamp()
  provisioner "local-exec" {
    command = "n=0; while [ -e %s ] && [ $n -lt 1200 ]; do sleep 0.1; n=$((n+1)); done"
  }
}
"""


def straggle(tools: Tools, old: Path, env: dict[str, str], hold: Path) -> subprocess.Popen[str]:
    """A plain terraform apply on the old configuration (DynamoDB locking only), holding its
    lock until ``hold`` is removed (at most two minutes)."""
    hold.touch()
    return holding(tools, old, env, "apply", *QUIET, "-auto-approve")


def held_item(s3: S3Server, bucket: str, table: str) -> dict[str, Any]:
    item = wait_for(lambda: lock_item(s3, bucket, table), 60, what="the straggler's DynamoDB lock")
    info: dict[str, Any] = json.loads(item["Info"]["S"])
    return info


def finish(proc: subprocess.Popen[str], hold: Path) -> None:
    hold.unlink()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err


def set_journal_step_time(work: Path, step: str, at: str) -> None:
    client, bucket, key = journal_object(work)
    data = journal(work)
    data["steps"][step]["at"] = at
    client.put_object(Bucket=bucket, Key=key, Body=json.dumps(data).encode())


def tfwrap(work: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run(["tfwrap", *args], work, env, timeout=180)


@pytest.mark.engine
def test_a_straggler_during_and_after_finalize_is_found_shown_and_stops_the_deletions(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools
) -> None:
    hold = tmp_path / "hold"
    work, table = a_state(s3, bucket_name, tmp_path / "work", tools, env, resource=RESOURCE + HOLD % hold)
    old = tmp_path / "old"
    shutil.copytree(work, old, symlinks=True)  # a pipeline nobody updated: dynamodb_table only
    must(migrate(work, env))

    # During the dual phase: the straggler holds the DynamoDB item and no .tflock.
    proc = straggle(tools, old, env, hold)
    info = held_item(s3, bucket_name, table)
    line = refusal(migrate(work, env, "finalize", "--soak", "0s"), 86)
    assert "a run on the old configuration (dynamodb_table, no use_lockfile) holds the lock now" in line
    assert info["Who"] in line and f"ID {info['ID']}" in line and "since 20" in line, line
    assert initialised(work)["dynamodb_table"] == table  # refused before anything changed
    status = must(migrate(work, env, "status"))
    assert f"straggler: DynamoDB item LockID={bucket_name}/{STATE_KEY} held by {info['Who']}" in status.stdout
    finish(proc, hold)
    assert journal(work)["stragglers"][0]["who"] == info["Who"]  # kept after that run ended

    # A straggler seen is younger than the soak: finalize waits for the soak from then.
    set_journal_step_time(work, "dual/verify", "2000-01-01T00:00:00Z")
    line = refusal(migrate(work, env, "finalize", "--soak", "1h"), 86)
    assert "used the lock table" in line and info["Who"] in line and "--ignore-stragglers" in line, line
    assert "finalize after the soak from then" in line
    final = migrate(work, env, "finalize", "--soak", "1h", "--ignore-stragglers")
    assert final.returncode == 0, final.stderr
    assert "dynamodb_table" not in (work / "backend.tf").read_text()
    assert digest(s3, bucket_name, table) is None

    # After finalize: the straggler runs again. lock status must show its lock.
    proc = straggle(tools, old, env, hold)
    info = held_item(s3, bucket_name, table)
    shown = must(tfwrap(work, env, "lock", "status"))
    assert "no lock held" not in shown.stdout, shown.stdout
    assert "the DynamoDB item is held:" in shown.stdout and info["Who"] in shown.stdout
    doc = json.loads(must(tfwrap(work, env, "lock", "status", "--json")).stdout)
    assert doc["locked"] is True and doc["dynamodb"]["ID"] == info["ID"] and doc["dynamodb_table"] == table
    report = json.loads(must(migrate(work, env, "status", "--json")).stdout)
    assert [e["kind"] for e in report["stragglers"]][:1] == ["lock"]
    assert report["stragglers"][0]["who"] == info["Who"] and report["next"] is None
    line = refusal(migrate(work, env, "cleanup-table"), 86)
    assert "holds the lock now" in line and info["Who"] in line
    finish(proc, hold)

    # It ended and left its digest behind: the table is still in use, whatever the soak.
    assert digest(s3, bucket_name, table) is not None
    status = must(migrate(work, env, "status"))
    assert "written after finalize" in status.stdout and "the state was last written at 20" in status.stdout
    assert "next: nothing to do" in status.stdout and "cleanup-table refuses" in status.stdout
    line = refusal(migrate(work, env, "cleanup-table"), 86)
    assert f"table {table} is still in use after finalize" in line and info["Who"] in line, line
    assert "--ignore-stragglers" in line
    assert table in ddb_client(s3.url).list_tables()["TableNames"]
    gone = migrate(work, env, "cleanup-table", "--ignore-stragglers")
    assert gone.returncode == 0, gone.stderr
    assert table not in ddb_client(s3.url).list_tables()["TableNames"]


@pytest.mark.engine
@pytest.mark.shim
def test_during_the_soak_a_run_on_use_lockfile_and_a_straggler_exclude_each_other(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools
) -> None:
    """After finalize and before cleanup-table, a straggler locks only in DynamoDB, a run on
    use_lockfile only in S3. Through the shim, the run also holds the DynamoDB item: refused
    (86, Terraform not started) while the straggler holds it, and the straggler's own plain
    apply is refused by Terraform while the run holds it. Nothing of the hold is left after."""
    hold = tmp_path / "hold"
    work, table = a_state(s3, bucket_name, tmp_path / "work", tools, env, resource=RESOURCE + HOLD % hold)
    old = tmp_path / "old"
    shutil.copytree(work, old, symlinks=True)  # a pipeline nobody updated: dynamodb_table only
    must(migrate(work, env))
    must(migrate(work, env, "finalize", "--soak", "0s"))
    assert "dynamodb_table" not in (work / "backend.tf").read_text()
    apply = ["terraform", "apply", *QUIET, "-auto-approve"]

    proc = straggle(tools, old, env, hold)
    info = held_item(s3, bucket_name, table)
    refused = run(apply, work, env, timeout=180)
    line = refusal(refused, 86)
    assert f"held in DynamoDB table {table} by {info['Who']}" in line, line
    # That cold check's prefetch read the journal: its verdict carries the soak for warm runs.
    from tfwrap.findings import cache

    keys = [
        p.name.removeprefix("verdict-").removesuffix(".cache") for p in (tmp_path / "cache").glob("verdict-*")
    ]
    verdicts = [cache.get("verdict", key) for key in keys]
    assert [v["soak"][0] for v in verdicts] == [table], verdicts
    assert "a run still on dynamodb_table during the migration's soak; Terraform was not started" in line
    assert "Acquiring state lock" not in refused.stdout + refused.stderr  # Terraform never ran
    assert wait_for_lock_item_id(s3, bucket_name, table) == info["ID"]  # the straggler's, untouched
    finish(proc, hold)

    hold.touch()
    ours = subprocess.Popen(
        apply, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    mine = held_item(s3, bucket_name, table)
    assert mine["Operation"] == "tfwrap soak hold (a run on use_lockfile)", mine
    late = run([str(tools.engine), "apply", *QUIET, "-auto-approve"], old, env, timeout=180)
    assert late.returncode == 1 and "Error acquiring the state lock" in late.stderr, late.stderr
    assert "tfwrap soak hold" in late.stderr, late.stderr  # Terraform names the holder
    hold.unlink()
    out, err = ours.communicate(timeout=180)
    assert ours.returncode == 0, err
    assert "Apply complete!" in out
    assert lock_item(s3, bucket_name, table) is None, "the soak hold was left behind"


def wait_for_lock_item_id(s3: S3Server, bucket: str, table: str) -> str:
    item = lock_item(s3, bucket, table)
    return str(json.loads(item["Info"]["S"])["ID"]) if item else ""


@pytest.mark.engine
def test_a_checkout_behind_the_journal_is_told_to_pull_never_to_roll_back(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools
) -> None:
    work, table = a_state(s3, bucket_name, tmp_path / "work", tools, env)
    old = tmp_path / "old"
    shutil.copytree(work, old, symlinks=True)  # a colleague's checkout, initialised, not pulled
    must(migrate(work, env))
    dual = tmp_path / "dual"
    shutil.copytree(work, dual, symlinks=True)  # pulled the dual edit, not the finalize one

    def all_say_behind(where: Path, files: str) -> None:
        for args in (("migrate",), ("migrate", "finalize", "--soak", "0s"), ("migrate", "rollback")):
            line = refusal(tfwrap(where, env, *args), 83)
            assert line.startswith(f"tfwrap: {BEHIND}") and files in line, (args, line)
            assert "rollback" not in line.split("pull")[1] and "create" not in line, line
        status = must(tfwrap(where, env, "migrate", "status"))
        assert status.stdout.splitlines()[-1].startswith("next: pull the backend change"), status.stdout
        assert "rollback" not in status.stdout.splitlines()[-1]
        report = json.loads(must(tfwrap(where, env, "migrate", "status", "--json")).stdout)
        assert report["checkout_behind"].startswith(BEHIND) and report["next"] is None
        plan = run(["terraform", "plan", *QUIET], where, env)  # the guard, through the shim
        assert plan.returncode == 80, plan.stderr
        said = [ln for ln in plan.stderr.splitlines() if "[checkout-behind]" in ln]
        assert said and "pull the backend change" in plan.stderr, plan.stderr
        assert "tfwrap migrate`" not in plan.stderr and "rollback" not in plan.stderr

    all_say_behind(old, "use_lockfile = true added in backend.tf at 20")

    must(migrate(work, env, "finalize", "--soak", "0s"))
    must(migrate(work, env, "cleanup-table"))
    assert table not in ddb_client(s3.url).list_tables()["TableNames"]
    # The table is gone: still "pull", never "create it".
    all_say_behind(old, "dynamodb_table removed in backend.tf at 20")
    line = refusal(tfwrap(old, env, "migrate", "cleanup-table"), 83)
    assert line.startswith(f"tfwrap: {BEHIND}")
    all_say_behind(dual, "dynamodb_table removed in backend.tf at 20")
    # The checkout that did the migration is not behind: it is done.
    assert "nothing to do" in must(migrate(work, env)).stderr


def test_behind_compares_the_files_with_the_journals_edits() -> None:
    from tfwrap.backend.journal import behind

    dual = {
        "steps": {"dual/edit": {"at": "2026-12-01T10:00:00Z"}},
        "edits": [{"phase": "dual", "file": "backend.tf"}],
    }
    found = behind(dual, "dynamodb")
    assert found is not None and found.line.startswith(BEHIND)
    assert "use_lockfile = true added in backend.tf at 2026-12-01T10:00:00Z" in found.line
    assert behind(dual, "dual") is None and behind(dual, "native") is None  # not behind: ahead is fine
    final = {
        "steps": {**dual["steps"], "finalize/edit": {"at": "2026-12-02T10:00:00Z"}},
        "edits": [*dual["edits"], {"phase": "finalize", "file": "prod.s3.tfbackend"}],
    }
    found = behind(final, "dual")
    assert found is not None and "use_lockfile" not in found.edits
    assert found.edits == "dynamodb_table removed in prod.s3.tfbackend at 2026-12-02T10:00:00Z"
    rolling = {"steps": {**final["steps"], "rollback/edit": {"at": "2026-12-03T10:00:00Z"}}}
    assert behind(rolling, "dynamodb") is None  # a rollback puts the files back on purpose
    assert behind({"steps": {}}, "dynamodb") is None


def test_the_table_is_watched_from_the_dual_edit_until_it_is_deleted() -> None:
    from tfwrap.backend.journal import watched

    steps: dict[str, Any] = {"dual/preflight": {}}
    assert watched({"table": "t", "steps": steps}) == ""  # before the edit every run is "old"
    steps["dual/edit"] = {}
    assert watched({"table": "t", "steps": steps}) == "t"
    steps["finalize/remove-digest"] = {}
    assert watched({"table": "t", "steps": steps}) == "t"
    assert watched({"table": "t", "steps": {**steps, "cleanup-table/delete-table": {}}}) == ""
    assert watched({"table": "t", "steps": {**steps, "rollback/preflight": {}}}) == ""


class Journal:
    """An S3 client with one journal object (or one failure for it)."""

    def __init__(self, body: bytes | None = None, code: str = "NoSuchKey") -> None:
        self.body, self.code = body, code

    def get_object(self, **_: object) -> dict[str, Any]:
        if self.body is None:
            raise Failure(self.code)
        return {"Body": _Body(self.body)}


class Failure(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.response = {"Error": {"Code": code}}


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def read(self) -> bytes:
        return self.data


def test_the_prefetch_tells_a_missing_journal_from_one_it_could_not_read() -> None:
    """ "" is an answer the check caches; None leaves the read to the supervised run, which asks
    again with retries (docs/decisions/112-the-soak-hold.md)."""
    from tfwrap.backend.config import BackendConfig
    from tfwrap.lock.current import migration_table
    from tfwrap.lock.soak import journal_table

    backend = BackendConfig(Path("."), Path(".terraform"), "default", "s3", {"bucket": "b", "key": "k"})
    dual = json.dumps({"table": "t", "steps": {"dual/edit": {}}}).encode()
    assert journal_table(Journal(dual), backend) == "t"
    assert journal_table(Journal(None), backend) == ""  # no journal: never migrated
    assert journal_table(Journal(b"not json"), backend) == ""
    assert journal_table(Journal(None, "AccessDenied"), backend) is None
    assert journal_table(Journal(None, "SlowDown"), backend) is None
    assert migration_table(Journal(None, "AccessDenied"), backend) == ""  # lock status: as before
    on_dynamo = BackendConfig(
        Path("."), Path(".terraform"), "default", "s3", {"bucket": "b", "key": "k", "dynamodb_table": "t"}
    )
    assert journal_table(Journal(None, "AccessDenied"), on_dynamo) == ""  # no soak to be in


def test_a_supervised_run_takes_the_soak_from_its_check(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """What the check read is not asked again (no cache read, no botocore); too old, or read
    for another command, it is."""
    from tfwrap.findings import cache
    from tfwrap.lock import soak
    from tfwrap.terraform import commands

    monkeypatch.chdir(tmp_path)  # not initialised: a read of the cache decides nothing more
    asked: list[str] = []
    monkeypatch.setattr(cache, "get", lambda kind, *_, **__: asked.append(kind))
    monkeypatch.setattr(soak, "_checked", None)
    command = commands.parse(["plan"])
    soak.known(command, ["", time.time()])
    assert soak.table(command, 60) is None
    assert asked == []
    soak.known(command, ["", time.time() - 120])  # older than the cache's lifetime
    assert soak.table(command, 60) is None and asked == ["soak"]
    soak.known(commands.parse(["apply"]), ["", time.time()])
    assert soak.table(command, 60) is None and asked == ["soak", "soak"]
