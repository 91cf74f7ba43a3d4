"""A small world for end-to-end tests: a loopback S3 server, buckets, configurations."""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from tfwrap.supervise.lockevents import parse_line

_made = threading.Lock()  # boto3's default session is not safe to build clients from at once


@functools.cache
def _client(service: str, url: str) -> Any:
    # One per server: tests poll the store every few milliseconds, and a new client costs
    # 5-7 ms of CPU each time. Every test has the same fake credentials (conftest.isolated).
    with _made:
        return boto3.client(service, endpoint_url=url, region_name="us-east-1")


def s3_client(url: str) -> Any:
    return _client("s3", url)


def ddb_client(url: str) -> Any:
    return _client("dynamodb", url)


def make_table(url: str, name: str) -> str:
    """A DynamoDB lock table as Terraform expects it (hash key LockID)."""
    ddb_client(url).create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return name


def make_bucket(
    url: str,
    name: str,
    *,
    versioning: bool = True,
    object_lock: bool = True,
    encryption: bool = True,
    public_access_block: bool = True,
    retention: dict[str, Any] | None = None,
    access_logging: bool = True,
) -> str:
    """Create a bucket with exactly the settings asked for (the standard by default)."""
    s3 = s3_client(url)
    if object_lock:
        s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
        if retention:
            s3.put_object_lock_configuration(
                Bucket=name,
                ObjectLockConfiguration={
                    "ObjectLockEnabled": "Enabled",
                    "Rule": {"DefaultRetention": retention},
                },
            )
    else:
        s3.create_bucket(Bucket=name)
        if versioning:
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    if not versioning and object_lock:
        raise ValueError("Object Lock implies versioning")
    if encryption:
        s3.put_bucket_encryption(
            Bucket=name,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
        )
    if public_access_block:
        s3.put_public_access_block(
            Bucket=name,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )
    if access_logging:
        enable_logging(url, name)
    return name


def enable_logging(url: str, name: str) -> str:
    """Server access logging to ``<name>-logs``, with the log delivery policy S3 requires."""
    s3 = s3_client(url)
    logs = f"{name}-logs"
    s3.create_bucket(Bucket=logs)
    s3.put_bucket_policy(
        Bucket=logs,
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "S3ServerAccessLogsPolicy",
                        "Effect": "Allow",
                        "Principal": {"Service": "logging.s3.amazonaws.com"},
                        "Action": "s3:PutObject",
                        "Resource": f"arn:aws:s3:::{logs}/*",
                    }
                ],
            }
        ),
    )
    s3.put_bucket_logging(
        Bucket=name,
        BucketLoggingStatus={"LoggingEnabled": {"TargetBucket": logs, "TargetPrefix": "s3/"}},
    )
    return logs


def backend_block(url: str, bucket: str, key: str = "app/terraform.tfstate", **extra: Any) -> str:
    """A ``terraform { backend "s3" {...} }`` block pointed at the loopback server."""
    settings = {"use_lockfile": True, **extra}
    lines = [f"    {k} = {_hcl(v)}" for k, v in settings.items() if v is not None]
    body = "\n".join(lines)
    return textwrap.dedent(
        f"""\
        terraform {{
          backend "s3" {{
            bucket = "{bucket}"
            key    = "{key}"
            region = "us-east-1"
        {body}
            endpoints = {{ s3 = "{url}", dynamodb = "{url}" }}
            use_path_style              = true
            skip_credentials_validation = true
            skip_requesting_account_id  = true
            skip_metadata_api_check     = true
          }}
        }}
        """
    )


def _hcl(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return f'"{value}"'


RESOURCE = """
resource "terraform_data" "example" {
  input = var.message
}
variable "message" {
  type    = string
  default = "hello"
}
output "message" {
  value = terraform_data.example.output
}
"""


def write_config(directory: Path, url: str, bucket: str, *, resource: str = RESOURCE, **extra: Any) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "backend.tf").write_text(backend_block(url, bucket, **extra))
    (directory / "main.tf").write_text(resource)
    return directory


@dataclass
class Tools:
    """Where the shim and the real engine live, and the PATH that puts the shim first."""

    shim_dir: Path
    engine: Path  # the real terraform (1.15.5)
    engine_old: Path  # a real terraform 1.9.8

    def path(self, *first: Path) -> str:
        dirs = [*map(str, first), str(self.shim_dir), str(self.engine.parent), "/usr/bin", "/bin"]
        return os.pathsep.join(dirs)


def run(
    args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 120, **kw: Any
) -> subprocess.CompletedProcess[str]:
    """Run a command (``terraform`` resolves through PATH, so through the shim)."""
    return subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False, **kw
    )


HOLDER = re.compile(r"^\s*ID:\s+([0-9a-fA-F-]{36})\s*$", re.MULTILINE)


def _own_orphan(log: Path, stderr: str) -> str:
    """The lock ID a run failed against when that lock was its own (the orphan case: the ID is
    among the run's "Attempting to lock" lines), else ""."""
    holder = HOLDER.search(stderr) if "Error acquiring the state lock" in stderr else None
    if not holder:
        return ""
    lines = log.read_text().splitlines() if log.exists() else []
    attempts = {e.lock_id for e in map(parse_line, lines) if e and e.kind == "attempt"}
    return holder.group(1) if holder.group(1) in attempts else ""


def _clear(lock_id: str, work: Path, env: dict[str, str]) -> None:
    cleared = run(["tfwrap", "lock", "clear", "--id", lock_id, "--yes", "-chdir", str(work)], work, env)
    assert cleared.returncode == 0, (cleared.returncode, cleared.stderr)


def holding(
    tools: Tools, work: Path, env: dict[str, str], *args: str, timeout: float = 60
) -> subprocess.Popen[str]:
    """The real Terraform, directly, started to hold its state lock (a gated provisioner keeps
    it): returned once its log says "Locked", never while a lock it does not hold is there.

    A run that failed against its own orphaned lock (see ``engine``) is cleared and started
    again, three tries at most; any other failure before "Locked" fails the test.
    """
    log = work.parent / f".{work.name}-holder.log"
    logged = {**env, "TF_LOG_CORE": "INFO", "TF_LOG_PATH": str(log)}
    for _ in range(3):
        log.unlink(missing_ok=True)
        pipe = subprocess.PIPE
        proc = subprocess.Popen(
            [str(tools.engine), *args], cwd=work, env=logged, stdout=pipe, stderr=pipe, text=True
        )
        deadline = time.monotonic() + timeout
        while proc.poll() is None:
            lines = log.read_text().splitlines() if log.exists() else []
            if any(e and e.kind == "locked" for e in map(parse_line, lines)):
                return proc
            if time.monotonic() > deadline:
                proc.kill()
                proc.communicate()
                raise AssertionError(f"Terraform did not take its state lock within {timeout:.0f} s")
            time.sleep(0.05)
        out, err = proc.communicate()
        orphan = _own_orphan(log, err)
        assert orphan, f"Terraform exited {proc.returncode} before taking its state lock:\n{out}\n{err}"
        _clear(orphan, work, env)
    raise AssertionError("Terraform failed against its own orphaned lock three times in a row")


def engine(tools: Tools, work: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The real Terraform, directly (not through the shim), in a test where nothing contends.

    Under load the SDK can retry a lock write whose first try succeeded; the retry is refused
    by that very lock and the run fails "holding" its own lock (DOMAIN.md, the known orphan
    case; seen here with the DynamoDB item). Such a lock (its ID among this run's "Attempting
    to lock" lines) is removed and the command run again, three tries at most.
    """
    log = work.parent / f".{work.name}-engine.log"
    logged = {**env, "TF_LOG_CORE": "INFO", "TF_LOG_PATH": str(log)}
    for _ in range(3):  # seen twice in a row on a loaded machine: each time cleared and run again
        log.unlink(missing_ok=True)
        result = run([str(tools.engine), *args], work, logged)
        orphan = _own_orphan(log, result.stderr)
        if not orphan:
            break  # done, or another run's lock: not this helper's to clear
        _clear(orphan, work, env)
    return result
