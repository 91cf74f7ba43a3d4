"""Job control and a killed supervisor, end to end with the real engine.

A stopped apply still holds its lock: its heartbeat must keep renewing (observed on the
server: the lock's Info and Last-Modified) for longer than the lease while the job is
stopped; ``fg``/``bg``/SIGCONT resume both and the apply finishes with its state written.
A real bash on a new terminal does the job control, as a user's shell would.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.support.gate import Gate
from tests.support.lockwatch import read_lock, wait_annotated, wait_for
from tests.support.terminal import PROMPT, Terminal
from tests.support.world import RESOURCE, make_bucket, run, s3_client, write_config
from tfwrap.demo.server import S3Server
from tfwrap.lock import info as lockinfo

pytestmark = [pytest.mark.engine, pytest.mark.shim]
APPLY = "terraform apply -auto-approve -no-color -input=false"
LOCK_KEY = "app/terraform.tfstate.tflock"


@pytest.fixture
def fast_env(env: dict[str, str]) -> dict[str, str]:
    return {**env, "TFWRAP_HEARTBEAT_SECONDS": "1", "TFWRAP_GRACE_SECONDS": "5"}


def _work(s3: S3Server, bucket: str, tmp_path: Path, env: dict[str, str], resource: str) -> Path:
    make_bucket(s3.url, bucket)
    work = write_config(tmp_path / "work", s3.url, bucket, resource=resource)
    assert run(["terraform", "init", "-no-color"], work, env).returncode == 0
    return work


@pytest.fixture
def slow_work(s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], gate: Gate) -> Path:
    """An apply that runs until the test opens ``gate``."""
    return _work(s3, bucket_name, tmp_path, env, gate.resource())


@pytest.fixture
def terminal(slow_work: Path, fast_env: dict[str, str]) -> Iterator[Terminal]:
    term = Terminal(slow_work, fast_env)
    yield term
    term.close()


def _status(pid: int) -> str:
    try:
        return str(psutil.Process(pid).status())
    except psutil.NoSuchProcess:
        return "gone"


def _tfwrap_pids(holder: lockinfo.Holder) -> tuple[int, int]:
    """(the shim's tfwrap, the heartbeat's keeper): the keeper is the shim's child."""
    return psutil.Process(holder.tfwrap_pid).ppid(), holder.tfwrap_pid


def renewed_while_stopped(s3: Any, bucket: str, stopped: list[int], lease: int) -> None:
    """For twice the lease, with every pid in ``stopped`` stopped all along, the lock's
    heartbeat (its Info) and its Last-Modified on the server move on by more than the lease."""
    beats: list[dt.datetime] = []
    modified: list[dt.datetime] = []
    deadline = time.monotonic() + 2 * lease + 1
    while time.monotonic() < deadline:
        for pid in stopped:
            assert _status(pid) == psutil.STATUS_STOPPED, (pid, _status(pid))
        got = s3.get_object(Bucket=bucket, Key=LOCK_KEY)
        holder = lockinfo.parse(json.loads(got["Body"].read())["Info"])
        assert holder is not None
        beats.append(holder.heartbeat)
        modified.append(got["LastModified"])
        time.sleep(0.25)
    for pid in stopped:
        assert _status(pid) == psutil.STATUS_STOPPED
    assert (beats[-1] - beats[0]).total_seconds() > lease, beats
    assert (modified[-1] - modified[0]).total_seconds() > lease, modified


def state_written(s3: Any, bucket: str, resource_type: str = "terraform_data") -> bool:
    state = json.loads(s3.get_object(Bucket=bucket, Key="app/terraform.tfstate")["Body"].read())
    return any(r["type"] == resource_type for r in state.get("resources", []))


def test_ctrl_z_stops_the_job_heartbeat_renews_and_fg_finishes(
    terminal: Terminal, s3: S3Server, bucket_name: str, gate: Gate
) -> None:
    client = s3_client(s3.url)
    terminal.send(APPLY + "\n")
    _, holder = wait_annotated(client, bucket_name)
    shim, keeper = _tfwrap_pids(holder)
    terminal.send("\x1a")  # Ctrl-Z: the terminal stops its foreground group
    terminal.expect("Stopped")
    terminal.expect(PROMPT)
    wait_for(lambda: _status(shim) == psutil.STATUS_STOPPED, 10, what="tfwrap stopped with its job")
    assert terminal.foreground_group() == os.getpgid(terminal.pid)  # the shell has the terminal
    assert _status(keeper) != psutil.STATUS_STOPPED and os.getsid(keeper) == keeper
    renewed_while_stopped(client, bucket_name, [holder.terraform_pid, shim], holder.lease_seconds)
    gate.open()  # read once the job runs again
    terminal.send("fg\n")
    terminal.expect("Apply complete!", 90)
    terminal.expect(PROMPT)
    terminal.send("echo EXIT=$?\n")
    terminal.expect("EXIT=0")
    assert read_lock(client, bucket_name) is None and state_written(client, bucket_name)
    assert "Two interrupts" not in terminal.output and "tfwrap:" not in terminal.output


def test_bg_after_ctrl_z_leaves_the_terminal_to_the_shell(
    terminal: Terminal, s3: S3Server, bucket_name: str, gate: Gate
) -> None:
    client = s3_client(s3.url)
    terminal.send(APPLY + "\n")
    _, holder = wait_annotated(client, bucket_name)
    terminal.send("\x1a")
    terminal.expect("Stopped")
    terminal.expect(PROMPT)
    terminal.send("bg\n")
    terminal.expect(PROMPT)
    wait_for(lambda: _status(holder.terraform_pid) != psutil.STATUS_STOPPED, 10, what="Terraform resumed")
    terminal.send("echo shell-reads-$((6 * 7))\n")  # the shell still reads the keyboard
    terminal.expect("shell-reads-42", 10)
    assert terminal.foreground_group() == os.getpgid(terminal.pid)
    assert _status(holder.terraform_pid) not in ("gone", psutil.STATUS_STOPPED)  # still applying
    gate.open()
    terminal.send("wait; echo EXIT=$?\n")
    terminal.expect("EXIT=0", 90)
    assert "Apply complete!" in terminal.output
    assert read_lock(client, bucket_name) is None and state_written(client, bucket_name)


def test_background_apply_stopped_reading_the_terminal_resumes_with_fg(
    s3: S3Server, bucket_name: str, tmp_path: Path, fast_env: dict[str, str]
) -> None:
    """``terraform apply &`` asks for approval: reading the terminal from the background
    stops the job (SIGTTIN) as it would stop Terraform run directly; ``fg`` resumes it."""
    work = _work(s3, bucket_name, tmp_path, fast_env, RESOURCE)
    client = s3_client(s3.url)
    term = Terminal(work, fast_env)
    try:
        term.send("terraform apply -no-color &\n")
        term.expect("Enter a value:", 90)
        _, holder = wait_annotated(client, bucket_name)  # the lock is held at the prompt
        shim, _ = _tfwrap_pids(holder)
        wait_for(lambda: _status(shim) == psutil.STATUS_STOPPED, 10, what="tfwrap stopped with its job")
        term.send("jobs\n")
        term.expect("Stopped  ")  # bash reports Terraform run directly the same way
        renewed_while_stopped(client, bucket_name, [holder.terraform_pid, shim], holder.lease_seconds)
        term.send("fg\n")
        wait_for(
            lambda: term.foreground_group() == holder.terraform_pid, 10, what="Terraform has the terminal"
        )
        term.send("yes\n")
        term.expect("Apply complete!", 90)
        term.expect(PROMPT)
        term.send("echo EXIT=$?\n")
        term.expect("EXIT=0")
        assert read_lock(client, bucket_name) is None and state_written(client, bucket_name)
    finally:
        term.close()


def test_kill_tstp_to_tfwrap_stops_terraform_and_cont_resumes(
    slow_work: Path, fast_env: dict[str, str], s3: S3Server, bucket_name: str, gate: Gate
) -> None:
    client = s3_client(s3.url)
    proc = subprocess.Popen(  # a job of its own, as a shell would start it
        APPLY.split(),
        cwd=slow_work,
        env=fast_env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        process_group=0,
    )
    _, holder = wait_annotated(client, bucket_name)
    provisioner = wait_for(
        lambda: [p.pid for p in psutil.Process(holder.terraform_pid).children(recursive=True)],
        30,
        what="the provisioner running",
    )
    os.kill(proc.pid, signal.SIGTSTP)
    for pid in (holder.terraform_pid, proc.pid, *provisioner):
        wait_for(lambda pid=pid: _status(pid) == psutil.STATUS_STOPPED, 10, what=f"{pid} stopped")
    renewed_while_stopped(client, bucket_name, [holder.terraform_pid, proc.pid], holder.lease_seconds)
    gate.open()
    os.kill(proc.pid, signal.SIGCONT)
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, err
    assert "Apply complete!" in out and "tfwrap:" not in err
    assert read_lock(client, bucket_name) is None and state_written(client, bucket_name)


def _processes_in(work: Path) -> list[psutil.Process]:
    """Live processes working in ``work``: Terraform, its provisioners, tfwrap, the keeper."""
    found = []
    for proc in psutil.process_iter(["cwd", "status"]):
        if proc.info["cwd"] == str(work) and proc.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(proc)
    return found


@pytest.mark.parametrize("kill_at", ["at-once", "0.3s", "1s", "provisioner"])
def test_sigkill_of_tfwrap_gives_terraform_one_interrupt_and_leaves_nothing(
    slow_work: Path, fast_env: dict[str, str], s3: S3Server, bucket_name: str, kill_at: str
) -> None:
    """SIGKILL of the shim at any moment: exactly one interrupt reaches Terraform, no
    Terraform runs on unsupervised, no provisioner is orphaned, no lock is left."""
    client = s3_client(s3.url)
    proc = subprocess.Popen(
        APPLY.split(),
        cwd=slow_work,
        env=fast_env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        process_group=0,
    )
    holder = None
    if kill_at == "provisioner":
        _, holder = wait_annotated(client, bucket_name)
        wait_for(
            lambda: psutil.Process(holder.terraform_pid).children(recursive=True), 30, what="the provisioner"
        )
    elif kill_at != "at-once":
        time.sleep(float(kill_at.rstrip("s")))
    proc.kill()
    out, err = proc.communicate(timeout=90)  # ends when Terraform and the keeper close them
    assert "Two interrupts" not in out + err
    wait_for(lambda: not _processes_in(slow_work), 30, what="no process left in the working directory")
    assert read_lock(client, bucket_name) is None
    if holder is not None:
        assert "Interrupt received" in out


def test_a_killed_keeper_is_replaced_and_the_heartbeat_goes_on(
    slow_work: Path, fast_env: dict[str, str], s3: S3Server, bucket_name: str, gate: Gate
) -> None:
    """The heartbeat must not lapse while Terraform lives (the ground of stale-lock takeover)."""
    client = s3_client(s3.url)
    proc = subprocess.Popen(
        APPLY.split(), cwd=slow_work, env=fast_env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    lock, first = wait_annotated(client, bucket_name)
    os.kill(first.tfwrap_pid, signal.SIGKILL)

    def renewed_by_another() -> lockinfo.Holder | None:
        holder = wait_annotated(client, bucket_name)[1]
        return holder if holder.tfwrap_pid != first.tfwrap_pid else None

    second = wait_for(renewed_by_another, 10, what="a new keeper renewing the lock")
    assert (
        second.terraform_pid == first.terraform_pid and psutil.Process(second.tfwrap_pid).ppid() == proc.pid
    )
    wait_for(
        lambda: wait_annotated(client, bucket_name)[1].heartbeat > second.heartbeat, 5, what="renewed again"
    )
    assert (read_lock(client, bucket_name) or ({},))[0].get("ID") == lock["ID"]
    gate.open()
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, err
    assert "Apply complete!" in out and "starting another" in err
    assert read_lock(client, bucket_name) is None and state_written(client, bucket_name)
