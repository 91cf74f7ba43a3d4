"""``tfwrap``: the admin commands (click). The ``terraform`` shim never goes through here.

Every command module is imported to register it (``tfwrap --help`` lists them all), so each
one imports what its command needs inside the command's function: ``tfwrap shim status``
must not pay for botocore, the migration or the scanner. That is the one reason for the
function-level imports under ``cli/``; the modules they reach import at module level.
"""

from __future__ import annotations

import click

from tfwrap import __version__, exitcodes
from tfwrap.errors import TfwrapError
from tfwrap.output import say


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tfwrap")
def group() -> None:
    """tfwrap: a drop-in terraform that checks the S3 backend and keeps the state lock safe."""


def _register() -> None:
    from tfwrap.cli import audit, bootstrap, check, demo, doctor, iam_policy, lock, migrate, shim

    for command in (
        check.check,
        lock.lock,
        bootstrap.bootstrap,
        migrate.migrate,
        iam_policy.iam_policy,
        demo.demo,
        shim.shim,
        doctor.doctor,
        audit.audit,
    ):
        group.add_command(command)


def main(argv: list[str] | None = None) -> int:
    """Run a tfwrap command; every refusal is one line on stderr and a documented exit code."""
    _register()
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
        # Say where to look (issue 11): the help of the command that was called wrongly.
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
