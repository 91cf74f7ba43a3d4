"""Showing a listing of locks (``tfwrap lock ls``): a table for people, a document for programs.

Each row's document is the ``lock status --json`` document of that state (``report.py``)
plus ``stack`` and ``age_seconds``: one format for one lock, however it was found.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from tfwrap.durations import human
from tfwrap.lock import report
from tfwrap.lock.listing import Listing, Row

HEADINGS = ("VERDICT", "AGE", "LOCK", "HOLDER", "OPERATION", "DYNAMODB", "CI RUN")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def summary(listing: Listing) -> str:
    """``4 locks in 1 bucket: 1 alive, 1 stale, 2 unknown``."""
    counts = Counter(r.verdict for r in listing.rows)
    parts = ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))
    head = f"{_plural(len(listing.rows), 'lock')} in {_plural(listing.buckets, 'bucket')}"
    return f"{head}: {parts}" if parts else f"{head}: none held"


def _cells(row: Row) -> tuple[str, ...]:
    v = row.found.verdict
    holder = v.holder if v else None
    who = (v.who if v else "") or "?"
    if holder is not None and holder.host and not who.endswith(f"@{holder.host}"):
        who = f"{who} on {holder.host}"
    age = row.age
    item = row.found.dynamo.table if row.found.item is not None and row.found.dynamo else "-"
    operation = (v.operation if v else "").removeprefix("OperationType") or "-"
    return (
        row.verdict,
        human(age) if age is not None else "?",
        f"s3://{row.bucket}/{row.state_key}.tflock",
        who,
        operation,
        item,
        (holder.ci if holder else "") or "-",
    )


def lines(listing: Listing) -> list[str]:
    """The table, then the summary line."""
    rows = [HEADINGS, *(_cells(r) for r in listing.rows)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADINGS))]
    out = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return [*(out if listing.rows else []), summary(listing)]


def row_document(row: Row) -> dict[str, Any]:
    return {
        **report.document(row.backend, row.found),
        "stack": str(row.stack) if row.stack else None,
        "age_seconds": row.age,
    }


def document(listing: Listing) -> dict[str, Any]:
    """The ``lock ls --json`` document (fields listed in ``cli/lock.py``)."""
    return {
        "locks": [row_document(r) for r in listing.rows],
        "problems": [{"where": p.where, "detail": p.detail} for p in listing.problems],
        "buckets": listing.buckets,
        "summary": summary(listing),
    }
