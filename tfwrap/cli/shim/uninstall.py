"""``tfwrap shim uninstall [--dir DIR]``: remove the shim this tfwrap placed."""

from __future__ import annotations

import click

from tfwrap.install import shimfile
from tfwrap.output import say


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
        say(f"removed the terraform shim {removed}")
    else:
        say(f"no terraform shim in {directory}; nothing to remove")
