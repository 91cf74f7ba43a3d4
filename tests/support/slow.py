"""Helpers for the lock-race tests (test_lock_races.py): servers that misbehave on purpose.

``AtomicS3Server``: moto, with requests atomic as real S3's and DynamoDB's are.
``moto_server`` handles requests on threads with no lock between a conditional write's
check and its store (moto/s3/responses.py ``put_object``: the ``If-Match`` check, then
``backend.put_object`` a dozen lines later). A PutObject with ``If-Match`` that passes its
check can land after a concurrent DeleteObject and bring the object back: measured, 19 of
300 and 35 of 400 rounds of the heartbeat race with tfwrap's correct conditional client;
0 of 800 with this server. (``If-None-Match: *`` takes the same path, so two concurrent
acquires could both succeed.) This server runs the same moto application on threads, one
request at a time, so the race tests observe the client's behaviour, not moto's.

``LateProxy``: requests pass, answers can be held back (``FaultProxy.hold``).
``Drained``: a running process whose output is read as it comes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from tests.support.faultproxy import FaultProxy
from tfwrap.demo.server import S3Server
from tfwrap.lock import info as lockinfo

ROOT = Path(__file__).resolve().parents[2]


def atomic(app: Callable[..., Iterable[bytes]]) -> Callable[..., list[bytes]]:
    """A WSGI middleware that handles one request at a time (body read, response built)."""
    lock = threading.Lock()

    def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with lock:
            return list(app(environ, start_response))

    return serve


def main(port: int) -> None:  # pragma: no cover - runs in the server process
    import signal

    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import run_simple

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    os.environ["MOTO_PORT"] = str(port)
    app = DomainDispatcherApplication(create_backend_app)
    run_simple("127.0.0.1", port, atomic(app), threaded=True, request_handler=MotoRequestHandler)


class AtomicS3Server(S3Server):
    """``S3Server`` whose moto handles one request at a time (see ``atomic``)."""

    def __init__(self, log: Path | None = None, extra_env: dict[str, str] | None = None) -> None:
        super().__init__(log=log, extra_env=extra_env, cwd=ROOT)

    def argv(self) -> list[str]:
        return [sys.executable, "-m", "tests.support.slow", str(self.port)]


def terraform_lock_body(lock_id: str, path: str, who: str = "ci@runner-7") -> bytes:
    """A lock body exactly as Terraform marshals it (Go ``json.Marshal``: compact, this order)."""
    fields = {
        "ID": lock_id,
        "Operation": "OperationTypeApply",
        "Info": "",
        "Who": who,
        "Version": "1.15.5",
        "Created": "2026-01-02T03:04:05.123456789Z",
        "Path": path,
    }
    return json.dumps(fields, separators=(",", ":")).encode()


def read_object(s3: Any, bucket: str, key: str) -> tuple[bytes, str] | None:
    """``(body, ETag)`` of an object, or None when it does not exist."""
    try:
        got = s3.get_object(Bucket=bucket, Key=key)
    except s3.exceptions.NoSuchKey:
        return None
    return got["Body"].read(), got["ETag"]


def holder_of(s3: Any, bucket: str, key: str) -> lockinfo.Holder | None:
    """The tfwrap heartbeat in a lock's ``Info``, or None (no lock, or not annotated)."""
    found = read_object(s3, bucket, key)
    return lockinfo.parse(str(json.loads(found[0]).get("Info", ""))) if found else None


class Drained:
    """A running process whose stdout and stderr are read as they come (never blocking it)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self._chunks: dict[str, list[bytes]] = {"out": [], "err": []}
        self._threads = [
            threading.Thread(target=self._drain, args=(stream, self._chunks[name]), daemon=True)
            for name, stream in (("out", proc.stdout), ("err", proc.stderr))
            if stream is not None
        ]
        for thread in self._threads:
            thread.start()

    @staticmethod
    def _drain(stream: Any, into: list[bytes]) -> None:
        for line in iter(stream.readline, b""):
            into.append(line)

    @property
    def out(self) -> str:
        return b"".join(self._chunks["out"]).decode(errors="replace")

    @property
    def err(self) -> str:
        return b"".join(self._chunks["err"]).decode(errors="replace")

    def wait(self, timeout: float) -> int:
        """The exit status; a process still running after ``timeout`` is killed (and it raises)."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()  # tfwrap: its Terraform stops on PR_SET_PDEATHSIG
            self.proc.wait()
            raise
        for thread in self._threads:
            thread.join(5)
        return code


class LateProxy(FaultProxy):
    """``FaultProxy`` in front of ``127.0.0.1:target_port``: ``hold()`` holds the answers back,
    ``release()`` lets them go (tests/support/faultproxy.py)."""

    def __init__(self, target_port: int) -> None:
        super().__init__(f"http://127.0.0.1:{target_port}")
        self.start()


if __name__ == "__main__":  # pragma: no cover
    main(int(sys.argv[1]))
