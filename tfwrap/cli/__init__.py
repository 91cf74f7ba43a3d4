"""``tfwrap``: the admin commands (click). The ``terraform`` shim never goes through here.

A command's module is imported only when that command runs or a help lists it, and each
module imports what its command needs inside the command's function: ``tfwrap shim status``
must not pay for botocore, the migration or the scanner, nor ``tfwrap lock status`` for the
audit (docs/decisions/100-the-hot-path.md). That is the one reason for the
function-level imports under ``cli/``; the modules they reach import at module level.
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from tfwrap import __version__, exitcodes
from tfwrap.errors import TfwrapError
from tfwrap.output import say

# One line each in `--help` (click cuts a docstring's first sentence mid-word to fit).
SUMMARIES = {
    "audit": "Check every stack under some paths, for CI and pre-commit.",
    "bootstrap": "Create or check the state bucket as your standard wants it.",
    "check": "Run every check on one directory's backend and report.",
    "demo": "Watch the guard and the lock keeper on a local S3 server.",
    "doctor": "Explain this setup: binaries, backend, policy, cache.",
    "iam-policy": "Print the least-privilege IAM policy Terraform needs.",
    "lock": "Who holds the state lock; remove it safely.",
    "migrate": "Move from DynamoDB locking to S3 native locking.",
    "shim": "Install, remove or inspect the terraform shim.",
    "version": "Print tfwrap's version.",
    "lock clear": "Remove the state lock: if stale, by its ID, or unreadable.",
    "lock ls": "Every lock of the stacks under PATHS or of a bucket, each judged.",
    "state": "A state's versions, who wrote each, and undoing a bad write.",
    "state history": "The state's versions, newest first, with the run that wrote each.",
    "state diff": "What changed between two versions (addresses, never values).",
    "state restore": "Make an earlier version the current state, under the lock.",
    "state undo": "Restore the state the last run started from.",
    "lock status": "Who holds the lock, its heartbeat, and the verdict.",
    "shim install": "Place the terraform shim first on PATH.",
    "shim status": "Where the shim is and which terraform it runs.",
    "shim uninstall": "Remove the terraform shim (never anything else).",
    "migrate cleanup-table": "Delete the lock table once nothing uses it.",
    "migrate dual": "Phase 1: use_lockfile beside dynamodb_table, verified.",
    "migrate finalize": "Phase 2: dynamodb_table removed after the soak.",
    "migrate rollback": "Back to DynamoDB locking from either phase.",
    "migrate status": "What the journal says, and the next command.",
}
# Each command and its module under tfwrap/cli/ (the click object has the module's name).
COMMANDS = {
    "audit": "audit",
    "bootstrap": "bootstrap",
    "check": "check",
    "demo": "demo",
    "doctor": "doctor",
    "iam-policy": "iam_policy",
    "lock": "lock",
    "migrate": "migrate",
    "shim": "shim",
    "state": "state",
}
EPILOG = (
    "Run `tfwrap COMMAND --help` for a command's options. Shell completion: "
    'eval "$(_TFWRAP_COMPLETE=bash_source tfwrap)" in ~/.bashrc (zsh_source, fish_source for '
    "zsh and fish); see docs/cli.md."
)


class _Commands(click.Group):
    """A group whose commands are imported the first time they are asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS and cmd_name not in self.commands:
            module = importlib.import_module(f"tfwrap.cli.{COMMANDS[cmd_name]}")
            command: click.Command = getattr(module, COMMANDS[cmd_name])
            _summaries(command, cmd_name)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group(
    cls=_Commands,
    context_settings={
        "help_option_names": ["-h", "--help"],
        "color": False if os.environ.get("NO_COLOR") else None,
    },
    epilog=EPILOG,
)
@click.version_option(__version__, prog_name="tfwrap")
def group() -> None:
    """tfwrap: a drop-in terraform that checks the S3 backend and keeps the state lock safe."""


@click.command("version")
def version() -> None:
    """Print tfwrap's version (as --version does)."""
    click.echo(f"tfwrap, version {__version__}")


group.add_command(version)


def _summaries(command: click.Command, path: str) -> None:
    """Give every command its one-line summary, subcommands included."""
    if path in SUMMARIES:
        command.short_help = SUMMARIES[path]
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            _summaries(sub, f"{path} {name}".strip())


def main(argv: list[str] | None = None) -> int:
    """Run a tfwrap command; every refusal is one line on stderr and a documented exit code."""
    _summaries(group, "")
    args = sys.argv[1:] if argv is None else argv
    if not args and not os.environ.get("_TFWRAP_COMPLETE"):
        # A bare `tfwrap` is a question, not a mistake: the help, exit 0.
        with click.Context(group, info_name="tfwrap", **group.context_settings) as top:
            click.echo(group.get_help(top), color=False if os.environ.get("NO_COLOR") else None)
        return exitcodes.OK
    try:
        # With standalone_mode=False click returns (not raises) the code of an Exit.
        code = group.main(args=argv, prog_name="tfwrap", standalone_mode=False)
    except TfwrapError as exc:
        say(exc.message)
        return exc.code
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.Abort:
        say("aborted")
        return exitcodes.from_signal(2)
    except click.ClickException as exc:
        # Say where to look: the help of the command that was called wrongly.
        ctx = getattr(exc, "ctx", None)
        where = ctx.command_path if ctx is not None else "tfwrap"
        say(f"{exc.format_message().rstrip('.')}; see {where} --help")
        return exitcodes.USAGE
    except Exception as exc:  # noqa: BLE001 - never a traceback for users
        from tfwrap import log

        log.debug("internal error", exc_info=True)  # the trace, for TFWRAP_LOG_LEVEL=debug
        say(f"internal error ({type(exc).__name__}: {exc}); TFWRAP_LOG_LEVEL=debug shows the trace")
        return exitcodes.INTERNAL
    return code if isinstance(code, int) else exitcodes.OK
