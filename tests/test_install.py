"""install.sh for real: pip installs tfwrap from this checkout into throw-away prefixes.

One install into a tmp ``--prefix`` is shared by the module (pip takes a while); the tests
that use it run in file order, and the one that uninstalls it comes last. Refusals happen
before any venv exists, so those tests use fresh prefixes and cost no pip run.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parent.parent
INSTALL = REPO / "install.sh"
NAMES = ("terraform", "tfwrap")
FOREIGN_TERRAFORM = "#!/bin/sh\necho 'the real terraform'\n"

# Taken at import, before the autouse `isolated` fixture points the proxies at a dead port:
# pip must reach the package index the way this machine (or CI) normally does.
_ORIGINAL_ENV = dict(os.environ)


@functools.cache
def _pip_settings() -> dict[str, str]:
    """pip's cache and user configuration from the real home, so installs under a tmp HOME
    use the same index settings and stay fast; nothing else of the real home is used."""
    settings: dict[str, str] = {}
    real_home = _ORIGINAL_ENV.get("HOME", "")
    config_home = _ORIGINAL_ENV.get("XDG_CONFIG_HOME") or (real_home and f"{real_home}/.config")
    if config_home:
        settings["XDG_CONFIG_HOME"] = config_home
    cache = subprocess.run(
        [sys.executable, "-m", "pip", "cache", "dir"],
        env=_ORIGINAL_ENV,
        capture_output=True,
        text=True,
        check=False,
    )
    if cache.returncode == 0 and cache.stdout.strip():
        settings["PIP_CACHE_DIR"] = cache.stdout.strip()
    else:
        settings["PIP_NO_CACHE_DIR"] = "1"
    return settings


def install_env(home: Path, path_first: Path | None = None) -> dict[str, str]:
    """What a user's shell has: the real network settings, no AWS/Terraform/tfwrap variables,
    and HOME a tmp directory, so a stray write to the default layout lands in the test's tmp."""
    env = {
        k: v for k, v in _ORIGINAL_ENV.items() if not k.startswith(("AWS_", "TF_", "TFWRAP_", "XDG_", "PIP_"))
    }
    env.update({k: v for k, v in _ORIGINAL_ENV.items() if k.startswith("PIP_")})
    env.update(_pip_settings())
    env["HOME"] = str(home)
    if path_first is not None:
        env["PATH"] = f"{path_first}{os.pathsep}{env.get('PATH', '')}"
    return env


def run_install(
    *args: str, home: Path, cwd: Path, path_first: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(INSTALL), *args],
        env=install_env(home, path_first),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def snapshot(root: Path) -> dict[str, tuple[str, str]]:
    """Every entry under root: symlinks by target, files by content, directories by name."""
    out: dict[str, tuple[str, str]] = {}
    if not root.exists():
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = ("link", os.readlink(p))
            elif p.is_dir():
                out[rel] = ("dir", "")
            else:
                out[rel] = ("file", p.read_text(errors="replace"))
    return out


def assert_messages(stderr: str) -> list[str]:
    lines = stderr.splitlines()
    assert lines, "install.sh said nothing"
    for line in lines:
        assert line.startswith("install.sh: "), f"unprefixed message: {line!r}"
    return lines


def project_version() -> str:
    with open(REPO / "pyproject.toml", "rb") as f:
        return str(tomllib.load(f)["project"]["version"])


def fake_terraform(where: Path) -> Path:
    fake = where / "fake-terraform"
    fake.write_text('#!/bin/sh\necho "Terraform v1.99.0-fake args=$*"\n')
    fake.chmod(0o755)
    return fake


def assert_layout(bindir: Path, venv: Path) -> None:
    """`tfwrap` links into the venv; `terraform` is a shim file naming the venv's Python (
    pip itself puts no terraform anywhere, not even in the venv)."""
    assert sorted(p.name for p in bindir.iterdir()) == sorted(NAMES)
    assert os.readlink(bindir / "tfwrap") == str(venv / "bin" / "tfwrap")
    shim = bindir / "terraform"
    assert not shim.is_symlink() and shim.is_file() and os.access(shim, os.X_OK)
    assert shim.read_text().splitlines()[1].startswith("# tfwrap-shim ")
    assert f"tfwrap_python='{venv}/bin/python'" in shim.read_text().splitlines()
    assert not (venv / "bin" / "terraform").exists()


@dataclass(frozen=True)
class Installed:
    prefix: Path
    home: Path
    result: subprocess.CompletedProcess[str]

    @property
    def bin(self) -> Path:
        return self.prefix / "bin"

    @property
    def venv(self) -> Path:
        return self.prefix / "venv"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = tmp_path_factory.mktemp("install")
    prefix = base / "opt" / "tfwrap"  # does not exist yet: install.sh makes it
    home = base / "home"
    home.mkdir()
    result = run_install("--prefix", str(prefix), home=home, cwd=base)
    assert result.returncode == 0, result.stderr
    return Installed(prefix=prefix.resolve(), home=home, result=result)


def test_fresh_install_links_both_commands_into_its_own_venv(installed: Installed) -> None:
    r = installed.result
    assert r.stdout == ""
    lines = assert_messages(r.stderr)
    assert f"install.sh: installed tfwrap into {installed.venv}" in lines
    assert f"install.sh: commands: {installed.bin}/tfwrap and {installed.bin}/terraform" in lines
    # The prefix is not on PATH: the last line says how to put it first.
    assert lines[-1].endswith(f'export PATH="{installed.bin}:$PATH"')

    assert_layout(installed.bin, installed.venv)
    assert (installed.venv / ".tfwrap-install").is_file()
    assert sorted(p.name for p in installed.prefix.iterdir()) == ["bin", "venv"]
    assert sorted(p.name for p in installed.bin.iterdir()) == sorted(NAMES)
    # --prefix writes nothing to the default layout under HOME.
    assert not (installed.home / ".local").exists()

    # Installed for real, not editable: the package lives in the venv, not in this checkout.
    where = subprocess.run(
        [str(installed.venv / "bin" / "python"), "-I", "-c", "import tfwrap; print(tfwrap.__file__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(installed.venv)
    assert not Path(where).resolve().is_relative_to(REPO)


def test_installed_tfwrap_command_runs(installed: Installed) -> None:
    r = subprocess.run(
        [str(installed.bin / "tfwrap"), "--version"], capture_output=True, text=True, check=False
    )
    assert r.returncode == 0, r.stderr
    assert project_version() in r.stdout


def test_shim_passes_version_through_to_the_real_terraform(installed: Installed, tmp_path: Path) -> None:
    env = dict(os.environ, TFWRAP_TERRAFORM=str(fake_terraform(tmp_path)))
    r = subprocess.run(
        [str(installed.bin / "terraform"), "version"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout == "Terraform v1.99.0-fake args=version\n"
    assert r.stderr == ""


def test_shim_finds_the_venv_python_written_into_it(installed: Installed, tmp_path: Path) -> None:
    # `plan` is never passed through by the sh shim: it must find the venv's Python, which
    # `tfwrap shim install` wrote into it (else exit 85). mode = "off" then hands over.
    (tmp_path / ".tfwrap.toml").write_text('mode = "off"\n')
    env = dict(os.environ, TFWRAP_TERRAFORM=str(fake_terraform(tmp_path)))
    r = subprocess.run(
        [str(installed.bin / "terraform"), "plan", "-input=false"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout == "Terraform v1.99.0-fake args=plan -input=false\n"


def test_second_run_updates_in_place(installed: Installed, tmp_path: Path) -> None:
    # A copied shim of an older layout (the marker, no Python written in) counts as ours and
    # is placed again.
    shim = installed.bin / "terraform"
    shim.unlink()
    shim.write_text((REPO / "shims" / "terraform").read_text())
    shim.chmod(0o755)
    venv_cfg = (installed.venv / "pyvenv.cfg").stat()

    r = run_install("--prefix", str(installed.prefix), home=installed.home, cwd=tmp_path)

    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    lines = assert_messages(r.stderr)
    assert f"install.sh: already installed, updated: {installed.venv}" in lines
    assert not any("creating a virtualenv" in line for line in lines)
    # Same venv, not a new one.
    assert (installed.venv / "pyvenv.cfg").stat().st_ino == venv_cfg.st_ino
    assert (installed.venv / "pyvenv.cfg").stat().st_mtime_ns == venv_cfg.st_mtime_ns
    assert_layout(installed.bin, installed.venv)
    env = dict(os.environ, TFWRAP_TERRAFORM=str(fake_terraform(tmp_path)))
    version = subprocess.run([str(shim), "version"], env=env, capture_output=True, text=True, check=False)
    assert version.stdout == "Terraform v1.99.0-fake args=version\n"


def test_update_replaces_an_older_installs_link(installed: Installed, tmp_path: Path) -> None:
    # install.sh once linked bin/terraform into the venv; pip no longer puts a terraform
    # there, so after the update that link dangles. It is ours: the shim takes its place.
    shim = installed.bin / "terraform"
    shim.unlink()
    shim.symlink_to(installed.venv / "bin" / "terraform")

    r = run_install("--prefix", str(installed.prefix), home=installed.home, cwd=tmp_path)

    assert r.returncode == 0, r.stderr
    assert_layout(installed.bin, installed.venv)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("kind", ["file", "symlink"])
def test_foreign_command_is_refused_and_nothing_changes(tmp_path: Path, name: str, kind: str) -> None:
    base = tmp_path / "machine"
    prefix = base / "prefix"
    (prefix / "bin").mkdir(parents=True)
    foreign = prefix / "bin" / name
    if kind == "file":
        foreign.write_text(FOREIGN_TERRAFORM)
        foreign.chmod(0o755)
    else:
        real = base / "elsewhere" / name
        real.parent.mkdir()
        real.write_text(FOREIGN_TERRAFORM)
        real.chmod(0o755)
        foreign.symlink_to(real)
    home = base / "home"
    home.mkdir()
    before = snapshot(base)

    r = run_install("--prefix", str(prefix), home=home, cwd=base)

    assert r.returncode == 1
    assert r.stdout == ""
    lines = assert_messages(r.stderr)
    assert len(lines) == 1, r.stderr
    assert str(foreign) in lines[0]
    assert "move it to another directory on PATH" in lines[0]
    assert "--prefix DIR and put DIR/bin first in PATH" in lines[0]
    assert snapshot(base) == before  # no venv, no link, the foreign file untouched


def test_foreign_venv_directory_is_refused(tmp_path: Path) -> None:
    prefix = tmp_path / "prefix"
    (prefix / "venv").mkdir(parents=True)
    (prefix / "venv" / "precious").write_text("not tfwrap's\n")
    before = snapshot(prefix)

    r = run_install("--prefix", str(prefix), home=tmp_path, cwd=tmp_path)

    assert r.returncode == 1
    lines = assert_messages(r.stderr)
    assert len(lines) == 1, r.stderr
    assert str(prefix / "venv") in lines[0]
    assert snapshot(prefix) == before


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--frobnicate"], "unknown option: --frobnicate"),
        (["extra-argument"], "unknown option: extra-argument"),
        (["--prefix"], "--prefix needs a directory"),
        (["--demo", "--uninstall"], "--demo and --uninstall"),
    ],
)
def test_bad_usage_exits_2_with_one_line(tmp_path: Path, args: list[str], says: str) -> None:
    here = tmp_path / "here"
    here.mkdir()
    r = run_install(*args, home=here, cwd=here)
    assert r.returncode == 2
    assert r.stdout == ""
    lines = assert_messages(r.stderr)
    assert len(lines) == 1, r.stderr
    assert says in lines[0]
    assert list(here.iterdir()) == []


def test_help_prints_usage(tmp_path: Path) -> None:
    here = tmp_path / "here"
    here.mkdir()
    r = run_install("--help", home=here, cwd=here)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Usage: ./install.sh")
    for option in ("--prefix DIR", "--demo", "--uninstall"):
        assert option in r.stdout
    assert list(here.iterdir()) == []


def test_uninstall_leaves_foreign_files_and_venvs_alone(tmp_path: Path) -> None:
    prefix = tmp_path / "prefix"
    (prefix / "bin").mkdir(parents=True)
    (prefix / "bin" / "terraform").write_text(FOREIGN_TERRAFORM)
    (prefix / "venv").mkdir()
    (prefix / "venv" / "precious").write_text("not tfwrap's\n")
    before = snapshot(prefix)

    r = run_install("--prefix", str(prefix), "--uninstall", home=tmp_path, cwd=tmp_path)

    assert r.returncode == 0, r.stderr
    lines = assert_messages(r.stderr)
    assert any(str(prefix / "bin" / "terraform") in line and "alone" in line for line in lines)
    assert any(str(prefix / "venv") in line and "alone" in line for line in lines)
    assert snapshot(prefix) == before


def test_default_layout_installs_only_under_home(tmp_path: Path) -> None:
    base = tmp_path / "default"
    home = base / "home"
    home.mkdir(parents=True)
    work = base / "work"
    work.mkdir()
    bindir = home / ".local" / "bin"
    venv = home / ".local" / "share" / "tfwrap" / "venv"

    r = run_install(home=home, cwd=work, path_first=bindir)

    assert r.returncode == 0, r.stderr
    lines = assert_messages(r.stderr)
    assert f"install.sh: installed tfwrap into {venv}" in lines
    # bin is first on PATH already: no advice about PATH.
    assert not any("PATH" in line for line in lines), r.stderr
    # Nothing next to HOME or in the working directory; under HOME only ~/.local (other
    # dot-directories there belong to the machine's toolchains, which pip may wake).
    assert sorted(p.name for p in base.iterdir()) == ["home", "work"]
    assert list(work.iterdir()) == []
    assert sorted(p.name for p in (home / ".local").iterdir()) == ["bin", "share"]
    assert sorted(p.name for p in (home / ".local" / "share").iterdir()) == ["tfwrap"]
    assert sorted(p.name for p in (home / ".local" / "share" / "tfwrap").iterdir()) == ["venv"]
    assert_layout(bindir, venv)
    env = dict(os.environ, TFWRAP_TERRAFORM=str(fake_terraform(tmp_path)))
    version = subprocess.run(
        [str(bindir / "terraform"), "version"], env=env, capture_output=True, text=True, check=False
    )
    assert version.stdout == "Terraform v1.99.0-fake args=version\n"

    # And --uninstall without --prefix undoes exactly that, sparing a neighbour in ~/.local/bin.
    (bindir / "other-tool").write_text("#!/bin/sh\n")
    r = run_install("--uninstall", home=home, cwd=work)
    assert r.returncode == 0, r.stderr
    assert_messages(r.stderr)
    assert [p.name for p in bindir.iterdir()] == ["other-tool"]
    assert (bindir / "other-tool").read_text() == "#!/bin/sh\n"
    assert not (home / ".local" / "share" / "tfwrap").exists()


def test_uninstall_leaves_another_tfwraps_shim_alone(tmp_path: Path) -> None:
    # pipx's tfwrap placed its shim in the bin directory install.sh uses: not install.sh's.
    other_python = tmp_path / "pipx" / "bin" / "python"
    other_python.parent.mkdir(parents=True)
    other_python.write_text("")
    prefix = tmp_path / "prefix"
    (prefix / "bin").mkdir(parents=True)
    shim = prefix / "bin" / "terraform"
    text = (REPO / "shims" / "terraform").read_text()
    shim.write_text(text.replace("tfwrap_python=''", f"tfwrap_python='{other_python}'"))
    before = snapshot(prefix)

    r = run_install("--prefix", str(prefix), "--uninstall", home=tmp_path, cwd=tmp_path)

    assert r.returncode == 0, r.stderr
    lines = assert_messages(r.stderr)
    assert f"install.sh: left {shim} alone: another tfwrap placed it (its Python is {other_python})" in lines
    assert snapshot(prefix) == before


# Last: it takes the module's install away.
def test_uninstall_removes_only_what_it_installed(installed: Installed, tmp_path: Path) -> None:
    assert (installed.venv / ".tfwrap-install").is_file(), "the module's install is gone early"
    (installed.bin / "aws-vault").write_text("#!/bin/sh\necho mine\n")
    (installed.prefix / "notes.txt").write_text("keep me\n")

    r = run_install("--prefix", str(installed.prefix), "--uninstall", home=installed.home, cwd=tmp_path)

    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    lines = assert_messages(r.stderr)
    for removed in (installed.bin / "terraform", installed.bin / "tfwrap", installed.venv):
        assert f"install.sh: removed {removed}" in lines
        assert not os.path.lexists(removed)
    assert snapshot(installed.prefix) == {
        "bin": ("dir", ""),
        "notes.txt": ("file", "keep me\n"),
        "bin/aws-vault": ("file", "#!/bin/sh\necho mine\n"),
    }

    again = run_install("--prefix", str(installed.prefix), "--uninstall", home=installed.home, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "nothing to uninstall" in again.stderr
    assert not (installed.home / ".local").exists()
