"""``tfwrap migrate --all [PATHS…]`` and ``migrate status|finalize|cleanup-table --all``.

Every stack under PATHS (default ``.``) that ``tfwrap audit`` finds on DynamoDB locking goes
through the same phase as ``tfwrap migrate <phase> -chdir DIR`` would take it, ``--jobs`` at a
time (default 4), one journal per state (``tfwrap/migrate/fleet.py``). The edits land in the
working tree for one review. Each stack's output is printed under a ``== DIR ==`` header on
stderr (with ``--dry-run``: the combined plan and diff), then one line per stack and a summary.

``status --all`` prints a table on stdout (``--json``: a list of each stack's ``migrate status
--json`` document plus ``next``): stack, phase, since when, next command and why (the soak
left is in the why). ``finalize --all`` and ``cleanup-table --all`` act on the stacks that are
ready and say why each other is not; a lock table shared by several stacks is deleted only
once every one of them is finalized.

Exit codes: 0 every stack done (or nothing to do); 83 no stack found; 88 (``PARTIAL``) some
stack failed or was skipped: the summary names each with its reason.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tfwrap import exitcodes
from tfwrap.errors import TfwrapError
from tfwrap.migrate import fleet
from tfwrap.output import say


def _targets(paths: tuple[Path, ...], *, native: bool = True) -> list[fleet.Target]:
    found = fleet.targets(list(paths or (Path(),)), native=native)
    if not found:
        where = ", ".join(map(str, paths or (Path(),)))
        raise TfwrapError(f"no stack on DynamoDB locking under {where}: nothing to migrate", exitcodes.USAGE)
    return found


def _last_line(output: str) -> str:
    lines = [line.removeprefix("tfwrap: ") for line in output.splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def _report(outcomes: list[fleet.Outcome], skipped: list[fleet.Target], waiting: dict[str, str]) -> int:
    for one in outcomes:
        say(f"== {one.target.name} ==")
        for line in one.output.splitlines():
            sys.stderr.write(f"  {line}\n")
    failed = [o for o in outcomes if not o.ok]
    for one in outcomes:
        state = "ok" if one.ok else f"FAILED (exit {one.code})"
        say(f"{one.target.name}: {state}: {_last_line(one.output)}")
    for target in skipped:
        say(f"{target.name}: skipped: {target.skipped}")
    for path, why in waiting.items():
        say(f"{path}: not ready: {why}")
    say(
        f"{len(outcomes) - len(failed)} of {len(outcomes)} stacks done, {len(failed)} failed, "
        f"{len(skipped)} skipped, {len(waiting)} not ready"
    )
    return exitcodes.PARTIAL if failed or skipped else exitcodes.OK


def _finished(one: fleet.Outcome) -> bool:
    """Nothing left to do for this stack (native only, or its migration complete)."""
    return one.ok and (one.report.get("next") or {}).get("command") is None


def dual_all(paths: tuple[Path, ...], *, dry_run: bool, jobs: int) -> int:
    found = _targets(paths, native=False)
    chosen = [t for t in found if not t.skipped]
    args = ["dual", *(["--dry-run"] if dry_run else [])]
    return _report(fleet.run_each(chosen, args, jobs), [t for t in found if t.skipped], {})


def finalize_all(paths: tuple[Path, ...], *, soak: float, dry_run: bool, jobs: int) -> int:
    found = _targets(paths)
    reports = fleet.statuses([t for t in found if not t.skipped], soak, jobs)
    ready = [o.target for o in reports if o.ok and fleet.ready_for("finalize", o.report) is None]
    waiting = {
        str(o.target.name): (fleet.ready_for("finalize", o.report) or "") if o.ok else _last_line(o.output)
        for o in reports
        if o.target not in ready and not _finished(o)
    }
    args = ["finalize", "--soak", f"{int(soak)}s", *(["--dry-run"] if dry_run else [])]
    return _report(fleet.run_each(ready, args, jobs), [t for t in found if t.skipped], waiting)


def cleanup_all(paths: tuple[Path, ...], *, dry_run: bool, jobs: int) -> int:
    found = _targets(paths)
    reports = fleet.statuses([t for t in found if not t.skipped], 0, jobs)
    chosen, waiting = fleet.cleanup_plan([o for o in reports if o.ok])
    args = ["cleanup-table", *(["--dry-run"] if dry_run else [])]
    tables = {f"lock table {k}": v for k, v in waiting.items()}
    return _report(
        fleet.run_each([o.target for o in chosen], args, jobs), [t for t in found if t.skipped], tables
    )


def status_all(paths: tuple[Path, ...], *, soak: float, as_json: bool, jobs: int) -> int:
    found = _targets(paths)
    reports = fleet.statuses([t for t in found if not t.skipped], soak, jobs)
    if as_json:
        sys.stdout.write(
            json.dumps(
                [{"stack": str(o.target.path), "backend_file": _file(o.target), **o.report} for o in reports],
                indent=2,
            )
            + "\n"
        )
    else:
        rows = [("STACK", "PHASE", "SINCE", "STRAGGLERS", "NEXT", "WHY")]
        for o in reports:
            steps = o.report.get("steps") or []
            since = str(steps[-1]["at"]) if steps else "-"
            stragglers = o.report.get("stragglers")
            seen = str(len(stragglers)) if isinstance(stragglers, list) else "-"
            nxt = o.report.get("next") or {}
            rows.append(
                (
                    str(o.target.name),
                    str(o.report.get("phase") or "-") if o.ok else "?",
                    since,
                    seen,
                    str(nxt.get("command") or "-") if o.ok else "-",
                    str(nxt.get("why") or "") if o.ok else _last_line(o.output),
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
        for r in rows:
            sys.stdout.write(
                "  ".join([*(c.ljust(w) for c, w in zip(r, widths, strict=False)), r[-1]]) + "\n"
            )
    for target in (t for t in found if t.skipped):
        say(f"{target.name}: skipped: {target.skipped}")
    failed = [o for o in reports if not o.ok]
    return exitcodes.PARTIAL if failed or any(t.skipped for t in found) else exitcodes.OK


def _file(target: fleet.Target) -> str | None:
    return str(target.backend_file) if target.backend_file is not None else None
