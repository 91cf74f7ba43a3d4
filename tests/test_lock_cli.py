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

from tests.support.gate import Gate
from tests.support.world import (
    Tools,
    ddb_client,
    engine,
    holding,
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
    raise AssertionError(f"pid {pid} of another machine must not be looked up")


BOOT, PIDNS = "b0f1e2d3-0000-4000-8000-000000000001", "4026531836"
ELSEWHERE = verdict.Here("another-boot", PIDNS, never_asked)


def here(**starts: int) -> verdict.Here:
    """This machine, where the processes ``pid<N>=start`` exist."""
    table = {int(name[3:]): start for name, start in starts.items()}
    return verdict.Here(BOOT, PIDNS, table.get)


def local(**kw: Any) -> Holder:
    return holder(boot_id=BOOT, pidns=PIDNS, tfwrap_start=700, terraform_start=710, **kw)


# --- the verdict, pure -----------------------------------------------------------------------


def test_fresh_heartbeat_is_alive_and_other_machines_pids_are_not_looked_up() -> None:
    v = verdict.judge(fields(holder().line()), 10, here=ELSEWHERE)
    assert v.verdict == verdict.ALIVE
    assert v.heartbeat_age == 10 and "10 s ago" in v.reason and "90 s lease" in v.reason
    assert (v.lock_id, v.who, v.operation) == ("id-1", "alice@ci-7", "OperationTypeApply")
    assert v.holder is not None and v.holder.ci == "https://ci.example/runs/1"
    assert v.since == "2026-11-26T15:47:06Z"  # tfwrap's started, not Terraform's Created


def test_a_write_older_than_the_lease_is_stale_by_how_much() -> None:
    assert verdict.judge(fields(holder().line()), 90, here=ELSEWHERE).verdict == "alive"
    v = verdict.judge(fields(holder().line()), 95, here=ELSEWHERE)
    assert v.verdict == verdict.STALE and v.heartbeat_age == 95
    assert "95 s ago, 5 s past its 90 s lease" in v.reason


def test_the_age_is_the_stores_never_the_holders_stamp() -> None:
    """A holder whose clock is 10 minutes off either way: its stamp does not change the verdict."""
    for skew in (-600, 0, 600):
        line = holder(heartbeat=NOW + dt.timedelta(seconds=skew)).line()
        assert verdict.judge(fields(line), 5, here=ELSEWHERE).verdict == "alive"
        assert verdict.judge(fields(line), 200, here=ELSEWHERE).verdict == "stale"


def test_ages_come_from_last_modified_and_date_and_the_item_from_the_same_holders_clock() -> None:
    written = NOW - dt.timedelta(seconds=40)
    beat = holder(heartbeat=NOW + dt.timedelta(minutes=10))  # the holder's clock is 10 min ahead
    obj = fields(beat.line())
    item = fields(holder(heartbeat=beat.heartbeat + dt.timedelta(seconds=25)).line())
    assert verdict.ages(obj, written, None, NOW) == (40, None)
    # The item was renewed 25 s (holder's clock) after the object: 15 s old by the store's.
    assert verdict.ages(obj, written, item, NOW) == (40, 15)
    # An item alone (DynamoDB only): its stamp against the store's Date.
    alone = fields(holder(heartbeat=NOW - dt.timedelta(seconds=300)).line())
    assert verdict.ages(None, None, alone, NOW) == (None, 300)
    assert verdict.ages(obj, None, None, None) == (None, None)


def test_a_local_holder_whose_processes_are_gone_is_stale_once_the_store_shows_no_renewal() -> None:
    """Gone PIDs are the Info's claim; the store's clock must also show the lock unrenewed for
    longer than the claimed interval plus 2 s (a rewritten Info, a cloned VM with the same boot id)."""
    v = verdict.judge(fields(local(interval_seconds=1).line()), 4, here=here())
    assert v.verdict == verdict.STALE
    assert "4240" in v.reason and "4242" in v.reason and "both gone" in v.reason
    fresh = verdict.judge(fields(local(interval_seconds=1).line()), 0, here=here())
    assert fresh.verdict == verdict.ALIVE and "within its 90 s lease" in fresh.reason
    # No claimed interval (an older tfwrap): the lease is the bound.
    assert verdict.judge(fields(local().line()), 60, here=here()).verdict == verdict.ALIVE
    assert verdict.judge(fields(local().line()), 91, here=here()).verdict == verdict.STALE


@pytest.mark.parametrize("lease", [0, 1, 2])
def test_a_claimed_lease_below_the_floor_is_unknown(lease: int) -> None:
    v = verdict.judge(fields(holder(lease_seconds=lease).line()), 5, here=ELSEWHERE)
    assert v.verdict == verdict.UNKNOWN and "floor" in v.reason
    short = holder(lease_seconds=10, interval_seconds=5)  # under 2 x 5 + 1
    assert verdict.judge(fields(short.line()), 0, here=ELSEWHERE).verdict == verdict.UNKNOWN


@pytest.mark.parametrize("alive", [{"pid4240": 700}, {"pid4242": 710}])
def test_a_local_holder_with_a_process_left_is_alive_whatever_its_age(alive: dict[str, int]) -> None:
    """Liveness before age: a paused (SIGSTOPped, Ctrl-Z) run is not stale."""
    v = verdict.judge(fields(local().line()), 5000, here=here(**alive))
    assert v.verdict == verdict.ALIVE and "still exists" in v.reason


def test_a_reused_pid_is_not_the_holder() -> None:
    """Both PIDs now belong to processes started later (other ticks): the holder is gone."""
    v = verdict.judge(fields(local(interval_seconds=1).line()), 4, here=here(pid4240=9000, pid4242=9001))
    assert v.verdict == verdict.STALE


def test_same_hostname_or_same_kernel_without_the_pid_namespace_is_not_this_machine() -> None:
    """Containers share a hostname (and a kernel) without sharing PIDs."""
    other_ns = verdict.Here(BOOT, "4026532179", never_asked)
    assert verdict.judge(fields(local().line()), 3, here=other_ns).verdict == "alive"
    assert verdict.judge(fields(local().line()), 300, here=other_ns).verdict == "stale"
    old_format = holder(host="ci-7")  # no boot id: never "this machine", whatever the name
    assert verdict.judge(fields(old_format.line()), 3, here=here()).verdict == "alive"


def test_a_local_holder_with_unknown_pids_is_judged_by_age() -> None:
    line = local(terraform_pid=0).line()
    assert verdict.judge(fields(line), 3, here=here()).verdict == verdict.ALIVE
    assert verdict.judge(fields(line), 300, here=here()).verdict == verdict.STALE


@pytest.mark.parametrize("info", ["", "deploy from laptop", "tfwrap heartbeat=garbage lease=90s"])
def test_no_tfwrap_heartbeat_is_unknown(info: str) -> None:
    v = verdict.judge(fields(info), 5000, here=ELSEWHERE)
    assert v.verdict == verdict.UNKNOWN and v.holder is None and v.heartbeat_age is None
    assert "not under tfwrap" in v.reason
    assert v.since == "2026-11-26T15:47:06Z"  # Terraform's Created, in tfwrap's one format


def test_garbled_numbers_in_the_heartbeat_are_unknown_pids_not_a_crash() -> None:
    """Non-numeric pids made ``lock status`` and ``lock clear`` exit 85."""
    line = "tfwrap heartbeat=2026-11-26T15:52:00Z lease=90s host=x terraform_pid=abc tfwrap_pid=-1 boot=q"
    parsed = lockinfo.parse(line)
    assert parsed is not None and (parsed.terraform_pid, parsed.tfwrap_pid) == (0, 0)
    assert verdict.judge(fields(line), 95, here=here()).verdict == verdict.STALE
    assert lockinfo.parse("tfwrap heartbeat=2026-11-26T15:52:00Z lease=99999999999999999999s") is None


def test_the_heartbeat_line_round_trips_identity_and_takeover() -> None:
    h = local(took_over="old-id", took_over_host="ci-3", took_over_ci="https://ci.example/runs/0")
    assert lockinfo.parse(h.line()) == h
    assert " boot=" in h.line() and " took_over=old-id " in h.line()


def test_judge_lock_combines_object_and_item() -> None:
    assert verdict.judge_lock(None, None, here=ELSEWHERE) is None
    obj = fields(holder().line())
    # Same lock, the item renewed later than the object: the freshest write counts.
    both = verdict.judge_lock(obj, obj, s3_age=500, dynamodb_age=3, here=ELSEWHERE)
    assert both is not None and both.verdict == "alive" and both.where == "dynamodb"
    assert both.heartbeat_age == 3
    # Dual locking: stale only when both parts are.
    stale = verdict.judge_lock(obj, obj, s3_age=500, dynamodb_age=400, here=ELSEWHERE)
    assert stale is not None and stale.verdict == "stale"
    only_item = verdict.judge_lock(None, obj, dynamodb_age=500, here=ELSEWHERE)
    assert only_item is not None and only_item.verdict == "stale"
    # Different holders: the most careful verdict wins and the reason says they differ.
    mixed = verdict.judge_lock(obj, fields("", "id-2"), s3_age=500, here=ELSEWHERE)
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


def this_machine(pid: int, start: int | None = None) -> dict[str, Any]:
    """The identity fields a heartbeat written by process ``pid`` on this machine carries."""
    start = lockinfo.process_start(pid) if start is None else start
    return {"boot_id": lockinfo.boot_id(), "pidns": lockinfo.pid_namespace(), "tfwrap_start": start or 1}


def live_info() -> str:
    """A fresh heartbeat from this machine, held by this (living) test process."""
    now = lockinfo.now()
    pid = os.getpid()
    me = this_machine(pid)
    return Holder(
        now,
        90,
        lockinfo.hostname(),
        pid,
        pid,
        now,
        "https://ci.example/runs/7",
        **me,
        terraform_start=me["tfwrap_start"],
    ).line()


def dead_pid() -> int:
    done = subprocess.Popen(["true"])
    done.wait()
    return done.pid


UNRENEWED = 5  # seconds: a local holder's gone PIDs count once its 1 s interval + 2 s has passed,
# on whole-second clocks (the store's, and the heartbeat time in the item's Info): one more second


def stale_info() -> str:
    """A heartbeat from this machine whose processes are gone: stale at once, whatever its age."""
    old = lockinfo.now() - dt.timedelta(minutes=10)
    pid = dead_pid()
    return Holder(
        old,
        90,
        "gone-runner",
        pid,
        pid,
        old - dt.timedelta(minutes=1),
        **this_machine(pid, 1),
        interval_seconds=1,
    ).line()


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
    # Fresh: well inside its lease (a loaded box may take seconds between the write and the read)
    assert doc["lease_seconds"] == 90 and doc["heartbeat_age_seconds"] <= 90 / 3 and doc["heartbeat"]
    assert doc["holder"] == {
        "host": lockinfo.hostname(),
        "terraform_pid": os.getpid(),
        "tfwrap_pid": os.getpid(),
        "ci": "https://ci.example/runs/7",
        "started": doc["heartbeat"],
        "boot_id": lockinfo.boot_id(),
        "pid_namespace": lockinfo.pid_namespace(),
        "took_over": None,
    }
    assert doc["server_time"] and doc["s3"]["last_modified"]
    human = tfwrap(tools, ["lock", "status", "-chdir", str(work)], tmp_path, env)
    assert human.returncode == 0, human.stderr
    for text in (lock_id, "alice@ci-7", "OperationTypeApply", "lease:     90 s", "ci.example/runs/7"):
        assert text in human.stdout
    assert "verdict:   alive: the holder runs on this machine and its tfwrap process" in human.stdout
    assert "; last heartbeat " in human.stdout

    s3_client(s3.url).delete_object(Bucket=bucket_name, Key=LOCK_KEY)
    put_lock(s3.url, bucket_name, stale_info())
    time.sleep(UNRENEWED)  # the store's clock must show it unrenewed (interval + 2 s)
    doc = status(tools, work, env)
    assert (
        doc["verdict"] == "stale" and "both gone" in doc["reason"] and doc["holder"]["host"] == "gone-runner"
    )

    # Another machine's holder whose clock is 10 minutes behind: its write is seconds old by
    # the store's clock (Last-Modified against Date), so it is alive, not stale.
    s3_client(s3.url).delete_object(Bucket=bucket_name, Key=LOCK_KEY)
    behind = lockinfo.now() - dt.timedelta(minutes=10)
    put_lock(
        s3.url, bucket_name, Holder(behind, 90, "ci-9", 4242, 4240, behind, boot_id="another-boot").line()
    )
    doc = status(tools, work, env)
    assert doc["verdict"] == "alive" and doc["heartbeat_age_seconds"] <= 90 / 3, doc  # not 600 s
    assert doc["heartbeat"] == lockinfo.stamp(behind)

    # A garbled heartbeat (exit 85 before): unknown pids, judged by age.
    s3_client(s3.url).delete_object(Bucket=bucket_name, Key=LOCK_KEY)
    put_lock(
        s3.url,
        bucket_name,
        f"tfwrap heartbeat={lockinfo.stamp(behind)} lease=90s terraform_pid=x tfwrap_pid=",
    )
    doc = status(tools, work, env)
    assert doc["verdict"] == "alive" and doc["holder"]["terraform_pid"] == 0, doc
    garbled = tfwrap(tools, ["lock", "clear", "--stale", "--yes", "-chdir", str(work)], tmp_path, env)
    assert garbled.returncode == 86 and "it is alive" in garbled.stderr, garbled.stderr

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
    time.sleep(UNRENEWED)  # the store's clock must show it unrenewed (interval + 2 s)
    removed = tfwrap(tools, clear, tmp_path, env)
    assert removed.returncode == 0, removed.stderr
    assert f"removed the stale lock s3://{bucket_name}/{LOCK_KEY} (ID {lock_id}" in removed.stderr
    assert removed.stdout == ""
    assert lock_etag(s3.url, bucket_name) is None
    again = tfwrap(tools, clear, tmp_path, env)
    assert again.returncode == 0 and "no lock held" in again.stderr
    # Terraform can lock the state again.
    plan = engine(tools, work, env, "plan", *QUIET)  # its own retry orphan is not the point here
    assert plan.returncode == 0, plan.stderr


@pytest.mark.engine
@pytest.mark.shim
def test_local_holder_whose_processes_are_gone_is_stale_and_cleared(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools
) -> None:
    work = setup(s3, bucket_name, tmp_path, tools, env)
    now = lockinfo.now()
    pid = dead_pid()
    put_lock(
        s3.url,
        bucket_name,
        Holder(
            now, 90, lockinfo.hostname(), pid, pid, now, **this_machine(pid, 1), interval_seconds=1
        ).line(),
    )
    # Just written: gone PIDs are only the Info's claim (a rewritten Info, a cloned VM), so the
    # lock is judged by its lease until the store's clock shows it unrenewed.
    fresh = status(tools, work, env)
    assert fresh["verdict"] == "alive" and "within its 90 s lease" in fresh["reason"], fresh
    time.sleep(UNRENEWED)
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
    assert neither.returncode == 83 and "exactly one of --stale, --id ID or --unreadable" in neither.stderr


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
    plan = engine(tools, work, env, "plan", *QUIET)  # its own retry orphan is not the point here
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
    from tfwrap.errors import TfwrapError
    from tfwrap.terraform.commands import parse

    table = make_table(s3.url, f"{bucket_name}-locks")
    work = setup(s3, bucket_name, tmp_path, tools, env, dynamodb_table=table)
    lock_id, _ = put_lock(s3.url, bucket_name, stale_info())
    ddb_client(s3.url).put_item(
        TableName=table,
        Item={"LockID": {"S": f"{bucket_name}/{STATE_KEY}"}, "Info": {"S": body(lock_id, stale_info())}},
    )
    time.sleep(UNRENEWED)  # the store's clock must show it unrenewed (interval + 2 s)
    backend = config.load(parse([f"-chdir={work}", "plan"]))
    found = cli_lock._read(backend)
    assert found.verdict is not None and found.verdict.verdict == "stale"
    assert found.s3 is not None and found.item is not None and found.dynamo is not None
    renewed: list[str] = []

    def holder_renews_during_the_prompt(yes: bool, question: str, **_: str) -> None:
        # The holder was only slow: it renews its heartbeat (same ID) while the user reads.
        assert found.s3 is not None and found.item is not None and found.dynamo is not None
        renewed.append(found.lockfile.rewrite_info(found.s3, live_info()).etag)
        found.dynamo.rewrite_info(found.item, live_info())

    with pytest.MonkeyPatch.context() as patch, pytest.raises(TfwrapError) as refused:
        patch.setattr(cli_lock, "confirm", holder_renews_during_the_prompt)
        cli_lock._clear_stale(backend, found, found.verdict, yes=False)
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
    time.sleep(UNRENEWED)  # the store's clock must show it unrenewed (interval + 2 s)
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
"""  # test_lock_estate lengthens it


@pytest.mark.engine
@pytest.mark.shim
def test_a_lock_taken_by_terraform_itself_is_unknown_and_never_cleared_as_stale(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools, gate: Gate
) -> None:
    work = setup(s3, bucket_name, tmp_path, tools, env, resource=gate.resource())  # runs until opened
    apply = holding(tools, work, env, "apply", "-auto-approve", *QUIET)
    try:
        etag = lock_etag(s3.url, bucket_name)
        doc = status(tools, work, env)
        assert doc["verdict"] == "unknown", doc
        assert doc["s3"]["Operation"] == "OperationTypeApply" and doc["s3"]["Info"] == ""
        assert doc["holder"] is None and doc["lease_seconds"] is None
        refused = tfwrap(tools, ["lock", "clear", "--stale", "--yes", "-chdir", str(work)], tmp_path, env)
        assert refused.returncode == 86, refused.stderr
        assert "it is unknown" in refused.stderr and doc["s3"]["ID"] in refused.stderr
        assert apply.poll() is None, "the apply ended before the refusal was checked"
        assert lock_etag(s3.url, bucket_name) == etag
        gate.open()
        out, err = apply.communicate(timeout=120)
    finally:
        if apply.poll() is None:
            apply.terminate()
            apply.wait(30)
    assert apply.returncode == 0, err
    assert "Apply complete!" in out
    assert lock_etag(s3.url, bucket_name) is None  # Terraform released its own lock
    assert status(tools, work, env)["locked"] is False


@pytest.mark.engine
@pytest.mark.shim
@pytest.mark.parametrize("garbage", [b"", b"{not json", b"[1, 2]", b'{"ID": ""}'])
def test_an_unreadable_lock_is_shown_as_such_and_cleared_exactly(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools, garbage: bytes
) -> None:
    work = setup(s3, bucket_name, tmp_path, tools, env)
    client = s3_client(s3.url)
    client.put_object(Bucket=bucket_name, Key=LOCK_KEY, Body=garbage, IfNoneMatch="*")
    doc = status(tools, work, env)
    assert doc["verdict"] == "unreadable", doc
    blocked = run(["terraform", "plan", *QUIET], work, env)
    assert blocked.returncode == 1 and "lock unreadable:" in blocked.stderr, blocked.stderr
    assert "--id `" not in blocked.stderr and "--id ``" not in blocked.stderr
    assert "tfwrap lock clear --unreadable" in blocked.stderr
    empty_id = tfwrap(tools, ["lock", "clear", "--id", "", "--yes", "-chdir", str(work)], tmp_path, env)
    assert empty_id.returncode == 83 and "--unreadable" in empty_id.stderr, empty_id.stderr
    removed = tfwrap(tools, ["lock", "clear", "--unreadable", "--yes", "-chdir", str(work)], tmp_path, env)
    assert removed.returncode == 0, removed.stderr
    assert lock_etag(s3.url, bucket_name) is None


def test_a_clone_with_this_boot_id_but_another_machine_or_host_is_not_this_machine() -> None:
    """VMs cloned from one memory snapshot share a boot id (and every host the PID-namespace
    inode): the machine id and the host name tell them apart."""
    me = verdict.Here(BOOT, PIDNS, never_asked, machine_id="m-here", host="ci-7")
    clone = local(machine_id="m-clone", interval_seconds=1)
    assert verdict.judge(fields(clone.line()), 4, here=me).verdict == verdict.ALIVE  # by its lease
    renamed = local(machine_id="m-here", host="ci-8", interval_seconds=1)
    assert verdict.judge(fields(renamed.line()), 4, here=me).verdict == verdict.ALIVE
    same = local(machine_id="m-here", interval_seconds=1)
    mine = verdict.Here(BOOT, PIDNS, {}.get, machine_id="m-here", host="ci-7")
    assert verdict.judge(fields(same.line()), 4, here=mine).verdict == verdict.STALE


@pytest.mark.engine
@pytest.mark.shim
def test_a_megabyte_host_in_the_info_is_never_echoed_back(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools
) -> None:
    """A lock whose Info claims a 1 MB ``host=`` (garbled, or written to flood a log): `lock
    status`, its JSON and the shim's verdict line stay short, and say who holds the lock."""
    work = setup(s3, bucket_name, tmp_path, tools, env)
    flood = "h" * 1_000_000
    lock_id, _ = put_lock(
        s3.url, bucket_name, live_info().replace(f"host={lockinfo.hostname()}", f"host={flood}")
    )
    human = tfwrap(tools, ["lock", "status", "-chdir", str(work)], tmp_path, env)
    assert human.returncode == 0, human.stderr[:2000]
    assert lock_id in human.stdout and len(human.stdout) + len(human.stderr) < 10_000
    doc = tfwrap(tools, ["lock", "status", "--json", "-chdir", str(work)], tmp_path, env)
    assert doc.returncode == 0 and len(doc.stdout) < 10_000, len(doc.stdout)
    assert json.loads(doc.stdout)["s3"]["ID"] == lock_id
    applied = run(["terraform", "apply", "-auto-approve", *QUIET], work, env, timeout=180)
    assert applied.returncode == 1, applied.stderr[:2000]
    said = [line for line in applied.stderr.splitlines() if line.startswith("tfwrap: ")]
    assert said and all(len(line) < 1_000 for line in said), [len(line) for line in said]
    assert any(lock_id in line for line in said), said  # the verdict line still names the lock
