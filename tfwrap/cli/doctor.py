"""``tfwrap doctor``: the report of tfwrap/doctor.py, for people or (``--json``) machines."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from tfwrap import exitcodes
from tfwrap.errors import TfwrapError


@click.command()
@click.option("-chdir", "--chdir", "chdir", default=".", help="Directory to diagnose (as terraform -chdir).")
@click.option("--probe", is_flag=True, help="Run the conditional-write probe against the store now.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
def doctor(chdir: str, probe: bool, as_json: bool) -> None:
    """Why does my setup behave like this: binary chain, backend, identity, cache, probe.

    Exit 0, or 80 when the probe found an error (the store does not lock).
    """
    from tfwrap import doctor as diagnosis
    from tfwrap.findings import policy

    if not Path(chdir).is_dir():
        raise TfwrapError(f"{chdir} is not a directory; pass -chdir DIR", exitcodes.USAGE)
    report = diagnosis.gather(chdir, policy.load(chdir), probe=probe)
    if as_json:
        from tfwrap.schema import versioned

        sys.stdout.write(json.dumps(versioned(report), indent=2) + "\n")
    else:
        for line in text(report):
            click.echo(line)
    if report["errors"]:
        raise click.exceptions.Exit(exitcodes.BLOCKED)


def text(report: dict[str, Any]) -> list[str]:
    """The report as lines for a terminal."""
    return [*_chain(report), *_backend(report), *_identity(report), *_cache(report), *_probe(report)]


def _line(f: dict[str, Any]) -> str:
    return f"  {f['severity']} [{f['id']}] {f['message']}" + (f" — fix: {f['fix']}" if f["fix"] else "")


def _chain(report: dict[str, Any]) -> list[str]:
    lines = ["terraform chain:"]
    labels = {"tfwrap-shim": "tfwrap shim", "version-manager": "version manager", "terraform": "terraform"}
    for link in report["chain"]:
        what = f"{link['name']} " if link["name"] else ""
        where = link["path"] or "?"
        version = f" {report['terraform']['version']}" if link["kind"] == "terraform" else ""
        lines.append(f"  {labels[link['kind']]:<16} {what}{where}{version}  ({link['note']})")
    if report["terraform"]["error"]:
        lines.append(f"  problem: {report['terraform']['error']}")
    return lines


def _backend(report: dict[str, Any]) -> list[str]:
    backend = report["backend"]
    if backend is None:
        return ["backend:", "  none (local state): nothing to check"]
    lines = ["backend:"]
    if backend["type"] == "s3":
        lines.append(
            f"  s3://{backend['bucket']}/{backend['state_key']} (workspace {backend['workspace']}, "
            f"lock {backend['lock_key']})"
        )
        kind = "AWS" if backend["aws_endpoint"] else "custom endpoint"
        where = backend["s3_endpoint"] or "AWS"
        lines.append(f"  endpoint: {where} [{kind}] from {backend['endpoint_source']}")
    else:
        lines.append(f"  {backend['type']}: not S3, passed through untouched")
    lines.extend(f"  settings from {s['where']}: {', '.join(s['settings'])}" for s in backend["sources"])
    return lines


def _identity(report: dict[str, Any]) -> list[str]:
    identity = report["identity"]
    if identity is None:
        return []
    caller = identity["arn"] or "caller unknown"
    return [
        "identity:",
        f"  access key {identity['access_key'] or '-'} (from {identity['source'] or '-'}), "
        f"profile {identity['profile'] or '-'}, role {identity['role_arn'] or '-'}",
        f"  {caller}" + (f": {identity['error']}" if identity["error"] else ""),
    ]


def _cache(report: dict[str, Any]) -> list[str]:
    lines = [f"cache ({report['cache']['directory']}):"]
    for name, label in (("verdict", "verdict"), ("bucket", "bucket facts"), ("store", "store probe")):
        entry = report["cache"].get(name)
        if entry is None:
            lines.append(f"  {label}: none")
            continue
        stale = "" if entry["fresh"] else ", stale"
        lines.append(f"  {label}: {entry['age_seconds']:.0f} s old{stale}: {_summary(name, entry)}")
    return lines


def _probe(report: dict[str, Any]) -> list[str]:
    facts = report["probe"]
    if facts is None:
        return []
    lines = [
        f"probe (now, {facts['requests']} requests, {facts['seconds'] * 1000:.0f} ms):",
        f"  {_probe_summary(facts)}",
    ]
    lines.extend(_line(f) for f in report["findings"])
    if not report["findings"]:
        lines.append("  the store honours conditional writes as S3 native locking needs")
    return lines


def _summary(name: str, entry: dict[str, Any]) -> str:
    if name == "verdict":
        return ", ".join(entry["findings"]) or "no findings"
    if name == "store":
        return _probe_summary(entry["facts"])
    return ", ".join(sorted(entry["facts"]))


def _probe_summary(facts: dict[str, Any]) -> str:
    if facts.get("denied"):
        return f"denied ({facts['denied']['action']})"
    parts = [
        f"{label} {facts[key]}"
        for key, label in (
            ("create_only", "create-only PUT"),
            ("if_match", "If-Match"),
            ("concurrent", "concurrent creates"),
            ("checksum", "checksums"),
        )
        if key in facts
    ]
    if facts.get("error"):
        parts.append(f"error: {facts['error']}")
    return ", ".join(parts)
