"""Check 1: the Terraform version, read from ``terraform version -json`` (cached per binary)."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from tfwrap.findings.finding import Finding, make
from tfwrap.findings.policy import Policy, parse_version

if TYPE_CHECKING:
    import subprocess

GA = (1, 11, 0)  # use_lockfile left "experimental" here; dynamodb_table deprecated
RETENTION_BUG = (1, 10, 0)  # hashicorp/terraform#36113: no lock with a default retention


def start_probe(real: str) -> subprocess.Popen[bytes]:
    """Start ``terraform version -json`` now; the answer is read later (runs in parallel)."""
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_CLI_ARGS")}
    env["CHECKPOINT_DISABLE"] = "1"  # no call home while we wait
    return subprocess.Popen(
        [real, "version", "-json"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )


def read_probe(probe: subprocess.Popen[bytes], timeout: float = 20.0) -> dict[str, Any]:
    """The probe's answer as a fact: ``{"version": "1.15.5"}`` or ``{"error": ...}``."""
    import subprocess

    try:
        out, _ = probe.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        probe.kill()
        probe.wait()
        return {"error": f"`terraform version -json` did not finish in {timeout:.0f} s"}
    text = out.decode(errors="replace").strip()
    try:
        version = json.loads(text)["terraform_version"]
        parse_version(version)
    except (ValueError, KeyError, TypeError):
        shown = (text.splitlines() or ["no output"])[0][:60]
        return {"error": f"`terraform version -json` printed no version JSON (got {shown!r})"}
    return {"version": str(version)}


def evaluate(fact: dict[str, Any], policy: Policy, bucket_facts: dict[str, Any]) -> list[Finding]:
    if "error" in fact:
        return [
            make(
                "terraform-version-unknown",
                f"cannot tell the Terraform version: {fact['error']}",
                "point TFWRAP_TERRAFORM (or PATH) at a real Terraform >= 1.11 binary",
            )
        ]
    text = fact["version"]
    version = parse_version(text)
    minimum = ".".join(map(str, policy.min_terraform_version))
    if version < policy.min_terraform_version:
        return [
            make(
                "terraform-version",
                f"Terraform {text} is older than {minimum}, the minimum for S3 native locking (use_lockfile)",
                "install Terraform 1.11 or newer and put it first on PATH, or set TFWRAP_TERRAFORM to it",
            )
        ]
    found: list[Finding] = []
    if version < GA:
        found.append(
            make(
                "terraform-version-experimental",
                f"Terraform {text}: use_lockfile is experimental before 1.11",
                "upgrade to Terraform 1.11 or newer",
            )
        )
    lock = bucket_facts.get("object_lock") or {}
    if version == RETENTION_BUG and lock.get("retention"):
        found.append(
            make(
                "terraform-version-retention-bug",
                "Terraform 1.10.0 cannot take the lock on a bucket with an Object Lock default "
                "retention (hashicorp/terraform#36113, fixed in 1.10.1)",
                "upgrade to Terraform 1.11 or newer",
            )
        )
    return found
