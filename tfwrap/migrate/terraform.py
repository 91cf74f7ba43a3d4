"""Running the real Terraform (never the shim) for the migration, and reading what it did.

- Output is captured (shown only when Terraform fails); stdin is closed (``-input=false``).
- Terraform runs as the shim runs it (``supervise/child.py``): a process group of its own,
  a parent-death SIGTERM, a Ctrl-C or a signal to tfwrap relayed to it exactly once
  (Terraform then releases its lock), the tree killed after the grace period, and
  Ctrl-Z/``fg`` stopping and continuing it with tfwrap (DOMAIN.md "Signals").
- ``TF_LOG_CORE=INFO`` with ``TF_LOG_PATH`` to a private file gives Terraform's own lock
  lines ("Locked remote state (S3 Native and DynamoDB)"), which is how the migration knows
  which locks a plan took.
"""

from __future__ import annotations

import json
import os
import signal
from dataclasses import dataclass, field
from typing import Any

from tfwrap import exitcodes
from tfwrap.errors import TfwrapError
from tfwrap.supervise.lockevents import LockEvent, parse_line
from tfwrap.terraform.child import STOP_SIGNALS, Child, pending_stop_signal
from tfwrap.terraform.environment import child_environment

DUAL = "S3 Native and DynamoDB"
NATIVE = "S3 Native only"
DYNAMODB = "DynamoDB only"


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str
    events: list[LockEvent] = field(default_factory=list)

    def tail(self, lines: int = 12) -> str:
        text = [ln for ln in (self.stderr or self.stdout).splitlines() if ln.strip()]
        return "\n".join(text[-lines:])


class Interrupted(TfwrapError):
    """tfwrap got a stop signal: the step stopped, the journal is consistent, rerun to resume."""

    def __init__(self, signum: int, where: str) -> None:
        name = signal.Signals(signum).name
        super().__init__(
            f"interrupted by {name} {where}; run the same command again to resume",
            exitcodes.from_signal(signum),
        )


class Stopper:
    """Stop signals while the migration runs, read in one place: blocked for its whole
    length, taken by the running Terraform's relay (``Child.wait``: exactly one interrupt)
    or by ``check`` between steps. A signal is never lost between a spawn and its relay,
    and SIGQUIT is a stop signal here as in the shim (one way to run Terraform).
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._mask: set[int | signal.Signals] | None = None

    def __enter__(self) -> Stopper:
        self._mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        return self

    def __exit__(self, *_: object) -> None:
        self.poll()  # taken here, not delivered as the mask lifts
        if self._mask is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, self._mask)

    def poll(self) -> None:
        """Remember the first stop signal that arrived while no Terraform ran."""
        while (signum := pending_stop_signal(0)) is not None:
            if self.signum is None:
                self.signum = signum

    def check(self, where: str) -> None:
        self.poll()
        if self.signum is not None:
            raise Interrupted(self.signum, where)


class Terraform:
    """The real terraform binary, run in the working directory."""

    def __init__(
        self,
        real: str,
        workdir: str,
        environ: dict[str, str],
        *,
        private: str,
        stopper: Stopper,
        grace: float = 7.0,
    ) -> None:
        self.real = real
        self.workdir = workdir
        self.env = child_environment(environ)
        self.private = private
        self.stopper = stopper
        self.grace = grace
        self._count = 0

    def run(self, args: list[str], log: bool = False) -> Result:
        self.stopper.check(f"before terraform {args[0]}")  # never start Terraform after a stop signal
        self._count += 1
        base = os.path.join(self.private, f"{self._count:02d}-{args[0]}")
        env = dict(self.env)
        log_path = base + ".log"
        if log:
            env["TF_LOG_CORE"] = "INFO"
            env["TF_LOG_PATH"] = log_path
        with (
            open(base + ".out", "wb") as out,
            open(base + ".err", "wb") as err,
            open(os.devnull, "rb") as null,
        ):
            child = Child(
                self.real,
                args,
                env,
                cwd=self.workdir,
                stdio=(null.fileno(), out.fileno(), err.fileno()),
                terminal=False,
            )
            code = child.wait(grace=self.grace)
        if child.relayed is not None and self.stopper.signum is None:
            self.stopper.signum = child.relayed
        result = Result(code, _read(base + ".out"), _read(base + ".err"))
        if log:
            result.events = [e for e in map(parse_line, _read(log_path).splitlines()) if e is not None]
        return result

    def must(self, args: list[str], what: str, log: bool = False) -> Result:
        """Run; a failure (after a stop signal: the interruption) is a refusal naming ``what``."""
        result = self.run(args, log=log)
        self.stopper.check(f"during {what}")
        if result.code != 0:
            raise TerraformFailed(what, result)
        return result

    def show_json(self, plan_file: str) -> dict[str, Any]:
        result = self.must(["show", "-json", "-no-color", plan_file], "terraform show -json")
        try:
            shown: dict[str, Any] = json.loads(result.stdout)
        except ValueError as exc:
            raise TfwrapError(
                "terraform show -json printed no JSON; is TFWRAP_TERRAFORM a real terraform?",
                exitcodes.BLOCKED,
            ) from exc
        return shown


class TerraformFailed(TfwrapError):
    def __init__(self, what: str, result: Result) -> None:
        last = result.tail(1) or "no output"
        super().__init__(
            f"{what} failed (exit {result.code}): {last.strip()}; fix that, then run the same "
            "command again to resume",
            exitcodes.BLOCKED,
        )
        self.result = result


def _read(path: str) -> str:
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:
        return ""


# --- plans -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """A plan's result as compared before and after a change of locking."""

    code: int  # -detailed-exitcode: 0 no changes, 2 changes
    resources: list[list[str]]  # [address, "create" | "delete+create" | ...], sorted
    outputs: list[list[str]]
    serial: int | None  # the state's serial when the plan ran
    lock_id: str
    mode: str

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "resources": self.resources,
            "outputs": self.outputs,
            "serial": self.serial,
            "lock_id": self.lock_id,
            "mode": self.mode,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Plan:
        return cls(
            int(data["code"]),
            [list(x) for x in data["resources"]],
            [list(x) for x in data["outputs"]],
            data.get("serial"),
            str(data.get("lock_id", "")),
            str(data.get("mode", "")),
        )

    def same_result(self, other: Plan) -> bool:
        return (self.code, self.resources, self.outputs) == (other.code, other.resources, other.outputs)

    def describe(self) -> str:
        changed = [r for r in self.resources if r[1] not in ("no-op", "read")]
        if self.code == 0 or not (changed or any(o[1] != "no-op" for o in self.outputs)):
            return "no changes"
        adds = sum(1 for r in changed if "create" in r[1])
        deletes = sum(1 for r in changed if "delete" in r[1])
        updates = sum(1 for r in changed if r[1] == "update")
        shown = ", ".join(f"{a} {act}" for a, act in changed[:4]) + (" ..." if len(changed) > 4 else "")
        return f"{adds} to add, {updates} to change, {deletes} to destroy ({shown or 'outputs only'})"


def summarise(shown: dict[str, Any]) -> tuple[list[list[str]], list[list[str]]]:
    resources = sorted(
        [str(rc.get("address")), "+".join((rc.get("change") or {}).get("actions") or [])]
        for rc in shown.get("resource_changes") or []
    )
    outputs = sorted(
        [str(name), "+".join((change or {}).get("actions") or [])]
        for name, change in (shown.get("output_changes") or {}).items()
    )
    return resources, outputs


def lock_taken(events: list[LockEvent], mode: str) -> tuple[str | None, str]:
    """The lock ID the plan took and released in ``mode``, or None and why not."""
    locked = [e for e in events if e.kind == "locked"]
    if not locked:
        return None, "Terraform logged no 'Locked remote state' line (was -lock=false set somewhere?)"
    wrong = [e.mode for e in locked if e.mode != mode]
    if wrong:
        return None, f"Terraform locked with {wrong[0]!r}, not {mode!r}"
    lock_id = locked[-1].lock_id
    unlocked = [e for e in events if e.kind == "unlocked" and e.lock_id == lock_id]
    if not unlocked:
        return None, f"Terraform logged no 'Unlocked remote state ({mode})' line for lock {lock_id}"
    return lock_id, ""
