"""``tfwrap iam-policy`` (being written)."""

from __future__ import annotations

import click


@click.command("iam-policy")
def iam_policy() -> None:
    """Print the least-privilege IAM policy for Terraform and tfwrap."""
    raise click.UsageError("not built yet")
