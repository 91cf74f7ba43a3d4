"""Stale locks: the verdict after Terraform's lock error, and the opt-in takeover.

End to end through the installed shim, with the real engine and the S3/DynamoDB API server on
loopback. A holder "on another machine" runs in a PID namespace of its own
(tests/support/runners.py): other runs then judge it by its lease alone.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support.faultproxy import FaultProxy
from tests.support.gate import Gate
from tests.support.lockwatch import wait_for
from tests.support.runners import (
    APPLY,
    LOCK_KEY,
    PAUSED,
    STATE_KEY,
    Runner,
    heartbeat,
    lock_versions,
    renewal_then_kill,
    start,
    state_serial,
    wait_beating,
)
from tests.support.slow import read_object, terraform_lock_body
from tests.support.world import ddb_client, make_bucket, make_table, run, s3_client, write_config
from tfwrap.demo.server import S3Server
from tfwrap.lock import info as lockinfo

pytestmark = [pytest.mark.engine, pytest.mark.shim]
LEASE = 3  # heartbeat_seconds = 1, lease_intervals = 3 (the dead-runner setting)


@pytest.fixture
def fast(env: dict[str, str]) -> dict[str, str]:
    return {**env, "TFWRAP_HEARTBEAT_SECONDS": "1", "TFWRAP_LEASE_INTERVALS": "3"}


def setup(s3: S3Server, bucket: str, tmp_path: Path, env: dict[str, str], **cfg: Any) -> Path:
    make_bucket(s3.url, bucket)
    work = write_config(tmp_path / "work", s3.url, bucket, resource=PAUSED, **cfg)
    done = run(["terraform", "init", "-no-color", "-input=false"], work, env)
    assert done.returncode == 0, done.stderr
    return work


UNRENEWED = 4  # seconds: the 1 s interval of gone_local_holder, plus the 2 s margin, plus one


def put_foreign_lock(s3: Any, bucket: str, info: str = "") -> tuple[str, str]:
    """A lock as plain Terraform writes it (no heartbeat unless ``info``); (ID, ETag)."""
    lock_id = str(uuid.uuid4())
    body = json.loads(terraform_lock_body(lock_id, f"{bucket}/{STATE_KEY}", who="someone@elsewhere"))
    body["Info"] = info
    put = s3.put_object(
        Bucket=bucket,
        Key=LOCK_KEY,
        Body=json.dumps(body, separators=(",", ":")).encode(),
        IfNoneMatch="*",
        ContentType="application/json",
        ChecksumAlgorithm="SHA256",
    )
    if "every=" in info:
        time.sleep(UNRENEWED)  # a local holder's gone PIDs count once the store shows no renewal
    return lock_id, str(put["ETag"])


def gone_local_holder(pid: int, start: int = 1) -> str:
    """A heartbeat from this machine naming ``pid`` that started at tick ``start``, renewed
    every second and last 10 s ago by its own stamp (a DynamoDB item is aged by it)."""
    now = lockinfo.now() - dt.timedelta(seconds=10)
    return lockinfo.Holder(
        now,
        600,  # a long lease: only the process check can make it stale this soon
        lockinfo.hostname(),
        pid,
        pid,
        now,
        "https://ci.example/runs/41",
        boot_id=lockinfo.boot_id(),
        pidns=lockinfo.pid_namespace(),
        tfwrap_start=start,
        terraform_start=start,
        interval_seconds=1,
    ).line()


def dead_pid() -> int:
    done = subprocess.Popen(["true"])
    done.wait()
    return done.pid


# --- 1. A dead runner ---------------------------------------------------------------------------


@pytest.mark.parametrize("skew", [0, 600, -600])
def test_a_dead_runner_is_taken_over_once_its_lease_runs_out(
    s3: S3Server, bucket_name: str, tmp_path: Path, fast: dict[str, str], skew: int
) -> None:
    """SIGKILL of every process of the holder at once. With ``skew`` the dead runner's clock
    is 10 minutes behind and the taker's 10 minutes ahead : the verdict is the
    store's clock, so the takeover still waits for the lease, and still happens."""
    work = setup(s3, bucket_name, tmp_path, fast)
    client = s3_client(s3.url)
    holder_env = {**fast, "TFWRAP_TEST_CLOCK_OFFSET_SECONDS": str(-skew)}
    taker_env = {**fast, "TFWRAP_STALE_LOCKS": "take-over", "TFWRAP_TEST_CLOCK_OFFSET_SECONDS": str(skew)}
    runner = Runner(work, holder_env, "-var", "pause=60", "-var", "message=dead")
    old = wait_beating(client, bucket_name, runner)
    assert old.pidns != lockinfo.pid_namespace() and old.lease_seconds == LEASE
    old_id, last_write = renewal_then_kill(client, bucket_name, runner)
    assert heartbeat(client, bucket_name) is not None, "the dead runner's lock must stay behind"

    lock_timeout = 600  # waiting it out (instead of the lease) cannot pass for a slow box
    argv = [*APPLY, f"-lock-timeout={lock_timeout}s", "-var", "message=taker", "-var", "pause=2"]
    taker = start(argv, work, taker_env)
    code = taker.wait(lock_timeout / 4)
    took = time.monotonic() - last_write
    print(f"takeover apply done {took:.1f} s after the dead runner's last renewal\n{taker.err}")
    assert code == 0, taker.err
    assert "Apply complete!" in taker.out
    assert f"tfwrap: took over the stale lock {old_id}" in taker.err
    assert f"s past its {LEASE} s lease" in taker.err
    assert took < lock_timeout / 4, "the takeover waited for Terraform's own -lock-timeout, not the lease"
    # The new run's heartbeat recorded whose lock it replaced.
    versions = lock_versions(client, bucket_name)
    beats = [lockinfo.parse(v["Info"]) for v in versions if v["ID"] != old_id]
    took_over = [h for h in beats if h is not None and h.took_over == old_id]
    assert took_over, versions
    assert took_over[0].took_over_host == old.host
    # Never before the lease ran out, by the store's clock: whole seconds, so a lease of 3 s
    # shows as 4 between the dead runner's last write and the taker's first.
    dead_last = max(v["_written"] for v in versions if v["ID"] == old_id)
    taker_first = min(v["_written"] for v in versions if v["ID"] != old_id)
    assert (taker_first - dead_last).total_seconds() >= LEASE + 1, versions
    assert read_object(client, bucket_name, LOCK_KEY) is None
    output = run(["terraform", "output", "-raw", "message"], work, fast)
    assert output.stdout == "taker"


def test_a_dead_runner_is_reported_stale_with_the_command_and_left_alone(
    s3: S3Server, bucket_name: str, tmp_path: Path, fast: dict[str, str]
) -> None:
    work = setup(s3, bucket_name, tmp_path, fast)
    client = s3_client(s3.url)
    runner = Runner(work, fast, "-var", "pause=60")
    wait_beating(client, bucket_name, runner)
    old_id, _ = renewal_then_kill(client, bucket_name, runner)

    def stale() -> bool:
        shown = run(["tfwrap", "lock", "status", "--json"], work, fast)
        return json.loads(shown.stdout)["verdict"] == "stale"

    wait_for(stale, 30, 0.5, "the dead runner's lock judged stale")
    before = read_object(client, bucket_name, LOCK_KEY)
    blocked = run([*APPLY], work, fast)  # report is the default
    assert blocked.returncode == 1, blocked.stderr
    assert "Error acquiring the state lock" in blocked.stderr
    last = blocked.stderr.strip().splitlines()[-1]
    assert last.startswith("tfwrap: lock stale: held by "), blocked.stderr
    assert old_id in last and f"past its {LEASE} s lease" in last
    assert "`tfwrap lock clear --stale` removes exactly this lock" in last
    assert read_object(client, bucket_name, LOCK_KEY) == before  # untouched
    cleared = run(["tfwrap", "lock", "clear", "--stale", "--yes"], work, fast)
    assert cleared.returncode == 0, cleared.stderr
    assert run([*APPLY], work, fast).returncode == 0


# --- Self-fencing on the holder's side ----------------------------------------------------------


def test_a_holder_cut_off_from_s3_says_it_may_be_taken_over_then_that_it_was(
    s3: S3Server, bucket_name: str, tmp_path: Path, fast: dict[str, str], gate: Gate
) -> None:
    """The holder reaches S3 through a link that is cut for longer than its lease; another
    run takes its lock over. Each warning is said once. Both applies wait at the gate until
    the holder has said both."""
    make_bucket(s3.url, bucket_name)
    with FaultProxy(s3.url) as link:
        held = write_config(tmp_path / "held", link.url, bucket_name, resource=gate.resource())
        other = write_config(tmp_path / "other", s3.url, bucket_name, resource=gate.resource())
        for work in (held, other):
            assert run(["terraform", "init", "-no-color", "-input=false"], work, fast).returncode == 0
        client = s3_client(s3.url)
        runner = Runner(held, fast)
        wait_beating(client, bucket_name, runner)
        old_id = heartbeat(client, bucket_name)[0]["ID"]  # type: ignore[index]
        link.cut()
        wait_for(lambda: "may judge it stale" in runner.run.err, 20, 0.1, "the holder's first warning")
        taker = start(
            [*APPLY, "-lock-timeout=60s"],
            other,
            {**fast, "TFWRAP_STALE_LOCKS": "take-over"},
        )
        wait_for(
            lambda: (h := heartbeat(client, bucket_name)) is not None and h[2].took_over == old_id,
            60,
            0.1,
            "the taker's heartbeat",
        )
        link.restore()
        wait_for(lambda: "no longer protected" in runner.run.err, 20, 0.1, "the holder's second warning")
        gate.open(runs=2)
        assert taker.wait(120) == 0, taker.err
        runner.run.wait(120)
    err = runner.run.err
    print(err)
    assert err.count("may judge it stale and take it over") == 1
    assert err.count(f"WARNING: lock {old_id} was taken over as stale by lock") == 1
    assert "state writes from this run are no" in err


# --- 2. A paused runner -------------------------------------------------------------------------


def test_a_paused_runner_is_never_taken_over_and_both_applies_count(
    s3: S3Server, bucket_name: str, tmp_path: Path, fast: dict[str, str]
) -> None:
    """SIGSTOP every process of the holder for less than its lease, then SIGCONT. The holder's
    clock is 10 minutes behind and the waiter's 10 minutes ahead : a verdict
    comparing the two would call the live holder 20 minutes stale and take it over."""
    lease_env = {**fast, "TFWRAP_LEASE_INTERVALS": "8"}  # 8 s lease, paused 3 s: a wide margin
    work = setup(s3, bucket_name, tmp_path, lease_env)
    client = s3_client(s3.url)
    before = state_serial(client, bucket_name)
    holder_env = {**lease_env, "TFWRAP_TEST_CLOCK_OFFSET_SECONDS": "-600"}
    runner = Runner(work, holder_env, "-var", "pause=6", "-var", "message=first")
    held = wait_beating(client, bucket_name, runner)
    first_id = heartbeat(client, bucket_name)[0]["ID"]  # type: ignore[index]
    waiter_env = {**lease_env, "TFWRAP_STALE_LOCKS": "take-over", "TFWRAP_TEST_CLOCK_OFFSET_SECONDS": "600"}
    waiter = start([*APPLY, "-lock-timeout=120s", "-var", "message=second"], work, waiter_env)
    wait_for(lambda: "Acquiring state lock" in waiter.out, 30, 0.05, "the waiter waiting for the lock")
    runner.pause()
    try:
        time.sleep(3)
        assert heartbeat(client, bucket_name)[0]["ID"] == first_id  # type: ignore[index]
    finally:
        runner.resume()
    assert runner.run.wait(120) == 0, runner.run.err
    assert waiter.wait(120) == 0, waiter.err
    assert "took over" not in waiter.err and "WARNING" not in runner.run.err
    assert "Apply complete!" in runner.run.out and "Apply complete!" in waiter.out
    assert held.lease_seconds == 8
    assert state_serial(client, bucket_name) >= before + 2
    assert run(["terraform", "output", "-raw", "message"], work, fast).stdout == "second"
    ids = {v["ID"] for v in lock_versions(client, bucket_name)}
    assert len(ids) >= 2 and all(
        (h := lockinfo.parse(v["Info"])) is None or not h.took_over
        for v in lock_versions(client, bucket_name)
    )


# --- 3. A foreign lock, and a DynamoDB-only one ------------------------------------------------


def test_a_foreign_lock_is_never_taken_over(
    s3: S3Server, bucket_name: str, tmp_path: Path, fast: dict[str, str]
) -> None:
    work = setup(s3, bucket_name, tmp_path, fast)
    client = s3_client(s3.url)
    lock_id, etag = put_foreign_lock(client, bucket_name)
    taker = {**fast, "TFWRAP_STALE_LOCKS": "take-over"}
    for extra in ([], ["-lock-timeout=3s"]):
        blocked = run([*APPLY, *extra], work, taker)
        assert blocked.returncode == 1, blocked.stderr
        last = blocked.stderr.strip().splitlines()[-1]
        assert last.startswith("tfwrap: lock unknown: held by someone@elsewhere"), blocked.stderr
        assert f"`tfwrap lock clear --id {lock_id}`" in last and "only a human can tell" in last
        assert "took over" not in blocked.stderr
    assert s3_client(s3.url).head_object(Bucket=bucket_name, Key=LOCK_KEY)["ETag"] == etag
    versions = client.list_object_versions(Bucket=bucket_name, Prefix=LOCK_KEY).get("Versions", [])
    assert len(versions) == 1


def test_a_dynamodb_only_lock_is_never_taken_over(
    s3: S3Server, bucket_name: str, tmp_path: Path, fast: dict[str, str]
) -> None:
    table = make_table(s3.url, f"{bucket_name}-locks")
    work = setup(s3, bucket_name, tmp_path, fast, dynamodb_table=table)
    ddb = ddb_client(s3.url)
    key = {"LockID": {"S": f"{bucket_name}/{STATE_KEY}"}}
    body = json.loads(terraform_lock_body("leftover", f"{bucket_name}/{STATE_KEY}"))
    body["Info"] = gone_local_holder(dead_pid())  # stale at once, were it an S3 lock
    item = {**key, "Info": {"S": json.dumps(body, separators=(",", ":"))}}
    ddb.put_item(TableName=table, Item=item)
    blocked = run(APPLY, work, {**fast, "TFWRAP_STALE_LOCKS": "take-over"})
    assert blocked.returncode == 1, blocked.stderr
    assert "tfwrap: lock stale:" in blocked.stderr and "took over" not in blocked.stderr
    assert ddb.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"] == item
    assert read_object(s3_client(s3.url), bucket_name, LOCK_KEY) is None


def test_dual_locking_is_taken_over_only_when_both_parts_are_stale(
    s3: S3Server, bucket_name: str, tmp_path: Path, fast: dict[str, str]
) -> None:
    import os

    table = make_table(s3.url, f"{bucket_name}-locks")
    work = setup(s3, bucket_name, tmp_path, fast, dynamodb_table=table)
    client, ddb = s3_client(s3.url), ddb_client(s3.url)
    key = {"LockID": {"S": f"{bucket_name}/{STATE_KEY}"}}
    taker = {**fast, "TFWRAP_STALE_LOCKS": "take-over"}

    def hold(object_info: str, item_info: str) -> tuple[str, str]:
        lock_id, etag = put_foreign_lock(client, bucket_name, object_info)
        body = json.loads(read_object(client, bucket_name, LOCK_KEY)[0])  # type: ignore[index]
        body["Info"] = item_info
        ddb.put_item(TableName=table, Item={**key, "Info": {"S": json.dumps(body, separators=(",", ":"))}})
        return lock_id, etag

    # The object is stale (its holder's processes are gone), the item alive (this process).
    me = os.getpid()
    alive = gone_local_holder(me, start=lockinfo.process_start(me) or 1)
    _, etag = hold(gone_local_holder(dead_pid()), alive)
    blocked = run(APPLY, work, taker)
    assert blocked.returncode == 1 and "tfwrap: lock alive:" in blocked.stderr, blocked.stderr
    assert client.head_object(Bucket=bucket_name, Key=LOCK_KEY)["ETag"] == etag
    assert "Item" in ddb.get_item(TableName=table, Key=key, ConsistentRead=True)
    client.delete_object(Bucket=bucket_name, Key=LOCK_KEY)
    ddb.delete_item(TableName=table, Key=key)

    # Both parts stale: both removed, then Terraform takes both.
    stale = gone_local_holder(dead_pid())
    lock_id, _ = hold(stale, stale)
    done = run(APPLY, work, taker)
    assert done.returncode == 0, done.stderr
    assert f"took over the stale lock {lock_id}" in done.stderr
    assert "removed the stale lock s3://" in done.stderr and "removed the stale DynamoDB item" in done.stderr
    assert read_object(client, bucket_name, LOCK_KEY) is None
    assert "Item" not in ddb.get_item(TableName=table, Key=key, ConsistentRead=True)


@pytest.mark.parametrize("where", ["environment", "file"])
def test_a_bad_stale_locks_setting_is_refused(tmp_path: Path, env: dict[str, str], where: str) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "main.tf").write_text('terraform {\n  backend "s3" {}\n}\n')
    if where == "file":
        (work / ".tfwrap.toml").write_text('stale_locks = "always"\n')
    else:
        env = {**env, "TFWRAP_STALE_LOCKS": "yes"}
    refused = run(["terraform", "plan"], work, env)
    assert refused.returncode == 81, refused.stderr
    assert len(refused.stderr.splitlines()) == 1 and '"report", "take-over"' in refused.stderr


# --- 4. A race: the holder renews between the verdict and the delete ---------------------------


def test_a_renewal_between_verdict_and_delete_keeps_the_lock(
    s3: S3Server,
    bucket_name: str,
    tmp_path: Path,
    fast: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tfwrap.aws import clients
    from tfwrap.backend import config
    from tfwrap.lock import current, takeover
    from tfwrap.lock.lockfile import DynamoLock, S3LockFile
    from tfwrap.supervise import stale
    from tfwrap.supervise.heartbeat import Locks
    from tfwrap.terraform.commands import parse

    table = make_table(s3.url, f"{bucket_name}-locks")
    work = setup(s3, bucket_name, tmp_path, fast, dynamodb_table=table)
    backend = config.load(parse([f"-chdir={work}", "plan"]))
    locks = Locks(
        S3LockFile(clients.client(backend, "s3"), backend),
        DynamoLock(clients.client(backend, "dynamodb"), backend),
    )
    line = gone_local_holder(dead_pid())
    lock_id, _ = put_foreign_lock(s3_client(s3.url), bucket_name, line)
    ddb = ddb_client(s3.url)
    body = read_object(s3_client(s3.url), bucket_name, LOCK_KEY)[0].decode()  # type: ignore[index]
    ddb.put_item(TableName=table, Item={"LockID": {"S": f"{bucket_name}/{STATE_KEY}"}, "Info": {"S": body}})
    real_read = current.read
    renewed: list[str] = []

    def judged_then_renewed(lockfile: Any, dynamo: Any, here: Any = None) -> Any:
        found = real_read(lockfile, dynamo, here)
        assert found.verdict is not None and found.verdict.verdict == "stale"
        assert takeover.refusal(found) is None
        # The holder was only slow: it renews (same ID) right after the verdict.
        renewed.append(lockfile.rewrite_info(found.s3, line.replace("runs/41", "runs/42")).etag)
        dynamo.rewrite_info(found.item, line.replace("runs/41", "runs/42"))
        return found

    monkeypatch.setattr(current, "read", judged_then_renewed)
    outcome = stale.after_failed_lock(locks, "take-over", None, ".", out_of_time=True, may_take=True)
    assert outcome == stale.GIVE_UP
    err = capsys.readouterr().err
    assert "stale lock not taken over" in err and "changed since it was read" in err
    assert s3_client(s3.url).head_object(Bucket=bucket_name, Key=LOCK_KEY)["ETag"] == renewed[0]
    item = locks.dynamo.read()  # type: ignore[union-attr]
    assert item is not None and item["ID"] == lock_id and "runs/42" in item["Info"]


# --- 5. Clock skew: lock status gives the same verdicts -----------------------------------------


def test_lock_status_verdicts_do_not_depend_on_this_machines_clock(
    s3: S3Server, bucket_name: str, tmp_path: Path, fast: dict[str, str]
) -> None:
    work = setup(s3, bucket_name, tmp_path, fast)
    client = s3_client(s3.url)
    now = lockinfo.now()
    cases = {
        "alive": lockinfo.Holder(now, 90, "ci-9", 4242, 4240, now, boot_id="another-boot").line(),
        "stale": gone_local_holder(dead_pid()),
        "unknown": "",
    }
    for expected, info in cases.items():
        put_foreign_lock(client, bucket_name, info)
        seen = set()
        for skew in (-600, 0, 600):
            shown = run(
                ["tfwrap", "lock", "status", "--json"],
                work,
                {**fast, "TFWRAP_TEST_CLOCK_OFFSET_SECONDS": str(skew)},
            )
            doc = json.loads(shown.stdout)
            seen.add((doc["verdict"], doc["server_time"][:15]))
            if expected != "unknown":
                assert 0 <= doc["heartbeat_age_seconds"] <= 60, (
                    doc
                )  # seconds by the store, not the 600 s skew
        assert {verdict for verdict, _ in seen} == {expected}
        client.delete_object(Bucket=bucket_name, Key=LOCK_KEY)


# --- 8. Same host -------------------------------------------------------------------------------


def test_a_holder_on_this_machine_whose_processes_are_gone_is_taken_over_at_once(
    s3: S3Server, bucket_name: str, tmp_path: Path, fast: dict[str, str]
) -> None:
    """A 60 s lease: only the process check can let the takeover happen within seconds."""
    long_lease = {**fast, "TFWRAP_LEASE_INTERVALS": "60"}
    work = setup(s3, bucket_name, tmp_path, long_lease)
    client = s3_client(s3.url)
    holder = start([*APPLY, "-var", "pause=60"], work, long_lease)  # same machine, same namespace
    beat = wait_beating(client, bucket_name, holder)
    assert beat.boot_id == lockinfo.boot_id() and beat.pidns == lockinfo.pid_namespace()
    old_id = heartbeat(client, bucket_name)[0]["ID"]  # type: ignore[index]
    import psutil

    # tfwrap, its keeper (beat.tfwrap_pid, the heartbeat's writer), Terraform, provisioners
    supervisor = psutil.Process(holder.proc.pid)
    victims = [supervisor, *supervisor.children(recursive=True)]
    assert beat.tfwrap_pid in {p.pid for p in victims}
    for proc in victims:  # every process at once, as when the machine's runner is killed
        with contextlib.suppress(psutil.NoSuchProcess):  # a provisioner may end meanwhile
            proc.kill()
    holder.wait(30)
    assert heartbeat(client, bucket_name) is not None
    began = time.monotonic()
    taker = run([*APPLY, "-lock-timeout=30s"], work, {**long_lease, "TFWRAP_STALE_LOCKS": "take-over"})
    assert taker.returncode == 0, taker.stderr
    took = time.monotonic() - began
    assert took < beat.lease_seconds, f"{took:.0f} s: the takeover waited for the 60 s lease"
    assert f"took over the stale lock {old_id}" in taker.stderr and "both gone" in taker.stderr


def test_a_reused_pid_does_not_keep_a_lock_alive(
    s3: S3Server, bucket_name: str, tmp_path: Path, fast: dict[str, str]
) -> None:
    work = setup(s3, bucket_name, tmp_path, fast)
    client = s3_client(s3.url)
    other = subprocess.Popen(["sleep", "60"])  # a living process with the holder's PID
    try:
        lock_id, _ = put_foreign_lock(client, bucket_name, gone_local_holder(other.pid, start=1))
        shown = json.loads(run(["tfwrap", "lock", "status", "--json"], work, fast).stdout)
        assert shown["verdict"] == "stale", shown
        taker = run(APPLY, work, {**fast, "TFWRAP_STALE_LOCKS": "take-over"})
        assert taker.returncode == 0, taker.stderr
        assert f"took over the stale lock {lock_id}" in taker.stderr
        # The same PID with its real start tick is the holder: alive, never taken over.
        start_tick = lockinfo.process_start(other.pid)
        assert start_tick is not None
        lock_id, etag = put_foreign_lock(client, bucket_name, gone_local_holder(other.pid, start=start_tick))
        blocked = run(APPLY, work, {**fast, "TFWRAP_STALE_LOCKS": "take-over"})
        assert blocked.returncode == 1 and "tfwrap: lock alive:" in blocked.stderr, blocked.stderr
        assert client.head_object(Bucket=bucket_name, Key=LOCK_KEY)["ETag"] == etag
    finally:
        other.kill()
        other.wait()
