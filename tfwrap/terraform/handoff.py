"""Handing the process over to the real Terraform once the guard has let the command through.

Commands that do not take the state lock replace tfwrap with Terraform (``execv``): same
pid, same terminal, same file descriptors, Terraform's own exit status. Commands that take
it are supervised instead (``tfwrap.supervise.run``).
"""

from __future__ import annotations

import os

from tfwrap import exitcodes
from tfwrap.errors import TfwrapError
from tfwrap.terraform.commands import Command


def exec_terraform(real: str, command: Command) -> int:
    """Hand the process over to Terraform; returns only if that is impossible."""
    try:
        os.execv(real, [real, *command.argv])
    except PermissionError as exc:
        raise TfwrapError(
            f"{real} cannot be executed ({exc.strerror}); fix its permissions or set TFWRAP_TERRAFORM",
            exitcodes.NOT_EXECUTABLE,
        ) from exc
    except OSError as exc:
        raise TfwrapError(
            f"{real} cannot be executed ({exc.strerror}); set TFWRAP_TERRAFORM to the real terraform",
            exitcodes.NOT_FOUND if isinstance(exc, FileNotFoundError) else exitcodes.NOT_EXECUTABLE,
        ) from exc
    raise AssertionError("unreachable")  # pragma: no cover
