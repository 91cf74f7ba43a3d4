"""``tfwrap migrate --all``: every stack on DynamoDB locking through the same phases, at once.

Each stack is migrated by the single-stack command itself (``tfwrap migrate <phase> -chdir
DIR``), in its own process, a bounded number at a time: the same steps, the same journal
per state, the same refusals, and one stack's failure or crash cannot stop or corrupt another.
Resuming is the single-stack command's own: a stack whose journal says a phase is done says
"nothing to do", and no recorded step is repeated. ``status --all`` reads each stack's
``migrate status --json`` and decides with ``status.decide``; ``finalize --all`` and
``cleanup-table --all`` run only where that says the stack is ready, and a lock table shared
by several stacks is deleted only once every one of them is finalized
(docs/decisions/073-migrate-all.md).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tfwrap import exitcodes

JOBS = 4  # each stack runs Terraform (init, plans): CPU-bound, so a few at a time


@dataclass
class Target:
    """A stack found on DynamoDB locking (or dual), or why it is left out."""

    path: Path
    table: str
    skipped: str = ""  # why this stack is not migrated (a partial backend without its file, Terragrunt...)
    backend_file: Path | None = None  # a partial backend's -backend-config file: one state each

    @property
    def file_arg(self) -> str:
        """The backend file as ``-backend-config`` takes it: relative to the stack ("" for none)."""
        if self.backend_file is None:
            return ""
        return os.path.relpath(self.backend_file.resolve(), self.path.resolve())

    @property
    def name(self) -> str:
        """How reports name it: the directory, and the backend file of a partial backend."""
        return f"{self.path} (-backend-config {self.file_arg})" if self.backend_file else str(self.path)


@dataclass
class Outcome:
    """One stack's run: its exit code and what it printed."""

    target: Target
    code: int
    output: str  # what it printed, stderr then stdout
    stdout: str = ""
    report: dict[str, Any] = field(default_factory=dict)  # status --json, when asked for

    @property
    def ok(self) -> bool:
        return self.code == exitcodes.OK


def targets(paths: list[Path], *, native: bool = False) -> list[Target]:
    """The stacks ``audit`` finds that lock with DynamoDB (alone or beside the lockfile); with
    ``native``, also those on S3 native locking only (a finalized stack's journal is there)."""
    from tfwrap.audit import discover

    found = []
    for stack in discover.stacks(discover.candidate_files(paths)):
        backend = stack.backend
        if stack.error:
            found.append(Target(stack.path, "", f"its backend cannot be read: {stack.error}"))
        elif stack.kind != "terraform":
            if backend.dynamodb_table:
                found.append(
                    Target(stack.path, backend.dynamodb_table, "a Terragrunt stack: migrate its module")
                )
        elif backend.dynamodb_table or (native and backend.use_lockfile):
            found.append(Target(stack.path, backend.dynamodb_table, backend_file=stack.backend_file))
        elif not backend.bucket and not backend.use_lockfile:
            found.append(
                Target(
                    stack.path,
                    "",
                    "a partial backend: run tfwrap migrate -chdir DIR -backend-config FILE with the file its "
                    "init uses",
                )
            )
    return found


def _tfwrap() -> list[str]:
    return [sys.executable, "-m", "tfwrap"]


def _run_one(target: Target, args: list[str], *, reinit: bool = False) -> Outcome:
    where = ["-chdir", str(target.path)]
    if target.backend_file is not None:
        where += ["-backend-config", target.file_arg]
    if reinit:
        failed = _point_at(target)
        if failed is not None:
            return failed
    done = subprocess.run(
        [*_tfwrap(), "migrate", *args, *where],
        capture_output=True,
        text=True,
        check=False,
        env=os.environ.copy(),
    )
    return Outcome(target, done.returncode, done.stderr + done.stdout, done.stdout)


def run_each(chosen: list[Target], args: list[str], jobs: int = JOBS) -> list[Outcome]:
    """``tfwrap migrate ARGS -chdir DIR`` for each target, ``jobs`` at a time, in path order.

    The states of one directory (a partial backend's files) run one after another: they share
    its ``.terraform``, which each ``init -reconfigure`` points at its own state."""
    by_dir: dict[Path, list[Target]] = {}
    for target in chosen:
        by_dir.setdefault(target.path, []).append(target)
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        done = pool.map(
            lambda group: [_run_one(t, args, reinit=len(group) > 1) for t in group], by_dir.values()
        )
        return [one for group in done for one in group]


def _point_at(target: Target) -> Outcome | None:
    """``terraform init -reconfigure -backend-config FILE`` in a directory holding several states,
    as a person switching environments runs it: it changes only which state ``.terraform``
    points at, never a state. None when done, else the failure as this state's outcome."""
    from tfwrap.errors import TfwrapError
    from tfwrap.terraform import realbin

    try:
        real = realbin.find()
    except TfwrapError as exc:
        return Outcome(target, exc.code, f"tfwrap: {exc.message}\n")
    argv = [real, "init", "-reconfigure", "-input=false", "-no-color", f"-backend-config={target.file_arg}"]
    done = subprocess.run(argv, cwd=target.path, capture_output=True, text=True, check=False)
    if done.returncode == 0:
        return None
    last = (done.stderr.strip().splitlines() or ["?"])[-1]
    return Outcome(
        target,
        exitcodes.STEP_FAILED,
        f"tfwrap: terraform init -reconfigure -backend-config={target.file_arg} failed (exit "
        f"{done.returncode}): {last}\n{done.stderr}",
    )


def statuses(chosen: list[Target], soak: float, jobs: int = JOBS) -> list[Outcome]:
    """Each stack's ``migrate status --json``, with the next command decided from it."""
    from tfwrap.migrate import status

    got = run_each(chosen, ["status", "--json", "--soak", f"{int(soak)}s"], jobs)
    for one in got:
        if one.code != exitcodes.OK:
            continue
        try:
            one.report = json.loads(one.stdout)
        except ValueError:
            one.code = exitcodes.INTERNAL
            continue
        command, why = status.decide(one.report, soak, str(one.target.path))
        if command and one.target.backend_file is not None:
            command += f" -backend-config={shlex.quote(one.target.file_arg)}"
        one.report["next"] = {"command": command, "why": why}
    return got


def ready_for(phase: str, report: dict[str, Any]) -> str | None:
    """None when the stack is ready for ``phase`` (finalize, cleanup-table), else why not."""
    nxt = (report.get("next") or {}).get("command") or ""
    why = (report.get("next") or {}).get("why") or "nothing to do"
    if phase == "finalize":
        if "migrate finalize" in nxt and "after the soak" not in why:
            return None
        return why
    if "migrate cleanup-table" in nxt:
        return None
    return why


def cleanup_plan(reports: list[Outcome]) -> tuple[list[Outcome], dict[str, str]]:
    """One stack per lock table whose every stack here is finalized; why each other table waits."""
    by_table: dict[str, list[Outcome]] = {}
    for one in reports:
        table = str(one.report.get("lock_table") or one.target.table)
        if table:
            by_table.setdefault(table, []).append(one)
    chosen, waiting = [], {}
    for table, users in sorted(by_table.items()):
        if all((u.report.get("next") or {}).get("command") is None for u in users):
            continue  # nothing left to do for any of them: deleted already, or nothing to migrate
        blocking = [u for u in users if ready_for("cleanup-table", u.report) is not None]
        if blocking:
            names = ", ".join(u.target.name for u in blocking)
            waiting[table] = f"still used by {names}"
        else:
            chosen.append(users[0])
    return chosen, waiting
