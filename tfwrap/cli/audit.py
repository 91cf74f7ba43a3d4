"""``tfwrap audit``: every stack under some paths, for CI and pre-commit."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

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
    type=click.Choice(["text", "json", "sarif", "github", "junit"]),
    default="text",
    show_default=True,
    help="text for people, json (stable schema), sarif 2.1.0, github workflow commands, junit XML.",
)
@click.option(
    "--backend-config",
    "backend_configs",
    multiple=True,
    metavar="FILE|GLOB",
    help="A -backend-config file for every partial backend (repeatable); default: the files beside it.",
)
@click.option(
    "--allow-no-stacks", is_flag=True, help="Exit 0, not 91, when no stack is found (pre-commit on modules)."
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
    backend_configs: tuple[str, ...],
    allow_no_stacks: bool,
    output: Path | None,
    jobs: int,
    no_cache: bool,
    baseline: Path | None = None,
    write_baseline: Path | None = None,
    skip_path: tuple[str, ...] = (),
) -> None:
    """Check every state under PATHS (default .): exit 0 all clear, 80 an error finding, 90 some
    stack could not be checked, 91 no stack found.

    A state is a root module whose *.tf or *.tf.json declares backend "s3" (a partial one: once
    per -backend-config file beside it), or a Terragrunt unit (terragrunt.hcl) whose
    remote_state or generate "backend", in it or in what it includes, is S3. A file given by
    name stands for its own directory (how pre-commit passes changed files). .terraform/,
    .terragrunt-cache/, .git/ and what .gitignore ignores are skipped. Each stack uses the
    .tfwrap.toml that governs it. See docs/layouts.md.
    """
    from tfwrap.audit import formats, run

    files = _backend_files(backend_configs) if backend_configs else None
    report = run.audit(
        list(paths) or [Path()], offline=offline, jobs=jobs, use_cache=not no_cache, backend_files=files
    )
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
        say(f"{report.summary()} (report in {output})")
    else:
        sys.stdout.write(rendered)
    if report.errors:
        raise click.exceptions.Exit(exitcodes.BLOCKED)
    if report.unchecked_stacks:
        raise click.exceptions.Exit(exitcodes.UNCHECKED)
    if not report.stacks and not allow_no_stacks:
        say(_nothing_found(list(paths) or [Path()]))
        raise click.exceptions.Exit(exitcodes.NOTHING_FOUND)


def _backend_files(given: tuple[str, ...]) -> list[Path]:
    """--backend-config values: a file, or a glob (relative to the current directory)."""
    import glob

    found: list[Path] = []
    for value in given:
        matched = sorted(glob.glob(value, recursive=True)) if glob.has_magic(value) else [value]
        if not matched or not all(Path(m).is_file() for m in matched):
            raise TfwrapError(
                f"--backend-config {value}: no such file; pass a file or a glob", exitcodes.USAGE
            )
        found.extend(Path(m).resolve() for m in matched)
    return list(dict.fromkeys(found))


def _nothing_found(paths: list[Path]) -> str:
    """What was not found, and what may be there that tfwrap does not read."""
    foreign = []
    for root in paths:
        base = root if root.is_dir() else root.parent
        for marker, what in (("atmos.yaml", "Atmos (backends in YAML)"), ("cdktf.json", "CDKTF")):
            if (base / marker).exists() or next(base.glob(f"*/{marker}"), None) is not None:
                foreign.append(what)
    shown = " ".join(str(p) for p in paths)
    said = (
        f'no stack found under {shown}: no backend "s3" in *.tf or *.tf.json, '
        "no Terragrunt unit with an S3 backend"
    )
    if foreign:
        return f"{said}; this looks like {' and '.join(dict.fromkeys(foreign))}, which tfwrap does not read"
    return said + "; tfwrap reads the layouts in docs/layouts.md (--allow-no-stacks makes this exit 0)"


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
        say(f"wrote {len(report.findings)} finding(s) to the baseline {write_baseline}")
        return True
    if baseline is not None:
        report.findings, baselined = known.without_baselined(report.findings, known.read(baseline))
        left.append(f"{baselined} in the baseline {baseline}")
    if left:
        say(f"left out: {', '.join(left)}")
    return False
