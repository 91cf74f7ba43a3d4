"""The ``tfwrap state`` reports: lines for a person, documents for ``--json``. Only what
``summary`` keeps (serial, lineage, counts, addresses, names) is ever shown."""

from __future__ import annotations

from typing import Any

from tfwrap.lock import info as lockinfo
from tfwrap.state import versions
from tfwrap.state.attribution import Attributed
from tfwrap.state.history import History
from tfwrap.state.summary import Summary


def writer_text(entry: Attributed) -> str:
    if entry.version.deleted:
        return "-"
    if entry.writer is not None:
        return entry.writer.name()
    if entry.ambiguous:
        return "ambiguous: " + " or ".join(h.name() for h in entry.candidates)
    if entry.version.is_backup:
        return "state_backup copy (the state an apply started from)"
    return "unknown"


def _row(entry: Attributed, found: Summary | None) -> dict[str, Any]:
    v = entry.version
    shown: dict[str, Any] = {
        "version_id": versions.ident(v),
        "written": lockinfo.stamp(v.written),
        "current": v.latest and not v.is_backup,
        "delete_marker": v.deleted,
        "backup": v.is_backup,
        "size": v.size,
        "serial": None,
        "lineage": None,
        "terraform_version": None,
        "resources": None,
    }
    if found is not None and found.valid:
        shown.update(
            serial=found.serial,
            lineage=found.lineage,
            terraform_version=found.terraform_version,
            resources=found.resource_count,
        )
    shown["writer"] = entry.writer.document() if entry.writer else None
    shown["candidates"] = [h.document() for h in entry.candidates] if entry.ambiguous else []
    return shown


def history_document(history: History, shown: list[Attributed]) -> dict[str, Any]:
    return {
        "bucket": history.backend.bucket,
        "state_key": history.backend.state_key,
        "versioning": history.versioned,
        "versions_total": len(history.attributed),
        "versions": [_row(e, history.summaries.get(versions.ident(e.version))) for e in shown],
        "requests": history.requests,
    }


def history_lines(history: History, shown: list[Attributed]) -> list[str]:
    backend = history.backend
    kind = "versions" if history.versioned else "current state and state_backup copies"
    out = [
        f"state: s3://{backend.bucket}/{backend.state_key} (workspace {backend.workspace}), "
        f"{len(shown)} of {len(history.attributed)} {kind}, newest first",
    ]
    for entry in shown:
        v = entry.version
        found = history.summaries.get(versions.ident(v))
        mark = "*" if v.latest and not v.is_backup else " "
        if v.deleted:
            out.append(f"{mark} {versions.ident(v)}  {lockinfo.stamp(v.written)}  (delete marker)")
            continue
        if found is None or not found.valid:
            facts = f"{v.size} B, not a Terraform state"
        else:
            facts = (
                f"{v.size} B, serial {found.serial}, lineage {found.lineage}, "
                f"terraform {found.terraform_version or '?'}, {found.resource_count} resources"
            )
        out.append(f"{mark} {versions.ident(v)}  {lockinfo.stamp(v.written)}  {facts}")
        out.append(f"    written by {writer_text(entry)}")
    out.append("(* the current version)")
    return out
