"""The one writer of tfwrap's own lines on stderr: ``tfwrap: …``; it never raises.

Under cron, daemons and some CI agents stderr is closed or a broken pipe. A message tfwrap
cannot show must never change what happens next (docs/decisions/001-one-stderr-writer.md):
the exit code still says it. Standard library only: the shim's hot path uses it.
"""

from __future__ import annotations

import sys

PREFIX = "tfwrap: "


def say(message: str, *, prefix: str = PREFIX) -> None:
    """Write one line (``tfwrap: message``) to stderr, or nothing when stderr is unusable."""
    write(f"{prefix}{message}\n")


def write(text: str) -> None:
    """Write text to stderr as it is (already formatted lines), never raising."""
    stream = sys.stderr
    if stream is None:  # started with fd 2 closed: Python leaves sys.stderr None
        return
    try:
        stream.write(text)
        stream.flush()
    except (OSError, ValueError, AttributeError):
        pass  # closed or broken: the exit code still says it
