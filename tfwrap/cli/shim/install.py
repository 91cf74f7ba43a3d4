"""``tfwrap shim install [--dir DIR]``: write the shim as DIR/terraform."""

from __future__ import annotations

import sys

import click

from tfwrap.install import shimfile
from tfwrap.output import say


@click.command("install")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False),
    help="where to place `terraform` (default: beside this `tfwrap` command)",
)
def install(directory: str | None) -> None:
    """Place the terraform shim; never over a terraform that is not a tfwrap shim."""
    directory = directory or shimfile.default_dir()
    target, replaced = shimfile.install(directory)
    if replaced and replaced != sys.executable:
        say(f"replaced the shim of {replaced}")
    say(f"placed the terraform shim at {target}; `tfwrap shim status` checks PATH")
