"""``tfwrap audit``: every stack under some paths, for CI and pre-commit."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from tfwrap import exitcodes
from tfwrap.errors import TfwrapError
from tfwrap.output import say


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--offline", is_flag=True, help="Only the configuration: no AWS call (cached facts are used).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "sarif", "github"]),
    default="text",
    show_default=True,
    help="text for people, json (stable schema), sarif 2.1.0, github workflow commands.",
)
@click.option("--output", "-o", type=click.Path(path_type=Path), help="Write the report here, not stdout.")
@click.option(
    "--jobs", "-j", type=click.IntRange(1, 64), default=8, show_default=True, help="Buckets asked at once."
)
@click.option("--no-cache", is_flag=True, help="Ask AWS again instead of using cached bucket facts.")
def audit(  # noqa: PLR0917 - click passes every option as an argument
    paths: tuple[Path, ...], offline: bool, fmt: str, output: Path | None, jobs: int, no_cache: bool
) -> None:
    """Check every stack under PATHS (default .); exit 0 when nothing is an error, 80 otherwise.

    A stack is a directory whose *.tf or *.tf.json declares backend "s3", or a terragrunt.hcl /
    root.hcl with remote_state { backend = "s3" }. A file given by name stands for its own
    directory (how pre-commit passes changed files). .terraform/, .terragrunt-cache/, .git/ and
    what .gitignore ignores are skipped. Each stack uses the .tfwrap.toml that governs it.
    """
    from tfwrap.audit import formats, run

    report = run.audit(list(paths) or [Path()], offline=offline, jobs=jobs, use_cache=not no_cache)
    rendered = formats.render(report, fmt)
    if output is not None:
        try:
            output.write_text(rendered)
        except OSError as exc:
            raise TfwrapError(
                f"cannot write {output}: {exc.strerror}; pick a writable --output", exitcodes.USAGE
            ) from exc
        say(f"{report.summary()} (report in {output})")
    else:
        sys.stdout.write(rendered)
    if report.errors:
        raise click.exceptions.Exit(exitcodes.BLOCKED)
