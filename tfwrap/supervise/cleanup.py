"""After Terraform exits: remove the lock its own run left behind, never anyone else's, and
say what could not be done.

Why: docs/decisions/108-the-retry-orphan.md.
"""

from __future__ import annotations

from typing import Any

from tfwrap.aws.errors import error_code
from tfwrap.output import say
from tfwrap.supervise.heartbeat import Heartbeat

SELF_ORPHAN = "self-orphan"  # removed a lock the child's own retried request had left


def clean_up(heartbeat: Heartbeat, status: int) -> str:
    """Remove the lock our child took and left behind; never anyone else's. Says what it
    could not do. Returns ``SELF_ORPHAN`` when it removed the retry orphan."""
    if heartbeat.locked and not heartbeat.unlocked:
        ours, why = heartbeat.locked, f"Terraform exited ({describe(status)}) still holding its lock"
    elif heartbeat.attempted and not heartbeat.locked:
        # The retry orphan (OpenTofu #4405): the SDK retried a PutObject whose first try
        # had succeeded; the retry got 412 against the child's own lock.
        ours, why = heartbeat.attempted, "Terraform's lock request was refused by its own earlier attempt"
    else:
        return ""
    fix = f"`tfwrap lock status` shows it, `tfwrap lock clear --id {ours}` removes it"
    if heartbeat.locks is None:
        cause = heartbeat.connect_error or "connecting to the backend took longer than 10 s"
        say(f"could not check whether Terraform left its lock {ours} behind: {cause}; {fix}")
        return ""
    locks = heartbeat.locks.for_cleanup()
    try:
        s3 = remove_ours(locks.s3, ours)
        ddb = remove_ours(locks.dynamo, ours) if locks.dynamo is not None else "gone"
    except Exception as exc:  # noqa: BLE001 - say it plainly; the lock ID lets a human finish
        reason = error_code(exc) or type(exc).__name__
        say(f"could not check whether Terraform left its lock {ours} behind ({reason}); {fix}")
        return ""
    where = " and ".join(w for w, done in (("S3", s3), ("DynamoDB", ddb)) if done == "removed")
    if where:
        say(f"{why}; removed its lock {ours} from {where}")
    for store, outcome in (("S3", s3), ("DynamoDB", ddb)):
        if outcome == "changing":
            say(f"Terraform's lock {ours} in {store} kept changing while tfwrap removed it; {fix}")
        elif outcome == "not ours" and heartbeat.locked and not heartbeat.unlocked:
            # Terraform said it held it, and another ID is there now: not ours, left alone.
            say(f"Terraform's lock {ours} in {store} is gone; the lock there is another run's, left alone")
    return SELF_ORPHAN if where and heartbeat.attempted and not heartbeat.locked else ""


def remove_ours(store: Any, ours: str) -> str:
    """removed | gone | not ours | changing: "not ours" (another ID) is told apart from
    "ours, but its ETag moved" (a late heartbeat write landed after we read it: re-read)."""
    for _ in range(3):
        current = store.read()
        if current is None:
            return "gone"
        held_by = current.id if hasattr(current, "id") else current.get("ID")
        if held_by != ours:
            return "not ours"
        if store.delete_exact(current):
            return "removed"
    return "changing"


def describe(status: int) -> str:
    from tfwrap.supervise.keeper import STATUS_UNKNOWN

    if status == STATUS_UNKNOWN:
        return "status unknown: tfwrap was killed"
    return f"killed by signal {status - 128}" if status > 128 else f"exit {status}"
