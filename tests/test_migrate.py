"""``tfwrap migrate``: DynamoDB locking to S3 native locking, end to end, against states
created by the real Terraform engine on a loopback S3/DynamoDB server; plus the pure parts."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.support.faultproxy import DYNAMODB_LOCK, FaultProxy
from tests.support.gate import Gate
from tests.support.iam import IamWorld
from tests.support.lockwatch import wait_for
from tests.support.world import (
    RESOURCE,
    Tools,
    backend_block,
    ddb_client,
    engine,
    holding,
    make_bucket,
    make_table,
    run,
    s3_client,
    write_config,
)
from tfwrap.backend import edit
from tfwrap.demo.server import S3Server
from tfwrap.durations import parse_duration
from tfwrap.migrate import edits
from tfwrap.migrate.terraform import DUAL, NATIVE, Plan, lock_taken
from tfwrap.supervise.lockevents import LockEvent

QUIET = ["-no-color", "-input=false"]
STATE_KEY = "app/terraform.tfstate"
DUAL_STEPS = ["preflight", "versioning", "object-lock", "baseline", "edit", "init", "verify"]
FINALIZE_STEPS = ["preflight", "baseline", "edit", "init", "verify", "remove-digest"]
ROLLBACK_STEPS = ["preflight", "baseline", "edit", "digest", "init", "verify"]


# --- helpers ----------------------------------------------------------------------------------


def must(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    # whole, not as a repr pytest shortens: a failure here is read from its stderr
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def migrate(
    work: Path, env: dict[str, str], *args: str, **extra_env: str
) -> subprocess.CompletedProcess[str]:
    return run(["tfwrap", "migrate", *args], work, {**env, **extra_env}, timeout=180)


def a_state(
    s3: S3Server,
    bucket: str,
    directory: Path,
    tools: Tools,
    env: dict[str, str],
    *,
    resource: str = RESOURCE,
    key: str = STATE_KEY,
    table: str | None = None,
    new_bucket: bool = True,
    **bucket_kwargs: Any,
) -> tuple[Path, str]:
    """A state created by the real engine with DynamoDB locking: (directory, lock table)."""
    if new_bucket:
        make_bucket(s3.url, bucket, **bucket_kwargs)
    table = table or make_table(s3.url, f"{bucket}-locks")
    write_config(directory, s3.url, bucket, resource=resource, use_lockfile=None, dynamodb_table=table)
    if key != STATE_KEY:
        backend = directory / "backend.tf"
        backend.write_text(backend.read_text().replace(STATE_KEY, key))
    must(engine(tools, directory, env, "init", *QUIET))
    must(engine(tools, directory, env, "apply", *QUIET, "-auto-approve"))
    return directory, table


def state(s3: S3Server, bucket: str, key: str = STATE_KEY) -> bytes:
    body: bytes = s3_client(s3.url).get_object(Bucket=bucket, Key=key)["Body"].read()
    return body


def digest(s3: S3Server, bucket: str, table: str, key: str = STATE_KEY) -> str | None:
    item = (
        ddb_client(s3.url).get_item(TableName=table, Key={"LockID": {"S": f"{bucket}/{key}-md5"}}).get("Item")
    )
    return str(item["Digest"]["S"]) if item else None


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()  # noqa: S324 - Terraform's digest


def lock_item(s3: S3Server, bucket: str, table: str) -> dict[str, Any] | None:
    item: dict[str, Any] | None = (
        ddb_client(s3.url)
        .get_item(TableName=table, Key={"LockID": {"S": f"{bucket}/{STATE_KEY}"}})
        .get("Item")
    )
    return item


def lock_object(s3: S3Server, bucket: str) -> bool:
    try:
        s3_client(s3.url).head_object(Bucket=bucket, Key=STATE_KEY + ".tflock")
    except Exception:  # noqa: BLE001 - absent
        return False
    return True


def journal_object(work: Path) -> tuple[Any, str, str]:
    """(S3 client, bucket, key) of the migration journal of ``work``'s state: next to the state."""
    config = initialised(work)
    client = s3_client(config["endpoints"]["s3"])
    return client, config["bucket"], config["key"] + ".tfwrap-migrate.json"


def journal(work: Path) -> dict[str, Any]:
    client, bucket, key = journal_object(work)
    data: dict[str, Any] = json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    return data


def no_journal(work: Path) -> bool:
    if not (work / ".terraform" / "terraform.tfstate").exists():
        return True  # never initialised: migrate refuses before it could write one
    client, bucket, key = journal_object(work)
    try:
        client.head_object(Bucket=bucket, Key=key)
    except Exception:  # noqa: BLE001 - absent
        return True
    return False


def initialised(work: Path) -> dict[str, Any]:
    config: dict[str, Any] = json.loads((work / ".terraform" / "terraform.tfstate").read_text())["backend"][
        "config"
    ]
    return config


def refusal(result: subprocess.CompletedProcess[str], code: int) -> str:
    """A refusal: ``code``, nothing on stdout, no traceback, the last stderr line says why."""
    assert result.returncode == code, (result.returncode, result.stderr)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("tfwrap: ")
    return last


# --- the whole migration ----------------------------------------------------------------------


@pytest.mark.engine
def test_full_migration_dual_then_finalize_then_cleanup(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools
) -> None:
    work, table = a_state(s3, bucket_name, tmp_path / "work", tools, env)
    before = state(s3, bucket_name)
    original = (work / "backend.tf").read_text()
    assert digest(s3, bucket_name, table) == md5(before)

    dry = migrate(work, env, "--dry-run")
    assert dry.returncode == 0 and dry.stdout == "", dry.stderr
    assert "[5/7] edit: would add use_lockfile = true beside dynamodb_table in backend.tf" in dry.stderr
    assert "+    use_lockfile = true" in dry.stderr and "[7/7] verify: would" in dry.stderr
    assert (work / "backend.tf").read_text() == original
    assert no_journal(work)

    dual = migrate(work, env)
    assert dual.returncode == 0 and dual.stdout == "", dual.stderr
    lines = dual.stderr.splitlines()
    for n, name in enumerate(DUAL_STEPS, 1):  # each step printed, in order
        assert any(ln.startswith(f"tfwrap: [{n}/7] {name}:") for ln in lines), name
    assert "locked and unlocked (S3 Native and DynamoDB)" in dual.stderr
    assert "same plan as before: no changes" in dual.stderr
    settings = initialised(work)
    assert settings["use_lockfile"] is True and settings["dynamodb_table"] == table
    assert "use_lockfile = true" in (work / "backend.tf").read_text()
    assert state(s3, bucket_name) == before  # content, serial and lineage untouched
    assert list(journal(work)["steps"]) == [f"dual/{s}" for s in DUAL_STEPS]
    assert journal(work)["table"] == table

    again = migrate(work, env, "dual")
    assert again.returncode == 0 and "nothing to do: dual locking was verified" in again.stderr

    status = must(migrate(work, env, "status"))
    assert (
        "the files give dual locking, .terraform gives dual locking" in status.stdout
        and "dual/verify" in status.stdout
    )
    assert status.stdout.splitlines()[-1].startswith("next: tfwrap migrate finalize")
    dry = must(migrate(work, env, "--dry-run", "finalize", "--soak", "0s"))  # group options first
    assert "[3/6] edit: would remove dynamodb_table from backend.tf" in dry.stderr
    assert f'-    dynamodb_table = "{table}"' in dry.stderr
    assert initialised(work)["dynamodb_table"] == table and "finalize/edit" not in journal(work)["steps"]

    early = migrate(work, env, "finalize")
    line = refusal(early, 80)
    assert "soak" in line and "--soak 0s" in line
    assert initialised(work)["dynamodb_table"] == table

    final = migrate(work, env, "finalize", "--soak", "0s")
    assert final.returncode == 0, final.stderr
    assert "locked and unlocked (S3 Native only)" in final.stderr
    after = (work / "backend.tf").read_text()
    assert "dynamodb_table" not in after and "use_lockfile = true" in after
    assert "dynamodb_table" not in initialised(work) or initialised(work)["dynamodb_table"] is None
    assert digest(s3, bucket_name, table) is None
    assert state(s3, bucket_name) == before
    doc = json.loads(before)
    assert json.loads(state(s3, bucket_name))["serial"] == doc["serial"]
    assert json.loads(state(s3, bucket_name))["lineage"] == doc["lineage"]
    # How long a migration takes is a timing claim: tests/benchmark.py's migration section.

    assert "nothing to do" in must(migrate(work, env)).stderr
    assert "nothing to do: finalized" in must(migrate(work, env, "finalize", "--soak", "0s")).stderr

    # Terraform runs on the new configuration and never touches DynamoDB again.
    must(engine(tools, work, env, "apply", *QUIET, "-auto-approve", "-var", "message=native"))
    assert json.loads(state(s3, bucket_name))["serial"] > doc["serial"]
    assert ddb_client(s3.url).scan(TableName=table)["Items"] == []

    cleanup = migrate(work, env, "cleanup-table")
    assert cleanup.returncode == 0, cleanup.stderr
    assert table not in ddb_client(s3.url).list_tables()["TableNames"]
    assert "nothing to do: table" in must(migrate(work, env, "cleanup-table")).stderr


@pytest.mark.engine
def test_dual_phase_old_and_new_configurations_exclude_each_other(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools, gate: Gate
) -> None:
    gate.open()  # the state's first apply goes through; each holder below waits for the test
    work, table = a_state(s3, bucket_name, tmp_path / "work", tools, env, resource=RESOURCE + gate.resource())
    old = tmp_path / "old"
    shutil.copytree(work, old, symlinks=True)  # a pipeline still on dynamodb_table only, initialised
    must(migrate(work, env))
    assert "use_lockfile" not in (old / "backend.tf").read_text()
    apply = ["apply", *QUIET, "-auto-approve"]
    blocked = [str(tools.engine), "plan", *QUIET, "-lock-timeout=0s"]

    # The new configuration holds both locks: the old one cannot take the DynamoDB item.
    holder = holding(tools, work, env, *apply)
    wait_for(lambda: lock_object(s3, bucket_name) and lock_item(s3, bucket_name, table), 30)
    other = run(blocked, old, env)
    assert other.returncode == 1 and "Error acquiring the state lock" in other.stderr, other.stderr
    gate.open()
    _, err = holder.communicate(timeout=60)
    assert holder.returncode == 0, err

    # The old configuration holds the DynamoDB item: the new one cannot lock either.
    holder = holding(tools, old, env, *apply)
    wait_for(lambda: lock_item(s3, bucket_name, table), 30)
    assert not lock_object(s3, bucket_name)  # DynamoDB only
    other = run(blocked, work, env)
    assert other.returncode == 1 and "Error acquiring the state lock" in other.stderr, other.stderr
    gate.open()
    _, err = holder.communicate(timeout=60)
    assert holder.returncode == 0, err
    assert not lock_object(s3, bucket_name) and lock_item(s3, bucket_name, table) is None
    # Both kept the digest current: the dual phase never leaves it stale.
    assert digest(s3, bucket_name, table) == md5(state(s3, bucket_name))


# --- interrupted and resumed ------------------------------------------------------------------


@pytest.mark.engine
def test_stopped_after_every_step_resumes_without_redoing(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools
) -> None:
    """Stopped after each step in turn (dual, finalize, rollback): every run resumes, and
    no recorded step is done twice (versioning enabled once, the diff printed once)."""
    work, table = a_state(s3, bucket_name, tmp_path / "work", tools, env, versioning=False, object_lock=False)
    (work / ".tfwrap.toml").write_text('[severity]\nbucket-object-lock = "off"\n')
    before = state(s3, bucket_name)
    original = (work / "backend.tf").read_text()
    phases = [("dual", DUAL_STEPS, ()), ("finalize", FINALIZE_STEPS, ("--soak", "0s"))]
    phases.append(("rollback", ROLLBACK_STEPS, ()))
    for phase, names, extra in phases:
        outputs = []
        for n, name in enumerate(names):
            result = migrate(work, env, phase, *extra, TFWRAP_TEST_MIGRATE_STOP_AFTER=f"{phase}/{name}")
            assert result.returncode == 130, (phase, name, result.stderr)
            assert f"stopped after {phase}/{name}" in result.stderr
            for earlier in names[1:n]:  # recorded steps are skipped (preflight always runs)
                assert f"{earlier}: done at" in result.stderr, (phase, name, earlier, result.stderr)
            outputs.append(result.stderr)
        rest = migrate(work, env, phase, *extra)
        assert rest.returncode == 0, rest.stderr
        everything = "".join([*outputs, rest.stderr])
        assert everything.count("+++ backend.tf (after)") == 1, everything  # edited once
        if phase == "dual":
            assert everything.count("enable versioning on bucket") == 1
            status = s3_client(s3.url).get_bucket_versioning(Bucket=bucket_name)["Status"]
            assert status == "Enabled"
        assert state(s3, bucket_name) == before
    assert (work / "backend.tf").read_text() == original  # rolled back byte for byte
    assert initialised(work)["dynamodb_table"] == table and initialised(work)["use_lockfile"] is None
    assert journal(work)["steps"] == {} and journal(work)["history"][-1]["how"] == "rolled back"
    must(engine(tools, work, env, "apply", *QUIET, "-auto-approve", "-var", "message=back"))


@pytest.mark.engine
def test_crash_between_doing_and_recording_each_step(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools
) -> None:
    """Killed after a step's effect, before the journal records it: the next run sees the
    effect in place and records it instead of doing it again."""
    work, table = a_state(s3, bucket_name, tmp_path / "work", tools, env)
    before = state(s3, bucket_name)
    already = {
        "dual/edit": "[5/7] edit: use_lockfile = true is set beside dynamodb_table",
        "finalize/edit": "[3/6] edit: dynamodb_table is gone",
        "finalize/remove-digest": "[6/6] remove-digest: no digest item",
    }
    for phase, names, extra in (("dual", DUAL_STEPS, ()), ("finalize", FINALIZE_STEPS, ("--soak", "0s"))):
        crashed_at = ""
        for name in [*names[1:], ""]:
            hook = {"TFWRAP_TEST_MIGRATE_CRASH_AFTER": f"{phase}/{name}"} if name else {}
            result = migrate(work, env, phase, *extra, **hook)
            assert result.returncode == (137 if name else 0), (phase, name, result.stderr)
            if name:
                assert f"{phase}/{name}" not in journal(work)["steps"]
            if crashed_at in already:  # done but not recorded: seen in place, recorded, not redone
                assert already[crashed_at] in result.stderr and "nothing to do" in result.stderr
                assert "+++ backend.tf (after)" not in result.stderr
            crashed_at = f"{phase}/{name}"
    text = (work / "backend.tf").read_text()
    assert text.count("use_lockfile") == 1 and "dynamodb_table" not in text
    assert state(s3, bucket_name) == before and digest(s3, bucket_name, table) is None
    # the write-ahead journal still knows the edits: the rollback restores the bytes
    must(migrate(work, env, "rollback"))
    assert "dynamodb_table" in (work / "backend.tf").read_text()


@pytest.mark.engine
def test_killed_or_interrupted_at_any_moment_then_completes(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools
) -> None:
    work, table = a_state(s3, bucket_name, tmp_path / "work", tools, env)
    before = state(s3, bucket_name)
    for n, delay in enumerate([0.6, 0.9, 1.2, 1.5, 1.8]):
        proc = subprocess.Popen(
            ["tfwrap", "migrate"],
            cwd=work,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(delay)
        sig = signal.SIGINT if n % 2 else signal.SIGKILL
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
        if sig == signal.SIGINT and "interrupted by SIGINT" in err:  # caught mid-way (timing)
            assert proc.returncode == 130 and "run the same command again to resume" in err
        # whatever the moment, Terraform's lock is gone (relayed interrupt / parent-death signal)
        wait_for(lambda: not lock_object(s3, bucket_name) and lock_item(s3, bucket_name, table) is None, 10)
    done = migrate(work, env)
    assert done.returncode == 0, done.stderr
    assert (work / "backend.tf").read_text().count("use_lockfile = true") == 1
    assert "dual/verify" in journal(work)["steps"]
    assert state(s3, bucket_name) == before


class SlowStateServer(ThreadingHTTPServer):
    """Serves an empty state for Terraform's http backend, ``delay`` seconds late: a
    ``terraform_remote_state`` data source then keeps a plan (holding the state lock) busy."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _SlowHandler)
        self.delay = 0.0
        self.requested = threading.Event()
        self.release = threading.Event()
        self.url = f"http://127.0.0.1:{self.server_address[1]}/state"


class _SlowHandler(BaseHTTPRequestHandler):
    server: SlowStateServer

    def do_GET(self) -> None:
        self.server.requested.set()
        self.server.release.wait(self.server.delay)
        body = json.dumps({"version": 4, "serial": 1, "lineage": "remote", "outputs": {}, "resources": []})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *_: Any) -> None:
        pass


REMOTE = """
data "terraform_remote_state" "slow" {
  backend = "http"
  config = { address = "%s" }
}
"""


@pytest.mark.engine
def test_stopped_during_the_verification_plan_releases_the_lock_and_resumes(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools
) -> None:
    slow = SlowStateServer()
    threading.Thread(target=slow.serve_forever, daemon=True).start()
    try:
        resource = RESOURCE + REMOTE % slow.url
        work, table = a_state(s3, bucket_name, tmp_path / "work", tools, env, resource=resource)
        before = state(s3, bucket_name)
        assert migrate(work, env, TFWRAP_TEST_MIGRATE_STOP_AFTER="dual/init").returncode == 130

        def start(**extra: str) -> subprocess.Popen[str]:
            slow.requested.clear()
            proc = subprocess.Popen(
                ["tfwrap", "migrate"],
                cwd=work,
                env={**env, **extra},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            assert slow.requested.wait(30)  # the verification plan holds both locks now
            assert lock_object(s3, bucket_name) and lock_item(s3, bucket_name, table)
            return proc

        def no_lock() -> bool:
            return not lock_object(s3, bucket_name) and lock_item(s3, bucket_name, table) is None

        # A Ctrl-C or a signal to tfwrap: Terraform gets one interrupt and releases its locks.
        slow.delay = 3
        proc = start()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert "interrupted by SIGINT during terraform plan; run the same command again to resume" in err
        assert no_lock() and "dual/verify" not in journal(work)["steps"]

        # SIGQUIT is a stop signal here as in the shim: one Child, one relay.
        proc = start()
        proc.send_signal(signal.SIGQUIT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 128 + signal.SIGQUIT, err
        assert "interrupted by SIGQUIT during terraform plan" in err and "Two interrupts" not in out + err
        assert no_lock() and "dual/verify" not in journal(work)["steps"]

        # tfwrap killed: Terraform gets SIGTERM (parent-death signal), stops and releases.
        proc = start()
        proc.kill()
        proc.communicate(timeout=60)
        wait_for(no_lock, 20)

        # Terraform that does not stop within the grace period: killed, its own lock removed.
        slow.delay = 60
        proc = start(TFWRAP_GRACE_SECONDS="1")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 128 + signal.SIGTERM, err
        assert "that the stopped Terraform left behind" in err
        assert no_lock()
        slow.release.set()

        slow.delay = 0
        done = migrate(work, env)
        assert done.returncode == 0, done.stderr
        assert "[6/7] init: done at" in done.stderr and "+++" not in done.stderr
        assert "locked and unlocked (S3 Native and DynamoDB)" in done.stderr
        assert state(s3, bucket_name) == before
    finally:
        slow.release.set()
        slow.shutdown()


@pytest.mark.engine
def test_object_lock_per_policy_and_resume_after_a_failed_step(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools
) -> None:
    work, _ = a_state(s3, bucket_name, tmp_path / "work", tools, env, object_lock=False)
    text = (work / "backend.tf").read_text()
    dry = must(migrate(work, env, "--dry-run"))
    line = next(ln for ln in dry.stderr.splitlines() if "[3/7] object-lock" in ln)
    assert "would enable Object Lock" in line and "use_lockfile itself does not need it" in line
    # moto (unlike AWS) enables Object Lock on empty buckets only: a failing step, then a resume
    failed = migrate(work, env)
    line = refusal(failed, 80)
    assert "cannot enable Object Lock" in line and "s3:PutBucketObjectLockConfiguration" in line
    assert "tfwrap bootstrap --fix" in line and 'bucket-object-lock = "warning"' in line
    assert (work / "backend.tf").read_text() == text
    assert list(journal(work)["steps"]) == ["dual/preflight", "dual/versioning"]
    (work / ".tfwrap.toml").write_text('[severity]\nbucket-object-lock = "off"\n')
    done = must(migrate(work, env))
    assert "[2/7] versioning: done at" in done.stderr
    assert "[3/7] object-lock: not required (bucket-object-lock is off in " in done.stderr
    assert f"{work / '.tfwrap.toml'})" in done.stderr


@pytest.mark.engine
def test_verification_compares_plans_and_refuses_a_difference(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools
) -> None:
    work, _ = a_state(s3, bucket_name, tmp_path / "work", tools, env)
    assert migrate(work, env, TFWRAP_TEST_MIGRATE_STOP_AFTER="dual/init").returncode == 130
    main = (work / "main.tf").read_text()
    (work / "main.tf").write_text(main.replace('default = "hello"', 'default = "changed"'))
    line = refusal(migrate(work, env), 80)
    assert "the plan differs from the one before the change" in line and "tfwrap migrate rollback" in line
    assert "before: no changes" in line and "terraform_data.example update" in line
    assert "dual/verify" not in journal(work)["steps"]
    # Someone applied in between: the plans cannot be compared, and the migration says so.
    must(engine(tools, work, env, "apply", *QUIET, "-auto-approve"))
    done = must(migrate(work, env))
    assert "the state changed since the baseline (serial 1 -> 2)" in done.stderr


@pytest.mark.engine
def test_every_workspace_of_the_configuration(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools
) -> None:
    work, table = a_state(s3, bucket_name, tmp_path / "work", tools, env)
    must(engine(tools, work, env, "workspace", "new", "-no-color", "staging"))
    must(engine(tools, work, env, "apply", *QUIET, "-auto-approve"))
    staging = f"env:/staging/{STATE_KEY}"
    assert digest(s3, bucket_name, table, staging) == md5(state(s3, bucket_name, staging))
    dual = must(migrate(work, env))
    assert f"s3://{bucket_name}/{staging} (workspace staging)" in dual.stderr
    final = must(migrate(work, env, "finalize", "--soak", "0s"))
    assert f"{bucket_name}/{STATE_KEY}-md5" in final.stderr and f"{bucket_name}/{staging}-md5" in final.stderr
    assert digest(s3, bucket_name, table) is None and digest(s3, bucket_name, table, staging) is None
    must(migrate(work, env, "cleanup-table"))


ORPHAN = """#!{python}
# A terraform whose first plan fails as the SDK retry orphan does: its own lock is in
# DynamoDB, and Terraform reports it as held by someone. Every other call is the real one.
import json, os, sys
import boto3
marker = {marker!r}
if sys.argv[1] == "plan" and not os.path.exists(marker):
    open(marker, "w").close()
    lock_id = "0b0e6d41-7c3a-4e7f-9a55-3f1d2c3b4a59"
    info = {{"ID": lock_id, "Operation": "OperationTypePlan", "Who": "root@vm", "Info": ""}}
    boto3.client("dynamodb", endpoint_url={url!r}, region_name="us-east-1").put_item(
        TableName={table!r}, Item={{"LockID": {{"S": {lock!r}}}, "Info": {{"S": json.dumps(info)}}}}
    )
    with open(os.environ["TF_LOG_PATH"], "a") as log:
        log.write(f"[INFO]  backend-s3: Attempting to lock remote state (DynamoDB only)...: "
                  f"tf_backend.lock.id={{lock_id}}\\n")
    sys.stderr.write(f"Error: Error acquiring the state lock\\n\\nLock Info:\\n  ID:        {{lock_id}}\\n")
    sys.exit(1)
os.execv({real!r}, [{real!r}, *sys.argv[1:]])
"""


@pytest.mark.engine
def test_a_plan_refused_by_its_own_lock_is_retried(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools
) -> None:
    work, table = a_state(s3, bucket_name, tmp_path / "work", tools, env)
    fake = tmp_path / "bin" / "terraform"
    fake.parent.mkdir()
    fake.write_text(
        ORPHAN.format(
            python=sys.executable,
            marker=str(tmp_path / "orphaned"),
            url=s3.url,
            table=table,
            lock=f"{bucket_name}/{STATE_KEY}",
            real=str(tools.engine.resolve()),
        )
    )
    fake.chmod(0o755)
    done = migrate(work, env, TFWRAP_TERRAFORM=str(fake))
    assert done.returncode == 0, done.stderr
    assert "removed the lock 0b0e6d41-7c3a-4e7f-9a55-3f1d2c3b4a59 the SDK retry left" in done.stderr
    assert (tmp_path / "orphaned").exists() and lock_item(s3, bucket_name, table) is None


@pytest.mark.engine
def test_a_retry_orphan_met_by_the_real_engine_costs_the_migration_no_lock_wait(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools
) -> None:
    """The SDK retried the plan's lock item write, whose first try had taken the lock: Terraform
    would wait its whole -lock-timeout for its own lock. The first plan does not wait, so the
    orphan is removed at once; waiting is for another run's lock only."""
    make_bucket(s3.url, bucket_name)
    table = make_table(s3.url, f"{bucket_name}-locks")
    with FaultProxy(s3.url) as proxy:  # the answer of the lock write is lost on the way back
        work = write_config(
            tmp_path / "work", proxy.url, bucket_name, use_lockfile=None, dynamodb_table=table
        )
        must(engine(tools, work, env, "init", *QUIET))
        must(engine(tools, work, env, "apply", *QUIET, "-auto-approve"))
        proxy.arm(DYNAMODB_LOCK)
        started = time.monotonic()
        done = migrate(work, env, "--lock-timeout", "120s")
        took = time.monotonic() - started
        assert proxy.dropped.is_set(), "the proxy dropped no answer: the scenario did not happen"
    assert done.returncode == 0, done.stderr
    assert "the SDK retry left" in done.stderr, done.stderr
    assert took < 60, f"the migration took {took:.0f} s: it waited for its own lock (-lock-timeout 120s)"
    assert lock_item(s3, bucket_name, table) is None


# --- rollback ---------------------------------------------------------------------------------


@pytest.mark.engine
def test_rollback_from_dual_then_plan_and_apply(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools
) -> None:
    work, table = a_state(s3, bucket_name, tmp_path / "work", tools, env)
    original = (work / "backend.tf").read_text()
    must(migrate(work, env))
    must(engine(tools, work, env, "apply", *QUIET, "-auto-approve", "-var", "message=dual"))
    back = migrate(work, env, "rollback")
    assert back.returncode == 0, back.stderr
    assert "locked and unlocked (DynamoDB only)" in back.stderr
    assert (work / "backend.tf").read_text() == original
    assert digest(s3, bucket_name, table) == md5(state(s3, bucket_name))
    plan = engine(tools, work, env, "plan", *QUIET, "-detailed-exitcode", "-var", "message=dual")
    assert plan.returncode == 0, plan.stderr
    must(engine(tools, work, env, "apply", *QUIET, "-auto-approve", "-var", "message=after"))
    assert digest(s3, bucket_name, table) == md5(state(s3, bucket_name))
    assert "nothing to roll back" in must(migrate(work, env, "rollback")).stderr
    must(migrate(work, env))  # and the migration can start again


@pytest.mark.engine
def test_rollback_from_finalized_refreshes_a_stale_digest(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools
) -> None:
    work, table = a_state(s3, bucket_name, tmp_path / "work", tools, env)
    original = (work / "backend.tf").read_text()
    must(migrate(work, env))
    old_digest = digest(s3, bucket_name, table)
    must(migrate(work, env, "finalize", "--soak", "0s"))
    must(engine(tools, work, env, "apply", *QUIET, "-auto-approve", "-var", "message=native"))
    # As after the guide's migration, which forgets the digest: present and stale, which
    # makes DynamoDB-locked Terraform fail with "state data in S3 does not have the expected content".
    assert old_digest is not None
    ddb_client(s3.url).put_item(
        TableName=table, Item={"LockID": {"S": f"{bucket_name}/{STATE_KEY}-md5"}, "Digest": {"S": old_digest}}
    )
    assert old_digest != md5(state(s3, bucket_name))
    dry = must(migrate(work, env, "rollback", "--dry-run"))
    assert "[4/6] digest: would set" in dry.stderr and "+    dynamodb_table" in dry.stderr
    assert digest(s3, bucket_name, table) == old_digest
    back = migrate(work, env, "rollback")
    assert back.returncode == 0, back.stderr
    assert digest(s3, bucket_name, table) == md5(state(s3, bucket_name))
    assert (work / "backend.tf").read_text() == original
    plan = engine(tools, work, env, "plan", *QUIET, "-detailed-exitcode", "-var", "message=native")
    assert plan.returncode == 0, plan.stderr
    apply = engine(tools, work, env, "apply", *QUIET, "-auto-approve", "-var", "message=dynamodb again")
    assert apply.returncode == 0 and "expected content" not in apply.stderr, apply.stderr
    assert digest(s3, bucket_name, table) == md5(state(s3, bucket_name))


@pytest.mark.engine
def test_rollback_after_the_table_was_deleted_says_how_to_recreate_it(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools
) -> None:
    work, table = a_state(s3, bucket_name, tmp_path / "work", tools, env)
    must(migrate(work, env))
    must(migrate(work, env, "finalize", "--soak", "0s"))
    must(migrate(work, env, "cleanup-table"))
    text = (work / "backend.tf").read_text()
    line = refusal(migrate(work, env, "rollback"), 80)
    assert f"DynamoDB table {table}" in line and "does not exist" in line and "create-table" in line
    assert (work / "backend.tf").read_text() == text
    make_table(s3.url, table)
    must(migrate(work, env, "rollback"))
    must(engine(tools, work, env, "apply", *QUIET, "-auto-approve"))


# --- the lock table ---------------------------------------------------------------------------


@pytest.mark.engine
def test_cleanup_table_refuses_while_another_state_uses_it(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools
) -> None:
    work, table = a_state(s3, bucket_name, tmp_path / "work", tools, env)
    # A second state (another team) shares the lock table: its digest item lives there.
    a_state(
        s3,
        bucket_name,
        tmp_path / "other",
        tools,
        env,
        key="other/terraform.tfstate",
        table=table,
        new_bucket=False,
    )
    other_digest = f"{bucket_name}/other/terraform.tfstate-md5"
    line = refusal(migrate(work, env, "cleanup-table"), 83)  # still configured here
    assert "finish the migration" in line
    must(migrate(work, env))
    must(migrate(work, env, "finalize", "--soak", "0s"))

    line = refusal(migrate(work, env, "cleanup-table"), 86)
    assert other_digest in line and "migrate those states first" in line
    # ... and while another state is locked right now
    ddb = ddb_client(s3.url)
    other_lock = f"{bucket_name}/other/terraform.tfstate"
    ddb.put_item(TableName=table, Item={"LockID": {"S": other_lock}, "Info": {"S": "{}"}})
    ddb.delete_item(TableName=table, Key={"LockID": {"S": other_digest}})
    line = refusal(migrate(work, env, "cleanup-table"), 86)
    assert other_lock in line
    # ... and while a run on this state's old configuration holds its lock
    ddb.delete_item(TableName=table, Key={"LockID": {"S": other_lock}})
    mine = {"ID": "x", "Who": "ci@old", "Operation": "OperationTypeApply", "Created": "now"}
    ddb.put_item(
        TableName=table, Item={"LockID": {"S": f"{bucket_name}/{STATE_KEY}"}, "Info": {"S": json.dumps(mine)}}
    )
    line = refusal(migrate(work, env, "cleanup-table"), 86)
    assert "a run on the old configuration (dynamodb_table, no use_lockfile) holds the lock now" in line
    assert "ci@old" in line and "--ignore-stragglers" not in line  # a held lock is never overridden
    line = refusal(migrate(work, env, "cleanup-table", "--ignore-stragglers"), 86)
    assert "holds the lock now" in line
    assert table in ddb.list_tables()["TableNames"]
    # Only this state's digest left, written after finalize removed it: the table is still in
    # use (a straggler wrote the state); deleted only knowingly, with --ignore-stragglers.
    ddb.delete_item(TableName=table, Key={"LockID": {"S": f"{bucket_name}/{STATE_KEY}"}})
    ddb.put_item(
        TableName=table, Item={"LockID": {"S": f"{bucket_name}/{STATE_KEY}-md5"}, "Digest": {"S": "0"}}
    )
    line = refusal(migrate(work, env, "cleanup-table"), 86)
    assert f"table {table} is still in use after finalize" in line and "ci@old" in line
    assert table in ddb.list_tables()["TableNames"]
    done = migrate(work, env, "cleanup-table", "--ignore-stragglers")
    assert done.returncode == 0, done.stderr
    assert "removed 1 stale digest item(s)" in done.stderr
    assert table not in ddb.list_tables()["TableNames"]


# --- edits keep the files as they were --------------------------------------------------------

ODD = """\
# The state lives in the shared bucket.
terraform {
  required_version = ">= 1.10" # keep in step with CI

  backend "s3" {
    bucket         = "BUCKET"   # owned by platform
    key            = "app/terraform.tfstate"
    region         = "us-east-1"
    dynamodb_table = "TABLE"   /* the old way */
    endpoints = {
      s3       = "URL" # "quoted" } brace in a comment
      dynamodb = "URL"
    }
    use_path_style = true
    skip_credentials_validation = true
    skip_requesting_account_id  = true
    skip_metadata_api_check     = true
  }
}
"""


def changed_lines(before: str, after: str) -> tuple[list[str], list[str]]:
    b, a = before.splitlines(), after.splitlines()
    return [ln for ln in b if ln not in a], [ln for ln in a if ln not in b and ln.strip()]


@pytest.mark.engine
def test_edits_keep_comments_and_formatting(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools
) -> None:
    work, table = a_state(s3, bucket_name, tmp_path / "work", tools, env)
    odd = ODD.replace("BUCKET", bucket_name).replace("TABLE", table).replace("URL", s3.url)
    (work / "backend.tf").write_text(odd)
    must(engine(tools, work, env, "init", *QUIET, "-reconfigure"))
    must(migrate(work, env))
    dual = (work / "backend.tf").read_text()
    assert changed_lines(odd, dual) == ([], ["    use_lockfile = true"])
    must(migrate(work, env, "finalize", "--soak", "0s"))
    final = (work / "backend.tf").read_text()
    assert changed_lines(dual, final) == ([f'    dynamodb_table = "{table}"   /* the old way */'], [])
    must(migrate(work, env, "rollback"))
    assert (work / "backend.tf").read_text() == odd


@pytest.mark.engine
def test_settings_in_a_backend_config_file_are_edited_there(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools
) -> None:
    work, table = a_state(s3, bucket_name, tmp_path / "work", tools, env)
    block = backend_block(s3.url, bucket_name, use_lockfile=None)
    body = block.split('backend "s3" {\n', 1)[1].rsplit("  }\n}", 1)[0]
    (work / "backend.tf").write_text('terraform {\n  backend "s3" {}\n}\n')
    hcl = (
        "# prod backend\n"
        + "\n".join(ln.strip() for ln in body.splitlines())
        + f'\ndynamodb_table = "{table}" # old\n'
    )
    (work / "prod.s3.tfbackend").write_text(hcl)
    must(engine(tools, work, env, "init", *QUIET, "-reconfigure", "-backend-config=prod.s3.tfbackend"))

    line = refusal(migrate(work, env), 83)  # without the file, the backend is partial
    assert "-backend-config" in line
    must(migrate(work, env, "-backend-config=prod.s3.tfbackend"))
    assert (work / "backend.tf").read_text() == 'terraform {\n  backend "s3" {}\n}\n'
    dual = (work / "prod.s3.tfbackend").read_text()
    assert changed_lines(hcl, dual) == ([], ["use_lockfile = true"])
    assert initialised(work)["use_lockfile"] is True
    must(migrate(work, env, "finalize", "--soak", "0s", "-backend-config=prod.s3.tfbackend"))
    assert changed_lines(dual, (work / "prod.s3.tfbackend").read_text()) == (
        [f'dynamodb_table = "{table}" # old'],
        [],
    )
    must(migrate(work, env, "rollback", "-backend-config=prod.s3.tfbackend"))
    assert (work / "prod.s3.tfbackend").read_text() == hcl


@pytest.mark.engine
def test_tf_json_configuration(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools
) -> None:
    work, table = a_state(s3, bucket_name, tmp_path / "work", tools, env)
    settings = {
        "bucket": bucket_name,
        "key": STATE_KEY,
        "region": "us-east-1",
        "dynamodb_table": table,
        "endpoints": {"s3": s3.url, "dynamodb": s3.url},
        "use_path_style": True,
        "skip_credentials_validation": True,
        "skip_requesting_account_id": True,
        "skip_metadata_api_check": True,
    }
    (work / "backend.tf").unlink()
    text = json.dumps({"terraform": {"backend": {"s3": settings}}}, indent=2) + "\n"
    (work / "backend.tf.json").write_text(text)
    must(engine(tools, work, env, "init", *QUIET, "-reconfigure"))
    must(migrate(work, env))
    assert (
        json.loads((work / "backend.tf.json").read_text())["terraform"]["backend"]["s3"]["use_lockfile"]
        is True
    )
    must(migrate(work, env, "finalize", "--soak", "0s"))
    assert "dynamodb_table" not in (work / "backend.tf.json").read_text()
    must(migrate(work, env, "rollback"))
    assert (work / "backend.tf.json").read_text() == text


# --- bad input: one clear refusal, no change --------------------------------------------------


def unchanged(work: Path, text: str) -> None:
    assert (work / "backend.tf").read_text() == text
    assert no_journal(work)


@pytest.mark.engine
def test_lock_held_in_dynamodb_or_s3_is_refused(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools
) -> None:
    work, table = a_state(s3, bucket_name, tmp_path / "work", tools, env)
    text = (work / "backend.tf").read_text()
    info = {"ID": "1d7e", "Who": "ci@runner-7", "Operation": "OperationTypeApply", "Created": "2026-11-26"}
    ddb = ddb_client(s3.url)
    ddb.put_item(
        TableName=table, Item={"LockID": {"S": f"{bucket_name}/{STATE_KEY}"}, "Info": {"S": json.dumps(info)}}
    )
    line = refusal(migrate(work, env), 86)
    assert "state lock is held" in line and "ci@runner-7" in line and "1d7e" in line
    unchanged(work, text)
    ddb.delete_item(TableName=table, Key={"LockID": {"S": f"{bucket_name}/{STATE_KEY}"}})
    s3_client(s3.url).put_object(
        Bucket=bucket_name, Key=STATE_KEY + ".tflock", Body=json.dumps(info).encode()
    )
    line = refusal(migrate(work, env), 86)
    assert ".tflock" in line and "ci@runner-7" in line
    unchanged(work, text)


@pytest.mark.engine
def test_missing_state_object_and_missing_table(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools
) -> None:
    make_bucket(s3.url, bucket_name)
    table = make_table(s3.url, f"{bucket_name}-locks")
    work = write_config(tmp_path / "work", s3.url, bucket_name, use_lockfile=None, dynamodb_table=table)
    must(engine(tools, work, env, "init", *QUIET))
    text = (work / "backend.tf").read_text()
    line = refusal(migrate(work, env), 80)
    assert f"s3://{bucket_name}/{STATE_KEY} does not exist" in line
    unchanged(work, text)
    must(engine(tools, work, env, "apply", *QUIET, "-auto-approve"))
    ddb_client(s3.url).delete_table(TableName=table)
    line = refusal(migrate(work, env), 80)
    assert f"DynamoDB table {table}" in line and "does not exist" in line
    unchanged(work, text)


def test_backend_that_is_not_s3(tmp_path: Path, env: dict[str, str], tools: Tools) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "main.tf").write_text('terraform {\n  backend "local" {}\n}\n')
    must(engine(tools, work, env, "init", *QUIET))
    line = refusal(migrate(work, env), 83)
    assert '"local", not s3' in line


def test_terragrunt_directory(tmp_path: Path, env: dict[str, str]) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "terragrunt.hcl").write_text('remote_state {\n  backend = "s3"\n}\n')
    line = refusal(migrate(work, env), 83)
    assert "Terragrunt" in line and "remote_state" in line and "terragrunt.hcl" in line


def test_backend_in_a_module(tmp_path: Path, env: dict[str, str]) -> None:
    work = tmp_path / "work"
    (work / "modules" / "state").mkdir(parents=True)
    (work / "main.tf").write_text('module "state" {\n  source = "./modules/state"\n}\n')
    (work / "modules" / "state" / "backend.tf").write_text('terraform {\n  backend "s3" {}\n}\n')
    line = refusal(migrate(work, env), 83)
    assert "module" in line and "root module" in line


@pytest.mark.engine
def test_already_native_only_is_nothing_to_do(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools
) -> None:
    make_bucket(s3.url, bucket_name)
    work = write_config(tmp_path / "work", s3.url, bucket_name)
    must(engine(tools, work, env, "init", *QUIET))
    result = migrate(work, env)
    assert result.returncode == 0 and result.stdout == ""
    assert "nothing to do" in result.stderr and "S3 native locking only" in result.stderr
    assert no_journal(work)


@pytest.mark.engine
def test_terraform_too_old_and_not_initialised(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools
) -> None:
    work, _ = a_state(s3, bucket_name, tmp_path / "work", tools, env)
    text = (work / "backend.tf").read_text()
    line = refusal(migrate(work, env, TFWRAP_TERRAFORM=str(tools.engine_old)), 80)
    assert "Terraform 1.9.8" in line and "does not support use_lockfile" in line
    unchanged(work, text)
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    shutil.copy(work / "backend.tf", fresh / "backend.tf")
    line = refusal(migrate(fresh, env), 83)
    assert "not initialised" in line and "terraform init" in line


@pytest.mark.engine
def test_dynamodb_table_on_the_command_line(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools
) -> None:
    work, table = a_state(s3, bucket_name, tmp_path / "work", tools, env)
    (work / "backend.tf").write_text(
        (work / "backend.tf").read_text().replace(f'dynamodb_table = "{table}"', "")
    )
    must(engine(tools, work, env, "init", *QUIET, "-reconfigure", f"-backend-config=dynamodb_table={table}"))
    text = (work / "backend.tf").read_text()
    line = refusal(migrate(work, env, f"-backend-config=dynamodb_table={table}"), 83)
    assert "set on the command line" in line and "-backend-config file" in line
    unchanged(work, text)


def test_permission_denied_names_the_action(
    world: IamWorld, tmp_path: Path, env: dict[str, str], tools: Tools
) -> None:
    """On the suite's IAM-enforcing server: the identity may use S3 and GetItem only."""
    url = world.server.url
    bucket, table = f"tfstate-denied-{uuid.uuid4().hex[:8]}", f"locks-{uuid.uuid4().hex[:8]}"
    with world.as_admin():
        s3 = s3_client(url)
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        make_table(url, table)
        s3.put_object(Bucket=bucket, Key=STATE_KEY, Body=b'{"version":4,"serial":1,"lineage":"x"}')
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["s3:*", "dynamodb:GetItem"], "Resource": "*"}],
    }
    keys = world.user(policy)
    creds = {**env, **keys}
    work = write_config(tmp_path / "work", url, bucket, use_lockfile=None, dynamodb_table=table)
    (work / ".tfwrap.toml").write_text('[severity]\nbucket-object-lock = "off"\n')
    must(engine(tools, work, creds, "init", *QUIET))
    line = refusal(migrate(work, creds), 80)
    assert f"access denied; grant dynamodb:DescribeTable on DynamoDB table {table}" in line
    assert keys["AWS_SECRET_ACCESS_KEY"] not in line


# --- the pure parts ---------------------------------------------------------------------------


def test_parse_duration() -> None:
    assert parse_duration("24h") == 86400 and parse_duration("0s") == 0 and parse_duration("0") == 0
    assert parse_duration("1h30m") == 5400 and parse_duration("2d") == 172800
    with pytest.raises(Exception, match="not a duration"):
        parse_duration("soon")


def test_edit_record_undoes_exactly_and_keeps_no_secret(tmp_path: Path) -> None:
    path = tmp_path / "backend.tf"
    path.write_text('terraform {\n  backend "s3" {\n    bucket = "b" # x\n    dynamodb_table = "t"\n  }\n}\n')
    change = edit.set_setting(path, "use_lockfile", True)
    rec = edits.record(change, tmp_path, phase="dual", op="set", name="use_lockfile", previous=None)
    change.apply()
    assert rec["file"] == "backend.tf" and rec["hunks"]
    assert all("bucket" not in line for h in rec["hunks"] for line in (*h[4], *h[5]))  # only changed lines
    undo = edits.undo_exact(rec)
    assert undo is not None and undo.after == change.before
    path.write_text(change.after + "# edited since\n")
    assert edits.undo_exact(rec) is None  # changed since: a semantic undo instead
    assert "use_lockfile" not in edits.undo_semantic(rec).after
    secret = tmp_path / "s.tf.json"
    secret.write_text('{"terraform": {"backend": {"s3": {"access_key": "AKIA", "dynamodb_table": "t"}}}}')
    change = edit.set_setting(secret, "use_lockfile", True)
    assert (
        edits.record(change, tmp_path, phase="dual", op="set", name="use_lockfile", previous=None)["hunks"]
        is None
    )


def test_lock_lines_and_plan_comparison() -> None:
    events = [LockEvent("locked", DUAL, "id-1"), LockEvent("unlocked", DUAL, "id-1")]
    assert lock_taken(events, DUAL) == ("id-1", "")
    lock_id, why = lock_taken(events, NATIVE)
    assert lock_id is None and "not 'S3 Native only'" in why
    assert lock_taken([LockEvent("locked", DUAL, "id-1")], DUAL)[0] is None  # never released
    assert lock_taken([], DUAL)[1].startswith("Terraform logged no")
    a = Plan(2, [["terraform_data.x", "create"]], [], 3, "id", DUAL)
    b = Plan(2, [["terraform_data.x", "create"]], [], 3, "other", NATIVE)
    assert a.same_result(b) and a.describe().startswith("1 to add")
    assert Plan(0, [["terraform_data.x", "no-op"]], [], 3, "id", DUAL).describe() == "no changes"
    assert Plan.from_json(a.to_json()) == a


def test_help_lists_the_subcommands(env: dict[str, str], tmp_path: Path) -> None:
    result = run(["tfwrap", "migrate", "--help"], tmp_path, env)
    assert result.returncode == 0
    for name in ("dual", "finalize", "rollback", "cleanup-table", "status"):
        assert name in result.stdout


def test_migrate_sse_c_reads_a_state_written_with_the_environment_key(
    tmp_path: Path, env: dict[str, str], s3: S3Server, bucket_name: str, tools: Tools
) -> None:
    """Terraform takes the SSE-C key from AWS_SSE_CUSTOMER_KEY (with ``encrypt = true``); so must
    the migration, or it cannot read the state (the proxy enforces SSE-C as AWS does; moto
    ignores it)."""
    keyed = {**env, "AWS_SSE_CUSTOMER_KEY": base64.b64encode(b"k" * 32).decode()}
    make_bucket(s3.url, bucket_name)
    table = make_table(s3.url, f"{bucket_name}-locks")
    with FaultProxy(s3.url, "sse-c") as proxy:
        work = write_config(
            tmp_path / "work", proxy.url, bucket_name, use_lockfile=None, dynamodb_table=table, encrypt=True
        )
        must(engine(tools, work, keyed, "init", *QUIET))
        must(engine(tools, work, keyed, "apply", *QUIET, "-auto-approve"))
        assert any(path.endswith(f"/{STATE_KEY}") for path in proxy.sse_keys), "Terraform sent no SSE-C key"
        result = migrate(work, keyed)
        assert result.returncode == 0, result.stderr
        assert "use_lockfile = true" in (work / "backend.tf").read_text()
