"""What a terraform command line means to tfwrap: its subcommand and how it treats the backend.

The pass-through list is mirrored in ``shims/terraform`` (a test keeps the two equal);
each entry was checked against Terraform 1.15's command implementations: none of these
initialises the configured backend or reads state.
"""

from __future__ import annotations

import enum
import os
import shlex
from dataclasses import dataclass, field

# Never touch the backend: exec'd by the sh shim with no Python at all.
PASS_THROUGH = frozenset(
    {"", "version", "fmt", "validate", "get", "test", "login", "logout", "metadata", "help", "stacks"}
)
PASS_THROUGH_PROVIDERS = frozenset({"lock", "mirror"})  # `providers lock|mirror`
HELP_FLAGS = frozenset({"-help", "-h", "--help", "-version", "-v", "--version"})

# Recovery commands are checked and reported but never blocked: refusing a force-unlock
# because the bucket lacks versioning would leave a team stuck behind a dead lock.
RECOVERY = frozenset({"force-unlock"})

# Commands that can take the state lock (issue 3 supervises these).
LOCKING = frozenset(
    {"plan", "apply", "destroy", "refresh", "import", "taint", "untaint", "console", "init", "query"}
)
LOCKING_STATE = frozenset({"mv", "rm", "push", "replace-provider", "identities"})
LOCKING_WORKSPACE = frozenset({"new", "delete"})


class Kind(enum.Enum):
    """How tfwrap treats a command."""

    PASS_THROUGH = "pass-through"
    CHECKED = "checked"
    RECOVERY = "recovery"


@dataclass(frozen=True)
class Command:
    """A parsed terraform command line (global options, subcommand, its arguments)."""

    argv: tuple[str, ...]
    chdir: str | None = None
    name: str = ""
    sub: str = ""
    args: tuple[str, ...] = field(default=())

    @property
    def kind(self) -> Kind:
        if any(a in HELP_FLAGS for a in self.argv):
            return Kind.PASS_THROUGH
        if self.name in PASS_THROUGH:
            return Kind.PASS_THROUGH
        if self.name == "providers" and self.sub in PASS_THROUGH_PROVIDERS:
            return Kind.PASS_THROUGH
        if self.name in RECOVERY:
            return Kind.RECOVERY
        return Kind.CHECKED

    @property
    def takes_lock(self) -> bool:
        """Whether Terraform may take the state lock for this command."""
        if "-lock=false" in self.effective_args():
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
        general = shlex.split(env.get("TF_CLI_ARGS", ""))
        specific = shlex.split(env.get(f"TF_CLI_ARGS_{self.name}", "")) if self.name else []
        return [*specific, *general, *self.args]


def parse(argv: list[str] | tuple[str, ...]) -> Command:
    """Split a terraform argv (without the program name) into its parts."""
    chdir: str | None = None
    rest = list(argv)
    i = 0
    while i < len(rest) and rest[i].startswith("-"):
        opt = rest[i]
        if opt.startswith(("-chdir=", "--chdir=")):
            chdir = opt.split("=", 1)[1]
        i += 1
    if i >= len(rest):
        return Command(argv=tuple(argv), chdir=chdir)
    name = rest[i]
    args = tuple(rest[i + 1 :])
    sub = next((a for a in args if not a.startswith("-")), "")
    return Command(argv=tuple(argv), chdir=chdir, name=name, sub=sub, args=args)
