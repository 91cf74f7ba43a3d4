"""What a newcomer meets in the first hour of the ``tfwrap`` command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.world import make_bucket, make_table, run, write_config
from tfwrap import __version__
from tfwrap.demo.server import S3Server

TFWRAP = [sys.executable, "-m", "tfwrap"]


def tfwrap(cwd: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    import os

    return run([*TFWRAP, *args], cwd, {**os.environ, **extra})


def test_bare_tfwrap_prints_help_and_exits_0(tmp_path: Path) -> None:
    bare = tfwrap(tmp_path)
    assert bare.returncode == 0, bare.stderr
    assert bare.stdout.startswith("Usage: tfwrap") and bare.stderr == ""
    assert "-h, --help" in bare.stdout and "_TFWRAP_COMPLETE=bash_source" in bare.stdout


def test_every_summary_is_one_whole_line(tmp_path: Path) -> None:
    for command in ([], ["lock"], ["shim"], ["migrate"]):
        shown = tfwrap(tmp_path, *command, "--help", COLUMNS="80")
        assert shown.returncode == 0, shown.stderr
        listed = shown.stdout.split("Commands:\n", 1)[1].split("\n\n", 1)[0].splitlines()
        assert listed, shown.stdout
        for row in listed:
            assert row.startswith("  ") and not row.startswith("   "), row  # one line per command
            assert row.rstrip().endswith(".") and not row.rstrip().endswith("..."), row


def test_version_command_and_option_agree(tmp_path: Path) -> None:
    command = tfwrap(tmp_path, "version")
    option = tfwrap(tmp_path, "--version")
    assert command.returncode == option.returncode == 0
    assert command.stdout == option.stdout == f"tfwrap, version {__version__}\n"


def test_completion_script_is_served(tmp_path: Path) -> None:
    script = tfwrap(tmp_path, _TFWRAP_COMPLETE="bash_source")
    assert script.returncode == 0 and "complete " in script.stdout and "_tfwrap_completion" in script.stdout


def on_a_terminal(code: str, **extra: str) -> str:
    """What ``python -c code`` writes to stderr when stderr is a terminal."""
    import os

    master, slave = os.openpty()
    try:
        subprocess.run(
            [sys.executable, "-c", code], stderr=slave, env={**os.environ, **extra}, timeout=60, check=True
        )
        os.close(slave)
        chunks = []
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the other side is closed and drained
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(master)
    return b"".join(chunks).decode(errors="replace")


def test_no_color_turns_colour_off_on_a_terminal() -> None:
    code = "from tfwrap import log; log.warning('checked backend', bucket='b')"
    coloured = on_a_terminal(code, TFWRAP_LOG_LEVEL="debug")
    assert "checked backend" in coloured and "\x1b[" in coloured  # a terminal gets colour...
    plain = on_a_terminal(code, TFWRAP_LOG_LEVEL="debug", NO_COLOR="1")
    assert "checked backend" in plain and "\x1b[" not in plain  # ...unless NO_COLOR is set


def test_migrate_status_without_a_backend_says_one_thing(tmp_path: Path) -> None:
    (tmp_path / "main.tf").write_text('resource "terraform_data" "x" {}\n')
    text = tfwrap(tmp_path, "migrate", "status")
    assert text.returncode == 0, text.stderr
    why = "the backend is local, not s3: nothing to migrate"
    assert text.stdout == f"backend: none (local state)\nnext: nothing to do ({why})\n"
    doc = json.loads(tfwrap(tmp_path, "migrate", "status", "--json").stdout)
    assert doc["schema_version"] == 1 and doc["next"] is None


@pytest.mark.engine
def test_check_json_has_schema_version_and_each_finding_its_file_and_line(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str]
) -> None:
    make_bucket(s3.url, bucket_name, object_lock=False)
    table = make_table(s3.url, f"{bucket_name}-locks")
    work = write_config(tmp_path / "work", s3.url, bucket_name, use_lockfile=None, dynamodb_table=table)
    done = run(["tfwrap", "check", "--json"], work, env)
    assert done.returncode == 80, done.stderr
    doc = json.loads(done.stdout)
    assert doc["schema_version"] == 1
    lines = (work / "backend.tf").read_text().splitlines()
    by_id = {f["id"]: f for f in doc["findings"]}
    assert set(by_id) >= {"locking-dynamodb-only", "bucket-object-lock"}, by_id
    table_at = by_id["locking-dynamodb-only"]
    assert table_at["file"] == "backend.tf" and "dynamodb_table" in lines[table_at["line"] - 1]
    block_at = by_id["bucket-object-lock"]
    assert block_at["file"] == "backend.tf" and 'backend "s3"' in lines[block_at["line"] - 1]
    lock = json.loads(run(["tfwrap", "lock", "status", "--json"], work, env).stdout)
    assert lock["schema_version"] == 1
