"""``tfwrap lock status|clear``: the verdict (pure) and, end to end, the installed ``tfwrap``
against a loopback S3/DynamoDB server with locks put by hand and taken by the real engine."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support.world import (
    Tools,
    ddb_client,
    make_bucket,
    make_table,
    run,
    s3_client,
    write_config,
)
from tfwrap.demo.server import S3Server
from tfwrap.lock import info as lockinfo
from tfwrap.lock import verdict
from tfwrap.lock.info import Holder

NOW = dt.datetime(2026, 11, 26, 15, 52, 6, tzinfo=dt.timezone.utc)
STATE_KEY = "app/terraform.tfstate"
LOCK_KEY = STATE_KEY + ".tflock"
QUIET = ["-no-color", "-input=false"]


def holder(**kw: Any) -> Holder:
    values: dict[str, Any] = {
        "heartbeat": NOW - dt.timedelta(seconds=10),
        "lease_seconds": 90,
        "host": "ci-7",
        "terraform_pid": 4242,
        "tfwrap_pid": 4240,
        "started": NOW - dt.timedelta(minutes=5),
        "ci": "https://ci.example/runs/1",
    }
    values.update(kw)
    return Holder(**values)


def fields(info: str, lock_id: str = "id-1") -> dict[str, Any]:
    return {
        "ID": lock_id,
        "Operation": "OperationTypeApply",
        "Info": info,
        "Who": "alice@ci-7",
        "Version": "1.15.5",
        "Created": "2026-11-26T15:47:06.123456Z",
        "Path": f"tfstate/{STATE_KEY}",
    }


def never_asked(pid: int) -> bool:
    raise AssertionError(f"pid {pid} of another host must not be looked up")


# --- the verdict, pure -----------------------------------------------------------------------


def test_fresh_heartbeat_is_alive_and_other_hosts_pids_are_not_looked_up() -> None:
    v = verdict.judge(fields(holder().line()), NOW, pid_exists=never_asked, host="laptop")
    assert v.verdict == verdict.ALIVE
    assert v.heartbeat_age == 10 and "10 s ago" in v.reason and "90 s lease" in v.reason
    assert (v.lock_id, v.who, v.operation) == ("id-1", "alice@ci-7", "OperationTypeApply")
    assert v.holder is not None and v.holder.ci == "https://ci.example/runs/1"
    assert v.since == "2026-11-26T15:47:06Z"  # tfwrap's started, not Terraform's Created


def test_heartbeat_older_than_lease_is_stale() -> None:
    at_lease = holder(heartbeat=NOW - dt.timedelta(seconds=90))
    assert verdict.judge(fields(at_lease.line()), NOW, pid_exists=never_asked, host="x").verdict == "alive"
    late = holder(heartbeat=NOW - dt.timedelta(seconds=91))
    v = verdict.judge(fields(late.line()), NOW, pid_exists=never_asked, host="x")
    assert v.verdict == verdict.STALE and v.heartbeat_age == 91 and "91 s ago" in v.reason


def test_local_holder_with_both_pids_gone_is_stale_even_with_a_fresh_heartbeat() -> None:
    asked: list[int] = []

    def gone(pid: int) -> bool:
        asked.append(pid)
        return False

    v = verdict.judge(fields(holder().line()), NOW, pid_exists=gone, host="ci-7")
    assert v.verdict == verdict.STALE
    assert sorted(asked) == [4240, 4242] and "4240" in v.reason and "4242" in v.reason


@pytest.mark.parametrize("alive_pid", [4240, 4242])
def test_local_holder_with_one_pid_left_is_alive(alive_pid: int) -> None:
    v = verdict.judge(fields(holder().line()), NOW, pid_exists=lambda p: p == alive_pid, host="ci-7")
    assert v.verdict == verdict.ALIVE


def test_local_holder_with_unknown_pids_is_judged_by_heartbeat_alone() -> None:
    line = holder(terraform_pid=0).line()
    v = verdict.judge(fields(line), NOW, pid_exists=never_asked, host="ci-7")
    assert v.verdict == verdict.ALIVE


@pytest.mark.parametrize("info", ["", "deploy from laptop", "tfwrap heartbeat=garbage lease=90s"])
def test_no_tfwrap_heartbeat_is_unknown(info: str) -> None:
    v = verdict.judge(fields(info), NOW, pid_exists=never_asked, host="ci-7")
    assert v.verdict == verdict.UNKNOWN and v.holder is None and v.heartbeat_age is None
    assert "not under tfwrap" in v.reason
    assert v.since == "2026-11-26T15:47:06Z"  # Terraform's Created, in tfwrap's one format (issue 11)


def test_judge_lock_combines_object_and_item() -> None:
    assert verdict.judge_lock(None, None, NOW) is None
    old = fields(holder(heartbeat=NOW - dt.timedelta(seconds=500)).line())
    fresh = fields(holder(heartbeat=NOW - dt.timedelta(seconds=3)).line())
    # Same lock, the item renewed later than the object: the freshest heartbeat counts.
    both = verdict.judge_lock(old, fresh, NOW, pid_exists=never_asked, host="x")
    assert both is not None and both.verdict == "alive" and both.where == "dynamodb"
    assert both.heartbeat_age == 3
    only_item = verdict.judge_lock(None, old, NOW, pid_exists=never_asked, host="x")
    assert only_item is not None and only_item.verdict == "stale"
    # Different holders: the most careful verdict wins and the reason says they differ.
    mixed = verdict.judge_lock(old, fields("", "id-2"), NOW, pid_exists=never_asked, host="x")
    assert mixed is not None and mixed.verdict == "unknown" and "id-2" in mixed.reason
    assert "id-1" in mixed.reason


# --- end to end ----------------------------------------------------------------------------


def tfwrap(tools: Tools, args: list[str], cwd: Path, env: dict[str, str], **kw: Any) -> Any:
    return run([str(tools.shim_dir / "tfwrap"), *args], cwd, env, **kw)


def status(tools: Tools, work: Path, env: dict[str, str]) -> dict[str, Any]:
    result = tfwrap(tools, ["lock", "status", "--json", "-chdir", str(work)], work.parent, env)
    assert result.returncode == 0, result.stderr
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def setup(s3: S3Server, bucket: str, tmp_path: Path, tools: Tools, env: dict[str, str], **cfg: Any) -> Path:
    make_bucket(s3.url, bucket)
    work = write_config(tmp_path / "work", s3.url, bucket, **cfg)
    init = run([str(tools.engine), "init", *QUIET], work, env)
    assert init.returncode == 0, init.stderr
    return work


def body(lock_id: str, info: str, who: str = "alice@ci-7") -> str:
    return json.dumps(
        {
            "ID": lock_id,
            "Operation": "OperationTypeApply",
            "Info": info,
            "Who": who,
            "Version": "1.15.5",
            "Created": "2026-11-26T15:47:06.123456789Z",
            "Path": f"{STATE_KEY}",
        },
        separators=(",", ":"),  # compact, as Terraform's Go encoder writes it
    )


def put_lock(url: str, bucket: str, info: str, lock_id: str | None = None) -> tuple[str, str]:
    """A lock object as Terraform writes it (If-None-Match: *); returns (ID, ETag)."""
    lock_id = lock_id or str(uuid.uuid4())
    put = s3_client(url).put_object(
        Bucket=bucket,
        Key=LOCK_KEY,
        Body=body(lock_id, info).encode(),
        IfNoneMatch="*",
        ContentType="application/json",
        ChecksumAlgorithm="SHA256",
    )
    return lock_id, str(put["ETag"])


def lock_etag(url: str, bucket: str) -> str | None:
    from botocore.exceptions import ClientError

    try:
        return str(s3_client(url).head_object(Bucket=bucket, Key=LOCK_KEY)["ETag"])
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("404", "NoSuchKey"):
            return None
        raise


def live_info() -> str:
    """A fresh heartbeat from this host, held by this (living) test process."""
    now = lockinfo.now()
    pid = os.getpid()
    return Holder(now, 90, lockinfo.hostname(), pid, pid, now, "https://ci.example/runs/7").line()


def stale_info() -> str:
    old = lockinfo.now() - dt.timedelta(minutes=10)
    return Holder(old, 90, "gone-runner", 4242, 4240, old - dt.timedelta(minutes=1)).line()


def dead_pid() -> int:
    done = subprocess.Popen(["true"])
    done.wait()
    return done.pid


@pytest.mark.engine
@pytest.mark.shim
def test_status_reports_no_lock_alive_stale_and_unknown(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools
) -> None:
    work = setup(s3, bucket_name, tmp_path, tools, env)
    doc = status(tools, work, env)
    assert doc["locked"] is False and doc["verdict"] is None and doc["s3"] is None
    assert doc["state_key"] == STATE_KEY and doc["lock_key"] == LOCK_KEY and doc["dynamodb"] is None
    human = tfwrap(tools, ["lock", "status", "-chdir", str(work)], tmp_path, env)
    assert human.returncode == 0 and "no lock held" in human.stdout and human.stderr == ""

    lock_id, etag = put_lock(s3.url, bucket_name, live_info())
    doc = status(tools, work, env)
    assert doc["locked"] is True and doc["verdict"] == "alive", doc
    assert doc["s3"]["ID"] == lock_id and doc["s3"]["etag"] == etag and doc["s3"]["Who"] == "alice@ci-7"
    assert doc["lease_seconds"] == 90 and doc["heartbeat_age_seconds"] <= 5 and doc["heartbeat"]
    assert doc["holder"] == {
        "host": lockinfo.hostname(),
        "terraform_pid": os.getpid(),
        "tfwrap_pid": os.getpid(),
        "ci": "https://ci.example/runs/7",
        "started": doc["heartbeat"],
    }
    human = tfwrap(tools, ["lock", "status", "-chdir", str(work)], tmp_path, env)
    assert human.returncode == 0, human.stderr
    for text in (lock_id, "alice@ci-7", "OperationTypeApply", "lease:     90 s", "ci.example/runs/7"):
        assert text in human.stdout
    assert "verdict:   alive: last heartbeat" in human.stdout

    s3_client(s3.url).delete_object(Bucket=bucket_name, Key=LOCK_KEY)
    put_lock(s3.url, bucket_name, stale_info())
    doc = status(tools, work, env)
    assert doc["verdict"] == "stale" and "lease" in doc["reason"] and doc["holder"]["host"] == "gone-runner"

    s3_client(s3.url).delete_object(Bucket=bucket_name, Key=LOCK_KEY)
    put_lock(s3.url, bucket_name, "")
    doc = status(tools, work, env)
    assert doc["verdict"] == "unknown" and doc["holder"] is None and doc["heartbeat"] is None
    human = tfwrap(tools, ["lock", "status", "-chdir", str(work)], tmp_path, env)
    assert "heartbeat: none" in human.stdout and "verdict:   unknown" in human.stdout


@pytest.mark.engine
@pytest.mark.shim
def test_clear_stale_refuses_alive_and_unknown_and_removes_stale(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools
) -> None:
    work = setup(s3, bucket_name, tmp_path, tools, env)
    clear = ["lock", "clear", "--stale", "--yes", "-chdir", str(work)]
    for info, word in ((live_info(), "alive"), ("", "unknown")):
        lock_id, etag = put_lock(s3.url, bucket_name, info)
        refused = tfwrap(tools, clear, tmp_path, env)
        assert refused.returncode == 86, refused.stderr
        assert refused.stdout == ""
        lines = refused.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"tfwrap: lock not removed: it is {word}, held by")
        assert "alice@ci-7" in lines[0] and " since " in lines[0]
        assert (f"`tfwrap lock clear --id {lock_id}`" in lines[0]) == (word == "unknown")
        assert lock_etag(s3.url, bucket_name) == etag  # untouched
        s3_client(s3.url).delete_object(Bucket=bucket_name, Key=LOCK_KEY)

    lock_id, _ = put_lock(s3.url, bucket_name, stale_info())
    removed = tfwrap(tools, clear, tmp_path, env)
    assert removed.returncode == 0, removed.stderr
    assert f"removed the stale lock s3://{bucket_name}/{LOCK_KEY} (ID {lock_id}" in removed.stderr
    assert removed.stdout == ""
    assert lock_etag(s3.url, bucket_name) is None
    again = tfwrap(tools, clear, tmp_path, env)
    assert again.returncode == 0 and "no lock held" in again.stderr
    # Terraform can lock the state again.
    plan = run([str(tools.engine), "plan", *QUIET], work, env)
    assert plan.returncode == 0, plan.stderr


@pytest.mark.engine
@pytest.mark.shim
def test_local_holder_whose_processes_are_gone_is_stale_and_cleared(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools
) -> None:
    work = setup(s3, bucket_name, tmp_path, tools, env)
    now = lockinfo.now()
    pid = dead_pid()
    put_lock(s3.url, bucket_name, Holder(now, 90, lockinfo.hostname(), pid, pid, now).line())
    doc = status(tools, work, env)
    assert doc["verdict"] == "stale" and "both gone" in doc["reason"], doc
    removed = tfwrap(tools, ["lock", "clear", "--stale", "-y", "-chdir", str(work)], tmp_path, env)
    assert removed.returncode == 0, removed.stderr
    assert lock_etag(s3.url, bucket_name) is None


@pytest.mark.engine
@pytest.mark.shim
def test_clear_id_removes_only_the_named_lock(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools
) -> None:
    work = setup(s3, bucket_name, tmp_path, tools, env)
    lock_id, etag = put_lock(s3.url, bucket_name, live_info())
    wrong = tfwrap(
        tools, ["lock", "clear", "--id", "not-the-id", "--yes", "-chdir", str(work)], tmp_path, env
    )
    assert wrong.returncode == 86, wrong.stderr
    assert wrong.stderr.splitlines() == [
        f"tfwrap: lock not removed: it is held by ID {lock_id}, not by ID not-the-id"
    ]
    assert lock_etag(s3.url, bucket_name) == etag
    right = tfwrap(tools, ["lock", "clear", "--id", lock_id, "--yes", "-chdir", str(work)], tmp_path, env)
    assert right.returncode == 0, right.stderr
    assert f"removed the lock s3://{bucket_name}/{LOCK_KEY} (ID {lock_id}" in right.stderr
    assert lock_etag(s3.url, bucket_name) is None
    neither = tfwrap(tools, ["lock", "clear", "--yes", "-chdir", str(work)], tmp_path, env)
    assert neither.returncode == 83 and "exactly one of --stale or --id" in neither.stderr


@pytest.mark.engine
@pytest.mark.shim
def test_dual_locking_status_and_clear_cover_object_and_item(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools
) -> None:
    table = make_table(s3.url, f"{bucket_name}-locks")
    work = setup(s3, bucket_name, tmp_path, tools, env, dynamodb_table=table)
    ddb = ddb_client(s3.url)
    item_key = {"LockID": {"S": f"{bucket_name}/{STATE_KEY}"}}

    def put_item(lock_id: str, info: str) -> None:
        ddb.put_item(TableName=table, Item={**item_key, "Info": {"S": body(lock_id, info)}})

    def item() -> dict[str, Any] | None:
        got: dict[str, Any] | None = ddb.get_item(TableName=table, Key=item_key, ConsistentRead=True).get(
            "Item"
        )
        return got

    lock_id, _ = put_lock(s3.url, bucket_name, live_info())
    put_item(lock_id, live_info())
    doc = status(tools, work, env)
    assert doc["verdict"] == "alive" and doc["dynamodb_table"] == table
    assert doc["dynamodb"]["table"] == table and doc["dynamodb"]["item"] == f"{bucket_name}/{STATE_KEY}"
    assert doc["dynamodb"]["ID"] == lock_id == doc["s3"]["ID"]
    human = tfwrap(tools, ["lock", "status", "-chdir", str(work)], tmp_path, env)
    assert f"the DynamoDB item is held by the same ID ({lock_id})" in human.stdout

    refused = tfwrap(tools, ["lock", "clear", "--stale", "--yes", "-chdir", str(work)], tmp_path, env)
    assert refused.returncode == 86 and item() is not None and lock_etag(s3.url, bucket_name)

    cleared = tfwrap(tools, ["lock", "clear", "--id", lock_id, "--yes", "-chdir", str(work)], tmp_path, env)
    assert cleared.returncode == 0, cleared.stderr
    assert "removed the lock s3://" in cleared.stderr and "removed the DynamoDB item" in cleared.stderr
    assert lock_etag(s3.url, bucket_name) is None and item() is None

    # A stale item left behind alone (the object already gone) is found and removed by --stale.
    put_item("leftover", stale_info())
    doc = status(tools, work, env)
    assert doc["locked"] is True and doc["s3"] is None and doc["verdict"] == "stale"
    stale = tfwrap(tools, ["lock", "clear", "--stale", "--yes", "-chdir", str(work)], tmp_path, env)
    assert stale.returncode == 0, stale.stderr
    assert "removed the stale DynamoDB item" in stale.stderr and item() is None
    plan = run([str(tools.engine), "plan", *QUIET], work, env)
    assert plan.returncode == 0, plan.stderr


@pytest.mark.engine
def test_a_lock_renewed_while_the_user_confirms_survives(
    s3: S3Server,
    bucket_name: str,
    tmp_path: Path,
    env: dict[str, str],
    tools: Tools,
) -> None:
    """The delete is conditional on the exact object and item judged, not only on their ID."""
    from tfwrap.backend import config
    from tfwrap.cli import lock as cli_lock
    from tfwrap.commands import parse
    from tfwrap.errors import TfwrapError

    table = make_table(s3.url, f"{bucket_name}-locks")
    work = setup(s3, bucket_name, tmp_path, tools, env, dynamodb_table=table)
    lock_id, _ = put_lock(s3.url, bucket_name, stale_info())
    ddb_client(s3.url).put_item(
        TableName=table,
        Item={"LockID": {"S": f"{bucket_name}/{STATE_KEY}"}, "Info": {"S": body(lock_id, stale_info())}},
    )
    found = cli_lock._read(config.load(parse([f"-chdir={work}", "plan"])))
    assert found.verdict is not None and found.verdict.verdict == "stale"
    assert found.s3 is not None and found.item is not None and found.dynamo is not None
    renewed: list[str] = []

    def holder_renews_during_the_prompt(yes: bool, question: str) -> None:
        # The holder was only slow: it renews its heartbeat (same ID) while the user reads.
        assert found.s3 is not None and found.item is not None and found.dynamo is not None
        renewed.append(found.lockfile.rewrite_info(found.s3, live_info()).etag)
        found.dynamo.rewrite_info(found.item, live_info())

    with pytest.MonkeyPatch.context() as patch, pytest.raises(TfwrapError) as refused:
        patch.setattr(cli_lock, "_confirm", holder_renews_during_the_prompt)
        cli_lock._clear_stale(found, found.verdict, yes=False)
    assert refused.value.code == 86 and "changed since it was read" in refused.value.message
    assert lock_etag(s3.url, bucket_name) == renewed[0]
    item = found.dynamo.read()
    assert item is not None and item["ID"] == lock_id and item["Info"].startswith("tfwrap ")
    # Read again, the lock is alive now; a stale lock unchanged since judged is removed.
    again = cli_lock._read(config.load(parse([f"-chdir={work}", "plan"])))
    assert again.verdict is not None and again.verdict.verdict == "alive"
    assert again.s3 is not None and again.item is not None and again.dynamo is not None
    assert again.lockfile.delete_exact(again.s3)
    assert again.dynamo.delete_exact(again.item)
    assert lock_etag(s3.url, bucket_name) is None and again.dynamo.read() is None


@pytest.mark.engine
@pytest.mark.shim
def test_confirmation_on_a_terminal_and_refusal_without_one(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools
) -> None:
    work = setup(s3, bucket_name, tmp_path, tools, env)
    lock_id, etag = put_lock(s3.url, bucket_name, stale_info())
    clear = ["lock", "clear", "--stale", "-chdir", str(work)]
    no_tty = tfwrap(tools, clear, tmp_path, env, stdin=subprocess.DEVNULL)
    assert no_tty.returncode == 83 and "pass --yes" in no_tty.stderr.splitlines()[-1]
    assert lock_etag(s3.url, bucket_name) == etag

    def on_terminal(answer: bytes, args: list[str]) -> Any:
        master, slave = os.openpty()
        try:
            os.write(master, answer)
            return tfwrap(tools, args, tmp_path, env, stdin=slave)
        finally:
            os.close(slave)
            os.close(master)

    declined = on_terminal(b"n\n", clear)
    assert declined.returncode == 86, declined.stderr
    assert "Remove the stale lock held by alice@ci-7" in declined.stderr and declined.stdout == ""
    assert lock_etag(s3.url, bucket_name) == etag
    declined_id = on_terminal(b"\n", ["lock", "clear", "--id", lock_id, "-chdir", str(work)])
    assert declined_id.returncode == 86 and lock_etag(s3.url, bucket_name) == etag  # default: no
    accepted = on_terminal(b"y\n", clear)
    assert accepted.returncode == 0, accepted.stderr
    assert "removed the stale lock" in accepted.stderr and lock_etag(s3.url, bucket_name) is None


@pytest.mark.engine
@pytest.mark.shim
def test_refusals_are_one_line(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools
) -> None:
    local = tmp_path / "local"
    local.mkdir()
    (local / "main.tf").write_text('resource "terraform_data" "x" {}\n')
    for args in (["lock", "status"], ["lock", "clear", "--stale", "--yes"]):
        result = tfwrap(tools, [*args, "-chdir", str(local)], tmp_path, env)
        assert result.returncode == 83, result.stderr
        assert result.stderr.splitlines() == [
            f"tfwrap: the backend of {local} is none (local state), not s3: "
            "tfwrap lock only knows the S3 backend's lock"
        ]
    missing = tfwrap(tools, ["lock", "status", "-chdir", str(tmp_path / "nope")], tmp_path, env)
    assert missing.returncode == 83 and "is not a directory" in missing.stderr

    # An endpoint nothing listens on: one line with the reason, exit 80.
    unreachable = write_config(tmp_path / "dead", "http://127.0.0.1:9", bucket_name)
    for args in (["lock", "status", "--json"], ["lock", "clear", "--id", "x", "--yes"]):
        result = tfwrap(tools, [*args, "-chdir", str(unreachable)], tmp_path, env)
        assert result.returncode == 80, result.stderr
        assert result.stdout == ""
        assert result.stderr.splitlines() == [
            f"tfwrap: cannot read the lock s3://{bucket_name}/{LOCK_KEY}: "
            "cannot connect to http://127.0.0.1:9 [endpoint-unreachable]"
        ]
    # A bucket that does not exist.
    absent = write_config(tmp_path / "absent", s3.url, bucket_name)
    result = tfwrap(tools, ["lock", "status", "-chdir", str(absent)], tmp_path, env)
    assert result.returncode == 80 and "the bucket does not exist [bucket-missing]" in result.stderr


SLOW = """
resource "terraform_data" "slow" {
  triggers_replace = timestamp()
  provisioner "local-exec" {
    command = "sleep 5"
  }
}
"""


@pytest.mark.engine
@pytest.mark.shim
def test_a_lock_taken_by_terraform_itself_is_unknown_and_never_cleared_as_stale(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools
) -> None:
    work = setup(s3, bucket_name, tmp_path, tools, env, resource=SLOW)
    apply = subprocess.Popen(
        [str(tools.engine), "apply", "-auto-approve", *QUIET],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while lock_etag(s3.url, bucket_name) is None:
            assert apply.poll() is None, apply.communicate()
            assert time.monotonic() < deadline, "Terraform never took the lock"
            time.sleep(0.05)
        etag = lock_etag(s3.url, bucket_name)
        doc = status(tools, work, env)
        assert doc["verdict"] == "unknown", doc
        assert doc["s3"]["Operation"] == "OperationTypeApply" and doc["s3"]["Info"] == ""
        assert doc["holder"] is None and doc["lease_seconds"] is None
        refused = tfwrap(tools, ["lock", "clear", "--stale", "--yes", "-chdir", str(work)], tmp_path, env)
        assert refused.returncode == 86, refused.stderr
        assert "it is unknown" in refused.stderr and doc["s3"]["ID"] in refused.stderr
        assert apply.poll() is None, "the apply ended before the refusal was checked: make it slower"
        assert lock_etag(s3.url, bucket_name) == etag
        out, err = apply.communicate(timeout=120)
    finally:
        if apply.poll() is None:
            apply.terminate()
            apply.wait(30)
    assert apply.returncode == 0, err
    assert "Apply complete!" in out
    assert lock_etag(s3.url, bucket_name) is None  # Terraform released its own lock
    assert status(tools, work, env)["locked"] is False
