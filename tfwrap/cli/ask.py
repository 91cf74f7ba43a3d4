"""Asking at a terminal before a change the user cannot take back with tfwrap (a removed
lock, a restored state): ``--yes`` skips the question, no terminal refuses."""

from __future__ import annotations

import sys

import click

from tfwrap import exitcodes
from tfwrap.errors import TfwrapError


def confirm(yes: bool, question: str, *, yes_to: str, declined: str) -> None:
    """Return when the change may go ahead: ``--yes``, or "y" at a terminal. Without a
    terminal, exit 83 naming ``--yes`` ("pass --yes to ``yes_to``"); on "n", exit 86
    with ``declined``."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise TfwrapError(f"no terminal to confirm on: pass --yes to {yes_to}", exitcodes.USAGE)
    if not click.confirm(question, default=False, err=True):
        raise TfwrapError(declined, exitcodes.LOCK_HELD)
