"""``tfwrap shim install|uninstall|status``: placing the ``terraform`` shim is an explicit act.

Installing the tfwrap package puts no ``terraform`` anywhere. Exit codes: 0 done;
1 ``status`` found the shim would not run (each reason printed); 83 bad usage or a directory
that cannot be written; 87 (``FOREIGN_FILE``) a ``terraform`` that is not a tfwrap shim was
left alone.
"""

from __future__ import annotations

import click

from tfwrap.cli.shim import install, status, uninstall


@click.group("shim")
def shim() -> None:
    """Place, remove or inspect the `terraform` shim."""


for _command in (install.install, uninstall.uninstall, status.status):
    shim.add_command(_command)
