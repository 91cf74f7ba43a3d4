"""The suite's own scheduling (docs/decisions/040-suite-tiers.md): an xdist group must reach
xdist, or the quiet tests run beside each other and a module's fixtures are built per worker."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_each_quiet_lane_runs_on_one_worker_and_first() -> None:
    # Two tests of each lane and enough others that, ungrouped, xdist would spread them.
    lanes = {
        "quiet-1": [
            "tests/test_supervise.py::test_the_keepers_report_is_a_typed_versioned_message",
            "tests/test_supervise.py::test_a_terraform_status_tfwrap_cannot_read_is_never_success",
        ],
        "quiet-2": [
            "tests/test_heartbeat_renewal.py::test_cleanup_says_when_it_could_not_reach_the_lock",
            "tests/test_heartbeat_renewal.py::test_only_the_fast_check_goes_without_retries",
        ],
    }
    others = ["tests/test_durations.py", "tests/test_fs.py"]
    tests = [*lanes["quiet-1"], *lanes["quiet-2"], *others]
    args = ["-m", "pytest", "-v", "-n", "3", "--dist", "loadgroup", "-p", "no:cacheprovider", *tests]
    ran = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, check=False)
    assert ran.returncode == 0, ran.stdout[-2000:]
    lines = re.findall(r"\[(gw\d)\] \[\s*\d+%\] PASSED (\S+)", ran.stdout)
    workers = {test.split("@")[0]: gw for gw, test in lines}
    suffixes = {test.split("@")[0]: test.partition("@")[2] for _, test in lines}
    lane_workers = set()
    for lane, members in lanes.items():
        ran_on = {workers[t] for t in members}
        assert len(ran_on) == 1, f"{lane} ran on {sorted(ran_on)}: the group did not reach xdist"
        assert {suffixes[t] for t in members} == {lane}, suffixes
        module = members[0].split("::")[0].rsplit("/", 1)[-1].removesuffix(".py")
        first = next(test for gw, test in lines if gw in ran_on)
        assert module in first, f"{lane} did not start first on its worker: {first}"
        lane_workers |= ran_on
    assert len(lane_workers) == 2, f"the two lanes shared a worker: {sorted(lane_workers)}"
