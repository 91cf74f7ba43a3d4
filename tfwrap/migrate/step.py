"""Running a phase: steps, each printed, done, verified, recorded in the journal.

Phases and their steps (``<phase>/<step>`` in the journal):

- ``dual``: preflight, versioning, object-lock, baseline, edit (add ``use_lockfile``), init,
  verify (both locks taken and released, same plan as the baseline).
- ``finalize``: preflight (soak elapsed), baseline, edit (remove ``dynamodb_table``), init,
  verify ("S3 Native only", same plan), remove-digest (``<bucket>/<state key>-md5``).
- ``rollback``: preflight, baseline, edit (back to ``dynamodb_table`` only), digest (set to
  the MD5 of the state object where it is stale), init, verify ("DynamoDB only", same plan).
- ``cleanup-table``: preflight, scan (refuse while another state uses the table), delete-table.

``preflight`` runs on every invocation (it reads only). Any other step recorded in the
journal is not run again. A recorded edit whose change is gone from the files (someone
changed them since) is a refusal, never a silent second edit; a recorded bucket setting,
digest or ``init`` whose effect is gone is put right again. A step not recorded but whose
effect is already in place (tfwrap stopped between doing and recording it) is recorded
without being done again. File edits are journaled before they are written.

Exit codes: 0 done or nothing to do; 80 a check, a verification, Terraform or AWS stopped
the migration (the line says which; with access denied it names the IAM action); 82 the
configuration or journal cannot be read; 83 a configuration tfwrap cannot migrate (not s3,
Terragrunt, backend in a module, settings on the command line), a phase out of order, or a
checkout behind the journal (``behind.py``); 86 the state lock is held, the lock table is
still in use, a run on the old configuration was found (``stragglers.py``), or another
``tfwrap migrate`` changed the journal meanwhile; 127/126 no usable terraform;
128+N stopped by signal N (run the same command again to resume).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tfwrap import exitcodes, testhooks
from tfwrap.errors import TfwrapError

if TYPE_CHECKING:
    from tfwrap.migrate.migration import Migration

STOP_AFTER = testhooks.MIGRATE_STOP_AFTER
CRASH_AFTER = testhooks.MIGRATE_CRASH_AFTER


@dataclass
class Done:
    """What a step did: a line to print and details for the journal."""

    note: str = "done"
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Step:
    name: str
    title: Callable[[bool], str]  # what is about to happen (True: the effect is already in place)
    run: Callable[[], Done]
    holds: Callable[[], bool] | None = None  # is the effect in place? (destructive steps)
    drift: str = "refuse"  # a recorded step whose effect is gone: "refuse" or "redo"
    always: bool = False  # run on every invocation (read-only checks)
    dry: Callable[[], None] | None = None  # extra dry-run output (e.g. the diff)
    gone: Callable[[], str] | None = None  # for a refusal: what is no longer in place


def execute(m: Migration, phase: str, steps: list[Step]) -> None:
    """Run a phase's steps in order; skip what the journal records as done and still holds."""
    backend = m.backend
    m.journal.bind(
        bucket=backend.bucket,
        state_key=backend.state_key,
        workspace=backend.workspace,
        backend_config=list(m.opts.backend_config) or None,  # reused by finalize/rollback
    )
    total = len(steps)
    for number, step in enumerate(steps, 1):
        key = f"{phase}/{step.name}"
        head = f"[{number}/{total}] {step.name}:"
        m.stopper.check(f"before {key}")
        recorded = m.journal.step(key)
        if recorded is not None and not step.always:
            if step.holds is None or step.holds():
                m.out.line(f"{head} done at {recorded['at']} (journal)")
                continue
            if step.drift == "refuse":
                gone = step.gone() if step.gone else "its effect is gone"
                raise TfwrapError(
                    f"the journal says {key} was done at {recorded['at']}, but {gone}: someone changed "
                    "it since; put it back, or run tfwrap migrate rollback",
                    exitcodes.USAGE,
                )
        already = bool(step.holds and step.holds())
        if m.opts.dry_run and not step.always:
            m.out.line(f"{head} {'nothing to do: ' if already else 'would '}{step.title(already)}")
            if step.dry and not already:
                step.dry()
            continue
        m.out.line(f"{head} {step.title(already)}")
        if already:
            m.out.note("nothing to do")
            done = Done("nothing to do", {"already": True})
        else:
            done = step.run()
            if step.holds is not None and not step.holds():
                gone = step.gone() if step.gone else "its effect is not there"
                raise TfwrapError(f"{key} did not take effect: {gone}", exitcodes.BLOCKED)
            m.out.note(done.note)
        if not m.opts.dry_run:
            _hook(m, CRASH_AFTER, key)
            m.journal.record(key, **done.detail)
            _hook(m, STOP_AFTER, key)


def _hook(m: Migration, variable: str, key: str) -> None:
    if testhooks.get(variable, m.environ) != key:
        return
    if variable == CRASH_AFTER:
        os._exit(exitcodes.from_signal(9))
    raise TfwrapError(f"stopped after {key} ({STOP_AFTER})", exitcodes.from_signal(2))
