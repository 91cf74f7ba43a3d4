"""Edges of the guard found by reading and attacking it : values
Terraform refuses, settings out of range, the cache directory, the cache key, Ctrl-C, logs."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from tests.support.world import make_bucket, run, write_config
from tfwrap.backend.config import BackendConfig
from tfwrap.demo.server import S3Server

pytestmark = [pytest.mark.shim]
QUIET = ["-no-color", "-input=false"]


def one_line(result: subprocess.CompletedProcess[str], code: int) -> str:
    """Assert a one-line refusal with ``code`` and nothing on stdout; return the line."""
    assert result.returncode == code, (result.returncode, result.stderr)
    assert result.stdout == ""
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("tfwrap: ") and "Traceback" not in result.stderr
    return lines[0]


# --- settings Terraform refuses: one line, exit 82, no AWS call ------------


@pytest.mark.parametrize("value", ["1e999", "inf", "nan", "-1", "0", "1e9"])
def test_heartbeat_seconds_out_of_range_is_81(tmp_path: Path, env: dict[str, str], value: str) -> None:
    line = one_line(run(["terraform", "plan"], tmp_path, {**env, "TFWRAP_HEARTBEAT_SECONDS": value}), 81)
    assert f"TFWRAP_HEARTBEAT_SECONDS = {value!r}" in line and "must be a number" in line


@pytest.mark.parametrize(
    ("heartbeat", "intervals"),
    [("0.4", "1"), ("1", "2"), ("0.4", "5"), ("10", "2")],  # leases 0, 2, 2 and 20 s
)
def test_a_lease_too_short_to_tell_a_live_holder_is_81(
    tmp_path: Path, env: dict[str, str], heartbeat: str, intervals: str
) -> None:
    """A lease must outlast one missed renewal and the store's one-second clock: at least
    2 x heartbeat + 1 s, and never under 3 s (docs/decisions/020-lease-floor.md)."""
    short = {**env, "TFWRAP_HEARTBEAT_SECONDS": heartbeat, "TFWRAP_LEASE_INTERVALS": intervals}
    line = one_line(run(["terraform", "plan"], tmp_path, short), 81)
    assert "lease" in line and "TFWRAP_LEASE_INTERVALS" in line


def test_the_shortest_lease_allowed_runs(tmp_path: Path, env: dict[str, str]) -> None:
    fine = {**env, "TFWRAP_HEARTBEAT_SECONDS": "1", "TFWRAP_LEASE_INTERVALS": "3"}
    assert run(["terraform", "plan"], tmp_path, fine).returncode != 81


def test_lease_in_policy_file_must_be_finite(tmp_path: Path, env: dict[str, str]) -> None:
    (tmp_path / ".tfwrap.toml").write_text("lease_intervals = inf\n")
    line = one_line(run(["terraform", "plan"], tmp_path, env), 81)
    assert "lease_intervals = inf" in line


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ('bucket = ""\n    key = "a/t.tfstate"', "bucket is empty in backend.tf, which Terraform refuses"),
        (
            'bucket = var.b\n    key = "a/t.tfstate"',
            "bucket = ${var.b} in backend.tf: a backend block takes literal values only",
        ),
        ('bucket = "x"\n    key = "${var.b}/t.tfstate"', "key = ${var.b}/t.tfstate in backend.tf"),
    ],
)
def test_empty_or_variable_bucket_is_one_line_and_82(
    tmp_path: Path, env: dict[str, str], settings: str, expected: str
) -> None:
    # The endpoint is a dead port: an AWS call would show up as a finding, not as exit 82.
    (tmp_path / "backend.tf").write_text(
        'terraform {\n  backend "s3" {\n    ' + settings + '\n    region = "us-east-1"\n'
        '    use_lockfile = true\n  }\n}\nvariable "b" {}\n'
    )
    for command in (["terraform", "init", *QUIET], ["terraform", "plan", *QUIET]):
        line = one_line(run(command, tmp_path, env), 82)
        assert expected in line, line
    checked = run(["tfwrap", "check", "-chdir", str(tmp_path)], tmp_path, env)
    assert checked.returncode == 82 and expected in checked.stderr
    assert "ParamValidationError" not in checked.stdout + checked.stderr


def test_use_lockfile_maybe_is_not_a_bool(
    tmp_path: Path, env: dict[str, str], s3: S3Server, bucket_name: str
) -> None:
    make_bucket(s3.url, bucket_name)
    work = write_config(tmp_path / "work", s3.url, bucket_name, use_lockfile="maybe")
    result = run(["terraform", "init", *QUIET], work, env)
    assert result.returncode == 80
    line = next(ln for ln in result.stderr.splitlines() if "[locking-none]" in ln)
    assert "use_lockfile = 'maybe' is not a bool, which Terraform will refuse" in line
    assert "neither use_lockfile nor dynamodb_table" not in result.stderr


def test_chdir_to_nowhere_stays_82(tmp_path: Path, env: dict[str, str]) -> None:
    line = one_line(run(["terraform", "-chdir=/nonexistent", "plan"], tmp_path, env), 82)
    assert "/nonexistent" in line


# --- shared_credentials_files: every file, later ones winning ------------------


def test_every_shared_credentials_file_is_read(tmp_path: Path) -> None:
    from tfwrap.aws import clients

    first, second = tmp_path / "first", tmp_path / "second"
    first.write_text("[other]\naws_access_key_id = AKIAOTHER\naws_secret_access_key = s1\n")
    second.write_text("[team]\naws_access_key_id = AKIATEAM\naws_secret_access_key = s2\n")

    def backend(**settings: object) -> BackendConfig:
        return BackendConfig(tmp_path, tmp_path / ".terraform", "default", "s3", dict(settings))

    files = [str(first), str(tmp_path / "missing"), str(second)]
    creds = clients.session(backend(shared_credentials_files=files, profile="team")).get_credentials()
    assert creds is not None and creds.access_key == "AKIATEAM"  # found in the last file only

    first.write_text("[team]\naws_access_key_id = AKIAEARLY\naws_secret_access_key = s0\n")
    creds = clients.session(backend(shared_credentials_files=files, profile="team")).get_credentials()
    assert creds is not None and creds.access_key == "AKIATEAM"  # a later file wins, as in the Go SDK


# --- the cache directory ------------------------------------------------------


def _plant(folder: Path, victim: Path) -> list[Path]:
    """Symlinks named as every file tfwrap <= 0.1 wrote in the cache (this pid's temp files)."""
    planted = []
    for kind in ("verdict", "config", "bucket", "version"):
        for name in (f".{kind}-k.{os.getpid()}.tmp", f"{kind}-k.cache"):
            link = folder / name
            link.symlink_to(victim)
            planted.append(link)
    return planted


def test_cache_in_a_directory_others_can_write_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tfwrap.findings import cache

    folder = tmp_path / "shared-cache"
    folder.mkdir()
    folder.chmod(0o777)
    victim = tmp_path / "victim"
    victim.write_text("precious")
    _plant(folder, victim)
    monkeypatch.setenv("TFWRAP_CACHE_DIR", str(folder))
    monkeypatch.setattr(cache, "_warned", False)
    cache.put("verdict", "k", {"s3": True})
    cache.put("config", "k", {"a": 1})
    assert cache.get("verdict", "k") is None
    assert victim.read_text() == "precious"
    warning = capsys.readouterr().err
    assert warning.count("tfwrap: warning: cache directory") == 1 and "writable by others" in warning
    assert f"chmod 700 {folder}" in warning


def test_cache_directory_of_another_user_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tfwrap.findings import cache

    folder = tmp_path / "theirs"
    folder.mkdir(mode=0o700)
    monkeypatch.setenv("TFWRAP_CACHE_DIR", str(folder))
    monkeypatch.setattr(cache, "_warned", False)
    real_uid = os.getuid()
    monkeypatch.setattr(os, "getuid", lambda: real_uid + 4242)  # the directory is now someone else's
    cache.put("verdict", "k", {"s3": True})
    assert list(folder.iterdir()) == []
    assert "owned by another user" in capsys.readouterr().err


def test_planted_symlinks_in_a_private_cache_are_never_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tfwrap.findings import cache

    folder = tmp_path / "cache"
    folder.mkdir(mode=0o700)
    victim = tmp_path / "victim"
    victim.write_text("precious")
    planted = _plant(folder, victim)  # e.g. left from a time the directory was open to others
    monkeypatch.setenv("TFWRAP_CACHE_DIR", str(folder))
    for kind in ("verdict", "config", "bucket", "version"):
        assert cache.get(kind, "k") is None  # a symlink is not read through
        cache.put(kind, "k", {"kind": kind})
        assert cache.get(kind, "k")["kind"] == kind
    assert victim.read_text() == "precious"
    assert all(not p.is_symlink() for p in planted if p.name.endswith(".cache"))
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp") and not p.is_symlink()]


def test_shim_runs_cold_when_the_cache_directory_is_open_to_others(
    tmp_path: Path, env: dict[str, str], s3: S3Server, bucket_name: str
) -> None:
    make_bucket(s3.url, bucket_name)
    work = write_config(tmp_path / "work", s3.url, bucket_name)
    open_dir = tmp_path / "xdg" / "tfwrap"
    open_dir.mkdir(parents=True)
    open_dir.chmod(0o777)
    victim = tmp_path / "victim"
    victim.write_text("precious")
    env = {k: v for k, v in env.items() if k != "TFWRAP_CACHE_DIR"}
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    result = run(["terraform", "init", *QUIET], work, env)
    assert result.returncode == 0, result.stderr
    assert "cache directory" in result.stderr and "writable by others" in result.stderr
    assert list(open_dir.iterdir()) == [] and victim.read_text() == "precious"


# --- the config cache key and -backend-config FILE ----------------------------


@pytest.mark.parametrize("form", ["space", "equals"])
def test_editing_a_backend_config_file_is_seen_whichever_way_it_is_passed(
    tmp_path: Path, env: dict[str, str], s3: S3Server, bucket_name: str, form: str
) -> None:
    make_bucket(s3.url, bucket_name)
    write_config(tmp_path, s3.url, bucket_name)
    backend_tf = tmp_path / "backend.tf"
    backend_tf.write_text(backend_tf.read_text().replace("    use_lockfile = true\n", ""))
    extra = tmp_path / "locking.hcl"
    extra.write_text("use_lockfile = false\n")
    args = ["-backend-config", "locking.hcl"] if form == "space" else ["-backend-config=locking.hcl"]
    command = ["terraform", "init", *QUIET, *args]
    blocked = run(command, tmp_path, env)  # stopped before Terraform: nothing else changes
    assert blocked.returncode == 80 and "[locking-none]" in blocked.stderr, blocked.stderr
    extra.write_text("use_lockfile = true\n")  # fixed: the cached configuration must not be used
    fixed = run(command, tmp_path, env)
    assert fixed.returncode == 0, fixed.stderr
    assert "[locking-none]" not in fixed.stderr


# --- Ctrl-C during a cold check -------------------------------------------------


def test_ctrl_c_during_a_cold_check_is_one_line_and_130(
    tmp_path: Path, env: dict[str, str], bucket_name: str
) -> None:
    # An S3 endpoint that accepts and never answers: the check waits inside its read time-out.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        silent.settimeout(30)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        work = write_config(tmp_path / "work", url, bucket_name)
        proc = subprocess.Popen(
            ["terraform", "plan", *QUIET],
            cwd=work,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            conn, _ = silent.accept()  # the check is now waiting for S3
            with conn:
                os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
                out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 130, err
    assert out == "" and "Traceback" not in err and "KeyboardInterrupt" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines == ["tfwrap: interrupted during the backend check; Terraform was not started"]


# --- the promised debug trace, in JSON too --------------------------------------


def test_internal_error_logs_its_trace_in_json(tmp_path: Path, env: dict[str, str]) -> None:
    data = tmp_path / ".terraform"
    data.mkdir()
    # A damaged initialised copy (endpoints must be an object) trips an internal error.
    (data / "terraform.tfstate").write_text(
        json.dumps(
            {
                "version": 3,
                "backend": {
                    "type": "s3",
                    "config": {"bucket": "b", "key": "k", "region": "us-east-1", "endpoints": "oops"},
                },
            }
        )
    )
    noisy = {**env, "TFWRAP_LOG_FORMAT": "json", "TFWRAP_LOG_LEVEL": "debug"}
    result = run(["terraform", "plan", *QUIET], tmp_path, noisy)
    assert result.returncode == 85, result.stderr
    events = [json.loads(ln) for ln in result.stderr.splitlines() if ln.startswith("{")]
    error = next(e for e in events if e["event"] == "internal error")
    assert "exc_info" not in error
    assert error["exception"].startswith("Traceback (most recent call last):")
    assert "AttributeError" in error["exception"]
    assert result.stderr.splitlines()[-1].startswith("tfwrap: internal error (AttributeError")


# --- a closed stderr (cron, daemons, some CI agents) ----------------------------------------


def test_a_refusal_with_stderr_closed_still_exits_with_its_code(tmp_path: Path, env: dict[str, str]) -> None:
    result = run(["sh", "-c", "terraform plan 2>&-"], tmp_path, {**env, "TFWRAP_MODE": "bogus"})
    assert result.returncode == 81 and result.stdout == ""


def test_a_supervised_apply_with_stderr_closed_behaves_as_terraform_does(
    tmp_path: Path, env: dict[str, str], s3: S3Server, bucket_name: str, tf_direct: str
) -> None:
    make_bucket(s3.url, bucket_name)
    work = write_config(tmp_path / "work", s3.url, bucket_name)
    assert run(["terraform", "init", *QUIET], work, env).returncode == 0
    direct = run(["sh", "-c", f'"{tf_direct}" apply -auto-approve {" ".join(QUIET)} 2>&-'], work, env)
    assert direct.returncode == 0, direct.stdout
    shimmed = run(["sh", "-c", f"terraform apply -auto-approve {' '.join(QUIET)} 2>&-"], work, env)
    assert shimmed.returncode == 0, shimmed.stdout
    assert "Apply complete!" in shimmed.stdout


def test_a_prefetch_interrupted_while_read_is_discarded_without_closing_its_fd_twice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ctrl-C 0.15-0.3 s into a cold check landed in the prefetch's read: the pipe was already
    closed, and discarding it closed the same fd again (exit 85, "Bad file descriptor")."""
    from tfwrap.checks import prefetch as prefetching

    read_end, write_end = os.pipe()
    os.close(write_end)
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    prefetch = prefetching.Prefetch.__new__(prefetching.Prefetch)
    prefetch.fd, prefetch.pid, prefetch.probed = read_end, pid, None
    prefetch._found, prefetch._done = None, False
    real_waitpid = os.waitpid
    calls = []

    def interrupted(*args: object) -> object:
        if not calls:
            calls.append(1)
            raise KeyboardInterrupt  # the Ctrl-C, after the pipe was read and closed
        return real_waitpid(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(prefetching.os, "waitpid", interrupted)
    with pytest.raises(KeyboardInterrupt):
        prefetch.result("k")
    reused, spare = os.pipe()  # the freed fd number is likely reused by now: must stay open
    prefetch.discard()
    os.fstat(reused)
    os.close(reused)
    os.close(spare)
