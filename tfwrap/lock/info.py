"""The heartbeat line tfwrap keeps in a lock's ``Info`` field.

One line a person can read in Terraform's "Error acquiring the state lock" box and a
program can parse (space-separated ``key=value``, values never contain spaces)::

    tfwrap heartbeat=2026-11-26T15:52:06Z lease=90s host=ci-7 terraform_pid=4242 tfwrap_pid=4240
    started=2026-11-26T15:50:00Z ci=https://github.com/o/r/actions/runs/1
"""

from __future__ import annotations

import datetime as dt
import os
import re
import socket
from dataclasses import dataclass

PREFIX = "tfwrap "
_PAIR = re.compile(r"(\w+)=(\S+)")


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
    except ValueError:
        return None


@dataclass(frozen=True)
class Holder:
    """Who holds a lock according to its heartbeat."""

    heartbeat: dt.datetime
    lease_seconds: int
    host: str
    terraform_pid: int
    tfwrap_pid: int
    started: dt.datetime | None
    ci: str = ""

    def line(self) -> str:
        parts = [
            f"heartbeat={stamp(self.heartbeat)}",
            f"lease={self.lease_seconds}s",
            f"host={self.host}",
            f"terraform_pid={self.terraform_pid}",
            f"tfwrap_pid={self.tfwrap_pid}",
        ]
        if self.started:
            parts.append(f"started={stamp(self.started)}")
        if self.ci:
            parts.append(f"ci={self.ci}")
        return PREFIX + " ".join(parts)


def parse(info: str) -> Holder | None:
    """The holder from an ``Info`` field, or None when it is not a tfwrap heartbeat."""
    if not info.startswith(PREFIX):
        return None
    fields = dict(_PAIR.findall(info))
    beat = parse_time(fields.get("heartbeat", ""))
    lease = fields.get("lease", "").rstrip("s")
    if beat is None or not lease.isdigit():
        return None
    return Holder(
        heartbeat=beat,
        lease_seconds=int(lease),
        host=fields.get("host", ""),
        terraform_pid=int(fields.get("terraform_pid", "0") or 0),
        tfwrap_pid=int(fields.get("tfwrap_pid", "0") or 0),
        started=parse_time(fields.get("started", "")),
        ci=fields.get("ci", ""),
    )


def hostname() -> str:
    return socket.gethostname().split(".")[0] or "unknown"


def ci_run_url(env: dict[str, str] | None = None) -> str:
    """A link to the CI run holding the lock, when there is one (spaces never appear)."""
    e = os.environ if env is None else env
    if e.get("GITHUB_RUN_ID") and e.get("GITHUB_REPOSITORY"):
        server = e.get("GITHUB_SERVER_URL", "https://github.com")
        return f"{server}/{e['GITHUB_REPOSITORY']}/actions/runs/{e['GITHUB_RUN_ID']}"
    for name in ("CI_JOB_URL", "BUILDKITE_BUILD_URL", "CIRCLE_BUILD_URL", "BUILD_URL"):
        # GitLab CI, Buildkite, CircleCI, Jenkins
        if e.get(name):
            return e[name].replace(" ", "%20")
    return ""
