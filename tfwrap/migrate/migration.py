"""One working directory's migration: its configuration, journal, AWS calls and Terraform runs.

The context every step works on (``tfwrap.migrate.step``); the phases are in ``dual``,
``finalize``, ``rollback`` and ``cleanup``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from tfwrap import exitcodes
from tfwrap.backend.config import BackendConfig
from tfwrap.errors import TfwrapError
from tfwrap.migrate.journal import Journal
from tfwrap.migrate.remote import Remote, StateObject, aws_call
from tfwrap.migrate.step import Done
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
from tfwrap.output import say, write
from tfwrap.supervise.lockevents import LockEvent

MIN_VERSION = (1, 10, 0)  # use_lockfile exists from 1.10 (experimental), GA in 1.11
_MODULE = re.compile(r'^\s*module\s+"', re.MULTILINE)
MODE_LINES = {"dual": DUAL, "native": NATIVE, "dynamodb": DYNAMODB}
_HOLDER = re.compile(r"^\s*ID:\s+([0-9a-fA-F-]{36})\s*$", re.MULTILINE)  # Terraform's "Lock Info:" box


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


_MODE_WORDS = {"dual": "dual locking", "native": "S3 native locking", "dynamodb": "DynamoDB locking"}


def describe_mode(mode: str) -> str:
    """``dual`` -> "dual locking", ``none`` -> "no locking" (not "none locking")."""
    return _MODE_WORDS.get(mode, "no locking")


@dataclass
class Options:
    chdir: str = "."
    dry_run: bool = False
    backend_config: tuple[str, ...] = ()
    plan_args: tuple[str, ...] = ()
    lock_timeout: str = "60s"
    soak: float = 86400.0
    table: str | None = None
    ignore_stragglers: bool = False  # finalize/cleanup-table despite evidence of old-configuration runs


class Out:
    """Everything the migration says goes to stderr, one ``tfwrap:`` line at a time."""

    def line(self, text: str) -> None:
        say(text)

    def note(self, text: str) -> None:
        say(text, prefix="tfwrap:       ")

    def block(self, text: str) -> None:
        if text:
            write(text if text.endswith("\n") else text + "\n")


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
        self._journal: Journal | None = None
        self.remote = Remote(self.backend)
        self._reuse_backend_config()
        self._tf: Terraform | None = None
        self._real: str | None = None
        self._version = ""
        self.private: str | None = None
        self.state: StateObject | None = None

    @property
    def journal(self) -> Journal:
        """The journal in the state bucket, read once the backend is known to be S3 with a bucket."""
        if self._journal is None:
            self._journal = Journal.load(self.remote.journal(), self.backend.data_dir)
            if self._journal.moved_from is not None:
                self.out.line(
                    f"moved the migration journal from {self._journal.moved_from} to {self._journal.path}"
                )
        return self._journal

    def _reuse_backend_config(self) -> None:
        """A partial backend and no -backend-config: the files the journal recorded for dual.

        The journal is found through the initialised copy, which knows the bucket (
        finalize and rollback must not need the -backend-config arguments typed again)."""
        init = self.initialised
        if self.opts.backend_config or self.backend.bucket or not self.backend.is_s3:
            return
        if init is None or not init.is_s3 or not init.bucket:
            return
        journal = Journal.load(Remote(init).journal())
        recorded = tuple(str(v) for v in journal.get("backend_config") or ())
        if not recorded:
            return
        self.opts = dataclasses.replace(self.opts, backend_config=recorded)
        self.load()
        self._journal = journal
        shown = " ".join(f"-backend-config={v}" for v in recorded)
        self.out.line(f"using {shown}, as the journal recorded for the dual phase")

    # --- configuration -----------------------------------------------------------------------

    def load(self) -> None:
        from tfwrap.backend import config
        from tfwrap.terraform import commands

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
            if any(_MODULE.search(read_text(p)) for p in files):
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
            from tfwrap.terraform import realbin

            self._real = realbin.find(self.environ)
        return self._real

    @property
    def tf(self) -> Terraform:
        if self._tf is None:
            from tfwrap import fs
            from tfwrap.findings import policy

            self.private = fs.private_dir("tfwrap-migrate")
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
            from tfwrap import fs

            fs.remove_tree(self.private)

    def terraform_version(self) -> str:
        from tfwrap.checks import version
        from tfwrap.findings.policy import parse_version

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
            self.out.block(indent(exc.result.tail(20)))
            raise

    def plan(self, expected: str) -> Plan:
        """A locking plan through the real Terraform; checks which locks it took and released."""
        tf = self.tf
        assert self.private is not None  # noqa: S101 - set by self.tf
        plan_file = os.path.join(self.private, f"plan-{time.time_ns()}.tfplan")
        state = self.remote.read_state()
        args = ["-detailed-exitcode", f"-out={plan_file}", *self.opts.plan_args]
        # The first try does not wait: a retry orphan (this very plan's lock, DOMAIN.md) is seen
        # at once instead of after the whole -lock-timeout; another run's lock is then waited for
        # as asked (docs/decisions/108-the-retry-orphan.md).
        timeout = "0s"
        for attempt in (1, 2, 3, 4):
            lock = ["-lock=true", f"-lock-timeout={timeout}"]
            result = tf.run(["plan", "-input=false", "-no-color", *lock, *args], log=True)
            if result.code >= 128 or self.stopper.signum is not None:
                self.release_own(result.events)
            self.stopper.check("during terraform plan")
            if result.code in (0, 2):
                break
            if "Error acquiring the state lock" not in result.stderr:
                self.out.block(indent(result.tail(20)))
                raise TerraformFailed("terraform plan", result)
            holder = _HOLDER.search(result.stderr)
            own = {e.lock_id for e in result.events if e.kind == "attempt"}
            if attempt < 4 and holder and holder.group(1) in own:
                # The SDK retried a lock write whose first try had succeeded: the "holder" is
                # this very plan (DOMAIN.md, the known orphan case). Remove it and try again,
                # since a loaded store can cause it on the retry as well.
                self.release_own([LockEvent("locked", "", holder.group(1))], "the SDK retry left")
                continue
            if attempt < 4 and timeout != self.opts.lock_timeout:
                timeout = self.opts.lock_timeout  # another run's lock: wait for it as asked
                continue
            self.out.block(indent(result.tail(20)))
            raise TfwrapError(
                "terraform plan could not take the state lock: another run holds it; run the same "
                "command again when it is done",
                exitcodes.LOCK_HELD,
            )
        mode = MODE_LINES[expected]
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
                f"{self.backend.dynamodb_endpoint or 'AWS'}: {create_table_hint(table)}",
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


def read_text(path: Path) -> str:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        return ""


def indent(text: str) -> str:
    return "\n".join(f"    | {line}" for line in text.splitlines())


def create_table_hint(table: str) -> str:
    return (
        f"create it (aws dynamodb create-table --table-name {table} --attribute-definitions "
        "AttributeName=LockID,AttributeType=S --key-schema AttributeName=LockID,KeyType=HASH "
        "--billing-mode PAY_PER_REQUEST) or fix dynamodb_table"
    )
