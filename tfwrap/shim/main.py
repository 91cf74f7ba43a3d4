"""The checked path of the ``terraform`` shim: ``python -I -m tfwrap.shim REAL ARGS...``.

The sh shim has already found the real binary and passed through every command that
cannot touch the backend. Here: read the policy, check the backend, print findings on
stderr, then run Terraform untouched. Nothing is ever written to stdout: it is Terraform's.

Hot path (a warm check costs at most 30 ms): a warm run reads one cached verdict
and imports only the standard library; the guard (python-hcl2, botocore) loads on a miss.
Why: docs/decisions/100-the-hot-path.md.
"""

from __future__ import annotations

import os
import sys

from tfwrap import exitcodes, log
from tfwrap.errors import PolicyError, TfwrapError
from tfwrap.findings import cache, report
from tfwrap.findings.finding import ERROR, OFF, Finding
from tfwrap.output import say, write
from tfwrap.terraform import commands, handoff, realbin

TYPE_CHECKING = False  # typing costs ~3 ms to import on the hot path

if TYPE_CHECKING:
    from tfwrap.checks import guard
    from tfwrap.findings.policy import Policy


def main(argv: list[str] | None = None) -> int:
    """The checked path; whatever fails, even in its own error handling, is one line on
    stderr and an exit code, never a traceback."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        return _refuse("interrupted before Terraform started", exitcodes.from_signal(2))
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        return _refuse(
            f"internal error ({type(exc).__name__}); TFWRAP_MODE=off runs Terraform untouched",
            exitcodes.INTERNAL,
        )


def _main(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        say("the shim runs as `python -m tfwrap.shim REAL_TERRAFORM ARGS...`")
        return exitcodes.USAGE
    real, args = argv[0], argv[1:]
    command = commands.parse(args)
    mode = "enforce"
    try:
        real = realbin.past_shims(real)
        from tfwrap.findings import policy

        pol = policy.load(command.chdir or ".")
        mode = pol.mode
        if mode != "off" and command.kind != commands.KIND_PASS_THROUGH:
            findings, blocked, is_s3, soak_read = check(command, real, pol)
            report.to_stderr(findings, blocked, quiet=pol.quiet, stack=os.path.abspath(command.chdir or "."))
            if blocked:
                return exitcodes.BLOCKED
            if is_s3 and command.takes_lock:
                from tfwrap.lock import soak
                from tfwrap.supervise.run import supervise

                soak.known(command, soak_read)  # read with the check: not asked again

                code = supervise(real, command, pol)
                # Leave now: a heartbeat thread may still be importing botocore, and
                # interpreter shutdown must neither wait for it nor race it.
                write("")  # flushes stderr, if there is one
                os._exit(code)
        return handoff.exec_terraform(real, command)
    except KeyboardInterrupt:  # Ctrl-C during the check: Terraform never started
        return _refuse("interrupted during the backend check; Terraform was not started", 130)
    except PolicyError as exc:  # an invalid policy is never silently ignored
        return _refuse(exc.message, exc.code)
    except TfwrapError as exc:
        no_terraform = (exitcodes.NOT_EXECUTABLE, exitcodes.NOT_FOUND, exitcodes.RECURSION)
        if mode == "warn" and exc.code not in no_terraform:
            say(f"warning: {exc.message} (TFWRAP_MODE=warn: running Terraform anyway)")
            return _run_anyway(real, command)
        return _refuse(exc.message, exc.code)
    except Exception as exc:  # noqa: BLE001 - never a traceback; enforce fails closed
        from tfwrap import log

        log.debug("internal error", exc_info=True)
        if mode == "warn":
            say(f"warning: internal error ({type(exc).__name__}); running Terraform")
            return _run_anyway(real, command)
        return _refuse(
            f"internal error ({type(exc).__name__}: {exc}); TFWRAP_LOG_LEVEL=debug shows the trace, "
            "TFWRAP_MODE=warn runs Terraform despite it",
            exitcodes.INTERNAL,
        )


def check(command: commands.Command, real: str, pol: Policy) -> tuple[list[Finding], bool, bool, object]:
    """Findings, whether the run stops, whether the backend is S3, and what the journal said
    of the soak (``soak.known``; None when not read): cached, else the guard.

    A run about to be refused on cached facts asks again first (a finding fixed a
    moment ago must not block until the cache expires). A refused run can afford the AWS
    calls; a passing warm run stays on the cache.
    """
    use_cache = os.environ.get("TFWRAP_NO_CACHE", "") in ("", "0")
    findings, blocked, is_s3, soak_read, cached = _check(command, real, pol, use_cache)
    if blocked and cached:
        log.debug("blocked on cached facts: checking again", command=command.name)
        findings, blocked, is_s3, soak_read, _ = _check(command, real, pol, use_cache, fresh=True)
    return findings, blocked, is_s3, soak_read


def _check(
    command: commands.Command, real: str, pol: Policy, use_cache: bool, fresh: bool = False
) -> tuple[list[Finding], bool, bool, object, bool]:
    """As ``check``, once (``fresh``: no verdict, bucket facts asked again); the last item says
    whether any fact came from the cache."""
    key = cache.verdict_key(command, real, pol.min_terraform_version)
    verdict = cache.get("verdict", key) if use_cache and not fresh else None
    if verdict is not None and verdict["s3"] and not cache.fresh(verdict, pol.cache_ttl_seconds):
        verdict = None
    if verdict is None:
        from tfwrap.checks import prefetch

        # Forked before the guard's imports (~25 ms): the bucket's facts come that much sooner
        # (docs/decisions/093-prefetch-forks-first.md).
        started = prefetch.start(command, pol.cache_ttl_seconds, use_cache, fresh_bucket=fresh)
        try:
            from tfwrap.checks import guard
        except BaseException:
            if started is not None:
                started.discard()
            raise
        log.debug("check cache miss", command=command.name, workdir=os.path.abspath(command.chdir or "."))
        outcome = guard.run(command, real, pol, use_cache=use_cache, fresh_bucket=fresh, started=started)
        raw, is_s3, cached, soak_read = outcome.raw, outcome.backend.is_s3, outcome.used_cache, outcome.soak
        if outcome.cacheable:
            cache.put("verdict", key, verdict_value(outcome))
    else:
        log.debug("check cache hit", command=command.name, findings=len(verdict["findings"]))
        raw, is_s3 = [Finding.from_json(d) for d in verdict["findings"]], bool(verdict["s3"])
        cached, soak_read = True, verdict.get("soak")
    findings = [f for f in map(pol.apply, raw) if f.severity != OFF]
    blocked = (
        pol.mode == "enforce"
        and any(f.severity == ERROR for f in findings)
        and command.kind != commands.KIND_RECOVERY
    )
    return findings, blocked, is_s3, soak_read, cached


def verdict_value(outcome: guard.Outcome) -> dict[str, object]:
    """What a verdict caches: the raw findings, which bucket they judge (for ``forget_bucket``),
    and the soak as the journal said it (a warm supervised run reads it from here)."""
    backend = outcome.backend
    return {
        "s3": backend.is_s3,
        "findings": [f.to_json() for f in outcome.raw],
        "bucket": [backend.s3_endpoint, backend.region, backend.bucket] if backend.is_s3 else None,
        "soak": outcome.soak,
    }


def _run_anyway(real: str, command: commands.Command) -> int:
    """Warn mode after a failure of tfwrap: Terraform runs, or its own failure is one line."""
    try:
        return handoff.exec_terraform(real, command)
    except TfwrapError as exc:
        return _refuse(exc.message, exc.code)


def _refuse(message: str, code: int) -> int:
    say(message)
    return code
