"""The audit report as text, JSON, SARIF 2.1.0 or GitHub workflow commands.

Paths are shown relative to the current directory when they are under it (SARIF and GitHub
resolve them against the repository root, where CI runs the audit).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from tfwrap import __version__
from tfwrap.audit.rules import Located
from tfwrap.audit.run import Report, unchecked
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
    last_fix = ""
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
        # A file several states share (a Terragrunt parent): say which state the line is about.
        shared = not relative(one.file).startswith(relative(one.stack.path).rstrip("/") + "/")
        about = f"[{relative(one.stack.path)}] " if shared and relative(one.stack.path) != "." else ""
        out.append(f"  {relative(one.file)}:{line}:{column}  {about}{f.message}")
        if one.stack.kind == "terragrunt" and f.fix and f.fix != last_fix:
            out.append(f"    fix: {f.fix}")  # not the group's: there is no tfwrap migrate for it
        last_fix = f.fix if one.stack.kind == "terragrunt" else ""
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
            "unchecked": len(report.unchecked_stacks),
        },
        "stacks": [
            {
                "path": relative(s.path),
                "kind": s.kind,
                "file": relative(s.block[0]),
                "line": s.block[1],
                "backend_file": relative(s.backend_file) if s.backend_file else None,
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
                "backend_file": relative(one.stack.backend_file) if one.stack.backend_file else None,
                "file": relative(one.file),
                "line": one.where[1],
                "column": one.where[2],
                "unchecked": unchecked(one),
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
        result: dict[str, Any] = {
            "ruleId": f.id,
            "ruleIndex": index[f.id],
            "level": _level(f.severity),
            "message": {"text": message},
            "locations": [_location(one.where)],
            "partialFingerprints": {"tfwrapFinding/v1": fingerprint(one)},
        }
        related = [w for w in (one.stack.block, _backend_file_place(one)) if w and w != one.where]
        if related:
            result["relatedLocations"] = [{"id": i, **_location(w)} for i, w in enumerate(related)]
        results.append(result)
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


def _location(where: tuple[Path, int, int]) -> dict[str, Any]:
    return {
        "physicalLocation": {
            "artifactLocation": {"uri": _uri(where[0])},
            "region": {"startLine": where[1], "startColumn": where[2]},
        }
    }


def _backend_file_place(one: Located) -> tuple[Path, int, int] | None:
    return (one.stack.backend_file, 1, 1) if one.stack.backend_file else None


def fingerprint(one: Located) -> str:
    """A finding's identity across commits: its id, its state (stack and backend file) and the
    setting's file, never a line number (docs/decisions/052-audit-outcomes.md)."""
    stack = one.stack
    parts = [one.finding.id, relative(stack.path), relative(stack.backend_file) if stack.backend_file else ""]
    parts.append(relative(one.file))
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def junit(report: Report) -> str:
    """JUnit XML: one test case per state; an error finding fails it, a stack that could not be
    checked is skipped, warnings and notes are its output (GitLab, Jenkins show the report)."""
    from xml.etree import ElementTree as ET

    by_stack: dict[int, list[Located]] = {}
    for one in _sorted(report):
        by_stack.setdefault(id(one.stack), []).append(one)
    suite = ET.Element("testsuite", name="tfwrap audit", tests=str(len(report.stacks)))
    failures = skipped = 0
    for stack in report.stacks:
        name = relative(stack.path) + (f" ({relative(stack.backend_file)})" if stack.backend_file else "")
        case = ET.SubElement(suite, "testcase", classname=f"tfwrap.audit.{stack.kind}", name=name)
        case.set("file", relative(stack.block[0]))
        mine = by_stack.get(id(stack), [])
        errors = [o for o in mine if o.finding.severity == ERROR and not unchecked(o)]
        if errors:
            failures += 1
            failure = ET.SubElement(
                case, "failure", type=errors[0].finding.id, message=errors[0].finding.message
            )
            failure.text = "\n".join(_junit_line(o) for o in errors)
        elif any(unchecked(o) for o in mine):
            skipped += 1
            reason = next(o for o in mine if unchecked(o)).finding
            ET.SubElement(case, "skipped", message=f"not checked: [{reason.id}] {reason.message}")
        rest = [o for o in mine if o not in errors]
        if rest:
            ET.SubElement(case, "system-out").text = "\n".join(_junit_line(o) for o in rest)
    suite.set("failures", str(failures))
    suite.set("skipped", str(skipped))
    suite.set("errors", "0")
    suites = ET.Element("testsuites", name="tfwrap audit")
    suites.append(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def _junit_line(one: Located) -> str:
    f = one.finding
    fix = f" (fix: {f.fix})" if f.fix else ""
    return f"{f.severity} [{f.id}] {relative(one.file)}:{one.where[1]}:{one.where[2]} {f.message}{fix}"


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
    if fmt == "junit":
        return junit(report)
    return text(report)
