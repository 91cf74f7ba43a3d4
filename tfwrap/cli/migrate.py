"""``tfwrap migrate``: move a DynamoDB-locked S3 backend to S3 native locking, resumably.

    tfwrap migrate [dual] [-chdir DIR] [--dry-run]    phase 1: use_lockfile beside dynamodb_table
    tfwrap migrate finalize [--soak 24h]             phase 2: dynamodb_table and the digest removed
    tfwrap migrate cleanup-table [--table NAME]      delete the lock table once nothing uses it
    tfwrap migrate rollback [--table NAME]           back to DynamoDB locking from either phase
    tfwrap migrate status [--json]                   what the journal says, and the next command

Options may also be given before the subcommand (``tfwrap migrate --dry-run finalize``);
each subcommand lists only the options it uses. Each step is printed on stderr before it is
done and recorded after it is verified in the journal next to the state
(``s3://<bucket>/<state key>.tfwrap-migrate.json``); run the same command again to
resume an interrupted migration. Exit codes: see ``tfwrap.migrate.step``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from tfwrap import exitcodes
from tfwrap.durations import parse_duration
from tfwrap.errors import TfwrapError
from tfwrap.migrate.migration import Options

_DEFAULTS: dict[str, Any] = {
    "chdir": ".",
    "dry_run": False,
    "backend_config": (),
    "plan_args": (),
    "lock_timeout": "60s",
}


def _options_of(*names: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a command with these options only: each subcommand's help lists what it uses
    (``status --help`` offered ``--dry-run`` and took it silently)."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        for name in reversed(names):
            fn = _OPTIONS[name](fn)
        return fn

    return decorate


_OPTIONS: dict[str, Callable[[Callable[..., Any]], Callable[..., Any]]] = {
    "chdir": click.option(
        "-chdir", "--chdir", "chdir", default=None, help="The root module to migrate (as terraform -chdir)."
    ),
    "dry_run": click.option(
        "--dry-run", "dry_run", is_flag=True, default=None, help="Show the whole plan; change nothing."
    ),
    "backend_config": click.option(
        "-backend-config",
        "--backend-config",
        "backend_config",
        multiple=True,
        help="As terraform init -backend-config (a file or key=value): the ones your init uses "
        "(recorded in the journal; finalize and rollback reuse them).",
    ),
    "plan_args": click.option(
        "--plan-arg",
        "plan_args",
        multiple=True,
        help="An extra argument for the verification plans, e.g. --plan-arg=-var-file=prod.tfvars.",
    ),
    "lock_timeout": click.option(
        "--lock-timeout",
        "lock_timeout",
        default=None,
        help="-lock-timeout for the verification plans (default 60s).",
    ),
}
_IGNORE_STRAGGLERS = click.option(
    "--ignore-stragglers",
    "ignore_stragglers",
    is_flag=True,
    help="Go on although a run on the old configuration used the lock table (a lock held now "
    "always stops it): only when you know every pipeline is updated.",
)
_ALL = ("chdir", "dry_run", "backend_config", "plan_args", "lock_timeout")
_PHASE = _ALL  # the phases that run verification plans
_WHERE = ("chdir", "dry_run", "backend_config")  # cleanup-table: no plan


def _options(ctx: click.Context, /, given: dict[str, Any], **extra: Any) -> Options:
    """Subcommand values over the group's (``tfwrap migrate --dry-run finalize``) over defaults."""
    parent = ctx.find_object(dict) or {}
    merged = dict(_DEFAULTS)
    for source in (parent, given):
        for name, value in source.items():
            if value is not None and value != ():
                merged[name] = value
    return Options(
        chdir=merged["chdir"],
        dry_run=bool(parent.get("dry_run") or given.get("dry_run")),
        backend_config=tuple(merged["backend_config"]),
        plan_args=tuple(merged["plan_args"]),
        lock_timeout=str(merged["lock_timeout"]),
        **extra,
    )


_VALUED = {
    "-chdir",
    "--chdir",
    "-backend-config",
    "--backend-config",
    "--plan-arg",
    "--lock-timeout",
    "--jobs",
}


class _Group(click.Group):
    """``tfwrap migrate --all PATHS…`` is ``tfwrap migrate --all dual PATHS…``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--all" in args:
            skip = False
            for n, arg in enumerate(args):
                if skip:
                    skip = False
                elif arg in _VALUED:
                    skip = True
                elif not arg.startswith("-"):
                    if arg not in self.commands:
                        args = [*args[:n], "dual", *args[n:]]
                    break
        return super().parse_args(ctx, args)


def _fleet(fn: Callable[..., Any]) -> Callable[..., Any]:
    """PATHS, ``--all`` and ``--jobs``: the phase for every stack under PATHS (cli/migrate_all.py)."""
    fn = click.option(
        "--jobs", type=click.IntRange(1, 64), default=None, help="With --all: stacks at a time."
    )(fn)
    fn = click.option(
        "--all", "every", is_flag=True, default=None, help="Every DynamoDB-locked stack under PATHS."
    )(fn)
    return click.argument("paths", nargs=-1, type=click.Path(path_type=Path))(fn)


def _every(ctx: click.Context, given: dict[str, Any]) -> tuple[tuple[Path, ...], int] | None:
    """(PATHS, jobs) with --all (here or on the group); None for one stack. Pops the options."""
    parent = ctx.find_object(dict) or {}
    paths, every = given.pop("paths", ()), given.pop("every", None) or parent.get("every")
    jobs = given.pop("jobs", None) or parent.get("jobs") or 4
    if not every:
        if paths:
            raise TfwrapError("PATHS go with --all (one stack: -chdir DIR)", exitcodes.USAGE)
        return None
    if given.get("chdir") or parent.get("chdir"):
        raise TfwrapError("--all takes PATHS, not -chdir", exitcodes.USAGE)
    return tuple(paths), int(jobs)


@click.group(cls=_Group, invoke_without_command=True)
@_options_of(*_ALL)
@click.option("--all", "every", is_flag=True, default=None, help="Every DynamoDB-locked stack under PATHS.")
@click.option("--jobs", type=click.IntRange(1, 64), default=None, help="With --all: stacks at a time.")
@click.pass_context
def migrate(ctx: click.Context, /, **given: Any) -> None:
    """Move a DynamoDB-locked backend to S3 native locking, safely and resumably.

    Without a subcommand: the dual phase (as `tfwrap migrate dual`). With --all [PATHS...]:
    every stack under PATHS on DynamoDB locking (as `tfwrap migrate dual --all PATHS`).
    """
    ctx.obj = given
    if ctx.invoked_subcommand is None:
        if given.get("every"):
            from tfwrap.cli import migrate_all

            raise click.exceptions.Exit(
                migrate_all.dual_all((), dry_run=bool(given.get("dry_run")), jobs=int(given.get("jobs") or 4))
            )
        from tfwrap.migrate import run

        raise click.exceptions.Exit(run.dual(_options(ctx, {})))


@migrate.command("dual")
@_options_of(*_PHASE)
@_fleet
@click.pass_context
def dual(ctx: click.Context, /, **given: Any) -> None:
    """Phase 1: add use_lockfile = true beside dynamodb_table, reinit, verify both locks."""
    from tfwrap.migrate import run

    every = _every(ctx, given)
    if every is not None:
        from tfwrap.cli import migrate_all

        dry = bool(given.get("dry_run") or (ctx.find_object(dict) or {}).get("dry_run"))
        raise click.exceptions.Exit(migrate_all.dual_all(every[0], dry_run=dry, jobs=every[1]))

    raise click.exceptions.Exit(run.dual(_options(ctx, given)))


@migrate.command("finalize")
@_options_of(*_PHASE)
@click.option("--soak", default="24h", show_default=True, help="Minimum age of the dual phase (0s: none).")
@_IGNORE_STRAGGLERS
@_fleet
@click.pass_context
def finalize(ctx: click.Context, /, soak: str, ignore_stragglers: bool, **given: Any) -> None:
    """Phase 2: remove dynamodb_table, reinit, verify S3 native locking, remove the digest item."""
    from tfwrap.migrate import run

    every = _every(ctx, given)
    if every is not None:
        from tfwrap.cli import migrate_all

        dry = bool(given.get("dry_run") or (ctx.find_object(dict) or {}).get("dry_run"))
        raise click.exceptions.Exit(
            migrate_all.finalize_all(every[0], soak=parse_duration(soak), dry_run=dry, jobs=every[1])
        )
    opts = _options(ctx, given, soak=parse_duration(soak), ignore_stragglers=ignore_stragglers)
    raise click.exceptions.Exit(run.finalize(opts))


@migrate.command("rollback")
@_options_of(*_PHASE)
@click.option("--table", default=None, help="The DynamoDB lock table (when the journal does not know it).")
@click.pass_context
def rollback(ctx: click.Context, /, table: str | None, **given: Any) -> None:
    """Back to DynamoDB locking from either phase, with the digest item made right."""
    from tfwrap.migrate import run

    raise click.exceptions.Exit(run.rollback(_options(ctx, given, table=table)))


@migrate.command("cleanup-table")
@_options_of(*_WHERE)
@click.option("--table", default=None, help="The DynamoDB lock table (when the journal does not know it).")
@_IGNORE_STRAGGLERS
@_fleet
@click.pass_context
def cleanup_table(ctx: click.Context, /, table: str | None, ignore_stragglers: bool, **given: Any) -> None:
    """Delete the lock table, only when no other state has an item in it."""
    from tfwrap.migrate import run

    every = _every(ctx, given)
    if every is not None:
        from tfwrap.cli import migrate_all

        dry = bool(given.get("dry_run") or (ctx.find_object(dict) or {}).get("dry_run"))
        raise click.exceptions.Exit(migrate_all.cleanup_all(every[0], dry_run=dry, jobs=every[1]))
    opts = _options(ctx, given, table=table, ignore_stragglers=ignore_stragglers)
    raise click.exceptions.Exit(run.cleanup_table(opts))


@migrate.command("status")
@_options_of("chdir", "backend_config")
@click.option("--soak", default="24h", show_default=True, help="The soak to count down from.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
@_fleet
@click.pass_context
def status(ctx: click.Context, /, soak: str, as_json: bool, **given: Any) -> None:
    """The journal next to the state, the locking the files and .terraform give, and the next
    command to run (stdout; --json for one document)."""
    from tfwrap.migrate import run

    every = _every(ctx, given)
    if every is not None:
        from tfwrap.cli import migrate_all

        raise click.exceptions.Exit(
            migrate_all.status_all(every[0], soak=parse_duration(soak), as_json=as_json, jobs=every[1])
        )

    raise click.exceptions.Exit(run.status(_options(ctx, given, soak=parse_duration(soak)), as_json))
