"""Helpers for the lock-race tests (test_lock_races.py): Terraform's own lock bodies, objects
read back, and ``Drained``, a running process whose output is read as it comes."""

from __future__ import annotations

import json
import subprocess
import threading
from typing import Any

from tfwrap.lock import info as lockinfo


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
