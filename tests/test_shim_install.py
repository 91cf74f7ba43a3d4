"""Placing the shim is an explicit act: pip installs no ``terraform``, and
``tfwrap shim install|uninstall`` never touch a ``terraform`` that is not a tfwrap shim."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.world import Tools, make_bucket, run, write_config
from tests.test_install import install_env
from tfwrap.demo.server import S3Server

pytestmark = pytest.mark.shim

REPO = Path(__file__).resolve().parent.parent
TFWRAP = Path(sys.prefix) / "bin" / "tfwrap"
REAL = "#!/bin/sh\necho REAL\n"


def source_copy(where: Path) -> Path:
    """The checkout as pip sees it (no build/ or .venv of ours)."""
    where.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md", "tfwrap"):
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, where / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, where / name)
    return where


def foreign_terraform(where: Path) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    exe = where / "terraform"
    exe.write_text(REAL)
    exe.chmod(0o755)
    return exe


def tfwrap(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run([str(TFWRAP), *args], cwd, env)


def one_line(result: subprocess.CompletedProcess[str], code: int) -> str:
    assert result.returncode == code, (result.returncode, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("tfwrap: ") and "Traceback" not in lines[0], result.stderr
    return lines[0]


def test_pip_install_keeps_a_real_terraform(tmp_path: Path) -> None:
    """The issue's reproduction: a venv whose bin holds a real terraform, then `pip install .`."""
    home = tmp_path / "home"  # made by the autouse `isolated` fixture
    env = install_env(home)
    venv = tmp_path / "v"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], env=env, check=True, timeout=300)
    real = foreign_terraform(venv / "bin")
    src = source_copy(tmp_path / "src")

    pip = subprocess.run(
        [
            str(venv / "bin" / "pip"),
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            str(src),
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    assert pip.returncode == 0, pip.stderr
    assert (venv / "bin" / "tfwrap").is_file()  # it did install
    assert real.read_text() == REAL
    assert subprocess.run([str(real)], capture_output=True, text=True, check=True).stdout == "REAL\n"
    # Nothing else named terraform anywhere in the venv but the package's own template.
    found = {p.relative_to(venv) for p in venv.rglob("terraform") if p.is_file()}
    assert {p for p in found if p.parts[-2] != "shim"} == {Path("bin/terraform")}, found


def test_shim_install_refuses_a_foreign_terraform(tmp_path: Path) -> None:
    real = foreign_terraform(tmp_path / "bin")
    elsewhere = foreign_terraform(tmp_path / "elsewhere")
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "terraform").symlink_to(elsewhere)
    directory = tmp_path / "dir"
    (directory / "terraform").mkdir(parents=True)
    for where, foreign in (
        (real.parent, real),
        (linked, linked / "terraform"),
        (directory, directory / "terraform"),
    ):
        for command in ("install", "uninstall"):
            line = one_line(tfwrap("shim", command, "--dir", str(where), cwd=tmp_path), 87)
            assert f"{foreign} exists and is not a tfwrap shim" in line
            assert "--dir" in line  # the fix
    assert real.read_text() == REAL and elsewhere.read_text() == REAL
    assert os.readlink(linked / "terraform") == str(elsewhere)
    assert sorted(p.name for p in real.parent.iterdir()) == ["terraform"]  # no temp file left


def test_shim_install_anywhere_then_uninstall(tmp_path: Path, tools: Tools) -> None:
    where = tmp_path / "some" / "bin"  # does not exist yet
    placed = tfwrap("shim", "install", "--dir", str(where), cwd=tmp_path)
    assert placed.returncode == 0, placed.stderr
    assert f"placed the terraform shim at {where}/terraform" in placed.stderr
    shim = where / "terraform"
    text = shim.read_text()
    assert text.splitlines()[1].startswith("# tfwrap-shim ")
    assert f"tfwrap_python='{sys.executable}'" in text.splitlines()
    assert os.access(shim, os.X_OK)

    # The checked path finds tfwrap's Python from a directory that is not a venv's bin, as a
    # plain file (no symlink to resolve), even copied somewhere else.
    copied = tmp_path / "copied"
    copied.mkdir()
    shutil.copy(shim, copied / "terraform")
    work = tmp_path / "work"
    work.mkdir()
    (work / ".tfwrap.toml").write_text('mode = "off"\n')
    for directory in (where, copied):
        env = {**os.environ, "PATH": tools.path(directory)}
        result = run(["terraform", "plan", "-input=false", "-no-color"], work, env)
        assert "cannot find tfwrap's Python" not in result.stderr
        assert "No configuration files" in result.stderr, result.stderr  # the engine answered

    again = tfwrap("shim", "install", "--dir", str(where), cwd=tmp_path)
    assert again.returncode == 0 and shim.read_text() == text, again.stderr

    removed = one_line(tfwrap("shim", "uninstall", "--dir", str(where), cwd=tmp_path), 0)
    assert removed == f"tfwrap: removed the terraform shim {shim}"
    assert list(where.iterdir()) == []
    nothing = one_line(tfwrap("shim", "uninstall", "--dir", str(where), cwd=tmp_path), 0)
    assert "nothing to remove" in nothing


def test_uninstall_leaves_another_tfwraps_shim(tmp_path: Path) -> None:
    other = tmp_path / "other" / "bin" / "python"
    other.parent.mkdir(parents=True)
    other.write_text("")
    where = tmp_path / "bin"
    where.mkdir()
    text = (REPO / "shims" / "terraform").read_text().replace("tfwrap_python=''", f"tfwrap_python='{other}'")
    (where / "terraform").write_text(text)
    line = one_line(tfwrap("shim", "uninstall", "--dir", str(where), cwd=tmp_path), 87)
    assert f"its Python is {other}" in line
    assert (where / "terraform").read_text() == text
    # Installing over it is fine (it is tfwrap's file), and says whose it was.
    placed = tfwrap("shim", "install", "--dir", str(where), cwd=tmp_path)
    assert placed.returncode == 0, placed.stderr
    assert placed.stderr.splitlines()[0] == f"tfwrap: replaced the shim of {other}"
    assert f"tfwrap_python='{sys.executable}'" in (where / "terraform").read_text().splitlines()


def test_default_dir_is_beside_the_tfwrap_command(tmp_path: Path) -> None:
    (tmp_path / "tfwrap").symlink_to(TFWRAP)  # as pipx and install.sh lay it out
    placed = run([str(tmp_path / "tfwrap"), "shim", "install"], tmp_path)
    assert placed.returncode == 0, placed.stderr
    assert (tmp_path / "terraform").is_file()
    # Run as `python -m tfwrap` there is no command to be beside: ask for --dir.
    line = one_line(run([sys.executable, "-m", "tfwrap", "shim", "install"], tmp_path), 83)
    assert "--dir DIR" in line


def test_status_says_when_path_order_skips_the_shim(tmp_path: Path, tools: Tools) -> None:
    real = foreign_terraform(tmp_path / "first")
    env = {**os.environ, "PATH": tools.path(real.parent)}
    status = run([str(tools.shim_dir / "tfwrap"), "shim", "status"], tmp_path, env)
    assert status.returncode == 89  # exitcodes.DRIFT: a problem to fix
    assert f"shim:        {tools.shim_dir}/terraform" in status.stdout
    assert f"  1. {real}  terraform binary" in status.stdout
    assert f"  2. {tools.shim_dir}/terraform  tfwrap shim (this tfwrap" in status.stdout
    assert "shim wins:   no" in status.stdout
    assert (
        f'comes before the shim on PATH, so `terraform` skips tfwrap: export PATH="{tools.shim_dir}:$PATH"'
        in (status.stdout)
    )

    nothing = run([str(TFWRAP), "shim", "status"], tmp_path, {**os.environ, "PATH": "/usr/bin:/bin"})
    assert nothing.returncode == 89
    assert "shim:        none on PATH" in nothing.stdout
    assert "real:        none (no real terraform found on PATH" in nothing.stdout


def test_pipx_install_gives_a_working_shim_in_one_more_command(
    tmp_path: Path, tools: Tools, env: dict[str, str], s3: S3Server, bucket_name: str
) -> None:
    """`pipx install .`, then `tfwrap shim install`: a checked, supervised apply through it."""
    pipx = Path(sys.prefix) / "bin" / "pipx"
    assert pipx.is_file(), "pipx is in the test extra: run `bash tests/run`"
    home = tmp_path / "home"  # made by the autouse `isolated` fixture
    bin_dir = tmp_path / "pipx-bin"
    pipx_env = {
        **install_env(home),
        "PIPX_HOME": str(tmp_path / "pipx-home"),
        "PIPX_BIN_DIR": str(bin_dir),
        "PIPX_MAN_DIR": str(tmp_path / "pipx-man"),
    }
    src = source_copy(tmp_path / "src")
    done = subprocess.run(
        [str(pipx), "install", str(src)],
        env=pipx_env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(p.name for p in bin_dir.iterdir()) == ["tfwrap"]  # pipx placed no terraform

    user = {**env, "PATH": os.pathsep.join([str(bin_dir), str(tools.engine.parent), "/usr/bin", "/bin"])}
    placed = run(["tfwrap", "shim", "install"], tmp_path, user)  # the one more command
    assert placed.returncode == 0, placed.stderr
    assert f"placed the terraform shim at {bin_dir}/terraform" in placed.stderr

    make_bucket(s3.url, bucket_name)
    work = write_config(tmp_path / "work", s3.url, bucket_name)
    for argv in (["init", "-input=false"], ["apply", "-auto-approve", "-input=false"]):
        result = run(["terraform", *argv, "-no-color"], work, {**user, "TFWRAP_LOG_LEVEL": "debug"})
        assert result.returncode == 0, (argv, result.stderr)
        assert "check cache miss" in result.stderr  # checked by pipx's tfwrap, not passed through
    status = run(["tfwrap", "shim", "status"], tmp_path, user)
    assert status.returncode == 0, status.stdout
    assert "shim wins:   yes" in status.stdout and "version:     1.15.5" in status.stdout


def test_a_directory_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    line = one_line(tfwrap("shim", "install", "--dir", str(blocker / "bin"), cwd=tmp_path), 83)
    assert f"cannot write {blocker}/bin/terraform" in line and "--dir DIR" in line


def test_doctor_and_shim_status_name_the_same_version_manager(tmp_path: Path) -> None:
    """One resolver: a word in a script is a manager only as a whole word ("promise" is not mise)."""
    from tfwrap.install import status as shimstatus
    from tfwrap.terraform import chain

    def script(name: str, text: str) -> str:
        path = tmp_path / name / "terraform"
        path.parent.mkdir()
        path.write_text(text)
        path.chmod(0o755)
        return str(path)

    cases = {
        script("wrapper", '#!/bin/sh\n# keeps its promise: runs the pinned binary\nexec /opt/tf "$@"\n'): "",
        script("mise", '#!/bin/sh\nexec mise x -- terraform "$@"\n'): "mise",
        script("tfenv", '#!/usr/bin/env bash\nprogram="${0##*/}"\nexec tfenv exec "$@"\n'): "tfenv",
    }
    for path, manager in cases.items():
        entry = shimstatus.classify(path, sys.executable)
        assert chain.version_manager(path) == manager, path
        assert (entry.manager or "") == manager, path
        assert entry.kind == (shimstatus.MANAGER if manager else shimstatus.BINARY)


def test_shim_status_asks_terraform_its_version_without_phoning_home(tmp_path: Path) -> None:
    seen = tmp_path / "checkpoint"
    fake = tmp_path / "bin" / "terraform"
    fake.parent.mkdir()
    fake.write_text(
        f'#!/bin/sh\necho "${{CHECKPOINT_DISABLE:-unset}}" > {seen}\n'
        'echo \'{"terraform_version": "1.11.4"}\'\n'
    )
    fake.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "CHECKPOINT_DISABLE"}
    env["PATH"] = f"{fake.parent}:/usr/bin:/bin"
    status = run([str(TFWRAP), "shim", "status"], tmp_path, env)
    assert "1.11.4" in status.stdout, status.stdout + status.stderr
    assert seen.read_text().strip() == "1"
    from tfwrap.install import status as shimstatus

    assert shimstatus.VERSION_TIMEOUT_SECONDS <= 10  # a hung terraform must not hold `shim status` for long
