"""``tfwrap shim uninstall [--dir DIR]``: remove the shim this tfwrap placed (issue 7)."""

from __future__ import annotations

import click

from tfwrap.install import shimfile


@click.command("uninstall")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False),
    help="where the shim is (default: beside this `tfwrap` command)",
)
def uninstall(directory: str | None) -> None:
    """Remove the terraform shim; never a terraform that is not one."""
    directory = directory or shimfile.default_dir()
    removed = shimfile.uninstall(directory)
    if removed:
        click.echo(f"tfwrap: removed the terraform shim {removed}", err=True)
    else:
        click.echo(f"tfwrap: no terraform shim in {directory}; nothing to remove", err=True)
