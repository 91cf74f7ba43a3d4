"""The lock arguments of a Terraform command line, read and rewritten as Terraform's flag
parser reads them: ``-lock-timeout`` in both forms, from ``TF_CLI_ARGS*`` too.
Imported only when a run failed at the lock."""

from __future__ import annotations

from tfwrap import durations
from tfwrap.terraform.commands import Command

_TIMEOUT_FLAGS = ("-lock-timeout", "--lock-timeout")


def lock_timeout(args: list[str]) -> float:
    """Seconds of the last ``-lock-timeout`` (a Go duration such as ``2m30s``); 0 when absent.

    Both forms Terraform's flag parser takes: ``-lock-timeout=5m`` and ``-lock-timeout 5m``,
    with one or two dashes. Pass ``Command.effective_args()``: ``TF_CLI_ARGS*``.
    """
    value = ""
    for i, arg in enumerate(args):
        if arg.startswith(tuple(f + "=" for f in _TIMEOUT_FLAGS)):
            value = arg.split("=", 1)[1]
        elif arg in _TIMEOUT_FLAGS and i + 1 < len(args):
            value = args[i + 1]
    return durations.go_seconds(value) or 0.0


def with_lock_timeout(command: Command, argv: list[str], seconds: float) -> list[str]:
    """``argv`` with every ``-lock-timeout`` replaced by one of ``seconds``, placed right
    after the command words: after ``TF_CLI_ARGS*`` (which Terraform inserts there) so it
    wins, and before any positional argument (a plan file) so it is still read as a flag."""
    head = len(command.argv) - len(command.args)  # global options and the command name
    rest: list[str] = []
    skip = False
    for arg in argv[head:]:
        if skip:
            skip = False
        elif arg in _TIMEOUT_FLAGS:
            skip = True
        elif not arg.startswith(tuple(f + "=" for f in _TIMEOUT_FLAGS)):
            rest.append(arg)
    at = 1 if command.name in ("state", "workspace") and rest[:1] == [command.sub] else 0
    flag = f"-lock-timeout={max(1, int(seconds))}s"
    return [*argv[:head], *rest[:at], flag, *rest[at:]]
