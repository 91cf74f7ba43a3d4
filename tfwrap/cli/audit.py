"""``tfwrap audit``: every stack under some paths, for CI and pre-commit."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from tfwrap import exitcodes
from tfwrap.errors import TfwrapError


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
@click.option(
    "--baseline",
    type=click.Path(path_type=Path),
    help="Leave out the findings recorded in this file (see --write-baseline).",
)
@click.option(
    "--write-baseline",
    type=click.Path(path_type=Path),
    help="Record today's findings in this file and exit 0: later runs with --baseline show only new ones.",
)
@click.option(
    "--skip-path", multiple=True, metavar="GLOB", help="Leave out stacks under these paths (repeatable)."
)
def audit(  # noqa: PLR0917 - click passes every option as an argument
    paths: tuple[Path, ...],
    offline: bool,
    fmt: str,
    output: Path | None,
    jobs: int,
    no_cache: bool,
    baseline: Path | None = None,
    write_baseline: Path | None = None,
    skip_path: tuple[str, ...] = (),
) -> None:
    """Check every stack under PATHS (default .); exit 0 when nothing is an error, 80 otherwise.

    A stack is a directory whose *.tf or *.tf.json declares backend "s3", or a terragrunt.hcl /
    root.hcl with remote_state { backend = "s3" }. A file given by name stands for its own
    directory (how pre-commit passes changed files). .terraform/, .terragrunt-cache/, .git/ and
    what .gitignore ignores are skipped. Each stack uses the .tfwrap.toml that governs it.
    """
    from tfwrap.audit import formats, run

    report = run.audit(list(paths) or [Path()], offline=offline, jobs=jobs, use_cache=not no_cache)
    if _leave_out(report, baseline, write_baseline, skip_path):
        return
    rendered = formats.render(report, fmt)
    if output is not None:
        try:
            output.write_text(rendered)
        except OSError as exc:
            raise TfwrapError(
                f"cannot write {output}: {exc.strerror}; pick a writable --output", exitcodes.USAGE
            ) from exc
        sys.stderr.write(f"tfwrap: {report.summary()} (report in {output})\n")
    else:
        sys.stdout.write(rendered)
    if report.errors:
        raise click.exceptions.Exit(exitcodes.BLOCKED)


def _leave_out(
    report: Any, baseline: Path | None, write_baseline: Path | None, skip_path: tuple[str, ...]
) -> bool:
    """Skipped stacks, inline ignores and the baseline taken out of ``report``; True when the
    run only wrote a baseline."""
    from tfwrap.audit import baseline as known

    left: list[str] = []
    if skip_path:
        before = len(report.stacks)
        report.stacks = [s for s in report.stacks if not known.skipped(s.path, skip_path)]
        report.findings = [f for f in report.findings if not known.skipped(f.stack.path, skip_path)]
        left.append(f"{before - len(report.stacks)} stack(s) skipped")
    report.findings, ignored = known.without_inline_ignores(report.findings)
    if ignored:
        left.append(f"{ignored} ignored inline")
    if write_baseline is not None:
        known.write(report.findings, write_baseline)
        sys.stderr.write(
            f"tfwrap: wrote {len(report.findings)} finding(s) to the baseline {write_baseline}\n"
        )
        return True
    if baseline is not None:
        report.findings, baselined = known.without_baselined(report.findings, known.read(baseline))
        left.append(f"{baselined} in the baseline {baseline}")
    if left:
        sys.stderr.write(f"tfwrap: left out: {', '.join(left)}\n")
    return False
