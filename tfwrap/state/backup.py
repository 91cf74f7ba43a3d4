"""``state_backup = true``: on a store without versioning, a supervised apply first copies the
state it starts from to ``<state key>.tfwrap-backup/<serial>`` (zero-padded), keeping the
newest ``KEEP`` copies (docs/decisions/083-state-backup.md).

The copy is create-only (``If-None-Match: *``): a serial already copied is never rewritten.
A failure is said in one line and the run goes on: a backup is a help, never a reason to
stop Terraform (the run's own lock still protects the state).
"""

from __future__ import annotations

from typing import Any

from tfwrap.backend.config import BackendConfig
from tfwrap.state import summary, versions

KEEP = 10  # copies kept per state key; older ones are deleted after each new copy
BACKED_UP = ("apply", "destroy", "import")  # the commands that write the state on purpose


def copy_current(s3: Any, backend: BackendConfig) -> str:
    """Copy the current state; returns what was done, for one line on stderr ("" nothing)."""
    from tfwrap.aws.errors import error_code
    from tfwrap.state.restore import write_params

    try:
        got = s3.get_object(Bucket=backend.bucket, Key=backend.state_key, **versions.sse_c(backend))
    except Exception as exc:
        if error_code(exc) in ("NoSuchKey", "404"):
            return ""  # no state yet: nothing to go back to
        raise
    body = got["Body"].read()
    serial = summary.summarise(body).serial
    if serial is None:
        return f"state_backup: s3://{backend.bucket}/{backend.state_key} is not a Terraform state; not copied"
    key = versions.backup_key(backend, serial)
    try:
        s3.put_object(Bucket=backend.bucket, Key=key, Body=body, IfNoneMatch="*", **write_params(backend))
    except Exception as exc:
        if error_code(exc) not in ("PreconditionFailed", "412"):
            raise
    prune(s3, backend)
    return f"state_backup: serial {serial} copied to s3://{backend.bucket}/{key}"


def prune(s3: Any, backend: BackendConfig) -> None:
    """Keep the newest ``KEEP`` copies (by serial: the key sorts by it)."""
    prefix = backend.state_key + versions.BACKUP_INFIX
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=backend.bucket, Prefix=prefix):
        keys.extend(str(o["Key"]) for o in page.get("Contents") or [])
    for key in sorted(keys)[:-KEEP]:
        s3.delete_object(Bucket=backend.bucket, Key=key)


def before_apply(command: Any) -> None:
    """The supervised apply's one call: copy the state it starts from, say so, never raise."""
    from tfwrap.output import say

    if command.name not in BACKED_UP:
        return
    try:
        from tfwrap.aws import clients
        from tfwrap.backend import config

        backend = config.load_initialised(command)
        if backend is None or not backend.is_s3 or not backend.bucket:
            return
        done = copy_current(clients.client(backend, "s3"), backend)
    except Exception as exc:  # noqa: BLE001 - a backup never stops the run
        from tfwrap.aws.errors import error_code

        say(
            f"state_backup: the state was not copied ({error_code(exc) or type(exc).__name__}); "
            "the run goes on"
        )
        return
    if done:
        say(done)
