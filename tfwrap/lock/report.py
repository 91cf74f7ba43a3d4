"""Showing a lock: the ``tfwrap lock status`` report (text and JSON) and the one verdict line
after Terraform's "Error acquiring the state lock" box."""

from __future__ import annotations

from typing import Any

from tfwrap.backend.config import BackendConfig
from tfwrap.lock import info, verdict
from tfwrap.lock.current import CurrentLock

TERRAFORM_FIELDS = ("ID", "Operation", "Info", "Who", "Version", "Created", "Path")


def _terraform_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """Terraform's lock fields as read, each cut to ``info.MAX_INFO`` characters: a lock may say
    anything, and a report must not repeat a megabyte of it."""
    return {
        name: info.bounded(value, info.MAX_INFO) if isinstance(value, str) else value
        for name in TERRAFORM_FIELDS
        for value in (fields.get(name, ""),)
    }


def _holder_document(holder: info.Holder | None) -> dict[str, Any] | None:
    if holder is None:
        return None
    return {
        "host": holder.host,
        "terraform_pid": holder.terraform_pid,
        "tfwrap_pid": holder.tfwrap_pid,
        "ci": holder.ci or None,
        "started": info.stamp(holder.started) if holder.started else None,
        "boot_id": holder.boot_id or None,
        "pid_namespace": holder.pidns or None,
        "took_over": holder.took_over or None,
    }


def document(backend: BackendConfig, found: CurrentLock) -> dict[str, Any]:
    """The ``lock status --json`` document (its fields are listed in cli/lock.py)."""
    v = found.verdict
    holder = v.holder if v else None
    s3 = dict(_terraform_fields(found.s3.fields), etag=found.s3.etag) if found.s3 else None
    if s3 is not None and found.s3 is not None:
        s3["last_modified"] = info.stamp(found.s3.written) if found.s3.written else None
    item = None
    if found.item is not None and found.dynamo is not None:
        item = {"table": found.dynamo.table, "item": found.dynamo.lock_id, **_terraform_fields(found.item)}
    return {
        "bucket": backend.bucket,
        "state_key": backend.state_key,
        "lock_key": backend.lock_key,
        "dynamodb_table": backend.dynamodb_table or None,
        "locked": found.locked,
        "s3": s3,
        "dynamodb": item,
        "verdict": v.verdict if v else None,
        "reason": v.reason if v else None,
        "server_time": info.stamp(found.server_time) if found.server_time else None,
        "heartbeat": info.stamp(holder.heartbeat) if holder else None,
        "heartbeat_age_seconds": v.heartbeat_age if v else None,
        "lease_seconds": holder.lease_seconds if holder else None,
        "holder": _holder_document(holder),
    }


def _field_lines(fields: dict[str, Any]) -> list[str]:
    from tfwrap.timestamps import to_second

    shown = {**fields, "Created": to_second(str(fields.get("Created") or ""))}  # one format
    return [
        f"  {name + ':':<11} {shown.get(name) or '-'}"
        for name in ("ID", "Who", "Operation", "Created", "Path")
    ]


def lines(backend: BackendConfig, found: CurrentLock) -> list[str]:
    """The human ``lock status`` report."""
    v = found.verdict
    out = [
        f"state:     s3://{backend.bucket}/{backend.state_key} (workspace {backend.workspace})",
        f"lock file: {found.where}",
    ]
    if found.dynamo is not None:
        out.append(f"dynamodb:  item LockID={found.dynamo.lock_id} in table {found.dynamo.table}")
    if v is None:
        out.append("no lock held")
        return out
    if found.s3 is not None:
        out.append("the .tflock object is held:")
        out.extend(_field_lines(found.s3.fields))
    if found.item is not None:
        if found.s3 is not None and found.item.get("ID") == found.s3.id:
            out.append(f"the DynamoDB item is held by the same ID ({found.s3.id})")
        else:
            out.append("the DynamoDB item is held:")
            out.extend(_field_lines(found.item))
    holder = v.holder
    if holder is None:
        out.append("heartbeat: none (the holder is not a tfwrap run)")
    else:
        age = f" ({v.heartbeat_age} s ago by the store's clock)" if v.heartbeat_age is not None else ""
        out.extend(
            [
                f"heartbeat: {info.stamp(holder.heartbeat)}{age}",
                f"lease:     {holder.lease_seconds} s",
                f"host:      {holder.host or '-'} (terraform pid {holder.terraform_pid}, "
                f"tfwrap pid {holder.tfwrap_pid})",
                f"started:   {info.stamp(holder.started) if holder.started else '-'}",
                f"CI:        {holder.ci or '-'}",
            ]
        )
        if holder.took_over:
            out.append(f"took over: {holder.took_over} (from {holder.took_over_host or '?'})")
    out.append(f"verdict:   {v.verdict}: {v.reason}")
    return out


bounded = info.bounded  # every lock field echoed on one line goes through it


def verdict_line(found: CurrentLock, chdir: str = "") -> str:
    """One line (without ``tfwrap: ``) for a run that could not take the lock."""
    v = found.verdict
    if v is None:
        return "the lock is no longer held: run the command again"
    where = f" -chdir={chdir}" if chdir and chdir != "." else ""
    if v.verdict == verdict.ALIVE:
        holder = v.holder
        run = f", run {bounded(holder.ci)}" if holder is not None and holder.ci else ""
        on = f" on {bounded(holder.host)}" if holder is not None and holder.host else ""
        age = f", last heartbeat {v.heartbeat_age} s ago" if v.heartbeat_age is not None else ""
        return (
            f"lock alive: held by {bounded(v.who) or '?'}{on} (ID {bounded(v.lock_id)}){run}{age}: "
            f"{v.reason}; "
            "wait for it, or raise -lock-timeout"
        )
    if v.verdict == verdict.STALE:
        return (
            f"lock stale: held by {v.holder_line()}: {v.reason}; "
            f"`tfwrap lock clear --stale{where}` removes exactly this lock "
            '(or set stale_locks = "take-over" in .tfwrap.toml)'
        )
    if v.verdict == verdict.UNREADABLE:
        return (
            f"lock unreadable: {found.where} is not a lock any tool can read (garbled, empty or no "
            f"ID); if no run holds it, `tfwrap lock clear --unreadable{where}` removes exactly this object"
        )
    return (
        f"lock unknown: held by {v.holder_line()}, a run not under tfwrap: only a human can tell "
        f"whether it is still running; if it is gone, `tfwrap lock clear --id {v.lock_id}{where}`"
    )
