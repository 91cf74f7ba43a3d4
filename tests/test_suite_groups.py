"""The suite's own scheduling (docs/decisions/040-suite-tiers.md): an xdist group must reach
xdist, or the quiet tests run beside each other and a module's fixtures are built per worker."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_the_quiet_group_runs_on_one_worker_and_first() -> None:
    # Two quiet tests and enough others that, ungrouped, xdist would hand them to both workers.
    tests = [
        "tests/test_supervise.py::test_the_keepers_report_is_a_typed_versioned_message",
        "tests/test_supervise.py::test_a_terraform_status_tfwrap_cannot_read_is_never_success",
        "tests/test_durations.py",
        "tests/test_fs.py",
    ]
    args = ["-m", "pytest", "-v", "-n", "2", "--dist", "loadgroup", "-p", "no:cacheprovider", *tests]
    ran = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, check=False)
    assert ran.returncode == 0, ran.stdout[-2000:]
    lines = re.findall(r"\[(gw\d)\] \[\s*\d+%\] PASSED (\S+)", ran.stdout)
    workers = {test.split("@")[0]: gw for gw, test in lines}
    quiet = {workers[t] for t in tests[:2]}
    assert len(quiet) == 1, f"the quiet tests ran on {sorted(quiet)}: the group did not reach xdist"
    assert all("@quiet" in test for _, test in lines if "test_supervise" in test)
    first = next(test for gw, test in lines if gw in quiet)
    assert "test_supervise" in first, f"the quiet group did not start first: {first}"
