"""Every exit code tfwrap itself decides, in one place, one name per meaning (as pipx's
``constants.py`` and httpie's ``status.py``); documented in docs/exit-codes.md, and a test
keeps that table and these names in step.

Terraform owns 0, 1 and 2 (2 with ``-detailed-exitcode``), and 128+N means "killed by signal
N". tfwrap's own codes live in 80-99 so a pipeline can never mistake one for a Terraform
result; 126/127 keep their shell meaning. Some meanings share a value (a name per meaning even
so): a script tests the value, a reader of the code sees the meaning.

Plain int constants, not an ``IntEnum``: ``import enum`` costs ~6 ms and the shim's hot path
imports this module (docs/decisions/003-exit-codes-as-constants.md).
"""

from __future__ import annotations

OK = 0
BLOCKED = 80  # enforce mode: a finding of severity "error" stopped the run (and `tfwrap check`)
AWS_FAILURE = 80  # an AWS call a tfwrap command needs failed (denied, unreachable, no credentials)
STEP_FAILED = 80  # a migration step did not do what it must (Terraform failed, plans differ)
POLICY = 81  # TFWRAP_MODE, .tfwrap.toml or another tfwrap setting is invalid
BACKEND_CONFIG = 82  # the backend configuration cannot be read (malformed HCL/JSON, bad -backend-config)
USAGE = 83  # a tfwrap command was called wrongly
NOT_READY = 83  # called rightly, but the project is not in a state the command can act on
RECURSION = 84  # the "real" terraform is a tfwrap shim, or calls back into one in a loop
INTERNAL = 85  # a bug in tfwrap: says so in one line and stops (enforce mode fails closed)
LOCK_HELD = 86  # a lock not safe to touch was left alone, or another holds one the run needs
FOREIGN_FILE = 87  # tfwrap shim install/uninstall refused a `terraform` that is not a tfwrap shim
SHIM_BROKEN = 88  # the sh shim cannot start tfwrap's Python (a broken or moved install)
DRIFT = 89  # a report found something to change: `shim status` problems, `bootstrap` drift left
UNCHECKED = 90  # audit: no error, but some stack could not be checked (credentials, endpoint, access)
NOTHING_FOUND = 91  # audit: no stack found (or backends only in formats tfwrap does not read)
PARTIAL = 92  # an estate-wide command did part of its work: the summary names what failed and why
# tfwrap state restore/undo refused before writing anything (docs/state-recovery.md)
NO_VERSIONING = 93  # the bucket keeps no versions and no state_backup copies exist
VERSION_NOT_FOUND = 93  # the version asked for is not a version of this state
LINEAGE_MISMATCH = 93  # the version belongs to another state (lineage), without --force-lineage
UNDO_UNCLEAR = 93  # the last run's writes cannot be told apart from another run's
STATE_CHANGED = 94  # the state was written meanwhile: the restore's conditional write refused
NOT_EXECUTABLE = 126  # the real terraform exists but cannot be executed
NOT_FOUND = 127  # no real terraform


def from_signal(signum: int) -> int:
    """The shell's convention for a process that ended on signal ``signum``."""
    return 128 + signum


def from_returncode(returncode: int) -> int:
    """Map a ``subprocess`` return code (``-N`` when killed by signal N) to an exit status."""
    return from_signal(-returncode) if returncode < 0 else returncode
