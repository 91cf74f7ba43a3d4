"""Durations as the command line gives them (``24h``, ``1h30m``) and as people read them."""

from __future__ import annotations

import re

from tfwrap import exitcodes
from tfwrap.errors import TfwrapError

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|d|h|m|s)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """Seconds of a duration such as ``24h``, ``90m``, ``1h30m``, ``2d``, ``0s`` or ``0``."""
    value = text.strip()
    if value == "0":
        return 0.0
    parts = _DURATION.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise TfwrapError(f"{text!r} is not a duration like 24h, 90m, 1h30m or 0s", exitcodes.USAGE)
    return sum(float(n) * _UNITS[u] for n, u in parts)


def human(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"
