"""The takeover's ordering rule: takeover is safe only if the heartbeat cannot lapse while
Terraform lives. These tests prove the foundation from the takeover side and need the job
control of the ``supervise`` branch (Ctrl-Z / SIGTSTP stops Terraform with tfwrap while
the heartbeat keeps renewing); they fail until it is merged.
"""

from __future__ import annotations

import itertools
import json
import signal
import time
from pathlib import Path

import psutil
import pytest

from tests.support.gate import Gate
from tests.support.lockwatch import wait_for
from tests.support.runners import APPLY, PAUSED, heartbeat, start, wait_beating
from tests.support.slow import read_object
from tests.support.world import make_bucket, run, s3_client, write_config
from tfwrap.demo.server import S3Server

pytestmark = [pytest.mark.engine, pytest.mark.shim]


def test_a_suspended_run_keeps_its_lock_alive_and_is_never_taken_over(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str]
) -> None:
    """``kill -TSTP`` to the supervisor of a running apply stops Terraform
    too; the heartbeat keeps renewing for longer than the lease; a takeover attempt fails;
    after ``fg`` (SIGCONT) the apply finishes with its state written."""
    fast = {**env, "TFWRAP_HEARTBEAT_SECONDS": "1", "TFWRAP_LEASE_INTERVALS": "3"}
    make_bucket(s3.url, bucket_name)
    work = write_config(tmp_path / "work", s3.url, bucket_name, resource=PAUSED)
    assert run(["terraform", "init", "-no-color", "-input=false"], work, fast).returncode == 0
    client = s3_client(s3.url)
    holder = start([*APPLY, "-var", "pause=4", "-var", "message=suspended"], work, fast)
    beat = wait_beating(client, bucket_name, holder)
    lock_id = heartbeat(client, bucket_name)[0]["ID"]  # type: ignore[index]
    terraform = psutil.Process(beat.terraform_pid)
    holder.proc.send_signal(signal.SIGTSTP)  # the sh shim execs tfwrap: this pid is tfwrap's
    try:
        wait_for(
            lambda: terraform.status() == psutil.STATUS_STOPPED, 5, 0.05, "Terraform stopped with tfwrap"
        )
        etags = set()
        stopped_since = time.monotonic()
        while time.monotonic() - stopped_since < 2 * beat.lease_seconds:  # longer than the lease
            now = heartbeat(client, bucket_name)
            assert now is not None and now[0]["ID"] == lock_id
            etags.add(now[1])
            time.sleep(0.2)
        assert len(etags) >= beat.lease_seconds, "the heartbeat stopped renewing while Terraform was stopped"
        assert terraform.status() == psutil.STATUS_STOPPED
        taker = run(APPLY, work, {**fast, "TFWRAP_STALE_LOCKS": "take-over"})
        assert taker.returncode == 1 and "tfwrap: lock alive:" in taker.stderr, taker.stderr
        assert heartbeat(client, bucket_name)[0]["ID"] == lock_id  # type: ignore[index]
    finally:
        holder.proc.send_signal(signal.SIGCONT)  # fg
    assert holder.wait(120) == 0, holder.err
    assert "Apply complete!" in holder.out
    assert read_object(client, bucket_name, "app/terraform.tfstate.tflock") is None
    assert run(["terraform", "output", "-raw", "message"], work, fast).stdout == "suspended"


LOCK_KEY = "app/terraform.tfstate.tflock"


def lock_versions(client: object, bucket: str) -> list[tuple[float, str]]:
    """Every version of the lock object (and its delete markers): (write time, Info or "")."""
    listed = client.list_object_versions(Bucket=bucket, Prefix=LOCK_KEY)  # type: ignore[attr-defined]
    found = []
    for v in listed.get("Versions", []):
        got = client.get_object(Bucket=bucket, Key=LOCK_KEY, VersionId=v["VersionId"])  # type: ignore[attr-defined]
        found.append((v["LastModified"].timestamp(), str(json.loads(got["Body"].read())["Info"])))
    found += [(m["LastModified"].timestamp(), "") for m in listed.get("DeleteMarkers", [])]
    return sorted(found)


def test_a_heartbeat_that_keeps_crashing_is_replaced_every_time_and_never_lapses(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], gate: Gate
) -> None:
    """Every keeper's heartbeat thread fails after one renewal (a test hook): each death ends its
    process, and tfwrap replaces it as often as it dies (not three times), said once. The apply
    waits at the gate until five renewals are written."""
    crashing = {
        **env,
        "TFWRAP_HEARTBEAT_SECONDS": "1",
        "TFWRAP_LEASE_INTERVALS": "6",
        "TFWRAP_TEST_HEARTBEAT_CRASH_AFTER": "1",
    }
    make_bucket(s3.url, bucket_name)
    work = write_config(tmp_path / "work", s3.url, bucket_name, resource=gate.resource())
    assert run(["terraform", "init", "-no-color", "-input=false"], work, env).returncode == 0
    client = s3_client(s3.url)
    holder = start(APPLY, work, crashing)

    def renewed() -> int:
        return sum(info.startswith("tfwrap heartbeat=") for _, info in lock_versions(client, bucket_name))

    wait_for(lambda: renewed() >= 5, 90, 0.2, "five renewals")  # three replacements: four at most
    gate.open()
    assert holder.wait(120) == 0, holder.err
    err = holder.err
    assert err.count("heartbeat failed (RuntimeError: test hook") == 1, err
    assert err.count("the heartbeat process ended while Terraform runs") == 1, err
    writes = lock_versions(client, bucket_name)
    renewals = [t for t, info in writes if info.startswith("tfwrap heartbeat=")]
    assert len(renewals) >= 5, writes  # three replacements would give at most four
    gaps = [b - a for (a, _), (b, _) in itertools.pairwise(writes)]
    assert max(gaps) <= 6, (gaps, err)  # never unrenewed for longer than the lease


def test_a_keeper_that_cannot_be_replaced_marks_the_lock_and_says_so(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], gate: Gate
) -> None:
    """The replacement fails (a test hook): said loudly, and the lock's Info records that its
    renewals stopped, so a waiter judges it unknown (a human decides), never stale by age."""
    lost = {
        **env,
        "TFWRAP_HEARTBEAT_SECONDS": "1",
        "TFWRAP_LEASE_INTERVALS": "3",
        "TFWRAP_TEST_HEARTBEAT_CRASH_AFTER": "1",
        "TFWRAP_TEST_KEEPER_SPAWN_FAILS": "1",
    }
    make_bucket(s3.url, bucket_name)
    work = write_config(tmp_path / "work", s3.url, bucket_name, resource=gate.resource())
    assert run(["terraform", "init", "-no-color", "-input=false"], work, env).returncode == 0
    holder = start(APPLY, work, lost)
    client = s3_client(s3.url)

    def marked() -> bool:
        found = read_object(client, bucket_name, LOCK_KEY)
        return bool(found and b"renewals=stopped" in found[0])

    wait_for(marked, 60, 0.1, "the lock marked as no longer renewed")
    time.sleep(5)  # well past the 3 s lease
    waiter = run([*APPLY, "-lock-timeout=2s"], work, {**env, "TFWRAP_STALE_LOCKS": "take-over"})
    assert waiter.returncode == 1, waiter.stderr
    assert "took over" not in waiter.stderr and "unknown" in waiter.stderr, waiter.stderr
    gate.open()
    assert holder.wait(120) == 0, holder.err
    assert "could not be replaced" in holder.err and "no longer renewed" in holder.err


def test_a_holder_whose_lock_is_removed_says_its_writes_are_unprotected(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], gate: Gate
) -> None:
    """Its lock removed by hand (or by a taker that already released): said once, loudly; a
    normal release says nothing of the kind."""
    fast = {**env, "TFWRAP_HEARTBEAT_SECONDS": "1"}
    make_bucket(s3.url, bucket_name)
    work = write_config(tmp_path / "work", s3.url, bucket_name, resource=gate.resource())
    assert run(["terraform", "init", "-no-color", "-input=false"], work, env).returncode == 0
    client = s3_client(s3.url)
    holder = start(APPLY, work, fast)
    wait_beating(client, bucket_name, holder)
    client.delete_object(Bucket=bucket_name, Key=LOCK_KEY)
    wait_for(lambda: "is gone while Terraform still runs" in holder.err, 30, 0.1, "the holder's warning")
    gate.open(runs=2)  # this apply, and the normal one below
    # Terraform's status stands: it fails to release a lock that is gone ("Error releasing").
    assert holder.wait(120) == 1, holder.err
    assert "Error releasing the state lock" in holder.err
    warning = "is gone while Terraform still runs"
    assert holder.err.count(warning) == 1 and "no longer protected" in holder.err, holder.err
    normal = run(APPLY, work, fast)
    assert normal.returncode == 0 and "WARNING" not in normal.stderr, normal.stderr
