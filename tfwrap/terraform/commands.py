"""What a terraform command line means to tfwrap: its subcommand and how it treats the backend.

The pass-through list is mirrored in ``shims/terraform`` (a test keeps the two equal);
each entry was checked against Terraform 1.15's command implementations: none of these
initialises the configured backend or reads state. This module is on the shim's hot
path: standard library only, nothing heavy at import.
"""

from __future__ import annotations

import os

# Never touch the backend: exec'd by the sh shim with no Python at all.
PASS_THROUGH = frozenset(
    {
        "",
        "version",
        "fmt",
        "validate",
        "get",
        "test",
        "login",
        "logout",
        "metadata",
        "help",
        "stacks",
    }
)
PASS_THROUGH_PROVIDERS = frozenset({"lock", "mirror"})  # `providers lock|mirror`
HELP_FLAGS = frozenset({"-help", "-h", "--help", "-version", "-v", "--version"})

# Recovery commands are checked and reported but never blocked: refusing a force-unlock
# because the bucket lacks versioning would leave a team stuck behind a dead lock.
RECOVERY = frozenset({"force-unlock"})

# Commands that can take the state lock (the supervised run).
LOCKING = frozenset(
    {
        "plan",
        "apply",
        "destroy",
        "refresh",
        "import",
        "taint",
        "untaint",
        "console",
        "init",
        "query",
    }
)
LOCKING_STATE = frozenset({"mv", "rm", "push", "replace-provider"})
LOCKING_WORKSPACE = frozenset({"new", "delete"})

# How tfwrap treats a command.
KIND_PASS_THROUGH = "pass-through"  # noqa: S105 - not a password
KIND_CHECKED = "checked"
KIND_RECOVERY = "recovery"


class Command:
    """A parsed terraform command line: global options, subcommand, its arguments."""

    __slots__ = ("args", "argv", "chdir", "name", "sub")

    def __init__(
        self,
        argv: tuple[str, ...],
        chdir: str | None = None,
        name: str = "",
        sub: str = "",
        args: tuple[str, ...] = (),
    ) -> None:
        self.argv, self.chdir, self.name, self.sub, self.args = argv, chdir, name, sub, args

    @property
    def kind(self) -> str:
        if any(a in HELP_FLAGS for a in self.argv) or self.name in PASS_THROUGH:
            return KIND_PASS_THROUGH
        if self.name == "providers" and self.sub in PASS_THROUGH_PROVIDERS:
            return KIND_PASS_THROUGH
        if self.name in RECOVERY:
            return KIND_RECOVERY
        return KIND_CHECKED

    @property
    def takes_lock(self) -> bool:
        """Whether Terraform may take the state lock for this command."""
        if not lock_flag(self.effective_args()):
            return False
        if self.name == "state":
            return self.sub in LOCKING_STATE
        if self.name == "workspace":
            return self.sub in LOCKING_WORKSPACE
        return self.name in LOCKING

    def effective_args(self, environ: dict[str, str] | None = None) -> list[str]:
        """The subcommand's arguments as Terraform sees them, ``TF_CLI_ARGS*`` included.

        Terraform inserts ``TF_CLI_ARGS`` right after the subcommand, then
        ``TF_CLI_ARGS_<name>`` before that (main.go ``mergeEnvArgs``).
        """
        env = os.environ if environ is None else environ
        general = env.get("TF_CLI_ARGS", "")
        specific = env.get(f"TF_CLI_ARGS_{self.name}", "") if self.name else ""
        if not general and not specific:
            return list(self.args)
        import shlex  # only when TF_CLI_ARGS* is set

        return [*shlex.split(specific), *shlex.split(general), *self.args]


def backend_config_values(args: list[str]) -> list[str]:
    """Every ``-backend-config`` value, ``=`` and space forms alike, in order.

    The one list both the loader and the cache key use (the cache key once missed
    ``-backend-config FILE`` written with a space, so an edited file was never read again).
    A value with ``=`` is ``key=value``; anything else names a file.
    """
    values: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        for flag in ("-backend-config", "--backend-config"):
            if arg == flag and i + 1 < len(args):
                values.append(args[i + 1])
                i += 1
            elif arg.startswith(flag + "="):
                values.append(arg[len(flag) + 1 :])
        i += 1
    return values


# Go's strconv.ParseBool, which Terraform's flag parser uses for -lock=VALUE.
_FALSE = frozenset({"0", "f", "F", "false", "FALSE", "False"})


def lock_flag(args: list[str]) -> bool:
    """The value of the last ``-lock``/``--lock`` flag (``-lock=0``, ``--lock=false``, ...);
    True when absent."""
    value = True
    for arg in args:
        if arg.startswith(("-lock=", "--lock=")):
            value = arg.split("=", 1)[1] not in _FALSE
        elif arg in ("-lock", "--lock"):
            value = True
    return value


def parse(argv: list[str] | tuple[str, ...]) -> Command:
    """Split a terraform argv (without the program name) into its parts."""
    chdir: str | None = None
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        if argv[i].startswith(("-chdir=", "--chdir=")):
            chdir = argv[i].split("=", 1)[1]
        i += 1
    if i >= len(argv):
        return Command(argv=tuple(argv), chdir=chdir)
    args = tuple(argv[i + 1 :])
    sub = next((a for a in args if not a.startswith("-")), "")
    return Command(argv=tuple(argv), chdir=chdir, name=argv[i], sub=sub, args=args)
