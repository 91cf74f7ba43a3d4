"""The sh shim tells shims apart by file identity, never by reading a binary.

dash reads one byte per read(2): the old shim read two lines of every candidate on PATH,
about 8,500 system calls for a C binary, 6,300 for the Go Terraform. These tests count the
read calls the kernel saw, and walk every layout the shim must survive: twice on PATH,
symlinked, two or three installs, TFWRAP_TERRAFORM naming a shim, and a version manager's
shim (tfenv-style bash script) in front of the real engine.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from tests.support.world import Tools, make_bucket, run, write_config
from tfwrap.demo.server import S3Server

pytestmark = pytest.mark.shim

HEAD = shutil.which("head") or "/usr/bin/head"


def copy_of(shim: Path, where: Path) -> Path:
    """Another install's shim: the same text in another file (another inode)."""
    where.mkdir(parents=True, exist_ok=True)
    copy = where / "terraform"
    copy.write_bytes(shim.read_bytes())
    copy.chmod(0o755)
    return copy


def link_to(target: Path, where: Path) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    (where / "terraform").symlink_to(target)
    return where / "terraform"


def fake_real(where: Path) -> Path:
    """A "real" terraform that says how deep in shims it runs (what the engine cannot show)."""
    where.mkdir(parents=True, exist_ok=True)
    exe = where / "terraform"
    exe.write_text('#!/bin/sh\necho "real depth=$TFWRAP_DEPTH args=$*"\n')
    exe.chmod(0o755)
    return exe


def read_calls(stdout: str) -> int:
    found = re.search(r"^syscr: (\d+)$", stdout, re.MULTILINE)
    assert found, stdout
    return int(found.group(1))


def layouts(tools: Tools, tmp: Path) -> dict[str, list[Path]]:
    """PATH directories in front of the real binary, for each layout the shim must survive."""
    shim = tools.shim_dir / "terraform"
    return {
        "once": [tools.shim_dir],
        "twice, and through a symlink": [
            tools.shim_dir,
            link_to(shim, tmp / "link").parent,
            tools.shim_dir,
        ],
        "two installs": [tools.shim_dir, copy_of(shim, tmp / "other").parent],
        "three installs, the last first": [
            copy_of(shim, tmp / "third").parent,
            tools.shim_dir,
            link_to(copy_of(shim, tmp / "second"), tmp / "second-link").parent,
        ],
    }


LAYOUTS = ["once", "twice, and through a symlink", "two installs", "three installs, the last first"]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_pass_through_reads_no_foreign_binary(tmp_path: Path, tools: Tools, layout: str) -> None:
    """The kernel's count of read(2) calls: the shim adds a few dozen, not thousands.

    The real binary is a copy of `head` (a C binary whose first newlines lie thousands of
    bytes in). `-v` is a help flag, so the shim execs it at once; `head -v /proc/self/io`
    then prints the read calls this process made, the shim's included (exec keeps the pid).
    """
    real = tmp_path / "real" / "terraform"
    real.parent.mkdir()
    shutil.copy(HEAD, real)
    dirs = layouts(tools, tmp_path)[layout]
    env = {**os.environ, "PATH": os.pathsep.join([*map(str, dirs), str(real.parent), "/usr/bin", "/bin"])}
    direct = run([str(real), "-v", "/proc/self/io"], tmp_path, env)
    through = run(["terraform", "-v", "/proc/self/io"], tmp_path, env)
    assert direct.returncode == 0 and through.returncode == 0, through.stderr
    assert "==> /proc/self/io <==" in through.stdout  # it was head that answered
    # Reading two lines of `head` byte by byte costs thousands; dash reading its own script
    # costs a handful per shim in the chain.
    assert read_calls(through.stdout) - read_calls(direct.stdout) < 100, (layout, through.stdout)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_layout_reaches_the_real_engine(tmp_path: Path, tools: Tools, layout: str) -> None:
    dirs = layouts(tools, tmp_path)[layout]
    env = {**os.environ, "PATH": tools.path(*dirs)}
    result = run(["terraform", "version"], tmp_path, env, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Terraform v1.15.5")


@pytest.mark.parametrize("layout", LAYOUTS)
def test_checked_path_runs_the_real_binary_once_never_another_shim(
    tmp_path: Path, tools: Tools, layout: str
) -> None:
    """Python reads 512 bytes and skips another install's shim the sh shim handed over, so
    a checked command is checked and supervised once (depth 1), not once per install."""
    dirs = layouts(tools, tmp_path)[layout]
    real = fake_real(tmp_path / "real")
    work = tmp_path / "work"
    work.mkdir()
    (work / ".tfwrap.toml").write_text('mode = "off"\n')  # through Python, then handed over
    env = {**os.environ, "PATH": os.pathsep.join([*map(str, dirs), str(real.parent), "/usr/bin", "/bin"])}
    result = run(["terraform", "plan", "-input=false"], work, env, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "real depth=1 args=plan -input=false\n"


@pytest.mark.parametrize("how", ["itself", "a symlink to it", "another install's copy"])
@pytest.mark.parametrize("command", ["version", "plan"])
def test_tfwrap_terraform_naming_a_shim_exits_84(
    tmp_path: Path, tools: Tools, how: str, command: str
) -> None:
    shim = tools.shim_dir / "terraform"
    named = {
        "itself": lambda: shim,
        "a symlink to it": lambda: link_to(shim, tmp_path / "link"),
        "another install's copy": lambda: copy_of(shim, tmp_path / "copy"),
    }[how]()
    fake_real(tmp_path / "real")  # on PATH, so a shim that ignored the setting would find it
    path = os.pathsep.join([str(tools.shim_dir), str(tmp_path / "real"), "/usr/bin", "/bin"])
    env = {**os.environ, "PATH": path, "TFWRAP_TERRAFORM": str(named)}
    result = run(["terraform", command], tmp_path, env, timeout=30)
    assert result.returncode == 84, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("tfwrap: ") and "is a tfwrap shim" in lines[0]


TFENV_SHIM = """#!/usr/bin/env bash
# A tfenv-style shim: pick the version, then exec that version's terraform.
set -euo pipefail
TFENV_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version="$(cat "${TFENV_ROOT}/version")"
exec "${TFENV_ROOT}/versions/${version}/terraform" "$@"
"""

TFENV = """#!/usr/bin/env bash
# tfenv's own command, as much of it as `tfwrap shim status` asks: version-name.
set -euo pipefail
[ "$1" = version-name ] || exit 1
cat "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/version"
"""


def tfenv(tmp: Path, engine: Path) -> Path:
    """~/.tfenv with the real engine as version 1.15.5; its bin directory."""
    root = tmp / ".tfenv"
    (root / "bin").mkdir(parents=True)
    (root / "versions" / "1.15.5").mkdir(parents=True)
    (root / "versions" / "1.15.5" / "terraform").symlink_to(engine)
    (root / "version").write_text("1.15.5\n")
    for name, text in (("terraform", TFENV_SHIM), ("tfenv", TFENV)):
        script = root / "bin" / name
        script.write_text(text)
        script.chmod(0o755)
    return root / "bin"


def test_version_manager_shim_in_front_of_the_engine_runs_normally(
    tmp_path: Path, tools: Tools, env: dict[str, str], s3: S3Server, bucket_name: str
) -> None:
    bin_dir = tfenv(tmp_path, tools.engine.resolve())
    # The engine is reachable only through tfenv's shim.
    path = os.pathsep.join([str(tools.shim_dir), str(bin_dir), "/usr/bin", "/bin"])
    user = {**env, "PATH": path}
    assert run(["terraform", "version"], tmp_path, user).stdout.startswith("Terraform v1.15.5")

    make_bucket(s3.url, bucket_name)
    work = write_config(tmp_path / "work", s3.url, bucket_name)
    for argv in (["init", "-input=false"], ["apply", "-auto-approve", "-input=false"]):
        result = run(["terraform", *argv, "-no-color"], work, user)
        assert result.returncode == 0, (argv, result.stderr)
    assert "Apply complete!" in result.stdout

    status = run([str(tools.shim_dir / "tfwrap"), "shim", "status"], tmp_path, user)
    assert status.returncode == 0, status.stdout + status.stderr
    assert f"real:        {bin_dir}/terraform (first non-shim on PATH)" in status.stdout
    assert f"through:     tfenv's shim {bin_dir}/terraform" in status.stdout
    assert f"binary:      {bin_dir.parent}/versions/1.15.5/terraform" in status.stdout
    assert "version:     1.15.5" in status.stdout
    assert "shim wins:   yes" in status.stdout
