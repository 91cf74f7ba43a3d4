"""The cold check's prefetch: a forked child gathers the bucket's facts, and the store
probe's, while the shim parses HCL.

A cold check is HCL then botocore and S3 calls; both are CPU-bound, so on a 2-core machine
running them side by side is what keeps a cold run short. Non-``init`` commands use the
initialised copy of the backend (plain JSON), so the child knows the bucket before any HCL
is read. The child is forked before the guard's own imports (~25 ms) and decides itself
whether there is anything to fetch (docs/decisions/093-prefetch-forks-first.md); the probe
(custom endpoints, once a day) runs in it too, on the same loaded botocore
(docs/decisions/091-probe-in-the-prefetch.md). So does the read of the migration journal that
tells a supervised run whether to hold the soak's DynamoDB item
(docs/decisions/112-the-soak-hold.md): beside the bucket's reads, on the same client.

Imported on the shim's path before the guard: standard library at module level only.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from tfwrap.terraform.commands import Command


class Prefetch:
    """A forked child's facts about the initialised backend's bucket (``result``)."""

    def __init__(
        self, command: Command, ttl: float, use_cache: bool, probe: tuple[bool, bool] | None
    ) -> None:
        self.probed: tuple[dict[str, Any] | None, bool] | None = None  # set by result()
        self.soak: list[Any] | None = None  # [journal's table, when read], set by result()
        self._found: dict[str, Any] | None = None
        self._done = False
        read_end, write_end = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # the child: gather, write JSON, leave without cleanup handlers
            os.close(read_end)
            code = 1
            try:
                import json

                found = _gather(command, ttl, use_cache, probe)
                with os.fdopen(write_end, "w") as out:
                    json.dump(found, out)
                code = 0
            finally:
                os._exit(code)
        os.close(write_end)
        self.fd = read_end

    def result(self, key: str) -> dict[str, Any] | None:
        """The child's bucket facts if it gathered them for ``key`` (endpoint, region,
        bucket, identity: ``cache.bucket_key``), else None; sets ``probed`` likewise."""
        if not self._done:
            self._done = True
            import json

            with os.fdopen(self.fd, "r") as pipe:
                text = pipe.read()
            _, status = os.waitpid(self.pid, 0)
            if status == 0 and text:
                self._found = json.loads(text)
                self.soak = self._found.get("soak")  # of the initialised backend, whatever ``key``
        found = self._found
        if found is None or found.get("key") != key:
            return None
        if found.get("probe") is not None:
            probed, cacheable = found["probe"]
            self.probed = (probed, bool(cacheable))
        facts: dict[str, Any] = found["facts"]
        return facts

    def discard(self) -> None:
        if not self._done:
            self._done = True
            os.close(self.fd)
            os.waitpid(self.pid, 0)


def start(
    command: Command, ttl: float, use_cache: bool, *, probe_now: bool = False, fresh_bucket: bool = False
) -> Prefetch | None:
    """Fork the prefetch ``guard.run`` uses with these same flags, for a command that runs on
    an initialised backend (not ``init``: it reads the files, so the bucket is not known
    before the HCL)."""
    if command.name == "init":
        return None
    return Prefetch(command, ttl, use_cache and not fresh_bucket, (use_cache, probe_now))


def _gather(command: Command, ttl: float, use_cache: bool, probe: tuple[bool, bool] | None) -> dict[str, Any]:
    """In the child: the key it judged and its facts, or no key when there is nothing to fetch;
    and the soak (``soak.settled``/``soak.read``), None when it could not be read."""
    from tfwrap.backend import config
    from tfwrap.findings import cache
    from tfwrap.lock import soak

    initialised = config.load_initialised(command)
    settled = soak.settled(command, initialised, ttl, use_cache)
    if initialised is None or not initialised.is_s3 or not initialised.bucket:
        return {"key": None, "soak": settled}
    key = cache.bucket_key(
        initialised.s3_endpoint, initialised.region, initialised.bucket, initialised.get("kms_key_id")
    )
    cached = use_cache and cache.get("bucket", key, max_age=ttl) is not None
    if cached and settled is not None:
        return {"key": None, "soak": settled}  # the guard reads the facts from the cache
    from tfwrap.aws import bucket_facts, clients

    try:  # one client for every read: a second one costs ~10 ms more of this child's CPU
        s3 = clients.client(initialised, "s3", retries=False)  # the fast check: one try
    except Exception:  # noqa: BLE001 - gather makes it a finding; the soak is asked again
        s3 = None
    if cached:
        return {"key": None, "soak": soak.read(command, initialised, s3) if s3 is not None else None}
    journal: list[soak.Read | None] = []
    reading = None
    if settled is None and s3 is not None:
        import threading

        # Concurrently with the bucket's reads: on a real endpoint one round trip fewer.
        reading = threading.Thread(target=lambda: journal.append(soak.read(command, initialised, s3)))
        reading.start()
    from tfwrap.checks import store

    try:
        facts = bucket_facts.gather(initialised, s3)
        probed = store.facts_for(initialised, facts, *probe) if probe is not None else None
    finally:
        if reading is not None:
            reading.join()
    return {"key": key, "facts": facts, "probe": probed, "soak": settled or (journal[0] if journal else None)}
