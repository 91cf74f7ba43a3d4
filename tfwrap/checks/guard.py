"""The guard on a cold cache: gather facts, turn them into findings, decide.

Everything heavy (python-hcl2, botocore, the ``version -json`` probe) happens here; the
shim calls this only when its cached verdict is missing or too old. Each fact is also
cached on its own, so a changed configuration does not cost an AWS call or a probe.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any

from tfwrap import log
from tfwrap.backend import config as backend_config
from tfwrap.backend import literal
from tfwrap.checks import bucket, locking, rolled_back, store
from tfwrap.findings import cache
from tfwrap.findings.finding import ERROR, OFF, Finding
from tfwrap.findings.policy import Policy
from tfwrap.terraform import version
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
        self.used_cache = False  # bucket facts came from the cache (they may predate a fix: issue 11)

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
) -> Outcome:
    """Check the backend ``command`` will use; never raises for AWS trouble.

    ``probe_now``: run the conditional-write probe whatever the endpoint and cache say.
    ``fresh_bucket``: ask S3 again even with the cache on (the version and the configuration
    are cached by the stat of their files, so only bucket facts can be out of date: issue 11)."""
    version_key = cache.version_key(real)
    version_fact = cache.get("version", version_key) if use_cache else None
    probe = version.start_probe(real) if version_fact is None else None
    prefetch = _prefetch(command, policy, use_cache and not fresh_bucket)
    try:
        backend = _backend(command, use_cache)
        outcome = Outcome(backend)
        if not backend.is_s3:
            return outcome  # not ours to judge: passed through untouched
        literal.refuse_unusable(backend)  # Terraform refuses it: exit 82, no AWS call
        if not backend.bucket:  # a partial block without its -backend-config (issue 11)
            outcome.raw = [locking.partial(backend)]
            outcome.findings, outcome.blocked = decide(command, policy, outcome.raw)
            return outcome
        facts, outcome.cacheable, outcome.used_cache = _bucket_facts(
            command, backend, policy, use_cache and not fresh_bucket, prefetch
        )
        prefetch = None
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
        if prefetch is not None:
            prefetch.discard()
    if version_fact is None:  # unreachable: the probe always answers
        raise RuntimeError("no Terraform version")
    outcome.raw = [
        *version.evaluate(version_fact, policy, facts),
        *locking.evaluate(backend),
        *bucket.evaluate(backend, facts),
        *store.evaluate(backend, facts, probed),
    ]
    outcome.raw = rolled_back.soften(backend, outcome.raw)
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


class _Prefetch:
    """Bucket facts gathered by a forked child while this process parses HCL.

    A cold check is python-hcl2 (~170 ms) then botocore and four S3 calls (~300 ms); both
    are CPU-bound, so on a 2-core machine running them side by side is what brings a cold
    run under the 400 ms budget (issue 2). Non-``init`` commands use the initialised copy
    (plain JSON), so the child knows the bucket before any HCL is read.
    """

    def __init__(self, key: str, backend: backend_config.BackendConfig) -> None:
        self.key = key
        read_end, write_end = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # the child: gather, write JSON, leave without cleanup handlers
            os.close(read_end)
            code = 1
            try:
                from tfwrap.aws import bucket_facts

                with os.fdopen(write_end, "w") as out:
                    json.dump(bucket_facts.gather(backend), out)
                code = 0
            finally:
                os._exit(code)
        os.close(write_end)
        self.fd = read_end

    def result(self) -> dict[str, Any] | None:
        fd, self.fd = self.fd, -1  # the file object owns (and closes) it from here on
        with os.fdopen(fd, "r") as pipe:
            text = pipe.read()
        _, status = os.waitpid(self.pid, 0)
        if status != 0:
            return None
        facts: dict[str, Any] = json.loads(text)
        return facts

    def discard(self) -> None:
        """Also after an interrupted ``result()``: never closes its fd twice (a Ctrl-C there
        gave exit 85 "Bad file descriptor", or could close an fd opened since)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)


def _prefetch(command: Command, policy: Policy, use_cache: bool) -> _Prefetch | None:
    if command.name == "init":
        return None  # init reads the files: the bucket is not known before the HCL
    initialised = backend_config.load_initialised(command)
    if initialised is None or not initialised.is_s3 or not initialised.bucket:
        return None
    key = cache.bucket_key(initialised.s3_endpoint, initialised.region, initialised.bucket)
    if use_cache and cache.get("bucket", key, max_age=policy.cache_ttl_seconds) is not None:
        return None
    return _Prefetch(key, initialised)


def _bucket_facts(
    command: Command,
    backend: backend_config.BackendConfig,
    policy: Policy,
    use_cache: bool,
    prefetch: _Prefetch | None,
) -> tuple[dict[str, Any], bool, bool]:
    """Bucket facts, whether they may be cached, and whether they came from the cache."""
    key = cache.bucket_key(backend.s3_endpoint, backend.region, backend.bucket)
    from tfwrap.aws import bucket_facts  # deferred: botocore, only on a cold cache

    if prefetch is not None:
        if prefetch.key != key:
            prefetch.discard()
        else:
            facts = prefetch.result()
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
