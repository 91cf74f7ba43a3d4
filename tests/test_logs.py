"""Logs: structlog on stderr, JSON lines on request, quiet by default, never a secret."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.world import make_bucket, run, write_config
from tfwrap.demo.server import S3Server


def test_json_logs_on_stderr_without_secrets_and_quiet_by_default(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str]
) -> None:
    make_bucket(s3.url, bucket_name)
    work = write_config(
        tmp_path / "work",
        s3.url,
        bucket_name,
        access_key="AKIAINCONFIG",
        secret_key="in-config-secret",  # noqa: S106 - a fake, to prove it is never shown
    )
    quiet = run(["terraform", "init", "-no-color"], work, env)
    assert quiet.returncode == 0 and "tfwrap" not in quiet.stderr
    noisy = {**env, "TFWRAP_LOG_LEVEL": "debug", "TFWRAP_LOG_FORMAT": "json", "TFWRAP_NO_CACHE": "1"}
    result = run(["terraform", "plan", "-no-color"], work, noisy)
    assert result.returncode == 0, result.stderr
    events = [json.loads(ln) for ln in result.stderr.splitlines() if ln.startswith("{")]
    names = {e["event"] for e in events}
    assert {"check cache miss", "checked backend"} <= names
    checked = next(e for e in events if e["event"] == "checked backend")
    assert checked["bucket"] == bucket_name and checked["blocked"] is False and checked["level"] == "info"
    everything = result.stderr + result.stdout
    for secret in ("in-config-secret", env["AWS_SECRET_ACCESS_KEY"]):
        assert secret not in everything
    cached = {k: v for k, v in noisy.items() if k != "TFWRAP_NO_CACHE"}
    warm = run(["terraform", "output", "-no-color"], work, cached)
    assert any(
        json.loads(ln)["event"] == "check cache hit" for ln in warm.stderr.splitlines() if ln.startswith("{")
    )
