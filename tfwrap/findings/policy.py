"""The policy: ``TFWRAP_MODE`` and the nearest ``.tfwrap.toml`` (found walking up).

``.tfwrap.toml``::

    mode = "enforce"                 # enforce | warn | off; TFWRAP_MODE wins over it
    min_terraform_version = "1.10.0"
    cache_ttl_seconds = 900
    heartbeat_seconds = 30           # supervised runs: renew the lock's Info this often
    lease_intervals = 3              # a heartbeat older than this many intervals is stale
    grace_seconds = 7                # after relaying a stop signal, wait this long, then kill
    stale_locks = "report"           # report | take-over (issue 8); TFWRAP_STALE_LOCKS wins
    [severity]                       # any finding id -> error | warning | info | off
    bucket-object-lock = "warning"

On the shim's hot path: standard library only; TOML is parsed only when a file exists.
"""

from __future__ import annotations

import os
import sys

from tfwrap.errors import PolicyError
from tfwrap.findings.finding import CATALOG, SEVERITIES, Finding

TYPE_CHECKING = False  # typing costs ~3 ms to import on the hot path

if TYPE_CHECKING:
    from typing import Any

MODES = ("enforce", "warn", "off")
POLICY_FILE = ".tfwrap.toml"
_KEYS = frozenset(
    {
        "mode",
        "min_terraform_version",
        "cache_ttl_seconds",
        "severity",
        "heartbeat_seconds",
        "lease_intervals",
        "grace_seconds",
        "stale_locks",
    }
)
STALE_LOCKS = ("report", "take-over")
# Supervision settings: name -> (environment override, minimum). The grace default fits
# inside docker stop's 10 s and GitHub Actions' SIGINT-then-SIGTERM-7.5-s-later cancel.
_NUMBERS = {
    "heartbeat_seconds": ("TFWRAP_HEARTBEAT_SECONDS", 0.1),
    "lease_intervals": ("TFWRAP_LEASE_INTERVALS", 1.0),
    "grace_seconds": ("TFWRAP_GRACE_SECONDS", 0.0),
}
# An upper bound for every number above: 1e999 parses as inf and would only fail later, inside
# the heartbeat (OverflowError), turning supervision off (issue 7). A week is far past any use.
_MAXIMUM = 7 * 24 * 3600.0
MIN_LEASE_SECONDS = 3.0  # see lease_floor


class Policy:
    """What tfwrap enforces, after the policy file and the environment are applied."""

    __slots__ = (
        "cache_ttl_seconds",
        "grace_seconds",
        "heartbeat_seconds",
        "lease_intervals",
        "min_terraform_version",
        "mode",
        "severity",
        "source",
        "stale_locks",
    )

    def __init__(self, source: str = "defaults") -> None:
        self.mode = "enforce"
        self.min_terraform_version: tuple[int, int, int] = (1, 10, 0)
        self.cache_ttl_seconds = 900
        self.severity: dict[str, str] = {}
        self.source = source
        self.heartbeat_seconds = 30.0
        self.lease_intervals = 3.0
        self.grace_seconds = 7.0
        self.stale_locks = "report"  # a stale lock blocking a run is reported, not taken over

    @property
    def lease_seconds(self) -> int:
        return round(self.heartbeat_seconds * self.lease_intervals)

    def apply(self, finding: Finding) -> Finding:
        """The finding at the severity this policy gives it."""
        wanted = self.severity.get(finding.id)
        return finding.with_severity(wanted) if wanted else finding


def parse_version(text: str) -> tuple[int, int, int]:
    """``"1.10.0"`` (or ``"v1.10"``, ``"1.11.0-beta1"``) -> ``(1, 10, 0)``; ValueError otherwise."""
    core = text.strip().lstrip("v").split("-")[0].split("+")[0]
    parts = core.split(".")
    if not 1 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
        raise ValueError(text)
    nums = [int(p) for p in parts] + [0] * (3 - len(parts))
    return nums[0], nums[1], nums[2]


def find_policy_file(start: str) -> str | None:
    directory = os.path.abspath(start)
    while True:
        candidate = os.path.join(directory, POLICY_FILE)
        if os.path.lexists(candidate):
            return candidate
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent


def load(workdir: str, environ: dict[str, str] | None = None) -> Policy:
    """The policy for ``workdir``; PolicyError names the bad value and the fix."""
    env = os.environ if environ is None else environ
    path = find_policy_file(workdir)
    policy = _from_file(path) if path else Policy()
    mode = env.get("TFWRAP_MODE", "")
    if mode:
        if mode not in MODES:
            raise PolicyError(f"TFWRAP_MODE={mode!r} is not one of enforce, warn, off; set one of those")
        policy.mode = mode
    stale = env.get("TFWRAP_STALE_LOCKS", "")
    if stale:
        policy.stale_locks = _stale_locks("TFWRAP_STALE_LOCKS", stale)
    for name, (variable, minimum) in _NUMBERS.items():
        if env.get(variable):
            setattr(policy, name, _number(variable, env[variable], minimum))
    short = lease_too_short(policy.heartbeat_seconds, policy.lease_seconds)
    if short:
        raise PolicyError(
            f"{short} (heartbeat_seconds {policy.heartbeat_seconds:g} x lease_intervals "
            f"{policy.lease_intervals:g}, from TFWRAP_HEARTBEAT_SECONDS/TFWRAP_LEASE_INTERVALS or "
            f"{POLICY_FILE}): raise TFWRAP_LEASE_INTERVALS (or lease_intervals)"
        )
    return policy


def lease_floor(heartbeat_seconds: float) -> float:
    """The shortest lease that can tell a live holder from a dead one: one renewal may be
    missed, and the store's clock (Last-Modified, Date) has whole seconds, so
    ``2 x heartbeat + 1 s``; never under ``MIN_LEASE_SECONDS`` (docs/decisions/020-lease-floor.md)."""
    return max(MIN_LEASE_SECONDS, 2 * heartbeat_seconds + 1)


def lease_too_short(heartbeat_seconds: float, lease_seconds: float) -> str:
    """Why this lease is too short for this heartbeat, or "" when it is long enough."""
    floor = lease_floor(heartbeat_seconds)
    if lease_seconds >= floor:
        return ""
    return f"a lease of {lease_seconds:g} s is too short: it must be at least {floor:g} s"


def _stale_locks(where: str, value: object) -> str:
    if value not in STALE_LOCKS:
        raise PolicyError(f'{where} = {value!r} is not one of "report", "take-over"; set one of those')
    return str(value)


def _number(where: str, value: object, minimum: float) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = minimum - 1
    if isinstance(value, bool) or not minimum <= number <= _MAXIMUM:  # also refuses nan
        raise PolicyError(f"{where} = {value!r} must be a number from {minimum:g} to {_MAXIMUM:g}")
    return number


def _from_file(path: str) -> Policy:  # noqa: PLR0912 - one branch per setting
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        with open(path, encoding="utf-8") as f:
            data: dict[str, Any] = tomllib.loads(f.read())
    except OSError as exc:
        raise PolicyError(f"cannot read {path}: {exc.strerror}; fix its permissions or remove it") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{path} is not valid TOML ({exc}); fix it or remove it") from exc
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise PolicyError(f"{path}: unknown setting {unknown[0]!r}; known: {', '.join(sorted(_KEYS))}")
    policy = Policy(source=path)
    if "mode" in data:
        if data["mode"] not in MODES:
            raise PolicyError(f"{path}: mode = {data['mode']!r} is not one of enforce, warn, off")
        policy.mode = data["mode"]
    if "min_terraform_version" in data:
        try:
            policy.min_terraform_version = parse_version(str(data["min_terraform_version"]))
        except ValueError:
            raise PolicyError(
                f"{path}: min_terraform_version = {data['min_terraform_version']!r} is not a version "
                'like "1.11.0"'
            ) from None
    if "cache_ttl_seconds" in data:
        ttl = data["cache_ttl_seconds"]
        if not isinstance(ttl, int) or isinstance(ttl, bool) or ttl < 0:
            raise PolicyError(f"{path}: cache_ttl_seconds must be a whole number of seconds >= 0")
        policy.cache_ttl_seconds = ttl
    if "stale_locks" in data:
        policy.stale_locks = _stale_locks(f"{path}: stale_locks", data["stale_locks"])
    for name, (_, minimum) in _NUMBERS.items():
        if name in data:
            setattr(policy, name, _number(f"{path}: {name}", data[name], minimum))
    severities = data.get("severity", {})
    if not isinstance(severities, dict):
        raise PolicyError(f'{path}: [severity] must be a table of finding id = "error|warning|info|off"')
    for check_id, value in severities.items():
        if check_id not in CATALOG:
            raise PolicyError(
                f"{path}: unknown finding id {check_id!r} in [severity]; see `tfwrap check --list`"
            )
        if value not in SEVERITIES:
            raise PolicyError(f"{path}: severity of {check_id} is {value!r}; use error, warning, info or off")
        policy.severity[check_id] = value
    return policy
