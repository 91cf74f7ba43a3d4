"""What Terraform says about its lock, read from its own log (the exact lock ID; DOMAIN.md).

With ``TF_LOG_CORE=INFO`` and ``TF_LOG_PATH`` set, Terraform logs lines such as::

    [INFO]  backend-s3: Locked remote state (S3 Native only): tf_backend.lock.id=e566f7e4-...

A user's own ``TF_LOG``/``TF_LOG_PATH`` keep working: their file is read instead of ours,
and logs they asked for on stderr are relayed there.
"""

from __future__ import annotations

import os
import sys

_HEXISH = frozenset("0123456789abcdefABCDEF-")
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


# Longest first: "Attempting to unlock" also ends in "unlock", "Unlocked" in "Locked".
_KINDS = (
    ("Attempting to unlock", "unlock-attempt"),
    ("Attempting to lock", "attempt"),
    ("Unlocked", "unlocked"),
    ("Locked", "locked"),
)


def parse_line(line: str) -> LockEvent | None:
    """The lock event in one log line (text or JSON format), or None.

    Plain string search, no ``re``: this module is imported before Terraform starts.
    """
    at = line.find(" remote state (")
    if at < 0:
        return None
    kind = next((k for phrase, k in _KINDS if line.endswith(phrase, 0, at)), None)
    if kind is None:
        return None
    mode_start = at + len(" remote state (")
    mode = line[mode_start : line.find(")", mode_start)]
    lock_id = ""
    key = line.find("tf_backend.lock.id", mode_start)
    if key >= 0:
        rest = line[key + len("tf_backend.lock.id") :].lstrip('"=: ')
        if len(rest) >= 36 and set(rest[:36]) <= _HEXISH:
            lock_id = rest[:36]
    return LockEvent(kind, mode, lock_id)


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

    def has_output(self) -> bool:
        """Whether Terraform has written to the log since the run began (it has started)."""
        try:
            return os.path.getsize(self.plan.path) > self.plan.offset
        except OSError:
            return False

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
