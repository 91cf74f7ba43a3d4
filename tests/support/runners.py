"""Holders for the takeover tests (test_takeover.py, tests/benchmark.py): a supervised apply
running in a PID namespace of its own, as on another runner or in another container of
this machine, that can be paused and resumed or killed all at once, as when its VM is
reclaimed."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import psutil

from tests.support.lockwatch import wait_for
from tests.support.slow import Drained, read_object
from tfwrap.lock import info as lockinfo

STATE_KEY = "app/terraform.tfstate"
LOCK_KEY = STATE_KEY + ".tflock"
APPLY = ["terraform", "apply", "-auto-approve", "-no-color", "-input=false"]
# A long, repeatable apply; its pause comes from -var so each run can choose it.
PAUSED = """
variable "pause" {
  type    = number
  default = 0
}
variable "message" {
  type    = string
  default = "hello"
}
resource "terraform_data" "slow" {
  triggers_replace = timestamp()
  input            = var.message
  provisioner "local-exec" {
    command = "sleep ${var.pause}"
  }
}
output "message" {
  value = terraform_data.slow.output
}
"""


def start(argv: list[str], work: Path, env: dict[str, str]) -> Drained:
    proc = subprocess.Popen(
        argv, cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    return Drained(proc)


def heartbeat(s3: Any, bucket: str) -> tuple[dict[str, Any], str, lockinfo.Holder] | None:
    """The lock's fields, ETag and tfwrap heartbeat, or None (no lock, or not annotated)."""
    found = read_object(s3, bucket, LOCK_KEY)
    if found is None:
        return None
    fields = json.loads(found[0])
    holder = lockinfo.parse(str(fields.get("Info", "")))
    return (fields, found[1], holder) if holder else None


class Runner:
    """``terraform apply`` through the shim, in a PID namespace of its own (``unshare``).

    Its heartbeat names another PID namespace, so other runs judge it by its lease alone,
    as a holder on another machine. ``kill()`` SIGKILLs the namespace's first process:
    the kernel then kills every process in it at once (tfwrap, Terraform, provisioners).
    """

    def __init__(self, work: Path, env: dict[str, str], *args: str) -> None:
        shell = " ".join([*APPLY, *args]) + "; exit $?"  # sh stays the namespace's pid 1
        self.run = start(["unshare", "--pid", "--fork", "--mount-proc", "sh", "-c", shell], work, env)
        self.init = wait_for(
            lambda: psutil.Process(self.run.proc.pid).children(), 10, 0.02, "unshare's child"
        )[0]

    def processes(self) -> list[psutil.Process]:
        with contextlib.suppress(psutil.Error):
            return [self.init, *self.init.children(recursive=True)]
        return []

    def kill(self) -> None:
        os.kill(self.init.pid, signal.SIGKILL)
        self.run.wait(30)

    def pause(self) -> None:
        """SIGSTOP every process of the holder (a frozen VM, a paused container)."""
        for proc in self.processes():
            with contextlib.suppress(psutil.Error):
                proc.suspend()

    def resume(self) -> None:
        for proc in self.processes():
            with contextlib.suppress(psutil.Error):
                proc.resume()


def wait_beating(s3: Any, bucket: str, runner: Runner | Drained, timeout: float = 60) -> lockinfo.Holder:
    """The holder's heartbeat once it has been renewed at least once (it is running)."""
    first = wait_for(lambda: heartbeat(s3, bucket), timeout, 0.05, "a heartbeat")
    renewed = wait_for(
        lambda: (h := heartbeat(s3, bucket)) is not None and h[1] != first[1] and h, 10, 0.05, "a renewal"
    )
    proc = runner.run.proc if isinstance(runner, Runner) else runner.proc
    assert proc.poll() is None, "the holder ended before it was seen beating"
    return renewed[2]


def renewal_then_kill(s3: Any, bucket: str, runner: Runner) -> tuple[str, float]:
    """Kill the runner right after a renewal was seen; (its lock ID, when that write was seen)."""
    now = heartbeat(s3, bucket)
    assert now is not None
    fresh = wait_for(
        lambda: (h := heartbeat(s3, bucket)) is not None and h[1] != now[1] and h, 10, 0.01, "a renewal"
    )
    seen = time.monotonic()
    runner.kill()
    return str(fresh[0]["ID"]), seen


def state_serial(s3: Any, bucket: str) -> int:
    found = read_object(s3, bucket, STATE_KEY)
    return int(json.loads(found[0])["serial"]) if found else 0


def lock_versions(s3: Any, bucket: str) -> list[dict[str, Any]]:
    """Every version of the lock object ever written, oldest first: its lock fields, plus
    ``_written``, its Last-Modified (the store's clock)."""
    listed = s3.list_object_versions(Bucket=bucket, Prefix=LOCK_KEY).get("Versions", [])
    out = []
    for version in reversed(listed):  # S3 lists the newest first
        body = s3.get_object(Bucket=bucket, Key=LOCK_KEY, VersionId=version["VersionId"])["Body"].read()
        out.append({**json.loads(body), "_written": version["LastModified"]})
    return out
