"""Terraform version constraints: the oldest Terraform a set of ``required_version`` admits.

Terraform requires every constraint of the root module at once (``>= 1.5, < 2.0`` in one
file and ``~> 1.11`` in another means both). Operators: ``=``, ``!=``, ``>``, ``>=``, ``<``,
``<=``, ``~>`` (``~> 1.2`` is ``>= 1.2, < 2.0``; ``~> 1.2.3`` is ``>= 1.2.3, < 1.3.0``).
"""

from __future__ import annotations

import re

Version = tuple[int, int, int]
_PART = re.compile(r"^\s*(=|!=|>=|<=|>|<|~>)?\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-[\w.]+)?\s*$")


def lowest(constraints: list[str]) -> Version | None:
    """The oldest version all ``constraints`` admit (``(0, 0, 0)`` for none at all).

    ValueError when a constraint cannot be read; None when they admit no version at all.
    """
    low: tuple[Version, bool] = ((0, 0, 0), True)  # (version, inclusive)
    highs: list[tuple[Version, bool]] = []
    for constraint in constraints:
        for part in constraint.split(","):
            m = _PART.match(part)
            if m is None:
                raise ValueError(constraint)
            op = m.group(1) or "="
            given = [int(g) for g in m.groups()[1:] if g is not None]
            major, minor, patch = [*given, 0, 0][:3]
            version: Version = (major, minor, patch)
            if op in ("=", ">=", "~>", ">"):
                candidate = (version, op != ">")
                if candidate[0] > low[0] or (candidate[0] == low[0] and not candidate[1]):
                    low = candidate
            if op in ("=", "<="):
                highs.append((version, True))
            elif op == "<":
                highs.append((version, False))
            elif op == "~>":
                highs.append((_pessimistic_limit(given), False))
    version, _ = low
    for high, inclusive in highs:
        if version > high or (version == high and not (inclusive and low[1])):
            return None
    return version


def _pessimistic_limit(given: list[int]) -> Version:
    if len(given) >= 3:
        return given[0], given[1] + 1, 0
    return given[0] + 1, 0, 0


def admits_below(constraints: list[str], limit: Version) -> bool | None:
    """Whether some version older than ``limit`` satisfies them all (None: unreadable)."""
    try:
        oldest = lowest(constraints)
    except ValueError:
        return None
    return oldest is not None and oldest < limit
