"""What Terraform says about its lock, read from its own log (the exact lock ID; DOMAIN.md).

With ``TF_LOG_CORE=INFO`` and ``TF_LOG_PATH`` set, Terraform logs lines such as::

    [INFO]  backend-s3: Locked remote state (S3 Native only): tf_backend.lock.id=e566f7e4-...

A user's own ``TF_LOG``/``TF_LOG_PATH`` keep working: their file is read instead of ours,
and logs they asked for on stderr are relayed there.
"""

from __future__ import annotations

import os
import re
import sys

_EVENT = re.compile(r"(Attempting to lock|Locked|Attempting to unlock|Unlocked) remote state \(([^)]*)\)")
_LOCK_ID = re.compile(r'tf_backend\.lock\.id"?[=:]\s*"?([0-9a-fA-F-]{36})')
_INFO_LEVELS = frozenset({"TRACE", "DEBUG", "INFO", "JSON"})


class LockEvent:
    """``kind`` is attempt|locked|unlock-attempt|unlocked; ``mode`` e.g. "S3 Native only".

    A plain class: this module is imported before Terraform starts (no dataclasses: ~10 ms).
    """

    __slots__ = ("kind", "lock_id", "mode")

    def __init__(self, kind: str, mode: str, lock_id: str) -> None:
        self.kind, self.mode, self.lock_id = kind, mode, lock_id

    def __repr__(self) -> str:
        return f"LockEvent({self.kind!r}, {self.mode!r}, {self.lock_id!r})"


_KINDS = {
    "Attempting to lock": "attempt",
    "Locked": "locked",
    "Attempting to unlock": "unlock-attempt",
    "Unlocked": "unlocked",
}


def parse_line(line: str) -> LockEvent | None:
    event = _EVENT.search(line)
    if event is None:
        return None
    lock_id = _LOCK_ID.search(line)
    return LockEvent(_KINDS[event.group(1)], event.group(2), lock_id.group(1) if lock_id else "")


class LogPlan:
    """How the child logs: the environment to add and the file to read."""

    def __init__(self, env: dict[str, str], private_dir: str) -> None:
        self.child_env = dict(env)
        self.relay = False  # the user asked for logs on stderr: we show them there
        self.drop_info = False  # INFO lines we added for ourselves are not relayed
        user_path = env.get("TF_LOG_PATH", "")
        level = (env.get("TF_LOG_CORE") or env.get("TF_LOG") or "").upper()
        needs_core = level not in _INFO_LEVELS
        if needs_core:
            self.child_env["TF_LOG_CORE"] = "INFO"
        if user_path:
            self.path = user_path
            self.offset = os.path.getsize(user_path) if os.path.exists(user_path) else 0
        else:
            self.path = os.path.join(private_dir, "terraform.log")
            self.offset = 0
            self.child_env["TF_LOG_PATH"] = self.path
            self.relay = bool(env.get("TF_LOG") or env.get("TF_LOG_CORE") or env.get("TF_LOG_PROVIDER"))
            self.drop_info = needs_core


class LogWatcher:
    """Reads new complete lines of the log on each ``poll()`` and returns the lock events."""

    def __init__(self, plan: LogPlan) -> None:
        self.plan = plan
        self._offset = plan.offset
        self._partial = b""

    def poll(self) -> list[LockEvent]:
        try:
            with open(self.plan.path, "rb") as f:
                f.seek(self._offset)
                data = f.read()
        except OSError:
            return []
        if not data:
            return []
        self._offset += len(data)
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        events = []
        for raw in lines:
            line = raw.decode(errors="replace")
            if self.plan.relay and not (self.plan.drop_info and "[INFO]" in line):
                sys.stderr.write(line + "\n")
            event = parse_line(line)
            if event is not None:
                events.append(event)
        if self.plan.relay:
            sys.stderr.flush()
        return events
