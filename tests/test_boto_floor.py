"""The boto3/botocore floor in pyproject.toml is one the lock code works with.

A heartbeat rewrite is ``PutObject`` with ``IfMatch`` and an exact removal is ``DeleteObject``
with ``IfMatch``; a botocore whose S3 model lacks either refuses them client-side with
``ParamValidationError``, so every heartbeat and every cleanup would fail. The floor is the
first release with both (1.35.69; 1.35.68 has DeleteObject's only).

How it is tested, and why not with a fresh venv per run: the minimum boto3 and botocore (and
what pip resolves for them: s3transfer, jmespath, ...) are installed with ``pip --target`` into
a directory beside the test venv, once, and put first on ``PYTHONPATH`` of a child interpreter
that runs tfwrap's own lock code against the loopback S3 server. The child asserts it imported
botocore from that directory at exactly the floor version, so the code under test is the
floor's. This costs one ~13 MB download and ~20 s the first time (then nothing), where a full
venv with every other dependency would cost about a minute per run for the same answer: only
boto3/botocore are pinned down here. The release just below the floor is read from its wheel
(no install) to show the floor is the first one that works, not merely one that does.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tfwrap.demo.server import S3Server

ROOT = Path(__file__).resolve().parent.parent
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
# pip runs as `bash tests/run` runs it, with the environment from before the per-test isolation
# (which points every proxy at a dead port); only the package index is reached.
PIP_ENV = dict(os.environ)


def floor(package: str) -> str:
    """The ``>=`` version pyproject.toml allows for ``package`` (boto3's own for botocore)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for dep in deps:
        found = re.fullmatch(rf"{package}\s*>=\s*([\d.]+)", dep.strip())
        if found:
            return found.group(1)
    if package == "botocore":  # boto3 X.Y.Z has always required botocore >= X.Y.Z
        return floor("boto3")
    raise AssertionError(f"pyproject.toml has no {package}>= floor")


@pytest.fixture(scope="module")
def floor_site() -> Path:
    """boto3 and botocore at the floor, with what pip resolves for them, in a directory."""
    boto3, botocore = floor("boto3"), floor("botocore")
    target = Path(sys.prefix) / "boto-floor" / f"boto3-{boto3}-botocore-{botocore}"
    if not (target / "botocore" / "__init__.py").is_file():
        partial = target.with_name(target.name + f".{os.getpid()}.partial")
        subprocess.run(
            [*PIP, "install", "--target", str(partial), f"boto3=={boto3}", f"botocore=={botocore}"],
            check=True,
            timeout=600,
            env=PIP_ENV,
        )
        try:
            partial.rename(target)
        except OSError:  # another test worker finished the same floor first: use theirs
            shutil.rmtree(partial, ignore_errors=True)
            assert (target / "botocore" / "__init__.py").is_file(), target
    return target


# The child: tfwrap's lock code, as the heartbeat and cleanup use it, on the floor's botocore.
CHILD = r"""
import json, sys
import botocore, boto3
from pathlib import Path
from tfwrap.aws import clients
from tfwrap.backend.config import BackendConfig
from tfwrap.lock.lockfile import LockChanged, S3LockFile

site, url, bucket = sys.argv[1:4]
assert botocore.__file__.startswith(site), botocore.__file__
backend = BackendConfig(Path("."), Path(".terraform"), "default", "s3", {
    "bucket": bucket, "key": "app/terraform.tfstate", "region": "us-east-1",
    "endpoints": {"s3": url}, "use_path_style": True,
})
s3 = clients.client(backend, "s3")
s3.create_bucket(Bucket=bucket)
s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
body = json.dumps({"ID": "lock-1", "Operation": "OperationTypeApply", "Info": "", "Who": "ci@host",
                   "Version": "1.15.5", "Created": "2026-11-28T10:00:00Z", "Path": "x"},
                  separators=(",", ":")).encode()  # compact, as Terraform writes it
s3.put_object(Bucket=bucket, Key=backend.lock_key, Body=body)  # stands for Terraform taking it
lock = S3LockFile(s3, backend)
first = lock.read()
beat = lock.rewrite_info(first, "tfwrap heartbeat=1")          # PutObject IfMatch
try:
    lock.rewrite_info(first, "late")                             # a stale ETag: refused
    stale_refused = False
except LockChanged:
    stale_refused = True
print(json.dumps({
    "boto3": boto3.__version__,
    "botocore": botocore.__version__,
    "info": lock.read().info,
    "stale_refused": stale_refused,
    "stale_delete": lock.delete_exact(first),                    # DeleteObject IfMatch, stale
    "delete": lock.delete_exact(beat),                           # DeleteObject IfMatch, ours
    "gone": lock.read() is None,
}))
"""


def test_heartbeat_write_and_exact_delete_work_on_the_floor(
    floor_site: Path, s3: S3Server, bucket_name: str, tmp_path: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": str(floor_site)}
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(floor_site), s3.url, bucket_name],
        cwd=tmp_path,  # not the checkout: tfwrap comes from the installed package
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout)
    assert seen["boto3"] == floor("boto3") and seen["botocore"] == floor("botocore")
    assert seen["info"] == "tfwrap heartbeat=1" and seen["stale_refused"] is True
    assert seen["stale_delete"] is False and seen["delete"] is True and seen["gone"] is True


def _if_match(wheel: Path) -> dict[str, bool]:
    """Which of PutObject/DeleteObject take IfMatch in a botocore wheel's S3 model."""
    with zipfile.ZipFile(wheel) as z:
        name = next(
            n for n in z.namelist() if re.fullmatch(r"botocore/data/s3/[^/]+/service-2\.json(\.gz)?", n)
        )
        data = z.read(name)
    model = json.loads(gzip.decompress(data) if name.endswith(".gz") else data)
    shapes, operations = model["shapes"], model["operations"]
    return {
        op: "IfMatch" in shapes[operations[op]["input"]["shape"]]["members"]
        for op in ("PutObject", "DeleteObject")
    }


def test_the_release_below_the_floor_lacks_if_match(floor_site: Path) -> None:
    major, minor, patch = (int(p) for p in floor("botocore").split("."))
    assert patch > 0, "the floor is a .0 release: compare with the previous minor by hand"
    below = f"{major}.{minor}.{patch - 1}"
    wheels = Path(sys.prefix) / "boto-floor" / f"wheel-{below}"
    if not list(wheels.glob("*.whl")):
        subprocess.run(
            [
                *PIP,
                "download",
                "--no-deps",
                "--only-binary",
                ":all:",
                "-d",
                str(wheels),
                f"botocore=={below}",
            ],
            check=True,
            timeout=600,
            env=PIP_ENV,
        )
    (wheel,) = wheels.glob("*.whl")
    assert _if_match(wheel) != {"PutObject": True, "DeleteObject": True}, f"botocore {below} would do"
    installed = floor_site / "botocore" / "data" / "s3"
    (model_file,) = installed.glob("*/service-2.json*")
    data = model_file.read_bytes()
    model = json.loads(gzip.decompress(data) if model_file.name.endswith(".gz") else data)
    for op in ("PutObject", "DeleteObject"):
        assert "IfMatch" in model["shapes"][model["operations"][op]["input"]["shape"]]["members"], op
