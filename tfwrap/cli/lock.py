"""``tfwrap lock status|clear`` (being written)."""

from __future__ import annotations

import click


@click.group()
def lock() -> None:
    """Who holds the state lock, and removing it safely."""
