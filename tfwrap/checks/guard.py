"""The guard: gather facts (from the cache when warm), turn them into findings, decide.

Everything heavy (python-hcl2, botocore, the ``version -json`` probe) happens only on a
cold cache; a warm run reads cached facts and evaluates pure rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tfwrap.backend import config as backend_config
from tfwrap.checks import bucket, cache, locking, version
from tfwrap.checks.finding import Finding, Severity
from tfwrap.checks.policy import Policy
from tfwrap.commands import Command, Kind


@dataclass
class Outcome:
    """What the guard found and whether the run may go on."""

    backend: backend_config.BackendConfig
    findings: list[Finding] = field(default_factory=list)
    blocked: bool = False
    aws_calls: bool = False  # whether this run asked AWS (a cold cache)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.ERROR]


def run(command: Command, real: str, policy: Policy, use_cache: bool = True) -> Outcome:
    """Check the backend ``command`` will use; never raises for AWS trouble."""
    version_key = cache.version_key(real)
    version_fact = cache.get("version", version_key) if use_cache else None
    probe = version.start_probe(real) if version_fact is None else None
    try:
        backend = _backend(command, use_cache)
        if not backend.is_s3:
            return Outcome(backend)  # not ours to judge: passed through untouched
        facts, asked = _bucket_facts(command, backend, policy, use_cache)
        if probe is not None:
            version_fact = version.read_probe(probe)
            probe = None
            if "version" in version_fact:
                cache.put("version", version_key, version_fact)
    finally:
        if probe is not None:  # an exception above: do not leave the probe behind
            probe.kill()
            probe.wait()
    assert version_fact is not None
    raw = [
        *version.evaluate(version_fact, policy, facts),
        *locking.evaluate(backend),
        *bucket.evaluate(backend, facts),
    ]
    findings = [f for f in map(policy.apply, raw) if f.severity is not Severity.OFF]
    outcome = Outcome(backend, findings, aws_calls=asked)
    outcome.blocked = (
        policy.mode == "enforce" and bool(outcome.errors) and command.kind is not Kind.RECOVERY
    )
    return outcome


def _backend(command: Command, use_cache: bool) -> backend_config.BackendConfig:
    key = cache.config_fingerprint(command)
    if use_cache:
        cached = cache.get("config", key)
        if cached is not None:
            return backend_config.from_json(cached)
    loaded = backend_config.load(command)
    cache.put("config", key, backend_config.to_json(loaded))
    return loaded


def _bucket_facts(
    command: Command, backend: backend_config.BackendConfig, policy: Policy, use_cache: bool
) -> tuple[dict[str, Any], bool]:
    key = cache.bucket_key(backend.s3_endpoint, backend.region, backend.bucket)
    if use_cache:
        cached = cache.get("bucket", key, max_age=policy.cache_ttl_seconds)
        if cached is not None:
            return cached, False
    if any(v == "<redacted>" for v in backend.settings.values()):
        # The cached config has no secrets; read the files again for the live credentials.
        backend = backend_config.load(command)
    from tfwrap.aws import bucket_facts  # deferred: botocore, only on a cold cache

    facts = bucket_facts.gather(backend)
    if bucket_facts.cacheable(facts):
        cache.put("bucket", key, facts)
    return facts, True
