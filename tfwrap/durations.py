"""Durations: Go's grammar (Terraform's ``duration`` settings, ``-lock-timeout``), the command
line's (``--soak 2d``: Go's plus days) and how people read them. Standard library only."""

from __future__ import annotations

import re

from tfwrap import exitcodes
from tfwrap.errors import TfwrapError

# Go's time.ParseDuration: a sequence of decimal numbers, each with an optional fraction and a
# unit ("1.5h", "15m30s", "1500ms", ".5s"); "0" alone needs no unit.
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DAY = {"d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h|d)")


def go_seconds(text: str, *, days: bool = False) -> float | None:
    """Seconds of a Go duration such as ``1.5h``, ``15m30s`` or ``1500ms``; None when it is not
    one. ``days``: also take ``d`` (tfwrap's own options, never Terraform's settings)."""
    value = text.strip()
    if value in ("0", "+0", "-0"):
        return 0.0
    units = {**_GO_UNITS, **_DAY} if days else _GO_UNITS
    pos, total = 0, 0.0
    for match in _PART.finditer(value):
        if match.start() != pos or match.group(2) not in units:
            return None
        total += float(match.group(1)) * units[match.group(2)]
        pos = match.end()
    return total if pos and pos == len(value) else None


def parse_duration(text: str) -> float:
    """Seconds of a command-line duration (``24h``, ``90m``, ``1h30m``, ``2d``, ``0s``, ``0``)."""
    seconds = go_seconds(text, days=True)
    if seconds is None:
        raise TfwrapError(f"{text!r} is not a duration like 24h, 90m, 1h30m or 0s", exitcodes.USAGE)
    return seconds


def human(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"
