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
from typing import Any

import click

from tfwrap.durations import parse_duration
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
    (issue 11: ``status --help`` offered ``--dry-run`` and took it silently)."""

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


@click.group(invoke_without_command=True)
@_options_of(*_ALL)
@click.pass_context
def migrate(ctx: click.Context, /, **given: Any) -> None:
    """Move a DynamoDB-locked backend to S3 native locking, safely and resumably.

    Without a subcommand: the dual phase (as `tfwrap migrate dual`).
    """
    ctx.obj = given
    if ctx.invoked_subcommand is None:
        from tfwrap.migrate import run

        raise click.exceptions.Exit(run.dual(_options(ctx, {})))


@migrate.command("dual")
@_options_of(*_PHASE)
@click.pass_context
def dual(ctx: click.Context, /, **given: Any) -> None:
    """Phase 1: add use_lockfile = true beside dynamodb_table, reinit, verify both locks."""
    from tfwrap.migrate import run

    raise click.exceptions.Exit(run.dual(_options(ctx, given)))


@migrate.command("finalize")
@_options_of(*_PHASE)
@click.option("--soak", default="24h", show_default=True, help="Minimum age of the dual phase (0s: none).")
@_IGNORE_STRAGGLERS
@click.pass_context
def finalize(ctx: click.Context, /, soak: str, ignore_stragglers: bool, **given: Any) -> None:
    """Phase 2: remove dynamodb_table, reinit, verify S3 native locking, remove the digest item."""
    from tfwrap.migrate import run

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
@click.pass_context
def cleanup_table(ctx: click.Context, /, table: str | None, ignore_stragglers: bool, **given: Any) -> None:
    """Delete the lock table, only when no other state has an item in it."""
    from tfwrap.migrate import run

    opts = _options(ctx, given, table=table, ignore_stragglers=ignore_stragglers)
    raise click.exceptions.Exit(run.cleanup_table(opts))


@migrate.command("status")
@_options_of("chdir", "backend_config")
@click.option("--soak", default="24h", show_default=True, help="The soak to count down from.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
@click.pass_context
def status(ctx: click.Context, /, soak: str, as_json: bool, **given: Any) -> None:
    """The journal next to the state, the locking the files and .terraform give, and the next
    command to run (stdout; --json for one document)."""
    from tfwrap.migrate import run

    raise click.exceptions.Exit(run.status(_options(ctx, given, soak=parse_duration(soak)), as_json))
