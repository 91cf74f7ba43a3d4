"""The guard on a cold cache: gather facts, turn them into findings, decide.

Everything heavy (python-hcl2, botocore, the ``version -json`` probe) happens here; the
shim calls this only when its cached verdict is missing or too old. Each fact is also
cached on its own, so a changed configuration does not cost an AWS call or a probe.
"""

from __future__ import annotations

from typing import Any

from tfwrap import log
from tfwrap.backend import config as backend_config
from tfwrap.backend import literal
from tfwrap.checks import bucket, locking, prefetch, rolled_back, store, version
from tfwrap.findings import cache, suppress
from tfwrap.findings.finding import ERROR, OFF, Finding
from tfwrap.findings.policy import Policy
from tfwrap.terraform.commands import KIND_RECOVERY, Command


class Outcome:
    """What the guard found (``raw``: before policy; ``findings``: after) and the decision."""

    def __init__(self, backend: backend_config.BackendConfig) -> None:
        self.backend = backend
        self.raw: list[Finding] = []
        self.findings: list[Finding] = []
        self.blocked = False
        self.cacheable = True  # False when a fact may change by itself (endpoint down, ...)
        self.probe: dict[str, Any] | None = None  # the conditional-write probe's facts, if run
        self.used_cache = False  # bucket facts came from the cache (they may predate a fix)
        # [the journal's lock table, when read], from the prefetch child; None: not read, the
        # supervised run asks itself (docs/decisions/112-the-soak-hold.md)
        self.soak: list[Any] | None = None

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == ERROR]


def decide(command: Command, policy: Policy, raw: list[Finding]) -> tuple[list[Finding], bool]:
    """Apply the policy to raw findings: what to show, and whether the run stops."""
    findings = [f for f in map(policy.apply, raw) if f.severity != OFF]
    blocked = (
        policy.mode == "enforce"
        and any(f.severity == ERROR for f in findings)
        and command.kind != KIND_RECOVERY
    )
    return findings, blocked


def run(
    command: Command,
    real: str,
    policy: Policy,
    use_cache: bool = True,
    *,
    probe_now: bool = False,
    fresh_bucket: bool = False,
    started: prefetch.Prefetch | None = None,
) -> Outcome:
    """Check the backend ``command`` will use; never raises for AWS trouble.

    ``probe_now``: run the conditional-write probe whatever the endpoint and cache say.
    ``fresh_bucket``: ask S3 again even with the cache on (the version and the configuration
    are cached by the stat of their files, so only bucket facts can be out of date).
    ``started``: the prefetch the caller forked already, with these same flags."""
    fetching = started or prefetch.start(
        command, policy.cache_ttl_seconds, use_cache, probe_now=probe_now, fresh_bucket=fresh_bucket
    )
    probe = None
    try:
        version_key = cache.version_key(real)
        version_fact = cache.get("version", version_key) if use_cache else None
        probe = version.start_probe(real) if version_fact is None else None  # after the fork: ~8 ms
        backend = _backend(command, use_cache)
        outcome = Outcome(backend)
        if not backend.is_s3:
            return outcome  # not ours to judge: passed through untouched
        literal.refuse_unusable(backend)  # Terraform refuses it: exit 82, no AWS call
        if not backend.bucket:  # a partial block without its -backend-config
            outcome.raw = [locking.partial(backend)]
            outcome.findings, outcome.blocked = decide(command, policy, outcome.raw)
            return outcome
        facts, outcome.cacheable, outcome.used_cache = _bucket_facts(
            command, backend, policy, use_cache and not fresh_bucket, fetching
        )
        outcome.soak = fetching.soak if fetching is not None else None
        if fetching is not None and fetching.probed is not None:
            probed, probe_cacheable = fetching.probed  # the child probed while this process read HCL
        else:
            probed, probe_cacheable = store.facts_for(backend, facts, use_cache, probe_now)
        outcome.cacheable = outcome.cacheable and probe_cacheable
        outcome.probe = probed
        if probe is not None:
            version_fact = version.read_probe(probe)
            probe = None
            if "version" in version_fact:
                cache.put("version", version_key, version_fact)
            else:
                outcome.cacheable = False
    finally:
        if probe is not None:  # an exception above: do not leave the probe behind
            probe.kill()
            probe.wait()
        if fetching is not None:
            fetching.discard()  # read already, or never needed: the child is reaped either way
    if version_fact is None:  # unreachable: the probe always answers
        raise RuntimeError("no Terraform version")
    outcome.raw = [
        *version.evaluate(version_fact, policy, facts),
        *locking.evaluate(backend),
        *bucket.evaluate(backend, facts),
        *store.evaluate(backend, facts, probed),
    ]
    outcome.raw = rolled_back.soften(backend, outcome.raw)
    outcome.raw = suppress.apply(backend, outcome.raw)  # `# tfwrap:ignore <id> <reason>`
    outcome.findings, outcome.blocked = decide(command, policy, outcome.raw)
    log.info(
        "checked backend",
        bucket=backend.bucket,
        state_key=backend.state_key,
        endpoint=backend.s3_endpoint,
        findings=[f.id for f in outcome.findings],
        blocked=outcome.blocked,
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
    command: Command,
    backend: backend_config.BackendConfig,
    policy: Policy,
    use_cache: bool,
    fetching: prefetch.Prefetch | None,
) -> tuple[dict[str, Any], bool, bool]:
    """Bucket facts, whether they may be cached, and whether they came from the cache."""
    key = cache.bucket_key(backend.s3_endpoint, backend.region, backend.bucket, backend.get("kms_key_id"))
    from tfwrap.aws import bucket_facts  # deferred: botocore, only on a cold cache

    if fetching is not None:
        facts = fetching.result(key)
        if facts is not None:
            ok = bucket_facts.cacheable(facts)
            if ok:
                cache.put("bucket", key, facts)
            return facts, ok, False
    if use_cache:
        cached = cache.get("bucket", key, max_age=policy.cache_ttl_seconds)
        if cached is not None:
            return cached, True, True
    if any(v == "<redacted>" for v in backend.settings.values()):
        # The cached config has no secrets; read the files again for the live credentials.
        backend = backend_config.load(command)
    facts = bucket_facts.gather(backend)
    ok = bucket_facts.cacheable(facts)
    if ok:
        cache.put("bucket", key, facts)
    return facts, ok, False
