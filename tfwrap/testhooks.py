"""Every test hook tfwrap reads, in one place; each is inert unless ``TFWRAP_TEST_HOOKS=1``.

A hook changes behaviour (pretends the clock is off, dies after a migration step) so that the
suite can show what a real fault would do. A user's environment must never trigger one by
accident, so each is named ``TFWRAP_TEST_*`` and read only while the switch is on
(docs/decisions/002-test-hooks.md). Standard library only.
"""

from __future__ import annotations

import os

SWITCH = "TFWRAP_TEST_HOOKS"
CLOCK_OFFSET_SECONDS = "TFWRAP_TEST_CLOCK_OFFSET_SECONDS"  # pretend this machine's clock is off
MIGRATE_STOP_AFTER = "TFWRAP_TEST_MIGRATE_STOP_AFTER"  # stop (exit 130) once this step is recorded
MIGRATE_CRASH_AFTER = "TFWRAP_TEST_MIGRATE_CRASH_AFTER"  # die (exit 137) after the step, before recording
# state restore: wait this long holding the lock, before the conditional state write
STATE_PAUSE_BEFORE_WRITE = "TFWRAP_TEST_STATE_PAUSE_BEFORE_WRITE"
HEARTBEAT_CONNECT_FAILURES = "TFWRAP_TEST_HEARTBEAT_CONNECT_FAILURES"  # its first N connects fail
HEARTBEAT_CRASH_AFTER = "TFWRAP_TEST_HEARTBEAT_CRASH_AFTER"  # the heartbeat thread raises after N renewals
KEEPER_SPAWN_FAILS = "TFWRAP_TEST_KEEPER_SPAWN_FAILS"  # replacing a dead keeper fails (full process table)
# a handoff's interrupt is held back until Terraform's log shows "locked" or "applying": the
# race of an interrupt that meets Terraform's own successful try, on cue
HANDOFF_INTERRUPT_AFTER = "TFWRAP_TEST_HANDOFF_INTERRUPT_AFTER"

ALL = (
    CLOCK_OFFSET_SECONDS,
    MIGRATE_STOP_AFTER,
    MIGRATE_CRASH_AFTER,
    STATE_PAUSE_BEFORE_WRITE,
    HEARTBEAT_CONNECT_FAILURES,
    HEARTBEAT_CRASH_AFTER,
    KEEPER_SPAWN_FAILS,
    HANDOFF_INTERRUPT_AFTER,
)


def get(name: str, environ: dict[str, str] | None = None) -> str:
    """The hook's value, or "" when the test switch is off or the hook is unset."""
    env = os.environ if environ is None else environ
    if env.get(SWITCH) != "1":
        return ""
    return env.get(name, "")
