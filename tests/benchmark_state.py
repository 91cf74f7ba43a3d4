"""Benchmark: ``tfwrap state history`` on a state with 1,000 versions (time and requests).

Run from the repo root: ``.venv/bin/python tests/benchmark_state.py [--versions N] [--runs N]``.
Not a pytest test. A loopback moto S3 server; the history is written as 1,000 supervised
applies leave it: per apply a lock PUT (Terraform's, ``Info`` empty), a heartbeat rewrite
(tfwrap's ``Info``, a CI run link), a state PUT, a lock DELETE. moto cannot be told another
time, so the older applies are written as fast as the server takes them: many land in the
same second, where every write is ambiguous and the tie-breaking reads
(docs/decisions/080-attributing-state-writes.md) are all needed, a worst case for requests
(``--limit 0``). The newest ``--spaced`` applies are written as real ones happen, a second
or more apart, so the default ``--limit 20`` sees an ordinary history. Requests are counted
in the server's access log.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root

from tests.support.world import make_bucket, s3_client, write_config
from tfwrap.demo.server import S3Server
from tfwrap.lock import info as lockinfo

TFWRAP = Path(sys.prefix) / "bin" / "tfwrap"
KEY = "app/terraform.tfstate"
_REQUEST = re.compile(r'"(?:\x1b\[[\d;]*m)?([A-Z]+) (\S+) HTTP/[\d.]+')


def state_body(serial: int, lineage: str) -> bytes:
    resources = [
        {
            "mode": "managed",
            "type": "terraform_data",
            "name": f"r{i}",
            "provider": 'provider["terraform.io/builtin/terraform"]',
            "instances": [{"schema_version": 0, "attributes": {"id": str(uuid.uuid4()), "input": "x" * 40}}],
        }
        for i in range(5 + serial % 3)
    ]
    doc = {
        "version": 4,
        "terraform_version": "1.15.5",
        "serial": serial,
        "lineage": lineage,
        "outputs": {},
        "resources": resources,
        "check_results": None,
    }
    return (json.dumps(doc, indent=2) + "\n").encode()


def write_history(url: str, bucket: str, count: int, spaced: int) -> None:
    s3 = s3_client(url)
    lineage = str(uuid.uuid4())
    for serial in range(1, count + 1):
        pause = 1.05 if serial > count - spaced else 0.0  # the lock held a second, then a gap
        lock_id = str(uuid.uuid4())
        fields = {
            "ID": lock_id,
            "Operation": "OperationTypeApply",
            "Info": "",
            "Who": "ci@runner",
            "Version": "1.15.5",
            "Created": dt.datetime.now(dt.timezone.utc).isoformat(),
            "Path": f"{bucket}/{KEY}",
        }
        s3.put_object(Bucket=bucket, Key=KEY + ".tflock", Body=json.dumps(fields).encode(), IfNoneMatch="*")
        beat = lockinfo.Holder(
            heartbeat=lockinfo.now(),
            lease_seconds=90,
            host="runner",
            terraform_pid=100,
            tfwrap_pid=99,
            started=lockinfo.now(),
            ci=f"https://ci.example/runs/{serial}",
        ).line()
        s3.put_object(Bucket=bucket, Key=KEY + ".tflock", Body=json.dumps({**fields, "Info": beat}).encode())
        time.sleep(pause)
        s3.put_object(Bucket=bucket, Key=KEY, Body=state_body(serial, lineage))
        s3.delete_object(Bucket=bucket, Key=KEY + ".tflock")
        time.sleep(pause)


def requests_since(log: Path, offset: int) -> tuple[int, int]:
    text = log.read_bytes()[offset:].decode(errors="replace")
    return len(_REQUEST.findall(text)), len(log.read_bytes())


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--versions", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--spaced", type=int, default=25, help="newest applies written a second apart")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tfwrap-bench-state-") as tmp_name:
        tmp = Path(tmp_name)
        home = tmp / "home"
        home.mkdir()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "AWS_ACCESS_KEY_ID": "AKIATESTTESTTESTTEST",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": str(home / "none"),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / "none"),
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
            "NO_PROXY": "127.0.0.1,localhost",
            "TFWRAP_CACHE_DIR": str(tmp / "cache"),
        }
        os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
        log = tmp / "moto.log"
        with S3Server(log=log) as server:
            bucket = f"bench-{uuid.uuid4().hex[:10]}"
            make_bucket(server.url, bucket)
            started = time.monotonic()
            write_history(server.url, bucket, opts.versions, opts.spaced)
            print(f"wrote {opts.versions} applies in {time.monotonic() - started:.1f} s", flush=True)
            work = write_config(tmp / "work", server.url, bucket)
            print(f"load average before: {os.getloadavg()[0]:.2f} (2 cores)", flush=True)
            listed = []
            for _ in range(opts.runs):
                t0 = time.monotonic()
                pages = (
                    s3_client(server.url)
                    .get_paginator("list_object_versions")
                    .paginate(Bucket=bucket, Prefix=KEY)
                )
                count = sum(len(p.get("Versions") or []) + len(p.get("DeleteMarkers") or []) for p in pages)
                listed.append(time.monotonic() - t0)
            print(
                f"baseline, the listing alone (boto3 in-process, {count} versions and markers): "
                f"median {statistics.median(listed) * 1000:.0f} ms",
                flush=True,
            )
            for label, extra in (("default --limit 20", []), ("--limit 0 (all)", ["--limit", "0"])):
                times, counted, reported = [], [], []
                for _ in range(opts.runs):
                    offset = log.stat().st_size
                    t0 = time.monotonic()
                    done = subprocess.run(
                        [str(TFWRAP), "state", "history", "--json", *extra],
                        cwd=work,
                        env=env,
                        capture_output=True,
                        text=True,
                        check=False,
                    )
                    times.append(time.monotonic() - t0)
                    assert done.returncode == 0, done.stderr
                    document = json.loads(done.stdout)
                    time.sleep(0.2)  # the access log is written after the answer
                    counted.append(requests_since(log, offset)[0])
                    reported.append(document["requests"])
                attributed = sum(1 for v in document["versions"] if v["writer"])
                print(
                    f"state history {label}: median {statistics.median(times) * 1000:.0f} ms "
                    f"(min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}, {opts.runs} runs), "
                    f"requests {statistics.median(counted):.0f} counted by the server "
                    f"({statistics.median(reported):.0f} reported), "
                    f"{len(document['versions'])} shown of {document['versions_total']}, "
                    f"{attributed} attributed to one run",
                    flush=True,
                )
            print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
