"""Issue 8's ordering rule: takeover is safe only if the heartbeat cannot lapse while
Terraform lives. These tests prove the foundation from the takeover side and need the job
control of the ``supervise`` branch (Ctrl-Z / SIGTSTP stops Terraform with tfwrap while
the heartbeat keeps renewing); they fail until it is merged.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import psutil
import pytest

from tests.support.lockwatch import wait_for
from tests.support.runners import APPLY, PAUSED, heartbeat, start, wait_beating
from tests.support.slow import read_object
from tests.support.world import make_bucket, run, s3_client, write_config
from tfwrap.demo.server import S3Server

pytestmark = [pytest.mark.engine, pytest.mark.shim]


def test_a_suspended_run_keeps_its_lock_alive_and_is_never_taken_over(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str]
) -> None:
    """Issue 8, test 6: ``kill -TSTP`` to the supervisor of a running apply stops Terraform
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
