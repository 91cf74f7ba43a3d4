"""tfwrap's one timestamp format, ``2026-11-28T08:36:25Z`` (UTC, to the second).

Terraform writes a lock's ``Created`` with nanoseconds: what tfwrap shows a person is
converted to this format (``--json`` keeps Terraform's fields as Terraform wrote them).
"""

from __future__ import annotations

import datetime as dt
import re

FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)$")


def to_second(text: str) -> str:
    """An RFC 3339 time (any fraction, any offset) in tfwrap's format; anything else unchanged."""
    match = _RFC3339.match(text.strip())
    if not match:
        return text
    seconds, offset = match.groups()
    if offset == "Z":
        return seconds + "Z"
    moment = dt.datetime.strptime(seconds + offset.replace(":", ""), "%Y-%m-%dT%H:%M:%S%z")
    return moment.astimezone(dt.timezone.utc).strftime(FORMAT)
