"""``tfwrap audit``: every stack under some paths, checked at once.

Read (discover the stacks), ask (bucket facts once per distinct bucket, endpoint, region
and identity, in parallel, through the guard's cache), decide (the guard's rules plus the
audit's, then each stack's own ``.tfwrap.toml``). Showing is ``formats.py``'s job.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tfwrap.audit import discover, rules
from tfwrap.audit.discover import Stack
from tfwrap.audit.rules import Located
from tfwrap.backend.config import BackendConfig
from tfwrap.findings import cache
from tfwrap.findings import policy as policies
from tfwrap.findings.finding import ERROR, INFO, OFF, WARNING


@dataclass
class Report:
    stacks: list[Stack]
    buckets: int
    offline: bool
    findings: list[Located] = field(default_factory=list)
    policy_files: dict[Path, str | None] = field(default_factory=dict)  # stack dir -> governing file

    def count(self, severity: str) -> int:
        return sum(1 for f in self.findings if f.finding.severity == severity and not unchecked(f))

    @property
    def errors(self) -> int:
        return self.count(ERROR)

    @property
    def unchecked_stacks(self) -> list[Stack]:
        """Stacks a finding says could not be checked (credentials, endpoint, access)."""
        seen = {id(f.stack): f.stack for f in self.findings if unchecked(f)}
        return list(seen.values())

    def summary(self) -> str:
        """``412 stacks, 37 buckets: 9 errors, 15 warnings`` (and notes when there are any)."""
        parts = [_plural(self.count(ERROR), "error"), _plural(self.count(WARNING), "warning")]
        if self.count(INFO):
            parts.append(_plural(self.count(INFO), "note"))
        if self.unchecked_stacks:
            parts.append(f"{len(self.unchecked_stacks)} not checked")
        return f"{_plural(len(self.stacks), 'stack')}, {_plural(self.buckets, 'bucket')}: {', '.join(parts)}"


# What the environment stopped tfwrap from checking: no verdict on the configuration.
UNCHECKED_IDS = frozenset(
    {"no-credentials", "bad-credentials", "endpoint-unreachable", "access-denied", "check-failed"}
)


def unchecked(one: Located) -> bool:
    return one.finding.id in UNCHECKED_IDS


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def audit(
    paths: list[Path],
    *,
    offline: bool,
    jobs: int = 8,
    use_cache: bool = True,
    backend_files: list[Path] | None = None,
) -> Report:
    found = discover.stacks(discover.candidate_files(paths), backend_files)
    by_file: dict[str | None, policies.Policy] = {}
    stack_policy: dict[int, policies.Policy] = {}
    report = Report(found, 0, offline)
    for stack in found:
        governing = policies.find_policy_file(str(stack.path))
        if governing not in by_file:
            by_file[governing] = policies.load(str(stack.path))
        stack_policy[id(stack)] = by_file[governing]
        report.policy_files[stack.path] = governing
    groups = _bucket_groups(found)
    report.buckets = len(groups)
    facts = _facts(groups, stack_policy, offline=offline, jobs=jobs, use_cache=use_cache)
    for stack in found:
        known = facts.get(_bucket_key(stack) or "")
        object_lock = None
        if known and "fatal" not in known:
            object_lock = bool((known.get("object_lock") or {}).get("enabled"))
        located = rules.offline(stack, object_lock)
        if not offline and known is not None:
            located += rules.online(stack, known)
        pol = stack_policy[id(stack)]
        for one in located:
            one.finding = pol.apply(one.finding)
            if one.finding.severity != OFF:
                report.findings.append(one)
    return report


def _bucket_key(stack: Stack) -> str | None:
    backend = stack.backend
    if stack.error or not backend.bucket:
        return None
    endpoints = backend.settings.get("endpoints")
    names = ("bucket", "region", "endpoint", "profile", "assume_role", "kms_key_id")
    values = [backend.settings.get(n) for n in names]
    values += list(endpoints.values()) if isinstance(endpoints, dict) else [endpoints]
    if any(rules.dynamic(v) for v in values):
        return None  # which bucket, where, is not known without evaluating: not guessed
    return cache.bucket_key(
        backend.s3_endpoint, backend.region, backend.bucket, backend.settings.get("kms_key_id")
    )


def _bucket_groups(stacks: list[Stack]) -> dict[str, list[Stack]]:
    groups: dict[str, list[Stack]] = {}
    for stack in stacks:
        key = _bucket_key(stack)
        if key is not None:
            groups.setdefault(key, []).append(stack)
    return groups


def _facts(
    groups: dict[str, list[Stack]],
    stack_policy: dict[int, policies.Policy],
    *,
    offline: bool,
    jobs: int,
    use_cache: bool,
) -> dict[str, dict[str, Any]]:
    """Bucket facts per key: from the guard's cache, or asked once per bucket (not offline)."""
    facts: dict[str, dict[str, Any]] = {}
    missing: list[str] = []
    for key, members in groups.items():
        ttl = min(stack_policy[id(s)].cache_ttl_seconds for s in members)
        cached = cache.get("bucket", key, max_age=ttl) if use_cache or offline else None
        if cached is not None:
            facts[key] = cached
        elif not offline:
            missing.append(key)
    if missing:
        from tfwrap.aws import bucket_facts  # deferred: botocore, only when asking AWS

        shared = _Clients()

        def ask(key: str) -> tuple[str, dict[str, Any]]:
            backend = groups[key][0].backend
            answer = bucket_facts.gather(backend, shared.s3(backend))
            if bucket_facts.cacheable(answer):
                cache.put("bucket", key, answer)
            return key, answer

        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            facts.update(pool.map(ask, missing))
    return facts


class _Clients:
    """One botocore session per identity, one S3 client per endpoint and region.

    A session loads botocore's models (~0.3 s of CPU): per bucket, 40 buckets cost 12 s.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sessions: dict[tuple[Any, ...], Any] = {}
        self.clients: dict[tuple[Any, ...], Any] = {}

    def s3(self, backend: BackendConfig) -> Any:
        """A client, or None to let ``gather`` make one (and report a failure as a fact)."""
        from tfwrap.aws import clients

        who = (
            backend.profile,
            backend.get("access_key"),
            repr(backend.get("shared_credentials_files")),
            repr(backend.get("shared_config_files")),
            repr(backend.assume_role),
        )
        where = (*who, backend.s3_endpoint, backend.region, backend.path_style, backend.get("insecure"))
        with self.lock:  # botocore sessions are not meant to be built from two threads at once
            if where not in self.clients:
                try:
                    if who not in self.sessions:
                        self.sessions[who] = clients.session(backend)
                    self.clients[where] = clients.client(backend, "s3", self.sessions[who])
                except Exception:  # noqa: BLE001 - gather() tries again and reports the failure
                    return None
            return self.clients[where]
