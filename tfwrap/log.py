"""Logging: structlog to stderr, human-readable on a terminal, JSON lines with
``TFWRAP_LOG_FORMAT=json``; level from ``TFWRAP_LOG_LEVEL`` (default ``warning``: quiet
when everything passes).

structlog costs ~90 ms to import, so the hot path asks ``enabled()`` (environment only)
before it logs, and structlog is loaded on first real use.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing costs ~3 ms to import on the hot path
if TYPE_CHECKING:
    from typing import Any

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
_logger: Any = None


def level() -> int:
    return LEVELS.get(os.environ.get("TFWRAP_LOG_LEVEL", "warning").lower(), 30)


def enabled(name: str) -> bool:
    return LEVELS[name] >= level()


def get() -> Any:
    """The configured structlog logger (configured once, always writing to stderr)."""
    global _logger  # noqa: PLW0603 - one logger per process, built lazily for speed
    if _logger is None:
        import structlog

        json_lines = os.environ.get("TFWRAP_LOG_FORMAT", "").lower() == "json"
        processors: list[Any] = [
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="%Y-%m-%dT%H:%M:%SZ", utc=True),  # one format,
        ]
        if json_lines:  # exc_info=True becomes the trace itself, not `"exc_info": true`
            processors += [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
        else:
            processors.append(
                structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty() and not os.environ.get("NO_COLOR"))
            )
        structlog.configure(
            processors=processors,
            wrapper_class=structlog.make_filtering_bound_logger(level()),
            logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
            cache_logger_on_first_use=True,
        )
        _logger = structlog.get_logger("tfwrap")
    return _logger


def debug(event: str, **fields: Any) -> None:
    if enabled("debug"):
        get().debug(event, **fields)


def info(event: str, **fields: Any) -> None:
    if enabled("info"):
        get().info(event, **fields)


def warning(event: str, **fields: Any) -> None:
    if enabled("warning"):
        get().warning(event, **fields)
