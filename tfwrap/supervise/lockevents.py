"""What Terraform says about its lock, read from its own log (the exact lock ID; DOMAIN.md).

With ``TF_LOG_CORE=INFO`` and ``TF_LOG_PATH`` set, Terraform logs lines such as::

    [INFO]  backend-s3: Locked remote state (S3 Native only): tf_backend.lock.id=e566f7e4-...

Terraform always logs into tfwrap's private file; the lines a user asked for with
``TF_LOG``/``TF_LOG_PATH`` are copied to their file or relayed on stderr (``LogPlan``).
Why: docs/decisions/103-the-exact-lock-id.md.
"""

from __future__ import annotations

import os
import sys

from tfwrap.output import say, write

APPLYING = "backend/local: apply calling Apply"  # logged as the apply walk begins
_HEXISH = frozenset("0123456789abcdefABCDEF-")
_INFO_LEVELS = frozenset({"TRACE", "DEBUG", "INFO", "JSON"})


class LockEvent:
    """``kind`` is attempt|locked|unlock-attempt|unlocked, or applying (Terraform began its
    apply phase, the only one that changes anything); ``mode`` e.g. "S3 Native only".

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
        # docs/decisions/111-a-handoff-that-met-terraforms-own-lock.md
        return LockEvent("applying", "", "") if APPLYING in line else None
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
    """How one Terraform attempt logs: the environment to add, the file to read, and where
    the lines the user asked for go.

    Terraform always logs into a private file of this attempt's own (a shared
    ``TF_LOG_PATH`` held other runs' "Locked" lines, and tfwrap took another run's live lock
    for its own; a retry re-read the previous attempt's lines). The user's own
    ``TF_LOG``/``TF_LOG_PATH`` keep working: tfwrap appends the lines to their file, or relays
    them on stderr when they asked for logs without a file.
    """

    def __init__(self, env: dict[str, str], private_dir: str, attempt: int = 1) -> None:
        self.child_env = dict(env)
        self.path = os.path.join(private_dir, f"terraform-{attempt}.log")
        self.offset = 0
        self.child_env["TF_LOG_PATH"] = self.path
        level = (env.get("TF_LOG_CORE") or env.get("TF_LOG") or "").upper()
        needs_core = level not in _INFO_LEVELS
        if needs_core:
            self.child_env["TF_LOG_CORE"] = "INFO"
        asked = bool(env.get("TF_LOG") or env.get("TF_LOG_CORE") or env.get("TF_LOG_PROVIDER"))
        user_path = env.get("TF_LOG_PATH", "")
        self.copy_to = user_path if asked else ""  # Terraform writes nothing there unasked
        self.relay = asked and not user_path  # the user asked for logs on stderr
        self.drop_info = needs_core  # INFO lines we added for ourselves are not passed on

    @property
    def passes_on(self) -> bool:
        return bool(self.copy_to or self.relay)


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
        passed: list[bytes] = []
        for raw in lines:
            line = raw.decode(errors="replace")
            if self.plan.passes_on and not (self.plan.drop_info and "[INFO]" in line):
                passed.append(raw + b"\n")
            event = parse_line(line)
            if event is not None:
                events.append(event)
        if passed:
            self._pass_on(b"".join(passed))
        return events

    def _pass_on(self, data: bytes) -> None:
        """The user's lines: appended to their file as Terraform itself would, or on stderr."""
        if self.plan.copy_to:
            try:
                fd = os.open(self.plan.copy_to, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
                try:
                    os.write(fd, data)  # one write: whole lines, even with other writers
                finally:
                    os.close(fd)
            except OSError:
                self.plan.copy_to = ""  # Terraform would fail on it too; said once is enough
                say("cannot write Terraform's log to TF_LOG_PATH")
        else:
            write(data.decode(errors="replace"))  # never raises on a closed stderr
            sys.stderr.flush()
