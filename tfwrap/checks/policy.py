"""The policy: ``TFWRAP_MODE`` and the nearest ``.tfwrap.toml`` (found walking up).

``.tfwrap.toml``::

    mode = "enforce"                 # enforce | warn | off; TFWRAP_MODE wins over it
    min_terraform_version = "1.10.0"
    cache_ttl_seconds = 900
    [severity]                       # any finding id -> error | warning | info | off
    bucket-object-lock = "warning"
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tfwrap.checks.finding import CATALOG, Finding, Severity
from tfwrap.errors import PolicyError

MODES = ("enforce", "warn", "off")
POLICY_FILE = ".tfwrap.toml"
_KEYS = frozenset({"mode", "min_terraform_version", "cache_ttl_seconds", "severity"})


@dataclass(frozen=True)
class Policy:
    """What tfwrap enforces, after the environment and the policy file are applied."""

    mode: str = "enforce"
    min_terraform_version: tuple[int, int, int] = (1, 10, 0)
    cache_ttl_seconds: int = 900
    severity: dict[str, Severity] = field(default_factory=dict)
    source: str = "defaults"

    def apply(self, finding: Finding) -> Finding:
        """The finding at the severity this policy gives it."""
        wanted = self.severity.get(finding.id)
        return replace(finding, severity=wanted) if wanted else finding


def parse_version(text: str) -> tuple[int, int, int]:
    """``"1.10.0"`` (or ``"v1.10"``, ``"1.11.0-beta1"``) -> ``(1, 10, 0)``; ValueError otherwise."""
    core = text.strip().lstrip("v").split("-")[0].split("+")[0]
    parts = core.split(".")
    if not 1 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
        raise ValueError(text)
    nums = [int(p) for p in parts] + [0] * (3 - len(parts))
    return nums[0], nums[1], nums[2]


def find_policy_file(start: Path) -> Path | None:
    for directory in (start, *start.parents):
        candidate = directory / POLICY_FILE
        if candidate.is_file() or candidate.is_symlink():
            return candidate
    return None


def load(workdir: Path, environ: dict[str, str] | None = None) -> Policy:
    """The policy for ``workdir``; PolicyError names the bad value and the fix."""
    env = os.environ if environ is None else environ
    policy = Policy()
    path = find_policy_file(workdir)
    if path is not None:
        policy = _from_file(path)
    mode = env.get("TFWRAP_MODE")
    if mode is not None and mode != "":
        if mode not in MODES:
            raise PolicyError(f"TFWRAP_MODE={mode!r} is not one of enforce, warn, off; set one of those")
        policy = replace(policy, mode=mode)
    return policy


def _from_file(path: Path) -> Policy:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text())
    except OSError as exc:
        raise PolicyError(f"cannot read {path}: {exc.strerror}; fix its permissions or remove it") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{path} is not valid TOML ({exc}); fix it or remove it") from exc
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise PolicyError(f"{path}: unknown setting {unknown[0]!r}; known: {', '.join(sorted(_KEYS))}")
    policy = Policy(source=str(path))
    if "mode" in data:
        if data["mode"] not in MODES:
            raise PolicyError(f"{path}: mode = {data['mode']!r} is not one of enforce, warn, off")
        policy = replace(policy, mode=data["mode"])
    if "min_terraform_version" in data:
        try:
            policy = replace(policy, min_terraform_version=parse_version(str(data["min_terraform_version"])))
        except ValueError:
            raise PolicyError(
                f"{path}: min_terraform_version = {data['min_terraform_version']!r} is not a version like \"1.11.0\""
            ) from None
    if "cache_ttl_seconds" in data:
        ttl = data["cache_ttl_seconds"]
        if not isinstance(ttl, int) or isinstance(ttl, bool) or ttl < 0:
            raise PolicyError(f"{path}: cache_ttl_seconds must be a whole number of seconds >= 0")
        policy = replace(policy, cache_ttl_seconds=ttl)
    severities = data.get("severity", {})
    if not isinstance(severities, dict):
        raise PolicyError(f"{path}: [severity] must be a table of finding id = \"error|warning|info|off\"")
    chosen: dict[str, Severity] = {}
    for check_id, value in severities.items():
        if check_id not in CATALOG:
            raise PolicyError(f"{path}: unknown finding id {check_id!r} in [severity]; see `tfwrap check --list`")
        try:
            chosen[check_id] = Severity(value)
        except ValueError:
            raise PolicyError(
                f"{path}: severity of {check_id} is {value!r}; use error, warning, info or off"
            ) from None
    return replace(policy, severity=chosen)
