"""``tfwrap shim status``: where the shim is, what it runs, and whether PATH lets it.

Prints on stdout every ``terraform`` on PATH in order (a tfwrap shim, a version manager's
shim, or a binary), the real binary the shim resolves to and through which version manager,
that binary's version, and whether PATH order makes the shim win. Exit 0 when ``terraform``
runs tfwrap and reaches a real Terraform; 1 otherwise, each reason on its own line.
"""

from __future__ import annotations

import click

from tfwrap import exitcodes
from tfwrap.install import status as shimstatus


def _describe(entry: shimstatus.Entry) -> str:
    if entry.kind == shimstatus.SHIM:
        owner = "this tfwrap" if entry.ours else "another tfwrap"
        python = f", Python {entry.python}" if entry.python else ""
        return f"tfwrap shim ({owner}{python})"
    if entry.kind == shimstatus.MANAGER:
        return f"{entry.manager}'s shim (a version manager: it picks the terraform it runs)"
    return "terraform binary"


@click.command("status")
def status() -> int:
    """Show where the shim is, the real terraform it runs, and whether PATH lets it run."""
    st = shimstatus.gather()
    shim = st.shim
    click.echo(f"shim:        {shim.path if shim else 'none on PATH'}")
    click.echo("on PATH:")
    for n, entry in enumerate(st.entries, 1):
        click.echo(f"  {n}. {entry.path}  {_describe(entry)}")
    if not st.entries:
        click.echo("  (no terraform)")
    if st.real is None:
        click.echo(f"real:        none ({st.real_error})")
    else:
        how = "TFWRAP_TERRAFORM" if st.tfwrap_terraform else "first non-shim on PATH"
        click.echo(f"real:        {st.real.path} ({how})")
        if st.real.kind == shimstatus.MANAGER:
            click.echo(f"through:     {st.real.manager}'s shim {st.real.path}")
            click.echo(f"binary:      {st.binary or f'chosen by {st.real.manager} at run time'}")
        click.echo(f"version:     {st.version or 'unknown'}")
    click.echo(f"shim wins:   {'yes' if st.shim_wins else 'no'}")
    for problem in st.problems:
        click.echo(f"problem:     {problem}")
    return exitcodes.DRIFT if st.problems else exitcodes.OK
