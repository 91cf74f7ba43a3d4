"""Supervised runs end to end: heartbeat, signals, our own lock never left behind."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from tests.support.gate import Gate
from tests.support.lockwatch import read_lock, wait_annotated, wait_for
from tests.support.world import Tools, make_bucket, run, s3_client, write_config
from tfwrap.demo.server import S3Server

pytestmark = [pytest.mark.engine, pytest.mark.shim]
APPLY = ["terraform", "apply", "-auto-approve", "-no-color", "-input=false"]


@pytest.fixture
def slow_work(s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], gate: Gate) -> Path:
    """An apply that runs until the test opens ``gate``."""
    make_bucket(s3.url, bucket_name)
    work = write_config(tmp_path / "work", s3.url, bucket_name, resource=gate.resource())
    assert run(["terraform", "init", "-no-color"], work, env).returncode == 0
    return work


@pytest.fixture
def fast_env(env: dict[str, str]) -> dict[str, str]:
    return {**env, "TFWRAP_HEARTBEAT_SECONDS": "1", "TFWRAP_GRACE_SECONDS": "5"}


def start(work: Path, env: dict[str, str], *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*APPLY, *extra], cwd=work, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def left_behind(terraform_pid: int) -> list[psutil.Process]:
    """Live processes of Terraform's process group (its provisioners included)."""
    time.sleep(0.2)
    found = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(proc.pid) == terraform_pid and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (ProcessLookupError, psutil.Error):
            continue
    return found


def no_lock(s3: S3Server, bucket: str) -> bool:
    return read_lock(s3_client(s3.url), bucket) is None


def test_heartbeat_annotates_within_a_second_and_renews(
    slow_work: Path, fast_env: dict[str, str], s3: S3Server, bucket_name: str, tools: Tools, gate: Gate
) -> None:
    client = s3_client(s3.url)
    proc = start(slow_work, fast_env)
    first = wait_for(lambda: read_lock(client, bucket_name), 30, step=0.02)
    lock, holder = wait_annotated(client, bucket_name)
    # How soon (README: usually well under a second) is a timing claim: tests/benchmark.py
    # measures it. Here: annotated while the same lock is held, then renewed.
    assert holder.lease_seconds == 3 and holder.terraform_pid > 0
    # tfwrap_pid is the heartbeat's keeper: tfwrap's child, in a session of its own
    keeper = psutil.Process(holder.tfwrap_pid)
    assert keeper.ppid() == proc.pid and os.getsid(keeper.pid) == keeper.pid
    for field in ("ID", "Operation", "Who", "Version", "Created", "Path"):
        assert lock[field] == first[0][field]
    renewed = wait_for(
        lambda: (h := wait_annotated(client, bucket_name)[1]).heartbeat > holder.heartbeat and h, 5
    )
    assert renewed.started == holder.started
    # A second client is refused and sees who holds the lock and that it is alive.
    blocked = run([str(tools.engine), "plan", "-no-color", "-input=false"], slow_work, fast_env)
    assert blocked.returncode == 1 and "Error acquiring the state lock" in blocked.stderr
    assert "tfwrap heartbeat=" in blocked.stderr and f"terraform_pid={holder.terraform_pid}" in blocked.stderr
    gate.open()  # seen all it came for: let the apply finish
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Apply complete!" in out and no_lock(s3, bucket_name)


@pytest.mark.parametrize(
    ("signals", "code"),
    [
        ((signal.SIGTERM,), 143),
        ((signal.SIGHUP,), 129),
        ((signal.SIGQUIT,), 131),
        ((signal.SIGINT, signal.SIGTERM), 130),
    ],
)
def test_signal_to_tfwrap_gives_terraform_one_interrupt(
    slow_work: Path,
    fast_env: dict[str, str],
    s3: S3Server,
    bucket_name: str,
    signals: tuple[int, ...],
    code: int,
) -> None:
    """kill of tfwrap's pid (docker stop, CI), and GitHub's SIGINT-then-SIGTERM cancel."""
    proc = start(slow_work, fast_env)
    _, holder = wait_annotated(s3_client(s3.url), bucket_name)
    for sig in signals:
        proc.send_signal(sig)
        time.sleep(0.5)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "Two interrupts" not in out + err and "Interrupt received" in out
    assert no_lock(s3, bucket_name)
    assert (
        not psutil.pid_exists(holder.terraform_pid)
        or psutil.Process(holder.terraform_pid).status() == "zombie"
    )


def test_sigint_to_tfwrap_process_group_gives_one_interrupt(
    slow_work: Path, fast_env: dict[str, str], s3: S3Server, bucket_name: str
) -> None:
    """A CI runner that signals the job's whole process group (not Terraform's own)."""
    proc = subprocess.Popen(
        APPLY,
        cwd=slow_work,
        env=fast_env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    _, holder = wait_annotated(s3_client(s3.url), bucket_name)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Two interrupts" not in out + err and "Interrupt received" in out
    assert no_lock(s3, bucket_name) and not left_behind(holder.terraform_pid)


def pty_run(
    argv: list[str], cwd: Path, env: dict[str, str], respond: Callable[[str], bytes | None]
) -> tuple[int, str]:
    """Run argv as the foreground job of a new terminal; type what ``respond(output so far)``
    returns, once, as soon as it returns something."""
    pid, master = pty.fork()
    if pid == 0:
        os.chdir(cwd)
        os.execvpe(argv[0], argv, env)
    output, typed = b"", False
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if not typed and (keys := respond(output.decode(errors="replace"))):
                os.write(master, keys)
                typed = True
            ready, _, _ = select.select([master], [], [], 0.2)
            if not ready:
                continue
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(master)
    return os.waitstatus_to_exitcode(status), output.decode(errors="replace")


def test_interactive_apply_prompt_and_colours_work_under_supervision(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str]
) -> None:
    make_bucket(s3.url, bucket_name)
    work = write_config(tmp_path / "work", s3.url, bucket_name)
    assert run(["terraform", "init", "-no-color"], work, env).returncode == 0
    code, text = pty_run(
        ["terraform", "apply"], work, env, lambda out: b"yes\n" if "Enter a value:" in out else None
    )
    assert code == 0, text
    assert "Do you want to perform these actions?" in text and "Apply complete!" in text
    assert "\x1b[" in text  # colours: Terraform saw a terminal
    assert no_lock(s3, bucket_name)


def test_ctrl_c_in_a_terminal_reaches_terraform_once(
    slow_work: Path, fast_env: dict[str, str], s3: S3Server, bucket_name: str
) -> None:
    client = s3_client(s3.url)

    def ctrl_c_once_annotated(_: str) -> bytes | None:
        lock = read_lock(client, bucket_name)
        annotated = lock is not None and lock[0].get("Info", "").startswith("tfwrap ")
        return b"\x03" if annotated else None  # the terminal sends SIGINT to its foreground group

    code, text = pty_run(APPLY, slow_work, fast_env, ctrl_c_once_annotated)
    assert "Interrupt received" in text and "Two interrupts" not in text, text
    assert code == 1  # Terraform's own status after an interrupt, as direct
    assert no_lock(s3, bucket_name)


def test_terraform_killed_mid_apply_lock_removed_before_tfwrap_exits(
    slow_work: Path, fast_env: dict[str, str], s3: S3Server, bucket_name: str
) -> None:
    proc = start(slow_work, fast_env)
    lock, holder = wait_annotated(s3_client(s3.url), bucket_name)
    os.kill(holder.terraform_pid, signal.SIGKILL)
    # Removed by tfwrap itself, before it exits: not by a lease running out (how fast is a
    # timing claim, measured by tests/benchmark.py).
    _, err = proc.communicate(timeout=30)
    assert no_lock(s3, bucket_name)
    assert proc.returncode == 137
    assert not left_behind(holder.terraform_pid)
    assert f"removed its lock {lock['ID']} from S3" in err


def test_tfwrap_killed_terraform_stops_gracefully_and_releases(
    slow_work: Path, fast_env: dict[str, str], s3: S3Server, bucket_name: str
) -> None:
    proc = start(slow_work, fast_env)
    _, holder = wait_annotated(s3_client(s3.url), bucket_name)
    proc.kill()
    # The pipes stay open until Terraform and the keeper let go of them: their last words too.
    out, err = proc.communicate(timeout=60)
    wait_for(lambda: no_lock(s3, bucket_name), 30)
    wait_for(lambda: not psutil.pid_exists(holder.terraform_pid), 30)
    # Gracefully: one interrupt (PR_SET_PDEATHSIG's SIGTERM), and Terraform released its lock
    # itself; a Terraform killed, or one that left the removal to tfwrap, fails here.
    assert "Gracefully shutting down" in out, out
    assert "Two interrupts" not in out + err
    said = [line for line in err.splitlines() if line.startswith("tfwrap: ")]
    assert not [line for line in said if "removed its lock" in line or "kill" in line], err


def test_terraform_that_will_not_stop_is_killed_after_grace(
    slow_work: Path, fast_env: dict[str, str], s3: S3Server, bucket_name: str
) -> None:
    env = {**fast_env, "TFWRAP_GRACE_SECONDS": "1"}
    proc = start(slow_work, env)
    _, holder = wait_annotated(s3_client(s3.url), bucket_name)
    tree = [
        holder.terraform_pid,
        *(c.pid for c in psutil.Process(holder.terraform_pid).children(recursive=True)),
    ]
    os.kill(holder.terraform_pid, signal.SIGSTOP)  # a Terraform that cannot react
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert no_lock(s3, bucket_name)
    for pid in tree:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"


def test_a_terraform_status_tfwrap_cannot_read_is_never_success(tmp_path: Path) -> None:
    """Fail closed: when Terraform's status is lost (another waiter reaped it), tfwrap does not
    report 0, whether it was waiting for it or looking it up after its own failure."""
    code = (
        "import os, sys\n"
        "from tfwrap.terraform.child import Child\n"
        "for how in ('wait', 'final'):\n"
        "    c = Child('/bin/sh', ['-c', 'exit 3'], dict(os.environ), terminal=False)\n"
        "    os.waitpid(c.pid, 0)  # reaped behind tfwrap's back: the 3 is gone\n"
        "    print(c.wait(grace=1) if how == 'wait' else c.final_status())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path, timeout=60
    )
    statuses = [int(s) for s in out.stdout.split()]
    assert len(statuses) == 2 and 0 not in statuses, out
    assert "exit status is unknown" in out.stderr


def test_the_keepers_report_is_a_typed_versioned_message() -> None:
    from tfwrap.supervise.keeper import KeeperReport

    sent = KeeperReport(attempted="a", locked="a", mode="S3 Native only", annotations=3, has_locks=True)
    assert KeeperReport.decode(sent.encode()) == sent
    import json

    wire = json.loads(sent.encode())
    assert wire["version"] == KeeperReport.VERSION and set(wire) == {"version", *KeeperReport.FIELDS}
    # Another version, a renamed or missing field, a wrong type: not read as a report at all.
    for broken in (
        {**wire, "version": KeeperReport.VERSION + 1},
        {k: v for k, v in wire.items() if k != "locked"},
        {**{k: v for k, v in wire.items() if k != "locked"}, "locked_id": "a"},
        {**wire, "annotations": "3"},
    ):
        assert KeeperReport.decode(json.dumps(broken).encode()) is None
    assert KeeperReport.decode(b"\xff not json") is None
