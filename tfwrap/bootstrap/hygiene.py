"""Bounding the versions of everything tfwrap and Terraform write beside a state.

Beside each state ``<state key>`` live its lock ``<state key>.tflock`` (Terraform's), the
migration journal ``<state key>.tfwrap-migrate.json`` and the probe's scratch objects
``<state key>.tfwrap-probe-*`` (tfwrap's). In a versioned bucket every write of each leaves a
noncurrent version. One rule per lock object already bounds the lock; here each state also
gets one rule for the prefix ``<state key>.tfwrap-`` (journal and scratch alike: a filter
matches prefixes, and nothing of Terraform's starts with it), and the states of every
workspace found in the bucket (``<workspace_key_prefix>/<ws>/<key>``) get the same rules as
the default workspace's (docs/decisions/072-version-hygiene.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tfwrap.bootstrap.bucket import Bucket

OWN_SUFFIX = ".tfwrap-"  # the journal and the probe's scratch objects (tfwrap.aws.probe.SCRATCH_MARK)
LOCK_SUFFIX = ".tflock"
MAX_PAGES = 20  # a listing of the workspace prefix stops here (20,000 keys): rules for what it saw


def _workspaces(bucket: Bucket, state_key: str, prefix: str) -> list[str]:
    """The workspaces with a state or a lock of ``state_key`` in the bucket."""
    head = f"{prefix}/" if prefix else ""
    found: dict[str, None] = {}
    params = {"Prefix": head}
    for _ in range(MAX_PAGES):
        page = bucket.call("s3:ListBucket", "list_objects_v2", **params)
        for obj in page.get("Contents") or []:
            key = str(obj["Key"]).removesuffix(LOCK_SUFFIX)
            middle = key[len(head) :].removesuffix(f"/{state_key}")
            if key.endswith(f"/{state_key}") and middle and "/" not in middle:
                found[middle] = None
        if not page.get("IsTruncated"):
            break
        params["ContinuationToken"] = page["NextContinuationToken"]
    return list(found)


def keys_to_bound(bucket: Bucket) -> tuple[str, ...]:
    """Every prefix whose noncurrent versions get a rule: the lock keys the standard names, the
    lock keys of the other workspaces found, and ``<state key>.tfwrap-`` of each of those states."""
    wanted = bucket.standard
    locks = list(wanted.lock_keys)
    if not locks:
        return ()
    default_state = locks[0].removesuffix(LOCK_SUFFIX)
    prefix = wanted.workspace_prefix
    head = f"{prefix}/" if prefix else ""
    locks += [f"{head}{ws}/{default_state}{LOCK_SUFFIX}" for ws in _workspaces(bucket, default_state, prefix)]
    locks = list(dict.fromkeys(locks))
    own = [k.removesuffix(LOCK_SUFFIX) + OWN_SUFFIX for k in locks]
    return (*locks, *own)
