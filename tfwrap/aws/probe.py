"""The conditional-write probe: does this store keep the promises S3 native locking,
tfwrap's heartbeat and its takeover rest on?

``use_lockfile`` is a ``PUT`` with ``If-None-Match: *`` that must fail with 412 when the lock
exists; tfwrap's heartbeat is a ``PUT`` with ``If-Match`` that must never create a missing
object; a takeover is a ``DELETE`` with ``If-Match`` that must never remove a lock that changed.
Stores that only claim S3 compatibility ignore, refuse or bend these. The probe asks the store
itself, against scratch objects next to the state's lock object:

1. a create-only PUT (``If-None-Match: *``) twice: success, then 412;
2. ``If-Match`` with a wrong ETag: 412;
3. ``If-Match`` on a missing key: 404 or 412, never a created object;
4. a DELETE with ``If-Match`` and a wrong ETag: 412, never a removed object;
5. eight create-only PUTs of one key at once: exactly one wins;
6. eight ``If-Match`` rewrites of one ETag at once: exactly one wins (a store that checks the
   condition and writes in two steps lets several through: docs/decisions/022-racy-stores.md);
7. a plain PUT with the checksum the SDK sends by default (honours
   ``AWS_REQUEST_CHECKSUM_CALCULATION``, as Terraform's SDK does);

then every version it wrote is deleted by version ID, so a versioned bucket keeps no
noncurrent version and no delete marker of it. Scratch objects are removed even when the
probe is interrupted (SIGINT/SIGTERM/SIGHUP: removed first, then the signal takes its course).

The result is plain JSON (cached by ``checks/store.py``); judging it is not done here.
Why: docs/decisions/107-the-store-probe.md.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tfwrap.aws import clients
from tfwrap.aws.errors import classify, error_code, http_status
from tfwrap.backend.config import BackendConfig

Facts = dict[str, Any]
# Scratch keys: <state key>.tfwrap-probe-<run>-<step>, beside the lock object but not under
# its name, so nothing that lists "<key>.tflock*" (lifecycle rules, tools) ever sees them.
SCRATCH_MARK = ".tfwrap-probe-"
RACERS = 8  # concurrent writers in each race step
_BODY = b"tfwrap conditional-write probe\n"
WRONG_ETAG = '"00000000000000000000000000000000"'
_REFUSED = frozenset({"NotImplemented", "501", "InvalidArgument", "InvalidRequest", "UnsupportedHeader"})
_CHECKSUM_REJECTED = frozenset(
    {"XAmzContentSHA256Mismatch", "BadDigest", "InvalidDigest", "InvalidRequest", "NotImplemented"}
)
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def scratch_prefix(state_key: str) -> str:
    """Where scratch objects live: next to the lock (``tfwrap iam-policy`` allows this prefix)."""
    return state_key + SCRATCH_MARK


class _Stop(BaseException):
    """A stop signal arrived mid-probe: clean up first, then let it take its course."""


class _Answer:
    """What one request got: HTTP status and error code (``status`` 200 and ``code`` "" = ok)."""

    def __init__(self, status: int, code: str = "", etag: str = "") -> None:
        self.status, self.code, self.etag = status, code, etag

    @property
    def ok(self) -> bool:
        return self.status in (200, 204)

    @property
    def precondition_failed(self) -> bool:
        # 409 ConditionalRequestConflict: AWS lost a race to another conditional write.
        return self.status in (412, 409) or self.code in ("PreconditionFailed", "ConditionalRequestConflict")

    @property
    def refused(self) -> bool:
        return self.status == 501 or self.code in _REFUSED

    @property
    def denied(self) -> bool:
        return self.status == 403 or self.code in ("AccessDenied", "AllAccessDisabled")

    def __str__(self) -> str:
        return f"{self.status} {self.code}".strip()


class _Unreachable(Exception):
    """The store stopped answering mid-probe: no verdict."""


class Probe:
    """One probe run against one backend's bucket; ``run()`` returns the facts."""

    def __init__(self, backend: BackendConfig) -> None:
        self.backend = backend
        self.bucket = backend.bucket
        run_id = uuid.uuid4().hex[:12]
        self.keys = {step: f"{scratch_prefix(backend.state_key)}{run_id}-{step}" for step in "abcdef"}
        self.touched: set[str] = set()  # every key a PUT was sent for: all are deleted
        # Every version a write of ours left (a PUT's, a delete marker's): deleted by version ID.
        # A key whose answer never came (an interrupt, a timeout) is in ``touched`` only.
        self.versions: set[tuple[str, str]] = set()
        self.answered: set[str] = set()
        self.requests = 0
        self._count_lock = threading.Lock()
        self._stopped: int | None = None
        self._cleaning = False

    def _count(self, **_: Any) -> None:
        with self._count_lock:
            self.requests += 1

    def _put(self, s3: Any, key: str, body: bytes = _BODY, **params: Any) -> _Answer:
        self.touched.add(key)  # before sending: a stop signal may land before the answer
        try:
            put = s3.put_object(Bucket=self.bucket, Key=key, Body=body, **params)
        except Exception as exc:  # noqa: BLE001 - every answer is a fact (_failed)
            return self._failed(key, exc)
        self._wrote(key, put)
        return _Answer(200, etag=str(put.get("ETag", "")))

    def _delete(self, s3: Any, key: str, **params: Any) -> _Answer:
        try:
            gone = s3.delete_object(Bucket=self.bucket, Key=key, **params)
        except Exception as exc:  # noqa: BLE001 - every answer is a fact (_failed)
            return self._failed(key, exc)
        self._wrote(key, gone)  # a delete marker, on a versioned bucket
        return _Answer(204)

    def _wrote(self, key: str, answer: dict[str, Any]) -> None:
        with self._count_lock:
            self.answered.add(key)
            if answer.get("VersionId"):
                self.versions.add((key, str(answer["VersionId"])))

    def _failed(self, key: str, exc: Exception) -> _Answer:
        response = getattr(exc, "response", None)
        if response is None:
            raise _Unreachable(classify(exc, self.backend.s3_endpoint).detail) from exc
        with self._count_lock:
            self.answered.add(key)
        return _Answer(http_status(exc) or 0, error_code(exc))

    def run(self) -> Facts:
        """Probe the store; never raises for store trouble (it becomes a fact)."""
        started = time.monotonic()
        facts: Facts = {"endpoint": self.backend.s3_endpoint, "bucket": self.bucket, "steps": {}}
        previous = self._trap_signals()
        try:
            session = clients.session(self.backend)
            # One client that sends no checksum unless asked; step 5 asks for the one the SDK
            # adds by default (CRC32 on PutObject), unless the user's setting says when_required.
            plain = clients.client(self.backend, "s3", session, checksums="when_required", retries=False)
            plain.meta.events.register("before-send.s3", self._count)
            default_checksum = session.get_config_variable("request_checksum_calculation") != "when_required"
            facts["setup_seconds"] = round(time.monotonic() - started, 3)
            try:
                self._steps(plain, default_checksum, facts)
            except _Unreachable as exc:
                facts["error"] = str(exc)
            finally:
                self._cleaning = True
                facts["leftover"] = self._clean_up(plain)
        except _Stop:
            pass
        except Exception as exc:  # noqa: BLE001 - profile/role errors: no verdict, said plainly
            facts["error"] = classify(exc, self.backend.s3_endpoint).detail
        finally:
            self._restore(previous)
        facts["requests"] = self.requests
        # The store's part: from the first request to the last delete (client set-up apart).
        facts["seconds"] = round(time.monotonic() - started - facts.get("setup_seconds", 0.0), 3)
        if self._stopped is not None:
            os.kill(os.getpid(), self._stopped)  # the handler is back: the signal takes its course
        return facts

    def _steps(self, plain: Any, default_checksum: bool, facts: Facts) -> None:  # noqa: PLR0912 - one branch per answer
        steps: dict[str, str] = facts["steps"]
        a, b, c, d = (self.keys[s] for s in "abcd")
        first = self._put(plain, a, IfNoneMatch="*")
        steps["create"] = str(first)
        if first.denied:
            self.touched.discard(a)  # nothing was created, and deleting would be denied too
            facts["denied"] = {"action": "s3:PutObject", "key": a}
            return
        if first.refused:
            facts["create_only"] = "unsupported"
        elif not first.ok:
            facts["error"] = f"a create-only PUT got {first}"
            return
        else:
            again = self._put(plain, a, IfNoneMatch="*")
            steps["create_again"] = str(again)
            facts["create_only"] = _judge(again, "honoured", "ignored")
            wrong = self._put(plain, a, IfMatch=WRONG_ETAG)
            steps["if_match_wrong_etag"] = str(wrong)
            missing = self._put(plain, b, IfMatch=WRONG_ETAG)
            steps["if_match_missing_key"] = str(missing)
            missing_ok = missing.status == 404 or missing.code == "NoSuchKey" or missing.precondition_failed
            if wrong.ok:
                facts["if_match"] = "ignored"
            elif missing.ok:
                facts["if_match"] = "creates-missing"
            elif wrong.precondition_failed and missing_ok:
                facts["if_match"] = "honoured"
            else:
                facts["if_match"] = "unsupported" if wrong.refused or missing.refused else "unknown"
            refused = self._delete(plain, a, IfMatch=WRONG_ETAG)
            steps["delete_if_match_wrong_etag"] = str(refused)
            if refused.precondition_failed:
                facts["delete_if_match"] = "honoured"
            elif refused.ok:
                facts["delete_if_match"] = "ignored"  # it removed an object that did not match
            else:
                facts["delete_if_match"] = "unsupported" if refused.refused else "unknown"
            facts["concurrent"] = self._race_creates(plain, c, steps)
            facts["concurrent_if_match"] = self._race_rewrites(plain, self.keys["e"], steps)
        checksum = self._put(plain, d, _BODY, **({"ChecksumAlgorithm": "CRC32"} if default_checksum else {}))
        steps["checksum"] = str(checksum)
        if checksum.ok:
            facts["checksum"] = "accepted"
        elif checksum.code in _CHECKSUM_REJECTED or checksum.status == 501:
            facts["checksum"] = "rejected"
            facts["checksum_error"] = checksum.code or str(checksum.status)
        else:
            facts["checksum"] = "unknown"

    def _race_creates(self, s3: Any, key: str, steps: dict[str, str]) -> str:
        """``RACERS`` create-only PUTs of ``key`` at once: "one-won", or how many won."""
        race = self._all_at_once(lambda: self._put(s3, key, IfNoneMatch="*"))
        steps["create_concurrent"] = _summary(race)
        return _winners(race)

    def _race_rewrites(self, s3: Any, key: str, steps: dict[str, str]) -> str:
        """``RACERS`` ``If-Match`` rewrites of one ETag at once: as a heartbeat and a takeover
        racing for one lock; exactly one must win."""
        first = self._put(s3, key, IfNoneMatch="*")
        if not first.ok or not first.etag:
            steps["if_match_concurrent"] = f"setup {first}"
            return "unknown"
        # Each racer writes its own body: an ETag is the body's MD5, and a rewrite with the same
        # body would keep the ETag the others are conditional on.
        race = self._all_at_once(lambda: self._put(s3, key, _unique_body(), IfMatch=first.etag))
        steps["if_match_concurrent"] = _summary(race)
        return _winners(race)

    @staticmethod
    def _all_at_once(call: Any) -> list[_Answer]:
        barrier = threading.Barrier(RACERS)

        def one(_: int) -> _Answer:
            barrier.wait(10)  # every request sent together: a race, not a queue
            return call()  # type: ignore[no-any-return]

        with ThreadPoolExecutor(RACERS) as pool:  # leaves only when every PUT is done
            return list(pool.map(one, range(RACERS)))

    def _clean_up(self, s3: Any) -> list[str]:
        """Remove every version this run wrote, by version ID; returns the keys that stay.

        A versioned bucket keeps nothing (a delete by key would leave a delete marker); a key
        whose answer never came is looked up by its versions, else deleted by key.
        """
        targets = {(k, v) for k, v in self.versions}
        unversioned = {k for k in self.answered if not any(k == key for key, _ in targets)}
        for key in sorted(self.touched - self.answered):
            try:
                listed = s3.list_object_versions(Bucket=self.bucket, Prefix=key)
                found = [*listed.get("Versions", []), *listed.get("DeleteMarkers", [])]
                targets |= {(o["Key"], o["VersionId"]) for o in found if o["Key"] == key}
            except Exception:  # noqa: BLE001 - no s3:ListBucketVersions: delete by key
                unversioned.add(key)
        objects = [{"Key": k, "VersionId": v} for k, v in sorted(targets)]
        objects += [{"Key": k} for k in sorted(unversioned)]
        if not objects:
            return []
        left = objects
        try:
            answer = s3.delete_objects(Bucket=self.bucket, Delete={"Objects": objects, "Quiet": True})
            failed = {(e["Key"], e.get("VersionId", "")) for e in answer.get("Errors", [])}
            left = [o for o in objects if (o["Key"], o.get("VersionId", "")) in failed]
        except Exception:  # noqa: BLE001, S110 - some stores refuse DeleteObjects: one by one
            pass
        stay = []
        for obj in left:
            try:
                s3.delete_object(Bucket=self.bucket, **obj)
            except Exception:  # noqa: BLE001 - reported as leftover, never raised
                stay.append(obj["Key"])
        return sorted(set(stay))

    def _trap_signals(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}

        def stop(signum: int, _frame: object) -> None:
            if self._stopped is None:
                self._stopped = signum
                if not self._cleaning:
                    raise _Stop

        return {s: signal.signal(s, stop) for s in _STOP_SIGNALS}

    @staticmethod
    def _restore(previous: dict[int, Any]) -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _unique_body() -> bytes:
    return _BODY + uuid.uuid4().hex.encode()


def _summary(race: list[_Answer]) -> str:
    return ", ".join(sorted(map(str, race)))


def _winners(race: list[_Answer]) -> str:
    won = sum(1 for r in race if r.ok)
    return "one-won" if won == 1 else f"{won}-won"


def _judge(answer: _Answer, if_refused_412: str, if_accepted: str) -> str:
    if answer.precondition_failed:
        return if_refused_412
    if answer.ok:
        return if_accepted
    return "unsupported" if answer.refused else "unknown"


def run(backend: BackendConfig) -> Facts:
    """Probe the backend's store now (see the module docstring)."""
    return Probe(backend).run()
