"""The audit's findings for one stack, each pointing at the file, line and column that cause it.

The locking and bucket findings are the guard's own (``checks/locking.py``,
``checks/bucket.py``); the audit adds what the files alone can say: the ``required_version``
constraint, ``encrypt``, ``skip_s3_checksum`` on an Object Lock bucket, and values built by
expressions, which are shown as written and never guessed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tfwrap.audit import constraint
from tfwrap.audit.discover import Stack, Where
from tfwrap.backend.config import to_bool
from tfwrap.backend.scan import Expression
from tfwrap.checks import bucket, locking
from tfwrap.findings.finding import Finding, make

LOCKFILE, GA = (1, 10, 0), (1, 11, 0)
# Which setting a guard finding is about: the place the audit points at.
_SETTING = {
    "locking-dual": "dynamodb_table",
    "locking-dynamodb-only": "dynamodb_table",
    "locking-none": None,
    "bucket-versioning": "bucket",
    "bucket-object-lock": "bucket",
    "object-lock-compliance-retention": "bucket",
    "bucket-encryption": "bucket",
    "public-access-block": "bucket",
    "access-denied": "bucket",
    "bucket-missing": "bucket",
    "no-credentials": None,
    "bad-credentials": None,
    "endpoint-unreachable": "endpoints",
    "check-failed": "bucket",
}


@dataclass
class Located:
    """A finding in a stack, at a place in a file."""

    stack: Stack
    finding: Finding
    where: Where

    @property
    def file(self) -> Path:
        return self.where[0]


def dynamic(value: Any) -> bool:
    """A value built by an expression (Terragrunt), or one python-hcl2 kept as ``${...}``."""
    return isinstance(value, Expression) or (isinstance(value, str) and "${" in value)


def offline(stack: Stack, object_lock: bool | None = None) -> list[Located]:
    """Every finding the configuration alone gives (``object_lock``: from bucket facts if known)."""
    if stack.error:
        return [
            Located(
                stack,
                make("backend-unreadable", stack.error, "fix the file; `terraform validate` shows the error"),
                stack.block,
            )
        ]
    notes = [
        Located(
            stack,
            make(
                "backend-dynamic-value",
                f"{what} = {expression} is built by an expression tfwrap does not evaluate: not read",
                "write a literal path if tfwrap should read it",
            ),
            where,
        )
        for what, expression, where in stack.notes
    ]
    if not stack.backend.settings and stack.kind == "terragrunt":
        return notes  # nothing read: the unit's backend is behind what was not evaluated
    if stack.partial:  # as the guard says it, and nothing else: no bucket, no other finding
        return [*notes, Located(stack, locking.partial(stack.backend), stack.block)]
    settings = stack.backend.settings
    found = notes + [
        Located(
            stack,
            make(
                "backend-dynamic-value",
                f"{name} = {value} is built by an expression: shown as written, not checked",
                f"write a literal {name} if tfwrap should check it",
            ),
            stack.where(name),
        )
        for name, value in settings.items()
        if dynamic(value) and name in ("bucket", "use_lockfile", "dynamodb_table", "encrypt", "region")
    ]
    if not any(dynamic(settings.get(n)) for n in ("use_lockfile", "dynamodb_table")):
        found += [
            Located(stack, terragrunt_fix(stack, f), _locking_place(stack, f))
            for f in locking.evaluate(stack.backend)
        ]
    if not dynamic(settings.get("encrypt")) and to_bool(settings.get("encrypt")) is not True:
        state = "is false" if "encrypt" in settings else "is not set"
        found.append(
            Located(
                stack,
                make(
                    "encrypt-missing",
                    f"encrypt {state}: state is encrypted only by the bucket's default encryption, if any",
                    f"set encrypt = true in {_home(stack, 'encrypt')}",
                ),
                stack.where("encrypt"),
            )
        )
    found += _required_version(stack)
    if object_lock and to_bool(settings.get("skip_s3_checksum")) is True:
        found.append(
            Located(
                stack,
                make(
                    "skip-s3-checksum-object-lock",
                    f"skip_s3_checksum = true on bucket {stack.backend.bucket!r}, which has Object Lock: "
                    "S3 refuses every write without a checksum, so state and lock writes fail "
                    "(hashicorp/terraform#36120)",
                    f"remove skip_s3_checksum from {stack.where('skip_s3_checksum')[0].name}",
                ),
                stack.where("skip_s3_checksum"),
            )
        )
    return found


def _home(stack: Stack, name: str) -> str:
    """The file a user edits to change ``name``: where it is written, else the backend file
    of a partial backend, else the file with the block (relative to the stack)."""
    where = stack.places.get(name)
    path = where[0] if where else (stack.backend_file or stack.block[0])
    return os.path.relpath(path, stack.path)


def terragrunt_fix(stack: Stack, finding: Finding) -> Finding:
    """A locking fix for a Terragrunt unit: which ``.hcl`` to edit (as the guard says it)."""
    if stack.kind != "terragrunt":
        return finding
    return locking.for_terragrunt(finding, os.path.relpath(stack.block[0], stack.path), stack.how)


def _locking_place(stack: Stack, finding: Finding) -> Where:
    if finding.id == "locking-disagree":
        return stack.where("use_lockfile" if "use_lockfile" in stack.places else "dynamodb_table")
    return stack.where(_SETTING.get(finding.id))


def _required_version(stack: Stack) -> list[Located]:
    if stack.kind != "terraform":
        return []  # Terragrunt: the constraint lives in the module source, not here
    written = [value for value, _ in stack.required_versions]
    if any(not isinstance(v, str) or dynamic(v) for v in written):
        return []  # not a literal: Terraform itself would refuse it
    where = (
        stack.required_versions[0][1] if stack.required_versions else (stack.terraform_block or stack.block)
    )
    shown = " and ".join(f'"{v}"' for v in written)
    said = f"required_version {shown}" if written else "no required_version"
    fix_file = where[0].name
    if constraint.admits_below(written, LOCKFILE):
        finding = make(
            "required-version-pre-lockfile",
            f"{said} admits Terraform older than 1.10, which has no use_lockfile",
            f'set required_version = ">= 1.11" in the terraform block of {fix_file}',
        )
    elif constraint.admits_below(written, GA):
        finding = make(
            "required-version-experimental",
            f"{said} admits Terraform 1.10, where use_lockfile is experimental",
            f'set required_version = ">= 1.11" in the terraform block of {fix_file}',
        )
    else:
        return []
    return [Located(stack, finding, where)]


def online(stack: Stack, facts: dict[str, Any]) -> list[Located]:
    """The guard's bucket findings for this stack's bucket, at the ``bucket`` setting."""
    from tfwrap.checks import bucket_policy

    return [
        Located(stack, f, stack.where(_SETTING.get(f.id, "bucket")))
        for f in [*bucket.evaluate(stack.backend, facts), *bucket_policy.hygiene(stack.backend, facts)]
    ]
