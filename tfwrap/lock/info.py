"""The heartbeat line tfwrap keeps in a lock's ``Info`` field.

One line a person can read in Terraform's "Error acquiring the state lock" box and a
program can parse (space-separated ``key=value``, values never contain spaces)::

    tfwrap heartbeat=2026-11-26T15:52:06Z lease=90s host=ci-7 terraform_pid=4242 tfwrap_pid=4240
    started=2026-11-26T15:50:00Z ci=https://github.com/o/r/actions/runs/1 boot=6f1c... pidns=4026531836
    tfwrap_start=81234 terraform_start=81240 took_over=<old ID> took_over_host=ci-3 took_over_ci=...

``host`` is for people only. Whether the holder runs on *this* machine is decided by the
kernel's boot id and the PID namespace (containers share a hostname without
sharing PIDs, and ``web1.prod``/``web1.staging`` shorten alike); a PID is the holder's only
if the process started at the same tick since boot (PIDs are reused).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import socket
from dataclasses import dataclass

from tfwrap import testhooks

PREFIX = "tfwrap "
_PAIR = re.compile(r"(\w+)=(\S+)")
# A heartbeat line tfwrap writes stays far under these; a longer one is forged or broken and
# makes the lock unknown (a 1 MB host= was echoed whole, twice, in the verdict line).
MAX_FIELD = 300
MAX_INFO = 4096


def bounded(text: str, limit: int = 120) -> str:
    """``text`` as shown on one line: at most ``limit`` characters, never the whole of a long one."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


def now() -> dt.datetime:
    """This machine's time (plus the test clock offset): for stamps people read, never verdicts."""
    # A test hook: a runner whose clock is ten minutes off must get the same verdicts (verdicts
    # never read this clock, only the store's).
    offset = testhooks.get(testhooks.CLOCK_OFFSET_SECONDS)
    try:
        skew = dt.timedelta(seconds=float(offset)) if offset else dt.timedelta(0)
    except (ValueError, OverflowError):
        skew = dt.timedelta(0)
    return (dt.datetime.now(dt.timezone.utc) + skew).replace(microsecond=0)


def stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
    except ValueError:
        return None


def _number(text: str) -> int:
    """A pid or tick count; 0 (unknown) for anything garbled (never an exit 85)."""
    return int(text) if text.isdigit() and len(text) < 20 else 0


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
    boot_id: str = ""  # the holder machine's kernel boot id ("" unknown: never "this host")
    pidns: str = ""  # its PID namespace (inode of /proc/self/ns/pid)
    tfwrap_start: int = 0  # start time of each process, in clock ticks since boot (0 unknown)
    terraform_start: int = 0
    took_over: str = ""  # the ID of the stale lock this run replaced, if any
    took_over_host: str = ""
    took_over_ci: str = ""
    interval_seconds: int = 0  # the holder's heartbeat interval, whole seconds up (0 unknown)
    renewals_stopped: bool = False  # its heartbeat could not be kept: never judge it by age
    machine_id: str = ""  # a digest of /etc/machine-id (never the id itself)

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
        optional = (
            ("ci", self.ci),
            ("boot", self.boot_id),
            ("pidns", self.pidns),
            ("tfwrap_start", self.tfwrap_start or ""),
            ("terraform_start", self.terraform_start or ""),
            ("took_over", self.took_over),
            ("took_over_host", self.took_over_host),
            ("took_over_ci", self.took_over_ci),
            ("every", f"{self.interval_seconds}s" if self.interval_seconds else ""),
            ("renewals", "stopped" if self.renewals_stopped else ""),
            ("machine", self.machine_id),
        )
        parts.extend(f"{name}={value}" for name, value in optional if value)
        return PREFIX + " ".join(parts)


def parse(info: str) -> Holder | None:
    """The holder from an ``Info`` field, or None when it is not a tfwrap heartbeat."""
    if not info.startswith(PREFIX):
        return None
    if len(info) > MAX_INFO:
        return None  # never a line tfwrap writes: judged as no heartbeat (unknown)
    fields = dict(_PAIR.findall(info))
    if any(len(value) > MAX_FIELD for value in fields.values()):
        return None
    beat = parse_time(fields.get("heartbeat", ""))
    lease = fields.get("lease", "").rstrip("s")
    if beat is None or not lease.isdigit() or len(lease) > 9:
        return None
    return Holder(
        heartbeat=beat,
        lease_seconds=int(lease),
        host=fields.get("host", ""),
        terraform_pid=_number(fields.get("terraform_pid", "")),
        tfwrap_pid=_number(fields.get("tfwrap_pid", "")),
        started=parse_time(fields.get("started", "")),
        ci=fields.get("ci", ""),
        boot_id=fields.get("boot", ""),
        pidns=fields.get("pidns", ""),
        tfwrap_start=_number(fields.get("tfwrap_start", "")),
        terraform_start=_number(fields.get("terraform_start", "")),
        took_over=fields.get("took_over", ""),
        took_over_host=fields.get("took_over_host", ""),
        took_over_ci=fields.get("took_over_ci", ""),
        interval_seconds=_number(fields.get("every", "").rstrip("s")),
        renewals_stopped=fields.get("renewals") == "stopped",
        machine_id=fields.get("machine", ""),
    )


def with_renewals_stopped(info: str) -> str:
    """The same heartbeat line, marked: its holder can no longer renew it (its keeper is gone)."""
    return info if " renewals=stopped" in info else f"{info} renewals=stopped"


def hostname() -> str:
    return socket.gethostname().split(".")[0] or "unknown"


def machine_id() -> str:
    """A digest of this machine's id (systemd's /etc/machine-id), "" when there is none: with
    the boot id and the host name, it tells cloned VMs apart. The id itself is not published."""
    import hashlib

    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            with open(path, encoding="ascii") as f:
                raw = f.read().strip()
        except (OSError, UnicodeDecodeError):
            continue
        if raw:
            return hashlib.blake2b(raw.encode(), digest_size=8).hexdigest()
    return ""


def boot_id() -> str:
    """The kernel's boot id: the same machine and the same boot ("" when not Linux)."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return ""


def pid_namespace() -> str:
    """This process's PID namespace (its inode): PIDs mean the same thing only within it."""
    try:
        link = os.readlink("/proc/self/ns/pid")  # "pid:[4026531836]"
    except OSError:
        return ""
    return link.partition("[")[2].rstrip("]")


def process_start(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot), or None when it is gone.

    A stopped process (Ctrl-Z, SIGSTOP) exists; a zombie does not: it will never renew.
    """
    if pid <= 0:
        return None
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 2 :].split()  # after "pid (comm) ": state is field 3
    if len(fields) < 20 or fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])  # field 22, starttime


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


def own_lock_body(lock_id: str, operation: str, path: str, lease_seconds: int) -> bytes:
    """A lock tfwrap takes itself (a state restore, a soak hold), as Terraform writes one: its
    holder line names this process on this machine, so a reader can tell it alive or dead."""
    import json

    moment, pid = now(), os.getpid()
    line = Holder(
        heartbeat=moment,
        lease_seconds=lease_seconds,
        host=hostname(),
        terraform_pid=pid,
        tfwrap_pid=pid,
        started=moment,
        ci=ci_run_url(),
        boot_id=boot_id(),
        pidns=pid_namespace(),
        tfwrap_start=process_start(pid) or 0,
        terraform_start=process_start(pid) or 0,
    ).line()
    fields = {
        "ID": lock_id,
        "Operation": operation,
        "Info": line,
        "Who": who(),
        "Version": "tfwrap",
        "Created": moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "Path": path,
    }
    return json.dumps(fields).encode()


def who() -> str:
    """``user@host``, as Terraform's ``Who``."""
    import getpass

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{hostname()}"
