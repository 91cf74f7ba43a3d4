"""Watching a state lock from a second client's point of view."""

from __future__ import annotations

import json
import time
from typing import Any

from tfwrap.lock import info as lockinfo

SLOW = """
resource "terraform_data" "slow" {
  triggers_replace = timestamp()
  provisioner "local-exec" {
    command = "sleep %s"
  }
}
"""


def read_lock(
    s3: Any, bucket: str, key: str = "app/terraform.tfstate.tflock"
) -> tuple[dict[str, Any], str] | None:
    try:
        got = s3.get_object(Bucket=bucket, Key=key)
    except s3.exceptions.NoSuchKey:
        return None
    return json.loads(got["Body"].read()), got["ETag"]


def wait_for(predicate: Any, timeout: float, step: float = 0.05, what: str = "") -> Any:
    """The first truthy value of ``predicate()``; AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"{what or 'condition'} not met within {timeout} s")


def wait_annotated(s3: Any, bucket: str, timeout: float = 30) -> tuple[dict[str, Any], lockinfo.Holder]:
    """The lock once tfwrap's heartbeat is in its Info."""

    def annotated() -> tuple[dict[str, Any], lockinfo.Holder] | None:
        lock = read_lock(s3, bucket)
        holder = lockinfo.parse(lock[0].get("Info", "")) if lock else None
        return (lock[0], holder) if lock and holder else None

    return wait_for(annotated, timeout)  # type: ignore[no-any-return]
