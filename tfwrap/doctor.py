"""``tfwrap doctor``: why does my setup behave like this? Gathers one report (plain JSON).

Sections: the chain from shim to binary and its version; the backend and where its settings
come from; the AWS identity and the endpoint reached; the cached verdicts; with ``probe``,
the conditional-write probe run now. Reading only, except the probe's scratch
objects, which it removes. The CLI (cli/doctor.py) only formats this report.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any

from tfwrap import __version__
from tfwrap.aws import clients
from tfwrap.aws.errors import classify
from tfwrap.backend import config as backend_config
from tfwrap.checks import store, version
from tfwrap.errors import TfwrapError
from tfwrap.findings import cache
from tfwrap.findings.finding import ERROR, OFF
from tfwrap.findings.policy import Policy
from tfwrap.terraform import chain, commands, realbin

Report = dict[str, Any]
_ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_S3", "AWS_S3_ENDPOINT", "AWS_ENDPOINT_URL")


def gather(chdir: str, policy: Policy, probe: bool = False) -> Report:
    """The whole report for a directory; AWS trouble is reported in it, never raised."""
    report: Report = {"tfwrap_version": __version__, "directory": chdir, "mode": policy.mode}
    report["policy_file"] = policy.source if policy.source != "defaults" else None
    report["chain"], report["terraform"], real = _chain()
    command = commands.parse([f"-chdir={chdir}", "plan"])
    backend = backend_config.load(command)
    report["backend"] = _backend(backend) if backend.backend_type else None
    report["identity"] = _identity(backend) if backend.is_s3 else None
    report["cache"] = _cache(command, backend, real, policy)
    report["probe"] = None
    report["findings"] = []
    if probe and backend.is_s3:
        facts, _ = store.probe_now(backend)
        bucket_facts = (report["cache"]["bucket"] or {}).get("facts") or {}
        found = [
            f for f in map(policy.apply, store.evaluate(backend, bucket_facts, facts)) if f.severity != OFF
        ]
        report["probe"] = facts
        report["findings"] = [f.to_json() for f in found]
    if backend.is_s3:  # what the guard does not say before every run (checks/bucket_policy.py)
        from tfwrap.checks import bucket_policy

        cached = (report["cache"]["bucket"] or {}).get("facts") or {}
        hygiene = [f for f in map(policy.apply, bucket_policy.hygiene(backend, cached)) if f.severity != OFF]
        report["findings"] += [f.to_json() for f in hygiene]
    report["errors"] = sum(1 for f in report["findings"] if f["severity"] == ERROR)
    return report


def _chain() -> tuple[list[dict[str, str]], dict[str, Any], str | None]:
    """The chain, the real binary's version, and the path tfwrap runs (None if none)."""
    try:
        real = realbin.find()
    except TfwrapError as exc:
        return [], {"path": None, "version": None, "error": exc.message}, None
    fact = cache.get("version", cache.version_key(real))
    if not fact:
        fact = version.read_probe(version.start_probe(real))
    links = chain.resolve(version=fact.get("version"))
    terraform = {"path": real, "version": fact.get("version"), "error": fact.get("error")}
    return [dataclasses.asdict(link) for link in links], terraform, real


def _backend(backend: backend_config.BackendConfig) -> dict[str, Any]:
    # The initialised copy lists every setting, unset ones as null: only those given count.
    sources = [
        {"where": s.where, "settings": sorted(k for k, v in s.settings.items() if v is not None)}
        for s in backend.sources
    ]
    found: dict[str, Any] = {
        "type": backend.backend_type,
        "sources": sources,
    }
    if not backend.is_s3:
        return found
    return {
        **found,
        "bucket": backend.bucket,
        "state_key": backend.state_key,
        "lock_key": backend.lock_key,
        "workspace": backend.workspace,
        "region": backend.region,
        "use_lockfile": backend.use_lockfile,
        "dynamodb_table": backend.dynamodb_table or None,
        "s3_endpoint": backend.s3_endpoint,
        "endpoint_source": _endpoint_source(backend),
        "aws_endpoint": store.is_aws_endpoint(backend.s3_endpoint),
    }


def _endpoint_source(backend: backend_config.BackendConfig) -> str:
    """Where the S3 endpoint comes from, in Terraform's order."""
    for setting in ("endpoints", "endpoint"):
        value = backend.get(setting)
        if value and (setting == "endpoint" or (isinstance(value, dict) and value.get("s3"))):
            where = [s.where for s in backend.sources if s.settings.get(setting)]
            name = "endpoints.s3" if setting == "endpoints" else "endpoint"
            return f"{name} in {where[-1]}" if where else name
    for variable in _ENDPOINT_VARIABLES:
        if os.environ.get(variable):
            return f"environment {variable}"
    return "AWS's own endpoint for the region"


def _identity(backend: backend_config.BackendConfig) -> dict[str, Any]:
    """Which credentials tfwrap (and Terraform) use; the key is shown masked, never whole."""
    found: dict[str, Any] = {
        "profile": backend.profile,
        "role_arn": backend.assume_role.get("role_arn"),
        "access_key": None,
        "source": None,
        "arn": None,
        "account": None,
        "cache_identity": cache.identity(),
        "error": None,
    }
    try:
        session = clients.session(backend)
        creds = session.get_credentials()
        if creds is None:
            found["error"] = "no AWS credentials found"
            return found
        key = creds.access_key or ""
        found["access_key"] = f"{key[:4]}…{key[-4:]}" if len(key) > 8 else "…"
        found["source"] = creds.method
        from botocore.config import Config

        sts: Any = session.create_client(
            "sts",
            region_name=backend.region or "us-east-1",
            endpoint_url=backend.sts_endpoint,
            config=Config(
                connect_timeout=clients.CONNECT_TIMEOUT,
                read_timeout=clients.READ_TIMEOUT,
                retries={"total_max_attempts": 1},
            ),
        )
        who = sts.get_caller_identity()
        found["arn"], found["account"] = who.get("Arn"), who.get("Account")
    except Exception as exc:  # noqa: BLE001 - the report says why, never raises
        found["error"] = f"sts:GetCallerIdentity: {classify(exc, backend.sts_endpoint).detail}"
    return found


def _cache(
    command: commands.Command, backend: backend_config.BackendConfig, real: str | None, policy: Policy
) -> dict[str, Any]:
    now = time.time()

    def entry(value: Any, ttl: float | None) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            return None
        age = round(now - float(value.pop("_time", now)), 1)
        return {"age_seconds": age, "fresh": ttl is None or age <= ttl, "facts": value}

    found: dict[str, Any] = {"directory": cache.directory(), "verdict": None, "bucket": None, "store": None}
    if real:
        verdict = entry(
            cache.get("verdict", cache.verdict_key(command, real, policy.min_terraform_version)), None
        )
        if verdict is not None:
            verdict["fresh"] = (
                verdict["age_seconds"] <= policy.cache_ttl_seconds or not verdict["facts"]["s3"]
            )
            verdict["findings"] = [f["id"] for f in verdict["facts"].get("findings", [])]
        found["verdict"] = verdict
    if backend.is_s3:
        bucket_key = cache.bucket_key(
            backend.s3_endpoint, backend.region, backend.bucket, backend.get("kms_key_id")
        )
        found["bucket"] = entry(cache.get("bucket", bucket_key), policy.cache_ttl_seconds)
        found["store"] = entry(store.cached(backend), store.PROBE_TTL_SECONDS)
    return found
