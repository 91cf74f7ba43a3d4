"""What the store does with Terraform's writes: the conditional-write probe's
findings, when the guard probes by itself, and ``skip_s3_checksum`` on an Object Lock bucket.

The guard probes a store by itself only behind a custom endpoint (anything but AWS's own)
and only when the cache holds no verdict for that endpoint, bucket and identity; a verdict
is kept for a day. It never probes on the warm path (the shim's cached verdict). AWS's own
endpoint is probed only when asked (``tfwrap check --probe``, ``tfwrap doctor --probe``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from tfwrap.backend.config import BackendConfig
from tfwrap.findings import cache
from tfwrap.findings.finding import WARNING, Finding, make

_RACERS = 8  # aws/probe.py RACERS (not imported: botocore)

PROBE_TTL_SECONDS = 24 * 3600
FACTS_VERSION = 2  # facts of an older probe (no DELETE or race steps) are probed again
SHARED_SUFFIX = ".tfwrap-probe-verdict.json"  # beside the state: <key>.tfwrap-probe-verdict.json
_IF_MATCH_UNRELIABLE = {
    "ignored": "ignores If-Match",
    "creates-missing": "creates a missing object on a PUT with If-Match",
    "unsupported": "refuses If-Match",
}
# "0-won": every racer refused (AWS answers 409 to a conditional write that lost a race): safe.
_ONE_WINNER = frozenset({"one-won", "0-won", "unknown"})
_AWS_HOSTS = (".amazonaws.com", ".amazonaws.com.cn", ".api.aws")
_SETTING = "env AWS_REQUEST_CHECKSUM_CALCULATION=when_required AWS_RESPONSE_CHECKSUM_VALIDATION=when_required"
_AGAIN = "then `tfwrap check --probe` asks the store again"


def is_aws_endpoint(url: str | None) -> bool:
    """No endpoint (the SDK's default) or one of AWS's own hosts."""
    if not url:
        return True
    host = (urlsplit(url if "://" in url else f"https://{url}").hostname or "").lower()
    return host.endswith(_AWS_HOSTS)


def _key(backend: BackendConfig) -> str:
    # Per endpoint, bucket and identity: bucket_key hashes the identity in;
    # the region slot carries a marker so these never share a file with bucket facts.
    return cache.bucket_key(backend.s3_endpoint, "store-probe", backend.bucket)


def cached(backend: BackendConfig) -> dict[str, Any] | None:
    """The probe's last facts for this endpoint, bucket and identity (a day at most)."""
    facts = cache.get("store", _key(backend), max_age=PROBE_TTL_SECONDS)
    return facts if isinstance(facts, dict) and facts.get("version") == FACTS_VERSION else None


def shared_key(backend: BackendConfig) -> str:
    """Where the store's verdict is kept for every runner: beside the state, under the probe's
    own prefix (``tfwrap iam-policy`` grants it)."""
    return backend.state_key + SHARED_SUFFIX


def shared(backend: BackendConfig) -> dict[str, Any] | None:
    """The store's verdict as another runner left it in the bucket, if younger than a day by
    the store's own clock (docs/decisions/021-shared-store-verdict.md); None otherwise."""
    import json

    from tfwrap.aws import clients
    from tfwrap.lock.lockfile import server_date

    try:
        s3: Any = clients.client(backend, "s3", retries=False)
        got = s3.get_object(Bucket=backend.bucket, Key=shared_key(backend))
        body = json.loads(got["Body"].read())
    except Exception:  # noqa: BLE001 - none, unreadable or denied: this runner probes itself
        return None
    now, written = server_date(got), got.get("LastModified")
    if now is None or written is None or (now - written).total_seconds() > PROBE_TTL_SECONDS:
        return None
    facts = body.get("facts") if isinstance(body, dict) else None
    if not isinstance(facts, dict) or facts.get("version") != FACTS_VERSION:
        return None
    if facts.get("endpoint") != backend.s3_endpoint:
        return None  # the same bucket behind another endpoint (a proxy) is another store
    return facts


def _share(backend: BackendConfig, facts: dict[str, Any]) -> None:
    """Leave a conclusive verdict in the bucket: create-only, or over the one read (If-Match),
    so two runners that probed at once write it once."""
    import json

    from tfwrap.aws import clients

    body = json.dumps({"tfwrap": "store verdict", "facts": facts}).encode()
    try:
        s3: Any = clients.client(backend, "s3", retries=False)
        try:
            etag = s3.head_object(Bucket=backend.bucket, Key=shared_key(backend))["ETag"]
            condition = {"IfMatch": etag}
        except Exception:  # noqa: BLE001 - none there yet (or unreadable): create only
            condition = {"IfNoneMatch": "*"}
        s3.put_object(
            Bucket=backend.bucket,
            Key=shared_key(backend),
            Body=body,
            ContentType="application/json",
            **condition,
        )
    except Exception:  # noqa: BLE001, S110 - another runner wrote it, or denied: only speed is lost
        pass


def probe_now(backend: BackendConfig) -> tuple[dict[str, Any], bool]:
    """Run the probe and cache a conclusive result; returns (facts, cacheable)."""
    from tfwrap.aws import probe  # deferred: botocore

    facts = probe.run(backend)
    facts["version"] = FACTS_VERSION
    ok = "error" not in facts
    if ok:
        cache.put("store", _key(backend), facts)
        if not facts.get("denied"):  # a verdict on the store, not on this identity
            _share(backend, facts)
    return facts, ok


def facts_for(
    backend: BackendConfig, bucket_facts: dict[str, Any], use_cache: bool, now: bool = False
) -> tuple[dict[str, Any] | None, bool]:
    """The probe facts the guard judges (None: not probed), and whether they may be cached."""
    if "fatal" in bucket_facts:
        return None, True  # no credentials, no bucket, no endpoint: nothing to probe
    if not now:
        if is_aws_endpoint(backend.s3_endpoint):
            return None, True
        found = cached(backend) if use_cache else None
        if found is None and use_cache:
            found = shared(backend)  # a fresh runner: the fleet's verdict, about once a day
            if found is not None:
                cache.put("store", _key(backend), found)
        if found is not None:
            return found, True
    return probe_now(backend)


def racy(facts: dict[str, Any]) -> bool:
    """Several concurrent conditional writes of one key won (check and write in two steps)."""
    steps = ("concurrent", "concurrent_if_match")
    return any(facts.get(step, "one-won") not in _ONE_WINNER for step in steps)


def heartbeat_off(facts: dict[str, Any]) -> str:
    """Why the heartbeat must not rewrite the lock at this endpoint ("" when it may)."""
    if facts.get("if_match") in _IF_MATCH_UNRELIABLE:
        return "if-match-unreliable"
    if racy(facts):
        return "conditional-writes-racy"
    return ""


def takeover_off(facts: dict[str, Any]) -> str:
    """Why no lock may be removed by a judgement at this endpoint (takeover, ``lock clear
    --stale``): its removal is a DELETE with ``If-Match``, which must be honoured and atomic."""
    if facts.get("delete_if_match", "honoured") != "honoured":
        return "delete-conditions-ignored"
    return heartbeat_off(facts)


def heartbeat_unsafe(backend: BackendConfig) -> bool:
    """True when the cached probe says ``If-Match`` cannot be trusted at this endpoint."""
    return bool(heartbeat_off(cached(backend) or {}))


def evaluate(
    backend: BackendConfig, bucket_facts: dict[str, Any], probe_facts: dict[str, Any] | None
) -> list[Finding]:
    """Findings about the store: the probe's, and skip_s3_checksum on an Object Lock bucket."""
    found = _checksum_vs_object_lock(backend, bucket_facts)
    if probe_facts is not None:
        found.extend(_probe(backend, probe_facts))
    return found


def _checksum_vs_object_lock(backend: BackendConfig, bucket_facts: dict[str, Any]) -> list[Finding]:
    lock = bucket_facts.get("object_lock") or {}
    if backend.get("skip_s3_checksum") is not True or not lock.get("enabled"):
        return []
    # S3 requires Content-MD5 or a checksum on PUTs that fall under a retention (terraform
    # PR #36120): with a default retention every lock and state write fails; without one,
    # only writes that set a retention do. Error in the first case, warning in the second.
    retention = bool(lock.get("retention"))
    finding = make(
        "skip-s3-checksum-object-lock",
        f"skip_s3_checksum = true on bucket {backend.bucket!r}, which has Object Lock"
        + (" with a default retention: every state and lock write will be refused" if retention else "")
        + " (Object Lock buckets require a Content-MD5 or checksum on PUT)",
        "remove skip_s3_checksum from the backend block and run `terraform init -reconfigure`",
    )
    return [finding if retention else finding.with_severity(WARNING)]


def _not_locking_yet(finding: Finding) -> Finding:
    if not finding.id.startswith("conditional-writes-"):
        return finding
    note = " (use_lockfile is off, so this does not lock the state yet: do not turn it on here)"
    return Finding(finding.id, WARNING, finding.message + note, finding.fix)


def _probe(backend: BackendConfig, facts: dict[str, Any]) -> list[Finding]:
    where = f"{backend.s3_endpoint or 'AWS'} (bucket {backend.bucket!r})"
    found: list[Finding] = []
    if facts.get("denied"):
        denied = facts["denied"]
        found.append(
            make(
                "probe-denied",
                f"the conditional-write probe could not run at {where}: {denied['action']} on "
                f"{denied['key']} was denied (not a verdict on the store)",
                f"grant {denied['action']} and s3:DeleteObject on "
                f"arn:aws:s3:::{backend.bucket}/{backend.state_key}.tfwrap-probe-* "
                "(`tfwrap iam-policy` includes it)",
            )
        )
        return found
    if facts.get("error"):
        found.append(
            make(
                "check-failed",
                f"the conditional-write probe did not finish at {where}: {facts['error']}",
                "run `tfwrap doctor --probe` once the store answers",
            )
        )
    if facts.get("create_only") == "unsupported":
        found.append(
            make(
                "conditional-writes-unsupported",
                f"{where} refuses conditional PUTs ({facts['steps'].get('create', '')}): Terraform "
                "cannot take the lock with use_lockfile here (hashicorp/terraform#37143)",
                "keep state on a store that supports If-None-Match (AWS S3, MinIO, R2, Ceph RGW), "
                f"or keep DynamoDB locking for this backend; {_AGAIN}",
            )
        )
    elif facts.get("create_only") == "ignored":
        how = "accepted a second create-only PUT of an existing object"
        found.append(
            make(
                "conditional-writes-ignored",
                f"{where} {how}: use_lockfile does not lock here, two runs would both take the "
                "lock and both write the state",
                "move the state to a store that honours If-None-Match (or remove the proxy that "
                f"drops it), or keep DynamoDB locking for this backend; {_AGAIN}",
            )
        )
    if facts.get("if_match") in _IF_MATCH_UNRELIABLE:
        what = _IF_MATCH_UNRELIABLE[facts["if_match"]]
        found.append(
            make(
                "if-match-unreliable",
                f"{where} {what}: tfwrap's heartbeat is turned off for this endpoint, because it "
                "could bring back a released lock",
                f"upgrade the store (MinIO: RELEASE.2025-09 or later); {_AGAIN}",
            )
        )
    if facts.get("create_only") == "honoured" and racy(facts):
        found.append(
            make(
                "conditional-writes-racy",
                f"{where} let several of {_RACERS} concurrent conditional writes of one object win "
                f"(create-only: {facts.get('concurrent')}, If-Match: {facts.get('concurrent_if_match')}): "
                "it checks the condition and writes in two steps, so tfwrap's heartbeat and "
                "takeover are turned off for this endpoint; Terraform's own locking stays as direct",
                "keep state on a store with atomic conditional writes (AWS S3, MinIO, R2), or keep "
                f"DynamoDB locking for this backend; {_AGAIN}",
            )
        )
    if facts.get("delete_if_match") in ("ignored", "unsupported", "unknown"):
        what = {
            "ignored": "removed an object on a DELETE with a wrong If-Match",
            "unsupported": "refuses a DELETE with If-Match",
            "unknown": "gave no clear answer to a DELETE with If-Match",
        }[facts["delete_if_match"]]
        found.append(
            make(
                "delete-conditions-ignored",
                f"{where} {what} ({facts['steps'].get('delete_if_match_wrong_etag', '')}): a stale "
                "lock is never removed by a judgement here (takeover and `tfwrap lock clear --stale` "
                "are off), since the removal could hit a lock taken meanwhile",
                f"clear a lock by its ID (`tfwrap lock clear --id ID`) after checking its run; {_AGAIN}",
            )
        )
    if not backend.use_lockfile:
        # DynamoDB (or nothing) locks this state: the store's conditional writes do not, yet.
        found = [_not_locking_yet(f) for f in found]
    if facts.get("checksum") == "rejected":
        found.append(
            make(
                "checksum-unsupported",
                f"{where} rejects the SDK's default request checksums "
                f"({facts.get('checksum_error', '')}): Terraform's state writes will fail "
                "(hashicorp/terraform#37130)",
                f"{_SETTING} for Terraform (e.g. export them in the pipeline); {_AGAIN}",
            )
        )
    return found
