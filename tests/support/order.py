"""The order tests are handed to the workers: the longest first, from the times of an earlier
full run kept in ``tests/durations.json`` (docs/decisions/040-suite-tiers.md).

xdist gives out its units (an xdist group, or one test) from one queue, the groups with the
most tests first and the rest in collection order. In collection order a 30-second test of a
module late in the alphabet started in the last minute and ran on with one core idle; handed
out longest first, the short ones fill the gaps at the end instead.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

# TFWRAP_TEST_DURATIONS: another file, for the suite's own test of this order
FILE = Path(os.environ.get("TFWRAP_TEST_DURATIONS") or Path(__file__).parent.parent / "durations.json")
KEPT_FROM = 0.5  # seconds: shorter tests are listed as 0, in collection order among themselves


def base_id(nodeid: str) -> str:
    """A test's ID without the ``@group`` suffix xdist adds to the tests of a group."""
    return nodeid.split("@", 1)[0]


def known() -> dict[str, float]:
    """The kept times (setup, call and teardown), or none when the file is missing or broken."""
    try:
        data = json.loads(FILE.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): float(v) for k, v in data.items()} if isinstance(data, dict) else {}


def longest_first(items: list[pytest.Item]) -> None:
    """Sort the single tests in place, longest kept time first. The tests of an xdist group
    keep their collection order: some build on the test before them (an install, then its
    uninstall). A stable sort, so ties keep collection order too."""
    times = known()

    def key(item: pytest.Item) -> float:
        return 0.0 if item.get_closest_marker("xdist_group") else -times.get(base_id(item.nodeid), 0.0)

    items.sort(key=key)


class Recorder:
    """``--update-durations``: what each test took in this run, written to the file at the end."""

    def __init__(self) -> None:
        self.took: dict[str, float] = {}

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        key = base_id(report.nodeid)
        self.took[key] = self.took.get(key, 0.0) + report.duration

    @pytest.hookimpl
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if exitstatus != 0 or hasattr(session.config, "workerinput"):
            return  # a failed run's times are not a measure; workers report to the controller
        kept = {**known(), **{k: round(v, 1) for k, v in self.took.items()}}  # a subset updates its own
        kept = {k: v for k, v in sorted(kept.items()) if v >= KEPT_FROM}
        FILE.write_text(json.dumps(kept, indent=0) + "\n")
