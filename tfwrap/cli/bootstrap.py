"""``tfwrap bootstrap`` (being written)."""

from __future__ import annotations

import click


@click.command()
def bootstrap() -> None:
    """Create (or bring to standard) a state bucket."""
    raise click.UsageError("not built yet")
