"""``tfwrap migrate`` (being written)."""

from __future__ import annotations

import click


@click.group()
def migrate() -> None:
    """Move a DynamoDB-locked backend to S3 native locking, safely and resumably."""
