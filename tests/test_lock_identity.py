"""Which lock is ours, end to end: the SDK's retry orphan is removed and the run retried once
, and a TF_LOG_PATH shared by two runs never makes one take the other's lock
for its own."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from tests.support.faultproxy import DYNAMODB_LOCK, FaultProxy
from tests.support.lockwatch import SLOW, wait_for
from tests.support.slow import Drained, read_object, terraform_lock_body
from tests.support.world import ddb_client, make_bucket, make_table, run, s3_client, write_config
from tfwrap.demo.server import S3Server
from tfwrap.lock import info as lockinfo

pytestmark = [pytest.mark.engine, pytest.mark.shim]
STATE_KEY = "app/terraform.tfstate"
LOCK_KEY = STATE_KEY + ".tflock"
APPLY = ["terraform", "apply", "-auto-approve", "-no-color", "-input=false"]
QUICK = """
resource "terraform_data" "tick" {
  triggers_replace = timestamp()
}
"""


def init(work: Path, env: dict[str, str]) -> Path:
    done = run(["terraform", "init", "-no-color", "-input=false"], work, env)
    assert done.returncode == 0, done.stderr
    return work


def serial(s3: Any, bucket: str) -> int:
    found = read_object(s3, bucket, STATE_KEY)
    return int(json.loads(found[0])["serial"]) if found else 0


def lock_fields(s3: Any, bucket: str) -> dict[str, Any] | None:
    found = read_object(s3, bucket, LOCK_KEY)
    return json.loads(found[0]) if found else None


def attempts(log: Path) -> int:
    return log.read_text().count("Attempting to lock remote state") if log.exists() else 0


def family(pid: int) -> set[int]:
    """A running tfwrap and its children (the keeper that writes its heartbeat, Terraform)."""
    import psutil

    return {pid, *(child.pid for child in psutil.Process(pid).children())}


def start(argv: list[str], work: Path, env: dict[str, str]) -> Drained:
    return Drained(
        subprocess.Popen(
            argv, cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
    )


def test_a_lock_refused_by_its_own_retried_write_is_removed_and_the_run_retried(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tf_direct: str
) -> None:
    make_bucket(s3.url, bucket_name)
    direct = s3_client(s3.url)
    with FaultProxy(s3.url) as proxy:  # Terraform and tfwrap reach S3 through it
        work = init(write_config(tmp_path / "work", proxy.url, bucket_name, resource=QUICK), env)
        assert run(APPLY, work, env).returncode == 0
        before = serial(direct, bucket_name)

        # Without tfwrap: the run fails with "lock held" by its own ID and leaves the lock.
        proxy.arm()
        bare = run([tf_direct, *APPLY[1:]], work, env)
        assert proxy.dropped.is_set(), "the proxy dropped no answer: the scenario did not happen"
        assert bare.returncode == 1 and "Error acquiring the state lock" in bare.stderr, bare.stderr
        orphan = read_object(direct, bucket_name, LOCK_KEY)
        assert orphan is not None and json.loads(orphan[0])["ID"] in bare.stderr  # refused by itself
        direct.delete_object(Bucket=bucket_name, Key=LOCK_KEY)

        # Through tfwrap: no -lock-timeout, yet the run goes through, said on stderr. With
        # TF_LOG on stderr, each attempt's log is shown once (a retry re-read the
        # previous attempt's log).
        proxy.dropped.clear()
        proxy.arm()
        done = run(APPLY, work, {**env, "TF_LOG": "INFO"})
        assert proxy.dropped.is_set()
    print(done.stderr)
    assert done.stderr.count("CLI args:") == 2, "two attempts, each attempt's log once"
    assert done.returncode == 0, done.stderr
    assert "Error acquiring the state lock" in done.stderr  # Terraform's first try did fail
    assert "refused by its own earlier attempt; removed its lock" in done.stderr
    assert "running Terraform once more" in done.stderr
    assert done.stdout.count("Apply complete!") == 1
    assert serial(direct, bucket_name) == before + 1  # one apply, not two
    assert read_object(direct, bucket_name, LOCK_KEY) is None


def test_a_dynamodb_lock_refused_by_its_own_retried_write_is_removed_and_the_run_retried(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str]
) -> None:
    """The case seen in the suite: dual locking, the SDK retried the lock item's
    PutItem and ConditionalCheckFailed came back against the run's own item."""
    make_bucket(s3.url, bucket_name)
    table = make_table(s3.url, f"{bucket_name}-locks")
    direct, ddb = s3_client(s3.url), ddb_client(s3.url)
    with FaultProxy(s3.url) as proxy:
        work = write_config(tmp_path / "work", proxy.url, bucket_name, resource=QUICK, dynamodb_table=table)
        init(work, env)
        proxy.arm(DYNAMODB_LOCK)
        done = run(APPLY, work, env)
        assert proxy.dropped.is_set(), "the proxy dropped no answer: the scenario did not happen"
    print(done.stderr)
    assert done.returncode == 0, done.stderr
    assert "Error acquiring the state lock" in done.stderr
    assert "removed its lock" in done.stderr and "from DynamoDB" in done.stderr
    assert "running Terraform once more" in done.stderr
    assert read_object(direct, bucket_name, LOCK_KEY) is None
    key = {"LockID": {"S": f"{bucket_name}/{STATE_KEY}"}}
    assert "Item" not in ddb.get_item(TableName=table, Key=key, ConsistentRead=True)


def test_a_shared_tf_log_path_never_makes_another_runs_lock_ours(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str]
) -> None:
    """Run A waits with -lock-timeout; run B starts as the blocker goes, and one of them takes
    the lock while the other waits; both log to one TF_LOG_PATH, as a CI job-wide setting or
    terragrunt run-all does (A once took B's "Locked" line for its own, rewrote B's Info and
    removed B's lock). Every version of the lock object (the bucket is versioned) must carry
    only its own run's heartbeat, and nobody removes anything."""
    shared = tmp_path / "terraform.log"
    logged = {**env, "TFWRAP_HEARTBEAT_SECONDS": "1", "TF_LOG": "INFO", "TF_LOG_PATH": str(shared)}
    make_bucket(s3.url, bucket_name)
    direct = s3_client(s3.url)
    first = init(write_config(tmp_path / "b", s3.url, bucket_name, resource=SLOW % 4), env)
    second = Path(shutil.copytree(first, tmp_path / "a", symlinks=True))
    blocker = str(uuid.uuid4())
    direct.put_object(  # someone holds the lock when A starts
        Bucket=bucket_name,
        Key=LOCK_KEY,
        Body=terraform_lock_body(blocker, f"{bucket_name}/{STATE_KEY}", who="someone@elsewhere"),
        IfNoneMatch="*",
        ContentType="application/json",
    )
    # A plans, B applies: the lock's Operation tells whose it is, whatever its Info says.
    a = start(["terraform", "plan", "-no-color", "-input=false", "-lock-timeout=90s"], second, logged)
    try:
        # Terraform retries a held lock after 1, 2, 4, 8 s: after its 4th refusal (~7 s in) A
        # sleeps ~8 s, the window in which B takes the lock.
        wait_for(lambda: attempts(shared) >= 4, 60, 0.05, "A's fourth attempt")
        # The heartbeat's writer is each run's keeper, a child of its tfwrap.
        a_family = family(a.proc.pid)
        time.sleep(0.5)  # its refusal complete: a release during its read is a race of its own
        direct.delete_object(Bucket=bucket_name, Key=LOCK_KEY)
        # B waits too if A's wait is handed off first (tfwrap retries a released lock at once,
        # docs/decisions/023-handoff.md): whichever takes the lock, the other waits for it.
        b = start([*APPLY, "-lock-timeout=90s"], first, logged)
        try:
            taken = wait_for(lambda: lock_fields(direct, bucket_name), 30, 0.02, "a new lock")
            first_lock = taken["ID"]
            # A keeper per Terraform run: sampled twice, after a handoff's retry has its own.
            a_family |= family(a.proc.pid)
            b_family = family(b.proc.pid)
            time.sleep(1)
            a_family |= family(a.proc.pid) if a.proc.poll() is None else set()
            b_family |= family(b.proc.pid) if b.proc.poll() is None else set()
        finally:
            b_code = b.wait(timeout=120)
    finally:
        a_code = a.wait(timeout=120)
    print(f"A stderr:\n{a.err}\nB stderr:\n{b.err}")
    assert (a_code, b_code) == (0, 0)
    assert "Apply complete!" in b.out and "Plan:" in a.out
    assert "removed its lock" not in a.err + b.err  # each released its own; nobody else's
    # A plans, B applies: the lock's Operation tells whose it is, whatever its Info says.
    b_won = taken["Operation"] == "OperationTypeApply"
    winner, loser = (b_family, a_family) if b_won else (a_family, b_family)

    pids: dict[str, set[int]] = defaultdict(set)  # lock ID -> tfwrap pids in its heartbeats
    versions = direct.list_object_versions(Bucket=bucket_name, Prefix=LOCK_KEY).get("Versions", [])
    for version in versions:
        body = direct.get_object(Bucket=bucket_name, Key=LOCK_KEY, VersionId=version["VersionId"])["Body"]
        fields = json.loads(body.read())
        holder = lockinfo.parse(str(fields.get("Info", "")))
        if holder is not None:
            pids[fields["ID"]].add(holder.tfwrap_pid)
    # Nobody but the first holder ever wrote its lock (whether its own niced heartbeat got to it
    # in time on a loaded box is another matter: the benchmark measures it), nor anyone but the
    # waiter the waiter's.
    assert pids[first_lock] <= winner, f"the first lock was annotated by another run: {dict(pids)}"
    assert not pids[first_lock] & loser, f"the waiter annotated the first holder's lock: {dict(pids)}"
    assert not any(found & winner for lock_id, found in pids.items() if lock_id != first_lock), dict(pids)

    # The user's log still works: every line once (no attempt copied twice), both runs in it.
    text = shared.read_text()
    locked = [line for line in text.splitlines() if "Locked remote state" in line]
    assert len(locked) == 2 and any(first_lock in line for line in locked), locked
    # A's wait may have been handed off (retried at once when the blocker went): one more
    # Terraform run, its own lines; a line copied twice shows as the same stamped line twice.
    starts = [line for line in text.splitlines() if "Terraform version:" in line]
    assert len(starts) >= 2 and len(starts) == len(set(starts)), "a run's log lines were copied twice"


def test_user_log_on_stderr_still_relayed_once(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tf_direct: str
) -> None:
    """TF_LOG without TF_LOG_PATH: Terraform logs to stderr, so tfwrap relays its private log
    there, each line once, without the INFO lines it asked for itself."""
    make_bucket(s3.url, bucket_name)
    work = init(write_config(tmp_path / "work", s3.url, bucket_name, resource=QUICK), env)
    debug = {**env, "TF_LOG": "DEBUG"}
    bare = run([tf_direct, *APPLY[1:]], work, debug)
    done = run(APPLY, work, debug)
    assert (bare.returncode, done.returncode) == (0, 0), done.stderr
    assert bare.stderr.count("Terraform version:") == 1  # what direct Terraform shows
    assert done.stderr.count("Terraform version:") == 1, done.stderr
    assert "[DEBUG]" in done.stderr and "Locked remote state" in done.stderr
    quiet = run(APPLY, work, {**env, "TF_LOG": "ERROR"})
    assert quiet.returncode == 0, quiet.stderr
    assert "[INFO]" not in quiet.stderr  # the INFO lines tfwrap asked for itself stay private
