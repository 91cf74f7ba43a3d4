"""The environment of a Terraform that tfwrap runs for its own commands (migrate's steps, the
state restore's read-back): never the user's logging or extra arguments, never a prompt, never
a call home. A Terraform the user runs through the shim gets the user's environment untouched.
"""

from __future__ import annotations

_DROPPED = ("TF_LOG", "TF_LOG_CORE", "TF_LOG_PROVIDER", "TF_LOG_PATH", "TF_CLI_ARGS")


def child_environment(environ: dict[str, str]) -> dict[str, str]:
    """The environment for Terraform: no user logging or extra arguments in our commands.

    ``TF_CLI_ARGS_init`` stays: it may carry the ``-backend-config`` a team's init relies on.
    """
    env = {
        k: v
        for k, v in environ.items()
        if k not in _DROPPED and not (k.startswith("TF_CLI_ARGS_") and k != "TF_CLI_ARGS_init")
    }
    env.update({"TF_IN_AUTOMATION": "1", "TF_INPUT": "0", "CHECKPOINT_DISABLE": "1"})
    return env
