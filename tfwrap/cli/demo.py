"""``tfwrap demo``: the main job on an embedded default, with no AWS account."""

from __future__ import annotations

import click


@click.command()
def demo() -> None:
    """Show the guard letting a compliant bucket through and stopping a non-compliant one."""
    from tfwrap.demo import story

    raise click.exceptions.Exit(story.run())
