"""The checked path of the ``terraform`` shim: ``python -I -m tfwrap.shim REAL ARGS...``.

The sh shim has already found the real binary and passed through every command that
cannot touch the backend. Here: read the policy, check the backend (warm: cached facts,
no AWS call), print findings on stderr, then run Terraform untouched. Nothing is ever
written to stdout: it belongs to Terraform.
"""

from __future__ import annotations

import os
import sys

from tfwrap import exitcodes
from tfwrap.errors import PolicyError, TfwrapError


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        sys.stderr.write("tfwrap: the shim runs as `python -m tfwrap.shim REAL_TERRAFORM ARGS...`\n")
        return exitcodes.USAGE
    real, args = argv[0], argv[1:]
    from tfwrap import commands, run

    command = commands.parse(args)
    mode = "enforce"
    try:
        from pathlib import Path

        from tfwrap.checks import policy

        pol = policy.load(Path(command.chdir or ".").resolve())
        mode = pol.mode
        if mode != "off" and command.kind is not commands.Kind.PASS_THROUGH:
            from tfwrap.checks import guard, report

            use_cache = os.environ.get("TFWRAP_NO_CACHE", "") in ("", "0")
            outcome = guard.run(command, real, pol, use_cache=use_cache)
            report.to_stderr(outcome, pol)
            if outcome.blocked:
                return exitcodes.BLOCKED
        return run.terraform(real, command)
    except PolicyError as exc:  # an invalid policy is never silently ignored
        return _refuse(exc.message, exc.code)
    except TfwrapError as exc:
        if mode == "warn" and exc.code != exitcodes.NOT_EXECUTABLE and exc.code != exitcodes.NOT_FOUND:
            sys.stderr.write(f"tfwrap: warning: {exc.message} (TFWRAP_MODE=warn: running Terraform anyway)\n")
            return run.terraform(real, command)
        return _refuse(exc.message, exc.code)
    except Exception as exc:  # noqa: BLE001 - never a traceback; enforce fails closed
        from tfwrap import log

        log.debug("internal error", exc_info=True)
        if mode == "warn":
            sys.stderr.write(f"tfwrap: warning: internal error ({type(exc).__name__}); running Terraform\n")
            return run.terraform(real, command)
        return _refuse(
            f"internal error ({type(exc).__name__}: {exc}); TFWRAP_LOG_LEVEL=debug shows the trace, "
            "TFWRAP_MODE=warn runs Terraform despite it",
            exitcodes.INTERNAL,
        )


def _refuse(message: str, code: int) -> int:
    sys.stderr.write(f"tfwrap: {message}\n")
    sys.stderr.flush()
    return code


if __name__ == "__main__":
    raise SystemExit(main())
