"""``tfwrap shim install [--dir DIR]``: write the shim as DIR/terraform (issue 7)."""

from __future__ import annotations

import sys

import click

from tfwrap.install import shimfile


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
        click.echo(f"tfwrap: replaced the shim of {replaced}", err=True)
    click.echo(f"tfwrap: placed the terraform shim at {target}; `tfwrap shim status` checks PATH", err=True)
