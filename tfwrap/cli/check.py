"""``tfwrap check``: every check for a directory, as a report."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from tfwrap import exitcodes, schema
from tfwrap.errors import TfwrapError
from tfwrap.findings.finding import CATALOG
from tfwrap.output import say


@click.command()
@click.option("-chdir", "--chdir", "chdir", default=".", help="Directory to check (as terraform -chdir).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
@click.option("--no-cache", is_flag=True, help="Ask AWS again instead of using cached facts.")
@click.option(
    "--init",
    "as_init",
    is_flag=True,
    help="Check the configuration files as `init` would read them.",
)
@click.option(
    "-backend-config",
    "--backend-config",
    "backend_config",
    multiple=True,
    help="As terraform init -backend-config (a file or key=value); implies --init.",
)
@click.option("--list", "list_ids", is_flag=True, help="List every finding id and its default severity.")
@click.option(
    "--show-config",
    is_flag=True,
    help="Print every setting, its value and the file (or variable) it came from, then exit.",
)
@click.option(
    "--init-config",
    is_flag=True,
    help="Write a .tfwrap.toml here that makes today's error findings warnings (adopt gradually).",
)
@click.option(
    "--probe",
    "probe_now",
    is_flag=True,
    help="Run the conditional-write probe against the store now (any endpoint, AWS's too).",
)
def check(  # click passes options by name
    *,
    chdir: str,
    as_json: bool,
    no_cache: bool,
    as_init: bool,
    backend_config: tuple[str, ...],
    list_ids: bool,
    probe_now: bool,
    show_config: bool,
    init_config: bool,
) -> None:
    """Run every check for a directory; exit 0 when nothing is an error, 80 otherwise.

    The report goes to stdout (it is what you asked for); findings use the same ids and
    severities as the shim, after the policy (.tfwrap.toml, TFWRAP_MODE) is applied.
    """
    if list_ids:
        for finding_id, severity in CATALOG.items():
            click.echo(f"{finding_id}\t{severity}")
        return
    from tfwrap.checks import guard
    from tfwrap.findings import policy
    from tfwrap.terraform import commands, realbin

    workdir = Path(chdir)
    if not workdir.is_dir():
        raise TfwrapError(f"{chdir} is not a directory; pass -chdir DIR", exitcodes.USAGE)
    pol = policy.load(str(workdir))
    if show_config:
        _show_config(pol, as_json)
        return
    real = realbin.find()
    as_init = as_init or bool(backend_config)  # only init reads -backend-config, as in Terraform
    extra = [f"-backend-config={v}" for v in backend_config]
    command = commands.parse([f"-chdir={chdir}", "init" if as_init else "plan", *extra])
    outcome = guard.run(command, real, pol, use_cache=not no_cache, probe_now=probe_now)
    if outcome.cacheable:  # what the shim reads next: --no-cache refreshes it too
        from tfwrap.findings import cache
        from tfwrap.shim import main as shim

        cache.put(
            "verdict",
            cache.verdict_key(command, real, pol.min_terraform_version),
            shim.verdict_value(outcome),
        )
    outcome.blocked = bool(outcome.errors)
    if init_config:
        _init_config(workdir, outcome.raw, pol)
        return
    _show(outcome, pol, as_json)
    if outcome.errors:
        raise click.exceptions.Exit(exitcodes.BLOCKED)


def _show_config(pol: Any, as_json: bool) -> None:
    from tfwrap.findings import policy

    rows = policy.settings(pol)
    if as_json:
        doc = {
            "schema_version": schema.VERSION,
            "files": pol.files,
            "settings": [{"name": n, "value": json.loads(v), "from": w} for n, v, w in rows],
        }
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return
    click.echo("files (lowest precedence first): " + (", ".join(pol.files) or "none"))
    width = max(len(f"{n} = {v}") for n, v, _ in rows)
    for name, value, where in rows:
        click.echo(f"{f'{name} = {value}':<{width}}  # {where}")


def _init_config(workdir: Path, raw: list[Any], pol: Any) -> None:
    """A .tfwrap.toml that turns every current error into a warning: adopt first, fix later."""
    from tfwrap.findings.finding import ERROR

    target = workdir / ".tfwrap.toml"
    ids = sorted({f.id for f in map(pol.apply, raw) if f.severity == ERROR})
    lines = [f'{i} = "warning"' for i in ids]
    if target.exists():
        shown = "; ".join(lines) or "nothing: no finding is an error"
        raise TfwrapError(f"{target} exists: add under its [severity]: {shown}", exitcodes.USAGE)
    text = (
        "# Written by `tfwrap check --init-config`: today's errors, as warnings, so nothing is\n"
        "# blocked while the team adopts tfwrap. Remove a line once its finding is fixed.\n"
        "# Settings merge from the repository root down (`tfwrap check --show-config`).\n"
        "[severity]\n" + "".join(f"{ln}\n" for ln in lines)
    )
    target.write_text(text)
    say(f"wrote {target} ({len(ids)} finding(s) made warnings)")


def _show(outcome: Any, pol: Any, as_json: bool) -> None:
    from tfwrap.findings import report

    if as_json:
        sys.stdout.write(json.dumps(report.to_json(outcome, pol), indent=2) + "\n")
        return
    backend = outcome.backend
    if not backend.is_s3:
        click.echo(f"backend: {backend.backend_type or 'none (local state)'}: nothing to check")
    elif not backend.bucket:
        click.echo("backend: s3, bucket not given (partial configuration)")
    else:
        click.echo(f"backend: s3://{backend.bucket}/{backend.state_key} (workspace {backend.workspace})")
    for f in outcome.findings:
        click.echo(report.line(f))
    if backend.is_s3 and not outcome.findings:
        click.echo("all checks passed")
