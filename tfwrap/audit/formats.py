"""The audit report as text, JSON, SARIF 2.1.0 or GitHub workflow commands.

Paths are shown relative to the current directory when they are under it (SARIF and GitHub
resolve them against the repository root, where CI runs the audit).
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

from tfwrap import __version__
from tfwrap.audit.rules import Located
from tfwrap.audit.run import Report
from tfwrap.findings.finding import CATALOG, ERROR, INFO, SEVERITIES, WARNING

SCHEMA_VERSION = 1
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
# One line per finding id: what it is (SARIF rule text) and what fixes it in general.
RULES: dict[str, tuple[str, str]] = {
    "terraform-version": ("Terraform older than the minimum", "Install Terraform 1.11 or newer."),
    "terraform-version-experimental": ("use_lockfile is experimental", "Upgrade to Terraform 1.11 or newer."),
    "terraform-version-retention-bug": (
        "Terraform 1.10.0 cannot lock with a default retention",
        "Upgrade to Terraform 1.11 or newer.",
    ),
    "terraform-version-unknown": ("Terraform version unknown", "Point tfwrap at a real Terraform binary."),
    "bucket-versioning": ("State bucket without versioning", "Enable versioning on the state bucket."),
    "bucket-object-lock": (
        "State bucket without Object Lock (team standard)",
        "Enable Object Lock on the bucket (after versioning), or relax the standard in .tfwrap.toml.",
    ),
    "object-lock-compliance-retention": (
        "COMPLIANCE default retention on the state bucket",
        "Use GOVERNANCE mode or no default retention for the state bucket.",
    ),
    "locking-dual": (
        "Dual locking (use_lockfile and dynamodb_table)",
        "Once no pipeline runs the old configuration, remove dynamodb_table and run "
        "`terraform init -reconfigure` (`tfwrap migrate finalize`).",
    ),
    "locking-dynamodb-only": (
        "DynamoDB-only state locking (deprecated)",
        "Add use_lockfile = true beside dynamodb_table (`tfwrap migrate`), then remove dynamodb_table.",
    ),
    "locking-none": ("No state locking", "Add use_lockfile = true to the backend block."),
    "locking-disagree": (
        "Files and initialised backend disagree on locking",
        "Run `terraform init -reconfigure`.",
    ),
    "bucket-encryption": ("State bucket without default encryption", "Enable default SSE on the bucket."),
    "public-access-block": ("State bucket public access block off", "Turn on all four public access blocks."),
    "access-denied": ("A check was denied", "Grant the named read-only action to the auditing identity."),
    "no-credentials": ("No AWS credentials", "Configure AWS credentials for the audit."),
    "bad-credentials": ("AWS credentials refused", "Refresh the AWS credentials."),
    "bucket-missing": ("State bucket does not exist", "Create the bucket or fix `bucket`."),
    "endpoint-unreachable": ("S3 endpoint unreachable", "Check the network and the backend's endpoints."),
    "check-failed": ("A bucket check failed", "Check that the named action works for the bucket."),
    "required-version-pre-lockfile": (
        "required_version admits Terraform < 1.10",
        'Set required_version = ">= 1.11" in the terraform block.',
    ),
    "required-version-experimental": (
        "required_version admits Terraform 1.10",
        'Set required_version = ">= 1.11" in the terraform block.',
    ),
    "encrypt-missing": ("Backend without encrypt = true", "Set encrypt = true in the backend block."),
    "skip-s3-checksum-object-lock": (
        "skip_s3_checksum on an Object Lock bucket",
        "Remove skip_s3_checksum: Object Lock buckets refuse writes without a checksum.",
    ),
    "backend-dynamic-value": (
        "Backend value built by an expression",
        "Write a literal value where tfwrap should check it.",
    ),
    "backend-unreadable": ("Backend configuration unreadable", "Fix the file (`terraform validate`)."),
}
_ORDER = {s: i for i, s in enumerate(SEVERITIES)}


def relative(path: Path) -> str:
    """``path`` relative to the current directory when under it, else absolute."""
    return _relative(str(path))


@functools.cache
def _relative(path: str) -> str:
    absolute = os.path.abspath(path)
    here = os.getcwd()
    if absolute == here:
        return "."
    if absolute.startswith(here.rstrip(os.sep) + os.sep):
        return absolute[len(here.rstrip(os.sep)) + 1 :]
    return absolute


def _sorted(report: Report) -> list[Located]:
    return sorted(
        report.findings,
        key=lambda f: (_ORDER[f.finding.severity], f.finding.id, relative(f.file), f.where[1]),
    )


def text(report: Report) -> str:
    """Grouped by finding, one line per stack, then the summary."""
    out: list[str] = []
    current = None
    for one in _sorted(report):
        f = one.finding
        if (f.severity, f.id) != current:
            current = (f.severity, f.id)
            members = sum(1 for x in report.findings if (x.finding.severity, x.finding.id) == current)
            title, help_text = RULES.get(f.id, (f.id, ""))
            out.append(f"{f.severity} [{f.id}] {title} ({members} stack{'s' if members != 1 else ''})")
            if help_text:
                out.append(f"  fix: {help_text}")
        _, line, column = one.where
        out.append(f"  {relative(one.file)}:{line}:{column}  {f.message}")
    out.append(report.summary())
    return "\n".join(out) + "\n"


def to_json(report: Report) -> dict[str, Any]:
    """The stable document described in the README ("Audit a repository")."""
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "tfwrap", "version": __version__},
        "offline": report.offline,
        "summary": {
            "stacks": len(report.stacks),
            "buckets": report.buckets,
            "errors": report.count(ERROR),
            "warnings": report.count(WARNING),
            "notes": report.count(INFO),
        },
        "stacks": [
            {
                "path": relative(s.path),
                "kind": s.kind,
                "file": relative(s.block[0]),
                "line": s.block[1],
                "bucket": _plain(s.backend.settings.get("bucket")),
                "key": _plain(s.backend.settings.get("key")),
                "region": _plain(s.backend.settings.get("region")),
                "s3_endpoint": _plain(s.backend.s3_endpoint) if not s.error else None,
                "policy_file": relative(Path(p)) if (p := report.policy_files.get(s.path)) else None,
            }
            for s in report.stacks
        ],
        "findings": [
            {
                "id": one.finding.id,
                "severity": one.finding.severity,
                "message": one.finding.message,
                "fix": one.finding.fix,
                "stack": relative(one.stack.path),
                "file": relative(one.file),
                "line": one.where[1],
                "column": one.where[2],
            }
            for one in _sorted(report)
        ],
    }


def _plain(value: Any) -> Any:
    return None if value is None else str(value) if isinstance(value, str) else value


def sarif(report: Report) -> dict[str, Any]:
    """SARIF 2.1.0: one rule per finding id (its fix as help), results with file/line/column."""
    ids = list(CATALOG) + sorted({f.finding.id for f in report.findings} - set(CATALOG))
    index = {finding_id: i for i, finding_id in enumerate(ids)}
    rules = []
    for finding_id in ids:
        title, help_text = RULES.get(finding_id, (finding_id, ""))
        rules.append(
            {
                "id": finding_id,
                "name": "".join(word.capitalize() for word in finding_id.split("-")),
                "shortDescription": {"text": title},
                "help": {"text": help_text or title},
                "defaultConfiguration": {"level": _level(CATALOG.get(finding_id, WARNING))},
            }
        )
    results = []
    for one in _sorted(report):
        f = one.finding
        message = f.message + (f" — fix: {f.fix}" if f.fix else "")
        results.append(
            {
                "ruleId": f.id,
                "ruleIndex": index[f.id],
                "level": _level(f.severity),
                "message": {"text": message},
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": {"uri": _uri(one.file)},
                            "region": {"startLine": one.where[1], "startColumn": one.where[2]},
                        }
                    }
                ],
            }
        )
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": "tfwrap", "version": __version__, "rules": rules}},
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }


def _uri(path: Path) -> str:
    shown = relative(path)
    return Path(shown).as_uri() if os.path.isabs(shown) else shown.replace(os.sep, "/")


def _level(severity: str) -> str:
    return {ERROR: "error", WARNING: "warning"}.get(severity, "note")


def github(report: Report) -> str:
    """Workflow commands: each finding becomes an annotation on its line in a pull request."""
    out = []
    for one in _sorted(report):
        f = one.finding
        command = {ERROR: "error", WARNING: "warning"}.get(f.severity, "notice")
        props = {
            "file": relative(one.file),
            "line": str(one.where[1]),
            "col": str(one.where[2]),
            "title": f"tfwrap [{f.id}]",
        }
        shown = ",".join(f"{k}={_escape(v, prop=True)}" for k, v in props.items())
        body = f.message + (f" — fix: {f.fix}" if f.fix else "")
        out.append(f"::{command} {shown}::{_escape(body)}")
    out.append(report.summary())
    return "\n".join(out) + "\n"


def _escape(value: str, *, prop: bool = False) -> str:
    value = value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return value.replace(":", "%3A").replace(",", "%2C") if prop else value


def render(report: Report, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(to_json(report), indent=2) + "\n"
    if fmt == "sarif":
        return json.dumps(sarif(report), indent=2) + "\n"
    if fmt == "github":
        return github(report)
    return text(report)
