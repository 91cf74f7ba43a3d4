"""The heartbeat never lapses while Terraform lives, and cleanup says what it could not do.

These drive the real heartbeat thread and lock file code against the real S3 API server;
Terraform's side is its log lines, written here (a real Terraform cannot be made to see a
409 or a half-written ``.terraform/terraform.tfstate`` on cue).
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from botocore.credentials import RefreshableCredentials
from botocore.exceptions import ClientError

from tests.support.lockwatch import wait_for
from tests.support.slow import holder_of, read_object, terraform_lock_body
from tests.support.world import make_bucket, s3_client
from tfwrap.aws import clients
from tfwrap.backend.config import BackendConfig
from tfwrap.demo.server import S3Server
from tfwrap.lock.lockfile import S3LockFile
from tfwrap.supervise import cleanup
from tfwrap.supervise import run as supervised
from tfwrap.supervise.heartbeat import Heartbeat, Locks
from tfwrap.supervise.lockevents import LogPlan, LogWatcher
from tfwrap.terraform import commands

STATE_KEY = "app/terraform.tfstate"
LOCK_KEY = STATE_KEY + ".tflock"
LOG = "T [INFO]  backend-s3: {what} remote state (S3 Native only): tf_backend.lock.id={id}\n"


def settings(bucket: str, url: str, **extra: Any) -> dict[str, Any]:
    return {
        "bucket": bucket,
        "key": STATE_KEY,
        "region": "us-east-1",
        "use_lockfile": True,
        "endpoints": {"s3": url, "sts": url},
        "use_path_style": True,
        **extra,
    }


def backend(bucket: str, url: str, **extra: Any) -> BackendConfig:
    return BackendConfig(
        workdir=Path("."),
        data_dir=Path(".terraform"),
        workspace="default",
        backend_type="s3",
        settings=settings(bucket, url, **extra),
    )


def take_lock(s3: Any, bucket: str) -> str:
    """Terraform's acquire, exactly."""
    lock_id = str(uuid.uuid4())
    s3.put_object(
        Bucket=bucket,
        Key=LOCK_KEY,
        Body=terraform_lock_body(lock_id, f"{bucket}/{STATE_KEY}"),
        IfNoneMatch="*",
        ContentType="application/json",
        ChecksumAlgorithm="SHA256",
    )
    return lock_id


class Faulty:
    """An S3 client that answers the next ``faults`` conditional rewrites with ``code``."""

    def __init__(self, real: Any, code: str, status: int) -> None:
        self.real, self.code, self.status = real, code, status
        self.faults = 0
        self.guard = threading.Lock()

    def put_object(self, **params: Any) -> Any:
        with self.guard:
            if "IfMatch" in params and self.faults > 0:
                self.faults -= 1
                error = {"Error": {"Code": self.code, "Message": "injected"}}
                raise ClientError({**error, "ResponseMetadata": {"HTTPStatusCode": self.status}}, "PutObject")
        return self.real.put_object(**params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def heartbeat(tmp_path: Path, connect: Any) -> tuple[Heartbeat, Path]:
    plan = LogPlan({}, str(tmp_path))
    Path(plan.path).write_text("2026-11-28T10:00:00.000Z [INFO]  Terraform version: 1.15.5\n")
    beat = Heartbeat(LogWatcher(plan), connect, interval=1, lease_seconds=3, terraform_pid=os.getpid())
    return beat, Path(plan.path)


def terraform_logs(log: Path, *lines: tuple[str, str]) -> None:
    with log.open("a") as f:
        for what, lock_id in lines:
            f.write(LOG.format(what=what, id=lock_id))


@pytest.mark.parametrize(
    ("code", "status"),
    [("ConditionalRequestConflict", 409), ("PreconditionFailed", 412), ("ServiceUnavailable", 503)],
)
def test_renewal_failures_in_a_row_never_stop_the_heartbeat(
    s3: S3Server, bucket_name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], code: str, status: int
) -> None:
    """Two 409s in a row stopped it for good. A 412 while the lock still carries
    our ID (our own late write) is no different: only a read showing the lock gone ends it."""
    make_bucket(s3.url, bucket_name)
    direct = s3_client(s3.url)
    faulty = Faulty(direct, code, status)
    lock_id = take_lock(direct, bucket_name)
    beat, log = heartbeat(tmp_path, lambda: Locks(S3LockFile(faulty, backend(bucket_name, s3.url)), None))
    beat.start()
    try:
        terraform_logs(log, ("Attempting to lock", lock_id), ("Locked", lock_id))
        first = wait_for(lambda: holder_of(direct, bucket_name, LOCK_KEY), 10, 0.05, "the first heartbeat")
        assert first.tfwrap_pid == os.getpid()
        with faulty.guard:
            faulty.faults = 3
        wait_for(lambda: faulty.faults == 0, 15, 0.05, "the injected failures")
        after = time.time()
        renewed = wait_for(
            lambda: (
                (h := holder_of(direct, bucket_name, LOCK_KEY))
                and h.heartbeat.timestamp() >= int(after)
                and h
            ),
            10,
            0.1,
            "a renewal after the failures",
        )
        assert renewed.tfwrap_pid == os.getpid()
    finally:
        beat.stop()
    err = capsys.readouterr().err
    assert err.count(f"heartbeat failed ({code})") == 1, err  # once per cause, not per back-off
    assert "heartbeat renewed again" in err


class Recorded:
    """An S3 client that records each lock read and write with its outcome, and can fail the
    next ``failing_reads`` reads with a 503."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.calls: list[tuple[str, str]] = []
        self.failing_reads = 0
        self.guard = threading.Lock()

    def get_object(self, **params: Any) -> Any:
        with self.guard:
            if self.failing_reads > 0:
                self.failing_reads -= 1
                self.calls.append(("read", "503"))
                error = {"Error": {"Code": "ServiceUnavailable", "Message": "injected"}}
                raise ClientError({**error, "ResponseMetadata": {"HTTPStatusCode": 503}}, "GetObject")
        try:
            got = self.real.get_object(**params)
        except self.real.exceptions.NoSuchKey:
            self.calls.append(("read", "gone"))
            raise
        self.calls.append(("read", "ok"))
        return got

    def put_object(self, **params: Any) -> Any:
        try:
            put = self.real.put_object(**params)
        except ClientError as exc:
            self.calls.append(("write", str(exc.response.get("Error", {}).get("Code"))))
            raise
        self.calls.append(("write", "ok"))
        return put

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_heartbeat_ends_only_when_a_read_shows_the_lock_gone(
    s3: S3Server, bucket_name: str, tmp_path: Path
) -> None:
    """A refused write does not end it, nor do failed reads: the first read that shows the lock
    gone does, and nothing is written after it."""
    make_bucket(s3.url, bucket_name)
    direct = s3_client(s3.url)
    recorded = Recorded(direct)
    lock_id = take_lock(direct, bucket_name)
    beat, log = heartbeat(tmp_path, lambda: Locks(S3LockFile(recorded, backend(bucket_name, s3.url)), None))
    beat.start()
    try:
        terraform_logs(log, ("Attempting to lock", lock_id), ("Locked", lock_id))
        wait_for(lambda: holder_of(direct, bucket_name, LOCK_KEY), 10, 0.05, "the first heartbeat")
        with recorded.guard:
            recorded.failing_reads = 2  # the store answers the next two reads with a 503
            released_at = len(recorded.calls)
            direct.delete_object(Bucket=bucket_name, Key=LOCK_KEY)  # Terraform's release
        wait_for(lambda: ("read", "gone") in recorded.calls[released_at:], 20, 0.05, "a read showing it gone")
    finally:
        beat.stop()  # joins the heartbeat thread: every call it made is recorded
    after = recorded.calls[released_at:]
    gone = after.index(("read", "gone"))
    refused = [i for i, (op, outcome) in enumerate(after) if op == "write" and outcome != "ok"]
    assert refused and refused[0] < gone, after  # its next renewal was refused: not the end
    assert after[:gone].count(("read", "503")) == 2, after  # failed reads: not the end either
    assert all(op == "read" for op, _ in after[gone:]), after  # gone: never written again
    assert read_object(direct, bucket_name, LOCK_KEY) is None  # never brought back


def test_a_locked_line_for_an_id_never_attempted_is_not_ours(
    s3: S3Server, bucket_name: str, tmp_path: Path
) -> None:
    make_bucket(s3.url, bucket_name)
    direct = s3_client(s3.url)
    theirs = take_lock(direct, bucket_name)
    before = read_object(direct, bucket_name, LOCK_KEY)
    beat, log = heartbeat(tmp_path, lambda: Locks(S3LockFile(direct, backend(bucket_name, s3.url)), None))
    beat.start()
    try:
        terraform_logs(log, ("Attempting to lock", str(uuid.uuid4())), ("Locked", theirs))
        time.sleep(1.5)
    finally:
        beat.stop()
    assert beat.locked == "" and read_object(direct, bucket_name, LOCK_KEY) == before


def test_heartbeat_retries_a_backend_configuration_read_mid_rewrite(
    s3: S3Server, bucket_name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The heartbeat read ``.terraform/terraform.tfstate`` while Terraform
    rewrote it (a plan does, to update the backend hash it stored) and gave up for the run."""
    make_bucket(s3.url, bucket_name)
    direct = s3_client(s3.url)
    lock_id = take_lock(direct, bucket_name)
    work = tmp_path / "work"
    (work / ".terraform").mkdir(parents=True)
    initialised = work / ".terraform" / "terraform.tfstate"
    whole = json.dumps({"version": 3, "backend": {"type": "s3", "config": settings(bucket_name, s3.url)}})
    initialised.write_text(whole[: len(whole) // 2])  # caught half-written
    plan = commands.parse([f"-chdir={work}", "plan"])
    beat, log = heartbeat(tmp_path, lambda: supervised._connect(plan))
    beat.start()
    try:
        terraform_logs(log, ("Attempting to lock", lock_id), ("Locked", lock_id))
        wait_for(lambda: beat.connect_error, 10, 0.05, "a failed connection")
        time.sleep(1.5)
        initialised.write_text(whole)  # the rewrite completes
        holder = wait_for(lambda: holder_of(direct, bucket_name, LOCK_KEY), 10, 0.05, "a heartbeat")
        assert holder.tfwrap_pid == os.getpid()
    finally:
        beat.stop()
    err = capsys.readouterr().err
    assert "heartbeat not running yet: cannot read the backend configuration" in err, err
    assert "cannot reach" not in err and "heartbeat disabled" not in err
    assert "heartbeat connected to the backend" in err


def test_assumed_role_credentials_are_refreshed(s3: S3Server, bucket_name: str) -> None:
    """Fixed credentials from one AssumeRole expired mid-run. A 15-minute session
    is inside botocore's refresh window from the start, so every use renews it."""
    make_bucket(s3.url, bucket_name)
    role = {"role_arn": "arn:aws:iam::123456789012:role/terraform", "duration": "15m"}
    config = backend(bucket_name, s3.url, assume_role=role)
    session = clients.session(config)
    creds = session.get_credentials()
    assert isinstance(creds, RefreshableCredentials)
    first = creds.get_frozen_credentials().access_key
    second = creds.get_frozen_credentials().access_key
    assert first != second, "AssumeRole was not called again"
    lockfile = S3LockFile(clients.client(config, "s3", session), config)
    assert lockfile.read() is None  # the refreshed credentials work


def test_only_the_fast_check_goes_without_retries(s3: S3Server, bucket_name: str) -> None:
    config = backend(bucket_name, s3.url)
    fast = clients.client(config, "s3", retries=False).meta.config.retries
    patient = clients.client(config, "s3").meta.config.retries  # cleanup, migrate, bootstrap
    assert fast is not None and fast["total_max_attempts"] == 1
    assert patient is not None and patient["total_max_attempts"] > 1


class Stub:
    """What ``_clean_up`` reads of a finished heartbeat."""

    def __init__(
        self, locks: Locks | None, attempted: str, locked: str = "", connect_error: str = ""
    ) -> None:
        self.locks, self.attempted, self.locked = locks, attempted, locked
        self.unlocked = False
        self.connect_error = connect_error


def test_cleanup_says_when_it_could_not_reach_the_lock(capsys: pytest.CaptureFixture[str]) -> None:
    lock_id = str(uuid.uuid4())
    stub: Any = Stub(None, lock_id, lock_id, "cannot reach the backend (EndpointConnectionError)")
    assert cleanup.clean_up(stub, 137) == ""
    err = capsys.readouterr().err
    assert f"could not check whether Terraform left its lock {lock_id} behind" in err
    assert "EndpointConnectionError" in err and f"tfwrap lock clear --id {lock_id}" in err


class LateWrite:
    """An S3 client under which a late heartbeat write lands right after each of the first
    ``late`` reads: the lock keeps its ID, its ETag moves."""

    def __init__(self, real: Any, bucket: str, late: int) -> None:
        self.real, self.bucket, self.late = real, bucket, late

    def get_object(self, **params: Any) -> Any:
        got = self.real.get_object(**params)
        if self.late > 0:
            self.late -= 1
            body = got["Body"].read()
            fields = json.loads(body)
            fields["Info"] = f"late write {self.late}"
            self.real.put_object(Bucket=self.bucket, Key=LOCK_KEY, Body=json.dumps(fields).encode())
            got = {**got, "Body": _Body(body)}
        return got

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def read(self) -> bytes:
        return self.data


def test_cleanup_tells_not_ours_from_ours_under_a_late_write(
    s3: S3Server, bucket_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    make_bucket(s3.url, bucket_name)
    direct = s3_client(s3.url)
    config = backend(bucket_name, s3.url)
    ours = take_lock(direct, bucket_name)

    # Ours, its ETag moved once under a late write: re-read and removed.
    once: Any = Stub(Locks(S3LockFile(LateWrite(direct, bucket_name, 1), config), None), ours, ours)
    assert cleanup.clean_up(once, 1) == ""
    assert read_object(direct, bucket_name, LOCK_KEY) is None
    assert f"removed its lock {ours} from S3" in capsys.readouterr().err

    # Ours, but it keeps moving: left, and said, with the command that finishes the job.
    ours = take_lock(direct, bucket_name)
    always: Any = Stub(Locks(S3LockFile(LateWrite(direct, bucket_name, 9), config), None), ours, ours)
    cleanup.clean_up(always, 1)
    assert read_object(direct, bucket_name, LOCK_KEY) is not None
    assert f"Terraform's lock {ours} in S3 kept changing" in capsys.readouterr().err
    direct.delete_object(Bucket=bucket_name, Key=LOCK_KEY)

    # Not ours: another run's lock is there; left alone, and said (Terraform claimed to hold one).
    theirs = take_lock(direct, bucket_name)
    before = read_object(direct, bucket_name, LOCK_KEY)
    mine = str(uuid.uuid4())
    other: Any = Stub(Locks(S3LockFile(direct, config), None), mine, mine)
    cleanup.clean_up(other, 1)
    assert read_object(direct, bucket_name, LOCK_KEY) == before
    err = capsys.readouterr().err
    assert "another run's, left alone" in err and theirs not in err

    # The retry orphan: refused by its own attempt, removed, and reported as such.
    orphan: Any = Stub(Locks(S3LockFile(direct, config), None), theirs)
    assert cleanup.clean_up(orphan, 1) == cleanup.SELF_ORPHAN
    assert read_object(direct, bucket_name, LOCK_KEY) is None
