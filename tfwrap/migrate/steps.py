"""The migration as a state machine: phases of steps, each printed, done, verified, recorded.

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
Terragrunt, backend in a module, settings on the command line) or a phase out of order;
86 the state lock is held, or the lock table is still in use; 127/126 no usable terraform;
128+N stopped by signal N (run the same command again to resume).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tfwrap import exitcodes
from tfwrap.backend import edit
from tfwrap.backend.config import BackendConfig, to_bool
from tfwrap.errors import TfwrapError
from tfwrap.migrate import edits
from tfwrap.migrate.journal import Journal, now, parse_stamp
from tfwrap.migrate.remote import Remote, StateObject, aws_call
from tfwrap.migrate.terraform import (
    DUAL,
    DYNAMODB,
    NATIVE,
    Plan,
    Stopper,
    Terraform,
    TerraformFailed,
    lock_taken,
    summarise,
)
from tfwrap.supervise.lockevents import LockEvent

STOP_AFTER = "TFWRAP_MIGRATE_STOP_AFTER"  # test hook: stop (exit 130) after this step is recorded
CRASH_AFTER = "TFWRAP_MIGRATE_CRASH_AFTER"  # test hook: die (exit 137) after doing it, before recording
MIN_VERSION = (1, 10, 0)  # use_lockfile exists from 1.10 (experimental), GA in 1.11
_MODULE = re.compile(r'^\s*module\s+"', re.MULTILINE)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|d|h|m|s)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_MODE_LINES = {"dual": DUAL, "native": NATIVE, "dynamodb": DYNAMODB}
_HOLDER = re.compile(r"^\s*ID:\s+([0-9a-fA-F-]{36})\s*$", re.MULTILINE)  # Terraform's "Lock Info:" box


def parse_duration(text: str) -> float:
    """Seconds of a duration such as ``24h``, ``90m``, ``1h30m``, ``2d``, ``0s`` or ``0``."""
    value = text.strip()
    if value == "0":
        return 0.0
    parts = _DURATION.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise TfwrapError(f"{text!r} is not a duration like 24h, 90m, 1h30m or 0s", exitcodes.USAGE)
    return sum(float(n) * _UNITS[u] for n, u in parts)


def human(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def locking_mode(backend: BackendConfig | None) -> str:
    """dual | native | dynamodb | none, from a backend's settings."""
    if backend is None:
        return "none"
    table, lockfile = bool(backend.dynamodb_table), backend.use_lockfile
    if table and lockfile:
        return "dual"
    if lockfile:
        return "native"
    return "dynamodb" if table else "none"


@dataclass
class Options:
    chdir: str = "."
    dry_run: bool = False
    backend_config: tuple[str, ...] = ()
    plan_args: tuple[str, ...] = ()
    lock_timeout: str = "60s"
    soak: float = 86400.0
    table: str | None = None


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


class Out:
    """Everything the migration says goes to stderr, one ``tfwrap:`` line at a time."""

    def line(self, text: str) -> None:
        sys.stderr.write(f"tfwrap: {text}\n")
        sys.stderr.flush()

    def note(self, text: str) -> None:
        sys.stderr.write(f"tfwrap:       {text}\n")
        sys.stderr.flush()

    def block(self, text: str) -> None:
        if text:
            sys.stderr.write(text if text.endswith("\n") else text + "\n")
            sys.stderr.flush()


class Migration:
    """One working directory's migration: configuration, journal, AWS, Terraform."""

    def __init__(self, opts: Options, environ: dict[str, str] | None = None) -> None:
        self.opts = opts
        env = dict(os.environ if environ is None else environ)
        # Terraform's generic extra arguments must not reach (or confuse) our commands.
        self.environ = {k: v for k, v in env.items() if k != "TF_CLI_ARGS"}
        self.workdir = Path(opts.chdir).resolve()
        if not self.workdir.is_dir():
            raise TfwrapError(f"{opts.chdir} is not a directory; pass -chdir DIR", exitcodes.USAGE)
        self.out = Out()
        self.stopper = Stopper()
        self.backend: BackendConfig
        self.initialised: BackendConfig | None = None
        self.load()
        self.journal = Journal.load(self.backend.data_dir)
        self.remote = Remote(self.backend)
        self._tf: Terraform | None = None
        self._real: str | None = None
        self._version = ""
        self.private: str | None = None
        self.state: StateObject | None = None

    # --- configuration -----------------------------------------------------------------------

    def load(self) -> None:
        from tfwrap import commands
        from tfwrap.backend import config

        args = [f"-chdir={self.workdir}", "init", *(f"-backend-config={v}" for v in self.opts.backend_config)]
        command = commands.parse(args)
        self.backend = config.load(command, self.environ)
        self.initialised = config.load_initialised(command, self.environ)
        if hasattr(self, "remote"):
            self.remote.backend = self.backend

    @property
    def mode(self) -> str:
        return locking_mode(self.backend)

    @property
    def init_mode(self) -> str:
        return locking_mode(self.initialised)

    @property
    def where(self) -> str:
        return f"s3://{self.backend.bucket}/{self.backend.state_key} (workspace {self.backend.workspace})"

    def check_config(self) -> None:
        """Refuse what tfwrap cannot migrate, before anything is read from AWS."""
        workdir = self.workdir
        shown = self.opts.chdir
        if (workdir / "terragrunt.hcl").exists() or ".terragrunt-cache" in workdir.parts:
            raise TfwrapError(
                f"{shown} is built by Terragrunt, which generates the backend from remote_state: add "
                "use_lockfile = true beside dynamodb_table in remote_state.config of terragrunt.hcl and "
                "run terragrunt init -reconfigure (remove dynamodb_table after a soak); tfwrap migrate "
                "edits plain Terraform root modules only",
                exitcodes.USAGE,
            )
        backend = self.backend
        if not backend.backend_type:
            from tfwrap.backend.config import config_files

            files = config_files(workdir)
            if any(_MODULE.search(_text(p)) for p in files):
                raise TfwrapError(
                    f"{shown} has no backend block, only module calls: Terraform reads the backend from "
                    "the root module alone (a backend block inside a module is ignored); run tfwrap "
                    'migrate in the root module that holds the backend "s3" block, or add one there',
                    exitcodes.USAGE,
                )
            raise TfwrapError(
                f"{shown} has no backend block (its state is local): nothing to migrate", exitcodes.USAGE
            )
        if not backend.is_s3:
            raise TfwrapError(
                f'the backend of {shown} is "{backend.backend_type}", not s3: tfwrap migrate moves S3 '
                "backends from DynamoDB locking to S3 native locking",
                exitcodes.USAGE,
            )
        if not backend.bucket or not backend.key:
            raise TfwrapError(
                f"the s3 backend of {shown} has no bucket or key: pass the -backend-config you run "
                "terraform init with (tfwrap migrate -backend-config=FILE)",
                exitcodes.USAGE,
            )
        if self.initialised is None:
            raise TfwrapError(
                f"{shown} is not initialised: run terraform init there first (the migration compares "
                "plans before and after)",
                exitcodes.USAGE,
            )
        if not self.initialised.is_s3:
            raise TfwrapError(
                f'{shown} is initialised with the "{self.initialised.backend_type}" backend, not s3: '
                "run terraform init first",
                exitcodes.USAGE,
            )
        for name in ("bucket", "key", "region", "workspace_key_prefix"):
            mine, theirs = backend.settings.get(name), self.initialised.settings.get(name)
            if mine != theirs:
                raise TfwrapError(
                    f"the backend in the files (with -backend-config) has {name} = {mine!r} but {shown} "
                    f"is initialised with {theirs!r}: pass the same -backend-config you ran terraform init "
                    "with, or run terraform init -reconfigure first",
                    exitcodes.USAGE,
                )
        bound = (self.journal.get("bucket"), self.journal.get("state_key"))
        if self.journal.steps and bound != (backend.bucket, backend.state_key):
            raise TfwrapError(
                f"the migration journal {self.journal.path} is for s3://{bound[0]}/{bound[1]}, but the "
                f"backend is {self.where}: switch back to that workspace or backend, or remove the "
                "journal if the backend changed on purpose",
                exitcodes.USAGE,
            )

    def refuse_if_rolling_back(self) -> None:
        if self.journal.phase_started("rollback"):
            raise TfwrapError(
                "a rollback is in progress: run tfwrap migrate rollback to finish it", exitcodes.USAGE
            )

    # --- terraform ---------------------------------------------------------------------------

    @property
    def real(self) -> str:
        if self._real is None:
            from tfwrap import realbin

            self._real = realbin.find(self.environ)
        return self._real

    @property
    def tf(self) -> Terraform:
        if self._tf is None:
            from tfwrap.checks import policy
            from tfwrap.supervise import private as private_dir

            self.private = private_dir.make("tfwrap-migrate")
            if self.private is None:
                raise TfwrapError(
                    "no private directory for Terraform's plans (XDG_RUNTIME_DIR, TMPDIR and /tmp "
                    "refused one): set TMPDIR to a writable directory",
                    exitcodes.BLOCKED,
                )
            grace = policy.load(str(self.workdir), self.environ).grace_seconds
            self._tf = Terraform(
                self.real,
                str(self.workdir),
                self.environ,
                private=self.private,
                stopper=self.stopper,
                grace=grace,
            )
        return self._tf

    def close(self) -> None:
        if self.private:
            from tfwrap.supervise import private as private_dir

            private_dir.remove(self.private)

    def terraform_version(self) -> str:
        from tfwrap.checks import version
        from tfwrap.checks.policy import parse_version

        if self._version:
            return self._version
        fact = version.read_probe(version.start_probe(self.real))
        if "error" in fact:
            raise TfwrapError(
                f"cannot tell the Terraform version of {self.real}: {fact['error']}", exitcodes.BLOCKED
            )
        text = str(fact["version"])
        if parse_version(text) < MIN_VERSION:
            raise TfwrapError(
                f"Terraform {text} ({self.real}) does not support use_lockfile (1.10 or newer; 1.11+ "
                "recommended): install a newer Terraform first, or point TFWRAP_TERRAFORM at one",
                exitcodes.BLOCKED,
            )
        self._version = text
        return text

    def init(self) -> Done:
        args = ["init", "-reconfigure", "-input=false", "-no-color"]
        args += [f"-backend-config={v}" for v in self.opts.backend_config]
        self.run_terraform(args, "terraform init -reconfigure")
        self.load()
        return Done(f"initialised: locking is now {self.init_mode}")

    def run_terraform(self, args: list[str], what: str) -> None:
        try:
            self.tf.must(args, what)
        except TerraformFailed as exc:
            self.out.block(_indent(exc.result.tail(20)))
            raise

    def plan(self, expected: str) -> Plan:
        """A locking plan through the real Terraform; checks which locks it took and released."""
        tf = self.tf
        assert self.private is not None  # noqa: S101 - set by self.tf
        plan_file = os.path.join(self.private, f"plan-{time.time_ns()}.tfplan")
        state = self.remote.read_state()
        args = [
            "plan",
            "-input=false",
            "-no-color",
            "-lock=true",
            f"-lock-timeout={self.opts.lock_timeout}",
            "-detailed-exitcode",
            f"-out={plan_file}",
            *self.opts.plan_args,
        ]
        for attempt in (1, 2):
            result = tf.run(args, log=True)
            if result.code >= 128 or self.stopper.signum is not None:
                self.release_own(result.events)
            self.stopper.check("during terraform plan")
            if result.code in (0, 2):
                break
            if "Error acquiring the state lock" not in result.stderr:
                self.out.block(_indent(result.tail(20)))
                raise TerraformFailed("terraform plan", result)
            holder = _HOLDER.search(result.stderr)
            own = {e.lock_id for e in result.events if e.kind == "attempt"}
            if attempt == 1 and holder and holder.group(1) in own:
                # The SDK retried a lock write whose first try had succeeded: the "holder" is
                # this very plan (DOMAIN.md, the known orphan case). Remove it, try once more.
                self.release_own([LockEvent("locked", "", holder.group(1))], "the SDK retry left")
                continue
            self.out.block(_indent(result.tail(20)))
            raise TfwrapError(
                "terraform plan could not take the state lock: another run holds it; run the same "
                "command again when it is done",
                exitcodes.LOCK_HELD,
            )
        mode = _MODE_LINES[expected]
        lock_id, why = lock_taken(result.events, mode)
        if lock_id is None:
            raise TfwrapError(f"terraform plan did not lock as expected: {why}", exitcodes.BLOCKED)
        resources, outputs = summarise(tf.show_json(plan_file))
        return Plan(result.code, resources, outputs, state.serial if state else None, lock_id, mode)

    def release_own(
        self, events: list[LockEvent], why: str = "that the stopped Terraform left behind"
    ) -> None:
        """A Terraform stopped hard (killed after the grace period) may leave its lock behind:
        remove exactly that lock (its ID from Terraform's log), never another run's."""
        from tfwrap.lock.lockfile import DynamoLock, S3LockFile

        held = {e.lock_id for e in events if e.kind == "locked"} - {
            e.lock_id for e in events if e.kind == "unlocked"
        }
        table = self.initialised.dynamodb_table if self.initialised else ""
        for lock_id in sorted(held - {""}):
            with aws_call(self.remote, "remove the lock Terraform left behind"):
                removed = S3LockFile(self.remote.s3, self.backend).delete_if_held_by(lock_id) is not None
                if table:
                    backend = self.remote.with_table(table)
                    removed = DynamoLock(self.remote.ddb, backend).delete_if_held_by(lock_id) or removed
            if removed:
                self.out.note(f"removed the lock {lock_id} {why}")

    # --- common checks -----------------------------------------------------------------------

    def require_state(self) -> StateObject:
        state = self.remote.read_state()
        if state is None:
            raise TfwrapError(
                f"the state object s3://{self.backend.bucket}/{self.backend.state_key} does not exist: "
                "nothing to migrate yet (check bucket, key and workspace, or apply once first)",
                exitcodes.BLOCKED,
            )
        self.state = state
        return state

    def require_table(self, table: str, why: str) -> None:
        described = self.remote.describe_table(table)
        if described is None:
            raise TfwrapError(
                f"DynamoDB table {table} ({why}) does not exist at "
                f"{self.backend.dynamodb_endpoint or 'AWS'}: {_create_table_hint(table)}",
                exitcodes.BLOCKED,
            )

    def refuse_held_lock(self, table: str | None) -> None:
        held = self.remote.lock_holders(table)
        if held:
            raise TfwrapError(
                f"the state lock is held: {held[0][0]}; wait for that run to finish (see tfwrap lock "
                "status) and run again",
                exitcodes.LOCK_HELD,
            )

    def released(self, plan: Plan, table: str | None) -> str:
        """After a plan: its lock gone from S3 and DynamoDB (another run's lock is only noted)."""
        others = []
        for where, fields in self.remote.lock_holders(table):
            if fields.get("ID") == plan.lock_id:
                raise TfwrapError(
                    f"Terraform did not release its lock {plan.lock_id}: {where} is still there",
                    exitcodes.BLOCKED,
                )
            others.append(where)
        return f"; another run holds the lock now: {others[0]}" if others else ""

    def compare(self, before: Plan, after: Plan) -> str:
        if before.serial != after.serial:
            return (
                f"the state changed since the baseline (serial {before.serial} -> {after.serial}), so the "
                f"plans were not compared; now: {after.describe()}"
            )
        if not before.same_result(after):
            raise TfwrapError(
                f"the plan differs from the one before the change (before: {before.describe()}, exit "
                f"{before.code}; after: {after.describe()}, exit {after.code}): the new configuration is "
                "in place but not verified; investigate, or run tfwrap migrate rollback",
                exitcodes.BLOCKED,
            )
        return f"same plan as before: {after.describe()}"

    # --- running a phase ---------------------------------------------------------------------

    def execute(self, phase: str, steps: list[Step]) -> None:
        backend = self.backend
        self.journal.bind(bucket=backend.bucket, state_key=backend.state_key, workspace=backend.workspace)
        total = len(steps)
        for number, step in enumerate(steps, 1):
            key = f"{phase}/{step.name}"
            head = f"[{number}/{total}] {step.name}:"
            self.stopper.check(f"before {key}")
            recorded = self.journal.step(key)
            if recorded is not None and not step.always:
                if step.holds is None or step.holds():
                    self.out.line(f"{head} done at {recorded['at']} (journal)")
                    continue
                if step.drift == "refuse":
                    gone = step.gone() if step.gone else "its effect is gone"
                    raise TfwrapError(
                        f"the journal says {key} was done at {recorded['at']}, but {gone}: someone changed "
                        "it since; put it back, or run tfwrap migrate rollback",
                        exitcodes.USAGE,
                    )
            already = bool(step.holds and step.holds())
            if self.opts.dry_run and not step.always:
                self.out.line(f"{head} {'nothing to do: ' if already else 'would '}{step.title(already)}")
                if step.dry and not already:
                    step.dry()
                continue
            self.out.line(f"{head} {step.title(already)}")
            if already:
                self.out.note("nothing to do")
                done = Done("nothing to do", {"already": True})
            else:
                done = step.run()
                if step.holds is not None and not step.holds():
                    gone = step.gone() if step.gone else "its effect is not there"
                    raise TfwrapError(f"{key} did not take effect: {gone}", exitcodes.BLOCKED)
                self.out.note(done.note)
            if not self.opts.dry_run:
                self._hook(CRASH_AFTER, key)
                self.journal.record(key, **done.detail)
                self._hook(STOP_AFTER, key)

    def _hook(self, variable: str, key: str) -> None:
        if self.environ.get(variable) != key:
            return
        if variable == CRASH_AFTER:
            os._exit(exitcodes.from_signal(9))
        raise TfwrapError(f"stopped after {key} ({STOP_AFTER})", exitcodes.from_signal(2))


# --- the phases -------------------------------------------------------------------------------


def _policy_wants_object_lock(m: Migration) -> bool:
    from tfwrap.checks import policy
    from tfwrap.checks.finding import CATALOG

    pol = policy.load(str(m.workdir), m.environ)
    return pol.severity.get("bucket-object-lock", CATALOG["bucket-object-lock"]) != "off"


def preflight_common(m: Migration, table: str | None, need_version: bool = True) -> str:
    parts = []
    if need_version:
        parts.append(f"Terraform {m.terraform_version()}")
    state = m.require_state()
    parts.insert(0, f"state serial {state.serial} lineage {state.lineage or '?'}")
    if table:
        m.require_table(table, "the lock table")
        parts.append(f"table {table} exists")
    m.refuse_held_lock(table)
    parts.append("no lock held")
    return ", ".join(parts)


def baseline_step(m: Migration, phase: str) -> Step:
    def title(_: bool) -> str:
        return (
            f"terraform plan -lock=true with the current configuration ({m.init_mode} locking), to "
            "compare with the plan after the change"
        )

    def run() -> Done:
        plan = m.plan(m.init_mode)
        return Done(
            f"{plan.describe()} (exit {plan.code}); lock {plan.lock_id} ({plan.mode})",
            {"plan": plan.to_json()},
        )

    return Step("baseline", title, run)


def init_step(m: Migration, want: str) -> Step:
    args = " ".join(f"-backend-config={v}" for v in m.opts.backend_config)

    def title(_: bool) -> str:
        return f"terraform init -reconfigure -input=false {args}".rstrip() + f" ({m.real}, not the shim)"

    return Step("init", title, m.init, holds=lambda: m.init_mode == want, drift="redo")


def verify_step(m: Migration, phase: str, want: str, table: Callable[[], str | None]) -> Step:
    mode = _MODE_LINES[want]

    def title(_: bool) -> str:
        return f"terraform plan -lock=true: Terraform locks with {mode!r} and releases, same plan as before"

    def run() -> Done:
        recorded = m.journal.step(f"{phase}/baseline") or {}
        plan = m.plan(want)
        extra = m.released(plan, table())
        note = f"locked and unlocked ({mode}) as lock {plan.lock_id}; no lock left behind{extra}"
        if "plan" in recorded:
            note += "; " + m.compare(Plan.from_json(recorded["plan"]), plan)
        return Done(note, {"plan": plan.to_json()})

    return Step("verify", title, run)


def _diff_printer(m: Migration, changes: Callable[[], list[edit.Edit]]) -> Callable[[], None]:
    def show() -> None:
        for change in changes():
            m.out.block(change.diff())

    return show


def dual_steps(m: Migration) -> list[Step]:
    table = m.backend.dynamodb_table
    bucket = m.backend.bucket
    wants_lock = _policy_wants_object_lock(m)

    def preflight() -> Done:
        target()  # a setting tfwrap cannot edit is refused before anything changes
        facts = preflight_common(m, table)
        if m.terraform_version() == "1.10.0" and m.remote.object_lock().get("retention"):
            raise TfwrapError(
                "Terraform 1.10.0 cannot take the lock on a bucket with an Object Lock default retention "
                "(hashicorp/terraform#36113): upgrade to 1.10.1 or newer first",
                exitcodes.BLOCKED,
            )
        m.journal.bind(table=table)
        return Done(facts, {"serial": m.state.serial if m.state else None})

    def enable_versioning() -> Done:
        m.remote.enable_versioning()
        return Done("versioning enabled")

    def enable_object_lock() -> Done:
        m.remote.enable_object_lock()
        return Done("Object Lock enabled (no default retention)")

    versioning = Step(
        "versioning",
        lambda already: (
            f"bucket {bucket!r} versioning is Enabled"
            if already
            else f"enable versioning on bucket {bucket!r} (so a bad state write can be undone)"
        ),
        enable_versioning,
        holds=lambda: m.remote.versioning() == "Enabled",
        drift="redo",
        gone=lambda: f"bucket {bucket!r} versioning is {m.remote.versioning() or 'not enabled'}",
    )

    def object_lock_title(already: bool) -> str:
        if not wants_lock:
            return "not required (bucket-object-lock is off in .tfwrap.toml)"
        if already:
            return f"Object Lock is enabled on bucket {bucket!r}"
        return (
            f"enable Object Lock on bucket {bucket!r}: your team's standard (bucket-object-lock in "
            ".tfwrap.toml); Terraform's use_lockfile itself does not need it; it cannot be turned off"
        )

    object_lock = Step(
        "object-lock",
        object_lock_title,
        enable_object_lock,
        holds=lambda: not wants_lock or bool(m.remote.object_lock()["enabled"]),
        drift="redo",
    )

    def target() -> edits.Place:
        return edits.target_for_lockfile(edits.places(m.backend))

    def pending() -> list[edit.Edit]:
        place = target()
        assert place.path is not None  # noqa: S101 - refuse_command_line ran
        return [edit.set_setting(place.path, "use_lockfile", True)]

    def edit_title(already: bool) -> str:
        if already:
            return "use_lockfile = true is set beside dynamodb_table"
        return f"add use_lockfile = true beside dynamodb_table in {target().label}"

    def edit_run() -> Done:
        place = target()
        change = pending()[0]
        m.out.block(change.diff())
        previous = place.settings.get("use_lockfile")
        rec = edits.record(change, m.workdir, phase="dual", op="set", name="use_lockfile", previous=previous)
        _journal_edit(m, rec)
        change.apply()
        m.load()
        return Done(f"{place.label} edited", {"file": rec["file"]})

    edit_step = Step(
        "edit",
        edit_title,
        edit_run,
        holds=lambda: m.mode == "dual" and m.backend.dynamodb_table == table,
        dry=_diff_printer(m, pending),
        gone=lambda: f"the files now give {m.mode} locking, not dual",
    )
    return [
        Step(
            "preflight",
            lambda _: f"{m.where}, lock table {table}: state, locks, Terraform version",
            preflight,
            always=True,
        ),
        versioning,
        object_lock,
        baseline_step(m, "dual"),
        edit_step,
        init_step(m, "dual"),
        verify_step(m, "dual", "dual", lambda: table),
    ]


def finalize_steps(m: Migration) -> list[Step]:
    table = str(m.journal.get("table") or m.backend.dynamodb_table)
    started = m.journal.phase_started("finalize")

    def preflight() -> Done:
        places_with_table()  # a setting tfwrap cannot edit is refused before anything changes
        if not started:
            soak_check(m)
        # the item is checked even after the edit: a run on the old configuration locks it
        return Done(preflight_common(m, table))

    def places_with_table() -> list[edits.Place]:
        found = edits.places(m.backend)
        edits.refuse_command_line(found)
        return [p for p in found if p.sets("dynamodb_table")]

    def pending() -> list[edit.Edit]:
        return [edit.remove_setting(p.path, "dynamodb_table") for p in places_with_table() if p.path]

    def edit_title(already: bool) -> str:
        if already:
            return "dynamodb_table is gone, use_lockfile = true stays"
        labels = ", ".join(p.label for p in places_with_table())
        return f"remove dynamodb_table from {labels} (use_lockfile = true stays)"

    def edit_run() -> Done:
        changed = []
        for place in places_with_table():
            assert place.path is not None  # noqa: S101 - refuse_command_line ran
            change = edit.remove_setting(place.path, "dynamodb_table")
            m.out.block(change.diff())
            previous = place.settings["dynamodb_table"]
            rec = edits.record(
                change, m.workdir, phase="finalize", op="remove", name="dynamodb_table", previous=previous
            )
            _journal_edit(m, rec)
            change.apply()
            changed.append(rec["file"])
        m.load()
        return Done(f"{', '.join(changed)} edited", {"files": changed})

    edit_step = Step(
        "edit",
        edit_title,
        edit_run,
        holds=lambda: m.mode == "native",
        dry=_diff_printer(m, pending),
        gone=lambda: f"the files now give {m.mode} locking, not S3 native only",
    )

    def digest_keys() -> list[str]:
        return m.remote.workspace_state_keys()

    def digests_present() -> list[str]:
        return [k for k in digest_keys() if m.remote.digest(table, k) is not None]

    def digest_title(already: bool) -> str:
        if already:
            return f"no digest item of this configuration left in {table}"
        items = ", ".join(f"{m.backend.bucket}/{k}-md5" for k in digests_present())
        return (
            f"remove the DynamoDB digest item(s) {items} from {table}: Terraform no longer updates them, "
            "and a stale one breaks a rollback to DynamoDB locking"
        )

    def digest_run() -> Done:
        removed = digests_present()
        for key in removed:
            m.remote.delete_digest(table, key)
        return Done(f"removed {len(removed)} digest item(s)", {"removed": removed})

    remove_digest = Step(
        "remove-digest",
        digest_title,
        digest_run,
        holds=lambda: not digests_present(),
        drift="redo",
    )
    return [
        Step(
            "preflight", lambda _: f"{m.where}: soak, state, locks, Terraform version", preflight, always=True
        ),
        baseline_step(m, "finalize"),
        edit_step,
        init_step(m, "native"),
        verify_step(m, "finalize", "native", lambda: table),
        remove_digest,
    ]


def soak_check(m: Migration) -> None:
    verified = m.journal.step("dual/verify")
    if verified is None:
        raise TfwrapError(
            "the dual phase has not been verified: run tfwrap migrate (it resumes) before finalize",
            exitcodes.USAGE,
        )
    since = parse_stamp(verified["at"])
    ready = since + dt.timedelta(seconds=m.opts.soak)
    if now() < ready:
        age = (now() - since).total_seconds()
        raise TfwrapError(
            f"the dual phase is {human(age)} old (verified {verified['at']}); finalize after the "
            f"{human(m.opts.soak)} soak, at {ready:%Y-%m-%dT%H:%M:%SZ}, once every pipeline uses the new "
            "configuration, or pass --soak 0s",
            exitcodes.BLOCKED,
        )


def rollback_steps(m: Migration, table: str) -> list[Step]:
    def preflight() -> Done:
        edits.refuse_command_line(edits.places(m.backend))
        m.require_table(table, "the lock table to go back to")
        facts = preflight_common(m, table, need_version=False)
        m.journal.bind(table=table)
        return Done(facts)

    def restore() -> list[edit.Edit]:
        return plan_restore(m, table)

    def edit_title(already: bool) -> str:
        if already:
            return f"the files give DynamoDB locking only (dynamodb_table = {table!r})"
        files = ", ".join(c.path.name for c in restore())
        return f"restore dynamodb_table = {table!r} and remove use_lockfile = true in {files}"

    def edit_run() -> Done:
        for change in restore():
            if change.changed:
                m.out.block(change.diff())
                change.apply()
        m.load()
        return Done("configuration restored")

    edit_step = Step(
        "edit",
        edit_title,
        edit_run,
        holds=lambda: m.mode == "dynamodb" and m.backend.dynamodb_table == table,
        dry=_diff_printer(m, restore),
        gone=lambda: f"the files now give {m.mode} locking",
    )

    def stale() -> list[tuple[str, str | None]]:
        out: list[tuple[str, str | None]] = []
        for key in m.remote.workspace_state_keys():
            digest = m.remote.digest(table, key)
            if digest is None:
                continue  # no digest: Terraform checks nothing, and writes one on its next save
            state = m.remote.read_state(key)
            if state is not None and state.md5 != digest:
                out.append((key, digest))
        return out

    def digest_title(already: bool) -> str:
        if already:
            return f"every digest item in {table} matches its state object (or is absent)"
        keys = ", ".join(f"{m.backend.bucket}/{k}-md5" for k, _ in stale())
        return (
            f"set {keys} in {table} to the MD5 of the state object now, or Terraform fails with "
            '"state data in S3 does not have the expected content"'
        )

    def digest_run() -> Done:
        fixed = []
        for key, old in stale():
            fixed.append(_refresh_digest(m, table, key, old))
        return Done("; ".join(fixed), {"refreshed": fixed})

    digest = Step("digest", digest_title, digest_run, holds=lambda: not stale(), drift="redo")
    return [
        Step(
            "preflight",
            lambda _: f"{m.where}, lock table {table}: table, state, locks",
            preflight,
            always=True,
        ),
        baseline_step(m, "rollback"),
        edit_step,
        digest,
        init_step(m, "dynamodb"),
        verify_step(m, "rollback", "dynamodb", lambda: table),
    ]


def _refresh_digest(m: Migration, table: str, key: str, old: str | None) -> str:
    """Set the digest to the state's MD5, only over the value judged stale, state unchanged."""
    for _ in range(5):
        state = m.remote.read_state(key)
        if state is None:
            return f"{key}: no state object"
        if not m.remote.put_digest(table, key, state.md5, old):
            current = m.remote.digest(table, key)
            if current == state.md5 or current is None:
                return f"{key}: already current"
            old = current
            continue
        if m.remote.state_etag(key) == state.etag:
            return f"{m.backend.bucket}/{key}-md5 = {state.md5}"
        old = state.md5  # the state was written meanwhile: again, over what we just wrote
    raise TfwrapError(
        f"the state s3://{m.backend.bucket}/{key} keeps changing; run rollback again when it is quiet",
        exitcodes.BLOCKED,
    )


def cleanup_steps(m: Migration, table: str) -> list[Step]:
    bucket = m.backend.bucket

    def ours() -> set[str]:
        keys = m.remote.workspace_state_keys()
        return {f"{bucket}/{k}" for k in keys} | {f"{bucket}/{k}-md5" for k in keys}

    def classify() -> tuple[list[str], list[str], list[str]]:
        """(this configuration's lock items, its digest items, every other item)."""
        mine = ours()
        locks, digests, others = [], [], []
        for item in m.remote.scan(table):
            lock_id = str((item.get("LockID") or {}).get("S", ""))
            if lock_id not in mine:
                others.append(lock_id)
            elif lock_id.endswith("-md5"):
                digests.append(lock_id)
            else:
                locks.append(lock_id)
        return locks, digests, others

    def refuse_in_use(locks: list[str], others: list[str]) -> None:
        if locks:
            raise TfwrapError(
                f"table {table} holds a lock of this state ({locks[0]}): a run on the old configuration "
                "(dynamodb_table) is going on; update that pipeline, then run cleanup-table again",
                exitcodes.LOCK_HELD,
            )
        if others:
            shown = ", ".join(sorted(others)[:5]) + (
                f" and {len(others) - 5} more" if len(others) > 5 else ""
            )
            raise TfwrapError(
                f"table {table} is still used by {len(others)} other item(s): {shown} (a LockID is a state "
                "being locked now, a -md5 item a state still configured with dynamodb_table); migrate "
                "those states first, then run cleanup-table again",
                exitcodes.LOCK_HELD,
            )

    def preflight() -> Done:
        for name, settings in (("the files", m.backend), (".terraform (initialised)", m.initialised)):
            if settings is not None and settings.dynamodb_table:
                raise TfwrapError(
                    f"dynamodb_table = {settings.dynamodb_table!r} is still set in {name}: finish the "
                    "migration (tfwrap migrate finalize) before deleting the lock table",
                    exitcodes.USAGE,
                )
        m.require_table(table, "the lock table to delete")
        return Done(f"table {table} exists; this configuration no longer uses it")

    def scan_title(already: bool) -> str:
        if already:
            return f"table {table} holds no item"
        return f"scan {table}: refuse while another state uses it; remove this configuration's stale digests"

    def scan_run() -> Done:
        locks, digests, others = classify()
        refuse_in_use(locks, others)
        for lock_id in digests:
            m.remote.delete_digest(table, lock_id[len(bucket) + 1 : -len("-md5")])
        note = f"no other state uses it; removed {len(digests)} stale digest item(s)"
        if digests and m.journal.done("finalize/remove-digest"):
            note += (
                " (written after finalize removed them: a pipeline may still run with dynamodb_table; "
                "once the table is gone it fails instead of locking alone)"
            )
        return Done(note, {"removed": digests})

    def delete_title(already: bool) -> str:
        return f"table {table} is gone" if already else f"delete DynamoDB table {table} (empty)"

    def delete_run() -> Done:
        described = m.remote.describe_table(table) or {}
        if described.get("DeletionProtectionEnabled"):
            raise TfwrapError(
                f"table {table} has deletion protection: aws dynamodb update-table --table-name {table} "
                "--no-deletion-protection-enabled, then run cleanup-table again",
                exitcodes.BLOCKED,
            )
        locks, _, others = classify()  # once more, right before: nothing new may have arrived
        refuse_in_use(locks, others)
        m.remote.delete_table(table)
        return Done(
            f"deleted (if Terraform manages table {table}, remove its resource from that configuration too)"
        )

    return [
        Step("preflight", lambda _: f"lock table {table}: still configured here?", preflight, always=True),
        Step("scan", scan_title, scan_run, holds=lambda: not any(classify()), drift="redo"),
        Step(
            "delete-table",
            delete_title,
            delete_run,
            holds=lambda: m.remote.describe_table(table) is None,
        ),
    ]


# --- helpers ----------------------------------------------------------------------------------


def _journal_edit(m: Migration, rec: dict[str, Any]) -> None:
    """Write-ahead: the edit is in the journal before the file changes (a crash loses nothing)."""
    m.journal.data["edits"] = [
        e
        for e in m.journal.edits
        if (e["phase"], e["path"], e["op"], e["name"]) != (rec["phase"], rec["path"], rec["op"], rec["name"])
    ]
    m.journal.add_edit(rec)
    m.journal.save()


def plan_restore(m: Migration, table: str) -> list[edit.Edit]:
    """The edits that bring the files back to DynamoDB locking only, not applied yet.

    The journal's edits are undone newest first (exactly, for a file nobody touched since);
    then whatever is still needed is done with the same format-preserving edits: no
    ``use_lockfile = true`` anywhere, ``dynamodb_table`` set. Planned on scratch copies.
    """
    found = edits.places(m.backend)
    edits.refuse_command_line(found)
    scratch = Path(tempfile.mkdtemp(prefix="tfwrap-rollback-"))
    copies: dict[Path, Path] = {}

    def copy(path: Path) -> Path:
        if path not in copies:
            copies[path] = scratch / f"{len(copies)}-{path.name}"  # same suffix: same kind of edit
            copies[path].write_text(_text(path))
        return copies[path]

    try:
        for rec in reversed(m.journal.edits):
            scratch_copy = copy(Path(rec["path"]))
            sha = edits.sha256(scratch_copy.read_text())
            if sha == rec["before_sha256"]:
                continue  # never applied, or undone already
            on_copy = {**rec, "path": str(scratch_copy)}
            exact = edits.undo_exact(on_copy) if sha == rec["after_sha256"] else None
            scratch_copy.write_text((exact or edits.undo_semantic(on_copy)).after)
        editable = [p.path for p in found if p.path is not None]
        for path in editable:
            if to_bool(_settings_of(copy(path)).get("use_lockfile")) is True:
                copies[path].write_text(edit.remove_setting(copies[path], "use_lockfile").after)
        if not any(_settings_of(copy(path)).get("dynamodb_table") for path in editable):
            files = [p for p in editable if p.name.endswith((".tf", ".tf.json"))] or editable
            if not files:
                raise TfwrapError("no file to put dynamodb_table back into; edit the backend by hand", 83)
            home = copy(files[-1])
            home.write_text(edit.set_setting(home, "dynamodb_table", table).after)
        changes = [edit.Edit(path, _text(path), c.read_text()) for path, c in copies.items()]
        return [c for c in changes if c.changed]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _settings_of(path: Path) -> dict[str, Any]:
    """The S3 backend settings one file sets (a .tf/.tf.json block or a -backend-config file)."""
    from tfwrap.backend import config

    return config.file_settings(path) or {}


def _text(path: Path) -> str:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        return ""


def _indent(text: str) -> str:
    return "\n".join(f"    | {line}" for line in text.splitlines())


def _create_table_hint(table: str) -> str:
    return (
        f"create it (aws dynamodb create-table --table-name {table} --attribute-definitions "
        "AttributeName=LockID,AttributeType=S --key-schema AttributeName=LockID,KeyType=HASH "
        "--billing-mode PAY_PER_REQUEST) or fix dynamodb_table"
    )
