"""The policy: the ``.tfwrap.toml`` files that govern a directory, merged, then the environment.

Files, lowest precedence first (docs/decisions/062-policy-files-merge.md): the user's own
(``$XDG_CONFIG_HOME/tfwrap/config.toml``, default ``~/.config/tfwrap/config.toml``), then every
``.tfwrap.toml`` from the repository root (the nearest directory with ``.git``, else ``/``)
down to the directory itself, then ``TFWRAP_CONFIG`` (a file). The nearest value wins per key,
and per finding id under ``[severity]``: a stack's file holding one setting keeps the
repository's others. ``TFWRAP_MODE``, ``TFWRAP_STALE_LOCKS``, ``TFWRAP_QUIET`` and the
``TFWRAP_*_SECONDS`` variables win over every file. ``tfwrap check --show-config`` says which
file gave each value.

``.tfwrap.toml``::

    mode = "enforce"                 # enforce | warn | off; TFWRAP_MODE wins over it
    min_terraform_version = "1.10.0"
    cache_ttl_seconds = 900
    heartbeat_seconds = 30           # supervised runs: renew the lock's Info this often
    lease_intervals = 3              # a heartbeat older than this many intervals is stale
    grace_seconds = 7                # after relaying a stop signal, wait this long, then kill
    stale_locks = "report"           # report | take-over; TFWRAP_STALE_LOCKS wins
    quiet = false                    # true: warnings and notes are not printed by the shim
    state_backup = false             # supervised apply copies its starting state (docs/state-recovery.md)
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
    from collections.abc import Mapping
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
        "quiet",
        "state_backup",
    }
)
USER_FILE = os.path.join("tfwrap", "config.toml")  # under $XDG_CONFIG_HOME (default ~/.config)
STALE_LOCKS = ("report", "take-over")
_SWITCHES = ("quiet", "state_backup")  # settings that are true or false
# Supervision settings: name -> (environment override, minimum). The grace default fits
# inside docker stop's 10 s and GitHub Actions' SIGINT-then-SIGTERM-7.5-s-later cancel.
_NUMBERS = {
    "heartbeat_seconds": ("TFWRAP_HEARTBEAT_SECONDS", 0.1),
    "lease_intervals": ("TFWRAP_LEASE_INTERVALS", 1.0),
    "grace_seconds": ("TFWRAP_GRACE_SECONDS", 0.0),
}
# An upper bound for every number above: 1e999 parses as inf and would only fail later, inside
# the heartbeat (OverflowError), turning supervision off. A week is far past any use.
_MAXIMUM = 7 * 24 * 3600.0
MIN_LEASE_SECONDS = 3.0  # see lease_floor


class Policy:
    """What tfwrap enforces, after the policy file and the environment are applied."""

    __slots__ = (
        "cache_ttl_seconds",
        "files",
        "grace_seconds",
        "heartbeat_seconds",
        "lease_intervals",
        "min_terraform_version",
        "mode",
        "origin",
        "quiet",
        "severity",
        "source",
        "stale_locks",
        "state_backup",
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
        self.quiet = False
        self.files: list[str] = []  # the files applied, lowest precedence first
        self.origin: dict[str, str] = {}  # setting ("severity.<id>" for severities) -> where it came from
        self.state_backup = False  # copy the state a supervised apply starts from

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


def policy_files(workdir: str, environ: Mapping[str, str] | None = None) -> list[str]:
    """The files that govern ``workdir``, lowest precedence first."""
    env = os.environ if environ is None else environ
    files = []
    home = env.get("XDG_CONFIG_HOME") or (os.path.join(env["HOME"], ".config") if env.get("HOME") else "")
    if home and os.path.isfile(os.path.join(home, USER_FILE)):
        files.append(os.path.join(home, USER_FILE))
    chain = []
    directory = os.path.abspath(workdir)
    while True:
        candidate = os.path.join(directory, POLICY_FILE)
        if os.path.lexists(candidate):
            chain.append(candidate)
        parent = os.path.dirname(directory)
        if parent == directory or os.path.lexists(os.path.join(directory, ".git")):
            break
        directory = parent
    files.extend(reversed(chain))
    explicit = env.get("TFWRAP_CONFIG", "")
    if explicit:
        if not os.path.isfile(explicit):
            raise PolicyError(
                f"TFWRAP_CONFIG={explicit} is not a file; point it at a .tfwrap.toml or unset it"
            )
        files.append(explicit)
    return files


def load(workdir: str, environ: dict[str, str] | None = None) -> Policy:
    """The policy for ``workdir``; PolicyError names the bad value and the fix."""
    env = os.environ if environ is None else environ
    policy = Policy()
    for path in policy_files(workdir, env):
        _apply_file(policy, path)
    if policy.files:
        policy.source = policy.files[-1]
    mode = env.get("TFWRAP_MODE", "")
    if mode:
        if mode not in MODES:
            raise PolicyError(f"TFWRAP_MODE={mode!r} is not one of enforce, warn, off; set one of those")
        policy.mode = mode
        policy.origin["mode"] = "TFWRAP_MODE"
    stale = env.get("TFWRAP_STALE_LOCKS", "")
    if stale:
        policy.stale_locks = _stale_locks("TFWRAP_STALE_LOCKS", stale)
        policy.origin["stale_locks"] = "TFWRAP_STALE_LOCKS"
    if env.get("TFWRAP_QUIET"):
        policy.quiet = env["TFWRAP_QUIET"] not in ("0", "false", "no")
        policy.origin["quiet"] = "TFWRAP_QUIET"
    for name, (variable, minimum) in _NUMBERS.items():
        if env.get(variable):
            setattr(policy, name, _number(variable, env[variable], minimum))
            policy.origin[name] = variable
    short = lease_too_short(policy.heartbeat_seconds, policy.lease_seconds)
    if short:
        raise PolicyError(
            f"{short} (heartbeat_seconds {policy.heartbeat_seconds:g} x lease_intervals "
            f"{policy.lease_intervals:g}, from TFWRAP_HEARTBEAT_SECONDS/TFWRAP_LEASE_INTERVALS or "
            f"{POLICY_FILE}): raise TFWRAP_LEASE_INTERVALS (or lease_intervals)"
        )
    return policy


def settings(policy: Policy) -> list[tuple[str, str, str]]:
    """Every setting as (name, value as TOML, where it came from): ``check --show-config``."""
    import json

    version = ".".join(map(str, policy.min_terraform_version))
    values: list[tuple[str, object]] = [
        ("mode", policy.mode),
        ("min_terraform_version", version),
        ("cache_ttl_seconds", policy.cache_ttl_seconds),
        ("heartbeat_seconds", policy.heartbeat_seconds),
        ("lease_intervals", policy.lease_intervals),
        ("grace_seconds", policy.grace_seconds),
        ("stale_locks", policy.stale_locks),
        ("quiet", policy.quiet),
        ("state_backup", policy.state_backup),
    ]
    values += [(f"severity.{k}", v) for k, v in sorted(policy.severity.items())]
    return [(name, json.dumps(value), policy.origin.get(name, "default")) for name, value in values]


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


def _apply_file(policy: Policy, path: str) -> None:  # noqa: PLR0912 - one branch per setting
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
    policy.files.append(path)
    for name in data:
        if name != "severity":
            policy.origin[name] = path
    for name in _SWITCHES:
        if name in data:
            if not isinstance(data[name], bool):
                raise PolicyError(f"{path}: {name} must be true or false")
            setattr(policy, name, data[name])
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
        policy.origin[f"severity.{check_id}"] = path
