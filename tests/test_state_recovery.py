"""``tfwrap state history|diff|restore|undo`` end to end: the real engine through the shim,
a loopback S3/DynamoDB server, states that hold a secret which must never be printed."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.lockwatch import read_lock, wait_for
from tests.support.terminal import Terminal
from tests.support.world import ddb_client, make_bucket, make_table, run, s3_client, write_config
from tfwrap.demo.server import S3Server

pytestmark = [pytest.mark.engine, pytest.mark.shim]

STATE_KEY = "app/terraform.tfstate"
SECRET = "SENTINEL-s3cr3t-7f3a9c"  # noqa: S105 - a sentinel attribute value: must appear in no output
APPLY = ["terraform", "apply", "-auto-approve", "-no-color", "-input=false"]


def resources(*names: str, sleep: float = 1.5) -> str:
    """``terraform_data`` resources holding the secret; a provisioner sleep so the heartbeat
    writes its Info before Terraform releases the lock."""
    blocks = [
        f"""
resource "terraform_data" "{name}" {{
  input = var.secret
  provisioner "local-exec" {{
    command = "sleep {sleep}"
  }}
}}
"""
        for name in names
    ]
    return f"""
variable "secret" {{
  type      = string
  default   = "{SECRET}"
  sensitive = true
}}
output "token" {{
  value     = var.secret
  sensitive = true
}}
""" + "".join(blocks)


class Outputs:
    """Every output of tfwrap the test saw: all of ``tfwrap state``'s, and the stderr (tfwrap's
    lines and logs) of every run through the shim; Terraform's own stdout shows values of
    non-sensitive attributes itself and is not tfwrap's to redact."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(
        self, args: list[str], cwd: Path, env: dict[str, str], **kw: Any
    ) -> subprocess.CompletedProcess[str]:
        done = run(args, cwd, env, **kw)
        self.seen.append(done.stderr)
        return done

    def tfwrap(self, cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
        done = run(["tfwrap", "state", *args], cwd, env)
        self.seen += [done.stdout, done.stderr]
        if "--json" not in args:
            assert not [line for line in done.stderr.splitlines() if not line.startswith("tfwrap: ")], (
                done.stderr
            )
        return done

    def assert_no_secret(self, *logs: Path) -> None:
        texts = self.seen + [p.read_text(errors="replace") for p in logs if p.exists()]
        leaked = [text for text in texts if SECRET in text]
        assert texts and not leaked, leaked[0][max(0, leaked[0].find(SECRET) - 600) :][:900]


@pytest.fixture
def out() -> Outputs:
    return Outputs()


def run_env(env: dict[str, str], run_id: str) -> dict[str, str]:
    """A CI run: its link goes into the heartbeat Info of every lock it takes."""
    return {
        **env,
        "GITHUB_RUN_ID": run_id,
        "GITHUB_REPOSITORY": "acme/infra",
        "TFWRAP_HEARTBEAT_SECONDS": "0.3",
        "TFWRAP_LEASE_INTERVALS": "10",  # the lease floor: 3 s at least
        "TFWRAP_LOG_LEVEL": "debug",
    }


def ci(run_id: str) -> str:
    return f"https://github.com/acme/infra/actions/runs/{run_id}"


def history(out: Outputs, work: Path, env: dict[str, str]) -> dict[str, Any]:
    done = out.tfwrap(work, env, "history", "--json", "--limit", "0")
    assert done.returncode == 0 and done.stdout, (done.returncode, done.stderr)
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def three_applies(
    out: Outputs, s3: S3Server, bucket: str, work: Path, env: dict[str, str], **extra: Any
) -> None:
    """Run 1001 applies a, then a+b; run 2002 applies a+b+c+d."""
    write_config(work, s3.url, bucket, resource=resources("a"), **extra)
    first = run_env(env, "1001")
    assert out(["terraform", "init", "-no-color", "-input=false"], work, first).returncode == 0
    for names, env_run in (
        (("a",), first),
        (("a", "b"), first),
        (("a", "b", "c", "d"), run_env(env, "2002")),
    ):
        (work / "main.tf").write_text(resources(*names))
        time.sleep(1.2)  # Last-Modified has whole seconds: runs a second apart are told apart
        done = out(APPLY, work, env_run)
        assert done.returncode == 0, done.stderr


@pytest.fixture
def work(s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], out: Outputs) -> Path:
    """A versioned bucket after three applies by two runs."""
    make_bucket(s3.url, bucket_name)
    three_applies(out, s3, bucket_name, tmp_path / "work", env)
    return tmp_path / "work"


def test_three_applies_two_runs_history_diff_undo(
    s3: S3Server, bucket_name: str, tmp_path: Path, work: Path, env: dict[str, str], out: Outputs
) -> None:

    found = history(out, work, env)
    states = [v for v in found["versions"] if v["resources"]]
    assert [v["resources"] for v in states][:3] == [4, 2, 1]
    assert states[0]["current"] and states[0]["writer"]["ci"] == ci("2002")
    assert [v["writer"]["ci"] for v in states[1:3]] == [ci("1001"), ci("1001")]
    assert states[0]["writer"]["lock_id"] != states[1]["writer"]["lock_id"]  # one holding per apply
    assert all(v["writer"]["operation"] == "OperationTypeApply" for v in states[:3])
    assert len({v["lineage"] for v in found["versions"] if v["lineage"]}) == 1
    text = out.tfwrap(work, env, "history")
    assert text.returncode == 0 and ci("2002") in text.stdout and "written by" in text.stdout

    diff = out.tfwrap(work, env, "diff")
    assert diff.returncode == 0, diff.stderr
    assert "+ terraform_data.c" in diff.stdout and "+ terraform_data.d" in diff.stdout
    assert "terraform_data.a" not in diff.stdout and "terraform_data.b" not in diff.stdout
    as_json = json.loads(out.tfwrap(work, env, "diff", "--json").stdout)
    assert [c["address"] for c in as_json["added"]] == ["terraform_data.c", "terraform_data.d"]

    dry = out.tfwrap(work, env, "undo", "--dry-run")
    assert dry.returncode == 0 and "nothing written" in dry.stdout
    assert history(out, work, env)["versions_total"] == found["versions_total"]
    no_tty = out.tfwrap(work, env, "undo")
    assert no_tty.returncode == 83 and "--yes" in no_tty.stderr

    undone = out.tfwrap(work, env, "undo", "--yes")
    assert undone.returncode == 0, undone.stderr
    assert "- terraform_data.c" in undone.stdout and "read back by terraform state pull" in undone.stdout
    assert f"tfwrap state restore --version {states[0]['version_id']}" in undone.stdout
    assert read_lock(s3_client(s3.url), bucket_name) is None  # the restore's lock is gone

    plan = out(["terraform", "plan", "-no-color", "-input=false", "-detailed-exitcode"], work, env)
    assert plan.returncode == 2, plan.stderr
    assert "terraform_data.c will be created" in plan.stdout
    assert "terraform_data.d will be created" in plan.stdout
    assert "terraform_data.a will be" not in plan.stdout and "terraform_data.b will be" not in plan.stdout

    after = history(out, work, env)
    newest = after["versions"][0]
    assert after["versions_total"] == found["versions_total"] + 1
    assert newest["current"] and newest["resources"] == 2
    assert newest["serial"] == states[0]["serial"] + 1
    assert newest["writer"]["operation"].startswith("tfwrap state restore")
    out.assert_no_secret()


def test_restore_refusals(
    s3: S3Server, bucket_name: str, tmp_path: Path, work: Path, env: dict[str, str], out: Outputs
) -> None:
    found = history(out, work, env)
    # On a terminal, undo shows the diff and asks; "n" writes nothing.
    before = found["versions_total"]
    terminal = Terminal(work, env)
    try:
        terminal.send("tfwrap state undo; echo status=$?\n")
        terminal.expect("as the current state? [y/N]")
        terminal.send("n\n")
        asked = terminal.expect("status=86")
    finally:
        terminal.close()
    out.seen.append(asked)
    assert "- terraform_data.c" in asked and "not confirmed" in asked
    assert history(out, work, env)["versions_total"] == before
    missing = out.tfwrap(work, env, "restore", "--version", "no-such-version", "--yes")
    assert missing.returncode == 93 and "not a version" in missing.stderr
    # A version of another state (another lineage) is refused unless --force-lineage.
    client = s3_client(s3.url)
    other = json.loads(client.get_object(Bucket=bucket_name, Key=STATE_KEY)["Body"].read())
    other["lineage"] = "00000000-other-lineage"
    put = client.put_object(Bucket=bucket_name, Key=STATE_KEY, Body=json.dumps(other).encode())
    client.put_object(
        Bucket=bucket_name,
        Key=STATE_KEY,
        Body=json.dumps({**other, "lineage": found["versions"][0]["lineage"]}).encode(),
    )
    refused = out.tfwrap(work, env, "restore", "--version", put["VersionId"], "--yes")
    assert refused.returncode == 93 and "--force-lineage" in refused.stderr
    # No versioning and no backups: nothing to recover from, says how to fix it.
    plain = f"{bucket_name}-plain"
    make_bucket(s3.url, plain, versioning=False, object_lock=False)
    bare = write_config(tmp_path / "bare", s3.url, plain)
    none = out.tfwrap(bare, env, "history")
    assert none.returncode == 93 and "bootstrap" in none.stderr and "--fix" in none.stderr
    out.assert_no_secret()


def test_restore_racing_a_real_apply_never_loses_its_write(
    s3: S3Server, bucket_name: str, tmp_path: Path, work: Path, env: dict[str, str], out: Outputs
) -> None:
    client = s3_client(s3.url)
    oldest = history(out, work, env)["versions"][-1]["version_id"]

    # 1. The apply holds the lock: the restore is refused with the shim's verdict line.
    (work / "main.tf").write_text(resources("a", "e", sleep=6))
    apply = subprocess.Popen(
        APPLY, cwd=work, env=run_env(env, "3003"), text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    wait_for(  # held, and its heartbeat written: a lock tfwrap can judge alive
        lambda: "tfwrap heartbeat=" in str((read_lock(client, bucket_name) or ({}, ""))[0].get("Info", "")),
        60,
        what="the apply's annotated lock",
    )
    refused = out.tfwrap(work, env, "restore", "--version", oldest, "--yes")
    stdout, stderr = apply.communicate(timeout=120)
    out.seen.append(stderr)
    assert apply.returncode == 0, stderr
    assert refused.returncode == 86 and "state not restored: lock alive" in refused.stderr
    newest = history(out, work, env)["versions"][0]
    assert newest["writer"]["ci"] == ci("3003") and newest["resources"] == 2

    # 2. An apply without the lock writes while the restore holds it: the conditional write
    #    fails, the restore says so, and the apply's write is the state.
    slow = {**env, "TFWRAP_TEST_STATE_PAUSE_BEFORE_WRITE": "8"}
    restore = subprocess.Popen(
        ["tfwrap", "state", "restore", "--version", oldest, "--yes"],
        cwd=work,
        env=slow,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    wait_for(lambda: read_lock(client, bucket_name), 60, what="the restore's lock")
    (work / "main.tf").write_text(resources("a", "f", sleep=0))
    unlocked = out([*APPLY, "-lock=false"], work, env)
    assert unlocked.returncode == 0, unlocked.stderr
    stdout, stderr = restore.communicate(timeout=120)
    out.seen += [stdout, stderr]
    assert restore.returncode == 94, stderr
    assert "its write stands, nothing was overwritten" in stderr
    state = json.loads(client.get_object(Bucket=bucket_name, Key=STATE_KEY)["Body"].read())
    names = {r["name"] for r in state["resources"]}
    assert names == {"a", "f"}
    assert read_lock(client, bucket_name) is None
    out.assert_no_secret()


def test_dual_locking_restore_refreshes_the_digest(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tf_direct: str, out: Outputs
) -> None:
    make_bucket(s3.url, bucket_name)
    table = make_table(s3.url, f"locks-{bucket_name}")
    work = tmp_path / "work"
    three_applies(out, s3, bucket_name, work, env, dynamodb_table=table)
    undone = out.tfwrap(work, env, "undo", "--yes")
    assert undone.returncode == 0, undone.stderr
    body = s3_client(s3.url).get_object(Bucket=bucket_name, Key=STATE_KEY)["Body"].read()
    item = ddb_client(s3.url).get_item(
        TableName=table, Key={"LockID": {"S": f"{bucket_name}/{STATE_KEY}-md5"}}
    )
    assert item["Item"]["Digest"]["S"] == hashlib.md5(body).hexdigest()  # noqa: S324 - Terraform's digest
    lock_item = ddb_client(s3.url).get_item(
        TableName=table, Key={"LockID": {"S": f"{bucket_name}/{STATE_KEY}"}}
    )
    assert "Item" not in lock_item  # the restore released its DynamoDB lock item
    # Plain Terraform, dual locking, no shim: no "does not have the expected content".
    plan = out([tf_direct, "plan", "-no-color", "-input=false", "-detailed-exitcode"], work, env, timeout=180)
    assert plan.returncode == 2, plan.stderr
    assert "expected content" not in plan.stderr
    assert "terraform_data.c will be created" in plan.stdout
    out.assert_no_secret()


def test_state_backup_on_a_bucket_without_versioning(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], out: Outputs
) -> None:
    make_bucket(s3.url, bucket_name, versioning=False, object_lock=False)
    work = tmp_path / "work"
    work.mkdir()
    (work / ".tfwrap.toml").write_text('mode = "warn"\nstate_backup = true\n')
    three_applies(out, s3, bucket_name, work, env)
    keys = [o["Key"] for o in s3_client(s3.url).list_objects_v2(Bucket=bucket_name)["Contents"]]
    backups = sorted(k for k in keys if ".tfwrap-backup/" in k)
    assert backups and all(k.startswith(STATE_KEY + ".tfwrap-backup/") for k in backups)
    found = history(out, work, env)
    assert found["versioning"] is False
    assert found["versions"][0]["current"] and found["versions"][0]["resources"] == 4
    assert [v["resources"] for v in found["versions"] if v["backup"]][:1] == [2]
    undone = out.tfwrap(work, env, "undo", "--yes")
    assert undone.returncode == 0, undone.stderr
    client = s3_client(s3.url)
    state = json.loads(client.get_object(Bucket=bucket_name, Key=STATE_KEY)["Body"].read())
    assert {r["name"] for r in state["resources"]} == {"a", "b"}
    # Without versioning the restore first copied the state it replaced: it can be undone.
    replaced = f"{STATE_KEY}.tfwrap-backup/{found['versions'][0]['serial']:012d}"
    assert f"tfwrap state restore --version {replaced}" in undone.stdout
    copy = json.loads(client.get_object(Bucket=bucket_name, Key=replaced)["Body"].read())
    assert {r["name"] for r in copy["resources"]} == {"a", "b", "c", "d"}
    out.assert_no_secret()
