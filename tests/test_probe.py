"""The conditional-write probe: the S3 API server, and a fault proxy in front of it
playing each kind of S3-compatible store; the guard's decisions through the installed shim
and the real Terraform engine; the danger itself; cleanup when the probe is interrupted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.faultproxy import FaultProxy
from tests.support.gate import Gate
from tests.support.world import make_bucket, run, s3_client, write_config
from tfwrap.aws.probe import SCRATCH_MARK
from tfwrap.backend.config import BackendConfig
from tfwrap.checks import store
from tfwrap.demo.server import S3Server

pytestmark = [pytest.mark.engine, pytest.mark.shim]

QUIET = ["-no-color", "-input=false"]
KEY = "app/terraform.tfstate"
# An apply that holds the lock long enough for a second run to try to take it.
SLOW = """
resource "terraform_data" "slow" {
  triggers_replace = timestamp()
  provisioner "local-exec" {
    command = "sleep %d"
  }
}
"""


def scratch_keys(url: str, bucket: str) -> list[str]:
    """The probe's scratch objects left (the shared verdict is kept on purpose)."""
    listed = s3_client(url).list_objects_v2(Bucket=bucket).get("Contents", [])
    return [
        o["Key"] for o in listed if SCRATCH_MARK in o["Key"] and not o["Key"].endswith(store.SHARED_SUFFIX)
    ]


def check_probe(work: Path, env: dict[str, str]) -> dict[str, Any]:
    result = run(["tfwrap", "check", "--probe", "--json", "-chdir", str(work)], work, env)
    assert result.returncode in (0, 80), result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def ids(report: dict[str, Any]) -> dict[str, str]:
    return {f["id"]: f["severity"] for f in report["findings"]}


def probe_puts(proxy: FaultProxy) -> int:
    return sum(1 for m, path, _ in proxy.requests if m == "PUT" and SCRATCH_MARK in path)


def test_the_s3_api_server_honours_conditional_writes(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str]
) -> None:
    make_bucket(s3.url, bucket_name)
    work = write_config(tmp_path / "work", s3.url, bucket_name)
    report = check_probe(work, env)
    facts = report["probe"]
    assert facts["create_only"] == "honoured" and facts["if_match"] == "honoured"
    # The suite's moto serves one request at a time (tfwrap/demo/server.py): atomic, as AWS.
    assert facts["concurrent"] == "one-won" and facts["concurrent_if_match"] == "one-won"
    assert facts["delete_if_match"] == "honoured" and facts["checksum"] == "accepted"
    assert facts["steps"]["create_again"].startswith("412")
    assert facts["steps"]["if_match_missing_key"].startswith(("404", "412"))
    assert facts["steps"]["delete_if_match_wrong_etag"].startswith("412")
    assert facts["requests"] <= 24 and facts["leftover"] == []
    assert report["findings"] == [] and report["blocked"] is False
    assert scratch_keys(s3.url, bucket_name) == []
    # Deleted by version ID: the versioned bucket keeps no noncurrent version, no delete marker.
    listed = s3_client(s3.url).list_object_versions(Bucket=bucket_name)
    left = [v["Key"] for v in [*listed.get("Versions", []), *listed.get("DeleteMarkers", [])]]
    assert [k for k in left if SCRATCH_MARK in k and not k.endswith(store.SHARED_SUFFIX)] == []


# mode -> (finding, severity, guard stops the run)
MODES = {
    "strip": ("conditional-writes-ignored", "error", True),
    "refuse": ("conditional-writes-unsupported", "error", True),
    "if-match-creates": ("if-match-unreliable", "warning", False),
    "reject-checksums": ("checksum-unsupported", "warning", False),
    "delete-unconditional": ("delete-conditions-ignored", "warning", False),
    "racy": ("conditional-writes-racy", "warning", False),
}


@pytest.mark.parametrize("mode", list(MODES))
def test_each_store_behaviour_gives_its_finding_and_the_guard_acts(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], mode: str
) -> None:
    finding, severity, stops = MODES[mode]
    make_bucket(s3.url, bucket_name)
    with FaultProxy(s3.url, mode) as proxy:
        work = write_config(tmp_path / "work", proxy.url, bucket_name)
        # The guard probes by itself: a custom endpoint, nothing cached.
        init = run(["terraform", "init", *QUIET], work, env)
        assert probe_puts(proxy) >= 1, "the guard did not probe the store"
        line = next((ln for ln in init.stderr.splitlines() if f"[{finding}]" in ln), "")
        assert line.startswith(f"tfwrap: {severity} [{finding}]") and "fix:" in line, init.stderr
        if stops:
            assert init.returncode == 80, init.stderr
            assert not (work / ".terraform").exists()  # Terraform never started
        else:
            assert init.returncode == 0, init.stderr
            assert "Terraform has been successfully initialized" in init.stdout
        assert scratch_keys(s3.url, bucket_name) == []
        # `tfwrap check --probe` asks again and says the same.
        report = check_probe(work, env)
        assert ids(report).get(finding) == severity, report
        assert report["probe"]["leftover"] == []
    if mode == "strip":  # the store also ignores If-Match
        assert ids(report).get("if-match-unreliable") == "warning"


def test_checksum_fix_clears_the_finding(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str]
) -> None:
    """The fix the finding names (when_required checksums) is what the probe then sees pass."""
    make_bucket(s3.url, bucket_name)
    with FaultProxy(s3.url, "reject-checksums") as proxy:
        work = write_config(tmp_path / "work", proxy.url, bucket_name)
        assert "checksum-unsupported" in ids(check_probe(work, env))
        fixed = {
            **env,
            "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
            "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required",
        }
        report = check_probe(work, fixed)
    assert report["probe"]["checksum"] == "accepted" and report["findings"] == []


def test_a_store_without_an_api_is_told_apart_from_a_missing_permission(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str]
) -> None:
    """A store that answers 501 NotImplemented to GetBucketPolicy (s3rver): the guard's finding
    says the store lacks the API and how to silence it, never to grant a permission."""
    make_bucket(s3.url, bucket_name)
    with FaultProxy(s3.url, "lacks-apis") as proxy:
        work = write_config(tmp_path / "work", proxy.url, bucket_name)
        init = run(["terraform", "init", *QUIET], work, env)
    assert init.returncode == 0, init.stderr
    line = next((ln for ln in init.stderr.splitlines() if "[check-failed]" in ln), "")
    assert f"{proxy.url} does not implement s3:GetBucketPolicy (NotImplemented)" in line, init.stderr
    assert (
        'nothing to grant: this store lacks the API; if that is expected, set severity.check-failed = "off"'
        in line
    )
    assert "grant s3:" not in line and "the policy of bucket" in line


def test_probe_is_cached_per_endpoint_bucket_and_identity_never_on_the_warm_path(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str]
) -> None:
    make_bucket(s3.url, bucket_name)
    with FaultProxy(s3.url, "pass") as proxy:
        work = write_config(tmp_path / "work", proxy.url, bucket_name)
        assert run(["terraform", "init", *QUIET], work, env).returncode == 0
        first = probe_puts(proxy)
        assert 1 <= first <= 24
        assert run(["terraform", "plan", *QUIET], work, env).returncode == 0  # warm
        # A verdict that is always stale: the guard runs again, the day-long probe verdict holds.
        (work / ".tfwrap.toml").write_text("cache_ttl_seconds = 0\n")
        assert run(["terraform", "plan", *QUIET], work, env).returncode == 0
        assert probe_puts(proxy) == first
        # Another identity has no verdict of its own: it reads the store's verdict that the
        # first left in the bucket (a verdict on the store, not on who asks)...
        other = {**env, "AWS_ACCESS_KEY_ID": "AKIAOTHEROTHEROTHER0"}
        assert run(["terraform", "plan", *QUIET], work, other).returncode == 0
        assert probe_puts(proxy) == first
        # ...and probes itself when there is none.
        s3_client(s3.url).delete_object(Bucket=bucket_name, Key=KEY + store.SHARED_SUFFIX)
        third = {**env, "AWS_ACCESS_KEY_ID": "AKIATHIRDTHIRDTHIRD0"}
        assert run(["terraform", "plan", *QUIET], work, third).returncode == 0
        assert probe_puts(proxy) == 2 * first


def test_aws_own_endpoint_is_not_probed_by_the_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    for url in (None, "https://s3.eu-west-1.amazonaws.com", "s3.cn-north-1.amazonaws.com.cn"):
        assert store.is_aws_endpoint(url)
    for url in (
        "http://127.0.0.1:9000",
        "https://fsn1.your-objectstorage.com",
        "https://x.r2.cloudflarestorage.com",
    ):
        assert not store.is_aws_endpoint(url)
    backend = BackendConfig(Path("."), Path(".terraform"), "default", "s3", {"bucket": "b", "key": KEY})
    # No endpoint: AWS. No call is made (HTTPS_PROXY still points at a dead port: fails closed).
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    assert store.facts_for(backend, {}, use_cache=True) == (None, True)


def test_if_match_unreliable_turns_the_heartbeat_off_for_the_endpoint(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str]
) -> None:
    make_bucket(s3.url, bucket_name)
    versions_key = f"{KEY}.tflock"

    def annotated_locks() -> int:
        listed = s3_client(s3.url).list_object_versions(Bucket=bucket_name, Prefix=versions_key)
        bodies = [
            s3_client(s3.url).get_object(Bucket=bucket_name, Key=versions_key, VersionId=v["VersionId"])
            for v in listed.get("Versions", [])
            if v["Key"] == versions_key
        ]
        return sum(1 for b in bodies if "tfwrap heartbeat=" in json.loads(b["Body"].read())["Info"])

    for mode, expect_heartbeat in (("pass", True), ("if-match-creates", False)):
        with FaultProxy(s3.url, mode) as proxy:
            work = write_config(tmp_path / mode, proxy.url, bucket_name, resource=SLOW % 3)
            assert run(["terraform", "init", *QUIET], work, env).returncode == 0
            before = annotated_locks()
            apply = run(["terraform", "apply", *QUIET, "-auto-approve"], work, env)
            assert apply.returncode == 0, apply.stderr
            said = "heartbeat disabled for this endpoint because if-match-unreliable" in apply.stderr
            assert said is not expect_heartbeat, apply.stderr
            assert (annotated_locks() > before) is expect_heartbeat, apply.stderr


def test_a_heartbeat_that_connects_late_still_never_rewrites_on_an_unsafe_store(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str]
) -> None:
    """The reconnect path obeys the probe's verdict as the first connect does: its first two
    connects fail (a test hook), the third comes after Terraform took the lock."""
    make_bucket(s3.url, bucket_name)
    lock_key = f"{KEY}.tflock"
    late = {**env, "TFWRAP_TEST_HEARTBEAT_CONNECT_FAILURES": "2", "TFWRAP_HEARTBEAT_SECONDS": "1"}
    with FaultProxy(s3.url, "if-match-creates") as proxy:
        work = write_config(tmp_path / "w", proxy.url, bucket_name, resource=SLOW % 4)
        assert run(["terraform", "init", *QUIET], work, env).returncode == 0
        apply = run(["terraform", "apply", *QUIET, "-auto-approve"], work, late)
        assert apply.returncode == 0, apply.stderr
        rewrites = [p for m, p, _ in proxy.requests if m == "PUT" and p.split("?")[0].endswith(lock_key)]
    assert "heartbeat disabled for this endpoint because if-match-unreliable" in apply.stderr
    assert len(rewrites) == 1, (rewrites, apply.stderr)  # Terraform's own create, no rewrite


def test_skip_s3_checksum_on_an_object_lock_bucket(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str]
) -> None:
    make_bucket(s3.url, bucket_name)
    work = write_config(tmp_path / "work", s3.url, bucket_name, skip_s3_checksum=True)
    report = json.loads(run(["tfwrap", "check", "--json", "-chdir", str(work)], work, env).stdout)
    assert ids(report).get("skip-s3-checksum-object-lock") == "warning"  # no default retention
    kept = f"{bucket_name}-r"
    make_bucket(s3.url, kept, retention={"Mode": "GOVERNANCE", "Days": 1})
    work = write_config(tmp_path / "kept", s3.url, kept, skip_s3_checksum=True)
    blocked = run(["terraform", "init", *QUIET], work, env)
    assert blocked.returncode == 80 and "error [skip-s3-checksum-object-lock]" in blocked.stderr
    plain = f"{bucket_name}-p"
    make_bucket(s3.url, plain, object_lock=False)
    work = write_config(tmp_path / "plain", s3.url, plain, skip_s3_checksum=True)
    report = json.loads(run(["tfwrap", "check", "--json", "-chdir", str(work)], work, env).stdout)
    assert "skip-s3-checksum-object-lock" not in ids(report)


def test_the_danger_then_the_guard_stops_it(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], gate: Gate
) -> None:
    """Through a proxy that drops If-None-Match, two applies both take "the lock" (TFWRAP_MODE=off);
    with the guard on, the first command stops before Terraform runs."""
    make_bucket(s3.url, bucket_name)
    off = {**env, "TFWRAP_MODE": "off"}
    with FaultProxy(s3.url, "strip") as proxy:
        first = write_config(tmp_path / "first", proxy.url, bucket_name, resource=gate.resource())
        second = write_config(tmp_path / "second", proxy.url, bucket_name, resource=SLOW % 1)
        for work in (first, second):
            assert run(["terraform", "init", *QUIET], work, off).returncode == 0
        client = s3_client(s3.url)
        slow = subprocess.Popen(
            ["terraform", "apply", *QUIET, "-auto-approve"],
            cwd=first,
            env=off,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # the first run holds the lock
                listed = client.list_objects_v2(Bucket=bucket_name, Prefix=f"{KEY}.tflock")
                if listed.get("KeyCount"):
                    break
                time.sleep(0.05)
            else:
                pytest.fail("the first apply never took its lock")
            fast = run(["terraform", "apply", *QUIET, "-auto-approve"], second, off)
            assert slow.poll() is None, "the first apply ended too soon to show the overlap"
            gate.open()
        finally:
            out, err = slow.communicate(timeout=120)
        # Both "held the lock" at once: neither was refused, both applied and wrote the state.
        assert fast.returncode == 0, fast.stderr
        assert "Error acquiring the state lock" not in fast.stderr + err
        assert "Apply complete!" in fast.stdout and "terraform_data.slow: Creation complete" in out
        # The second run overwrote the first one's lock and removed it as its own: the first
        # finds its lock gone when it releases (the only sign anything went wrong).
        assert slow.returncode == 1 and "Error releasing the state lock" in err, err

        serial = json.loads(client.get_object(Bucket=bucket_name, Key=KEY)["Body"].read())["serial"]
        guarded = run(["terraform", "apply", *QUIET, "-auto-approve"], first, env)
        assert guarded.returncode == 80, guarded.stderr
        assert "tfwrap: error [conditional-writes-ignored]" in guarded.stderr
        assert guarded.stdout == ""  # Terraform never ran
        assert json.loads(client.get_object(Bucket=bucket_name, Key=KEY)["Body"].read())["serial"] == serial
        assert scratch_keys(s3.url, bucket_name) == []


PROBE_SCRIPT = """
import json, sys
from pathlib import Path
from tfwrap.aws import probe
from tfwrap.backend.config import BackendConfig
backend = BackendConfig(Path("."), Path(".terraform"), "default", "s3", {
    "bucket": sys.argv[2], "key": "app/terraform.tfstate", "region": "us-east-1",
    "endpoints": {"s3": sys.argv[1]}, "use_path_style": True})
print(json.dumps(probe.run(backend)), flush=True)
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_scratch_objects_are_removed_when_the_probe_is_interrupted(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], signum: int
) -> None:
    make_bucket(s3.url, bucket_name)
    with FaultProxy(s3.url, "pass", delay_puts=0.4) as proxy:
        work = write_config(tmp_path / "work", proxy.url, bucket_name)
        proc = subprocess.Popen(
            ["tfwrap", "check", "--probe", "-chdir", str(work)],
            cwd=work,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while probe_puts(proxy) < 2 and time.monotonic() < deadline:  # one object created, more coming
            time.sleep(0.02)
        assert probe_puts(proxy) >= 2, proc.communicate(timeout=60)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode in (128 + signum, -signum), (proc.returncode, out, err)
    assert "Traceback" not in err
    created = [p for m, p, status in proxy.requests if m == "PUT" and status == 200 and SCRATCH_MARK in p]
    assert created, "nothing was created before the signal: the test proves nothing"
    assert scratch_keys(s3.url, bucket_name) == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupting_the_shims_probe_leaves_nothing_and_no_terraform(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], signum: int
) -> None:
    make_bucket(s3.url, bucket_name)
    with FaultProxy(s3.url, "pass", delay_puts=0.4) as proxy:
        work = write_config(tmp_path / "work", proxy.url, bucket_name)
        proc = subprocess.Popen(
            ["terraform", "init", *QUIET],
            cwd=work,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while probe_puts(proxy) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert probe_puts(proxy) >= 2, proc.communicate(timeout=60)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode in (128 + signum, -signum), (proc.returncode, out, err)
    assert "Traceback" not in err and out == ""
    if signum == signal.SIGINT:
        assert err.strip() == "tfwrap: interrupted during the backend check; Terraform was not started", err
    assert not (work / ".terraform").exists()  # Terraform never started
    assert scratch_keys(s3.url, bucket_name) == []


def test_probe_module_alone_cleans_up_on_sigterm(s3: S3Server, bucket_name: str, tmp_path: Path) -> None:
    """The same, without click: the probe itself removes its objects, then dies by the signal."""
    make_bucket(s3.url, bucket_name)
    with FaultProxy(s3.url, "pass", delay_puts=0.4) as proxy:
        script = tmp_path / "probe.py"
        script.write_text(PROBE_SCRIPT)
        proc = subprocess.Popen(
            [sys.executable, str(script), proxy.url, bucket_name],
            env={**os.environ},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while probe_puts(proxy) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGTERM, (out, err)
    assert out == ""  # it never finished
    assert scratch_keys(s3.url, bucket_name) == []


def tfenv_layout(tmp_path: Path, engine: Path) -> Path:
    """A version manager between the shim and the binary, laid out as tfenv lays it out."""
    root = tmp_path / "tfenv"
    (root / "versions" / "1.15.5").mkdir(parents=True)
    (root / "versions" / "1.15.5" / "terraform").symlink_to(engine)
    (root / "bin").mkdir()
    script = root / "bin" / "terraform"
    script.write_text(
        "#!/bin/sh\n# tfenv: runs the version .terraform-version asks for\n"
        'exec "$(dirname "$0")/../versions/1.15.5/terraform" "$@"\n'
    )
    script.chmod(0o755)
    return root


def test_doctor_reports_chain_backend_identity_and_cache(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Any
) -> None:
    make_bucket(s3.url, bucket_name)
    work = write_config(tmp_path / "work", s3.url, bucket_name)
    root = tfenv_layout(tmp_path, tools.engine)
    path = os.pathsep.join([str(tools.shim_dir), str(root / "bin"), "/usr/bin", "/bin"])
    e = {**env, "PATH": path, "AWS_ENDPOINT_URL_STS": s3.url}
    assert run(["terraform", "init", *QUIET], work, e).returncode == 0
    assert run(["terraform", "plan", *QUIET], work, e).returncode == 0  # caches the plan verdict

    result = run(["tfwrap", "doctor", "--json", "-chdir", str(work)], work, e)
    assert result.returncode == 0, result.stderr
    assert "test-secret-key-never-printed" not in result.stdout + result.stderr
    report = json.loads(result.stdout)
    chain = report["chain"]
    assert [link["kind"] for link in chain] == ["tfwrap-shim", "version-manager", "terraform"]
    assert chain[0]["path"] == str(tools.shim_dir / "terraform")
    assert chain[1]["name"] == "tfenv" and chain[1]["path"] == str(root / "bin" / "terraform")
    assert chain[2]["path"].endswith("tfenv/versions/1.15.5/terraform")
    assert report["terraform"]["version"] == "1.15.5"
    backend = report["backend"]
    assert backend["bucket"] == bucket_name and backend["lock_key"] == f"{KEY}.tflock"
    assert backend["s3_endpoint"] == s3.url and backend["aws_endpoint"] is False
    assert backend["endpoint_source"].startswith("endpoints.s3 in ")
    assert [s["where"] for s in backend["sources"]] == ["backend.tf", ".terraform/terraform.tfstate"]
    assert "bucket" in backend["sources"][0]["settings"]
    identity = report["identity"]
    assert identity["access_key"] == "AKIA…TEST" and identity["source"] == "env"
    assert identity["arn"] and identity["arn"].startswith("arn:aws:"), identity
    cached = report["cache"]
    assert cached["verdict"]["fresh"] and cached["verdict"]["findings"] == []
    assert cached["bucket"]["facts"]["versioning"] == {"status": "Enabled"}
    assert cached["store"]["facts"]["create_only"] == "honoured"  # the guard probed at init
    assert report["probe"] is None and report["findings"] == []

    text = run(["tfwrap", "doctor", "--probe", "-chdir", str(work)], work, e)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0] == "terraform chain:"
    assert any(ln.strip().startswith("version manager") and "tfenv" in ln for ln in lines)
    assert any("1.15.5" in ln and ln.strip().startswith("terraform ") for ln in lines)
    assert "the store honours conditional writes" in text.stdout
    assert scratch_keys(s3.url, bucket_name) == []


def test_doctor_probe_names_a_store_that_does_not_lock(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str]
) -> None:
    make_bucket(s3.url, bucket_name)
    with FaultProxy(s3.url, "strip") as proxy:
        work = write_config(tmp_path / "work", proxy.url, bucket_name)
        plain = run(["tfwrap", "doctor", "--json", "-chdir", str(work)], work, env)
        assert plain.returncode == 0 and json.loads(plain.stdout)["probe"] is None  # only when asked
        assert probe_puts(proxy) == 0
        result = run(["tfwrap", "doctor", "--probe", "--json", "-chdir", str(work)], work, env)
    assert result.returncode == 80, result.stderr
    report = json.loads(result.stdout)
    assert report["probe"]["create_only"] == "ignored" and report["errors"] >= 1
    assert {f["id"] for f in report["findings"]} >= {"conditional-writes-ignored", "if-match-unreliable"}


def test_judging_probe_facts() -> None:
    """The pure rules: what each fact means, and for a backend that does not use the lock file."""
    settings = {"bucket": "b", "key": KEY, "endpoints": {"s3": "http://127.0.0.1:9000"}}
    with_lockfile = BackendConfig(
        Path("."), Path(".terraform"), "default", "s3", {**settings, "use_lockfile": True}
    )
    dynamodb_only = BackendConfig(
        Path("."), Path(".terraform"), "default", "s3", {**settings, "dynamodb_table": "t"}
    )

    def judged(backend: BackendConfig, **facts: Any) -> dict[str, str]:
        return {f.id: f.severity for f in store.evaluate(backend, {}, {"steps": {}, **facts})}

    assert judged(with_lockfile, create_only="honoured", if_match="honoured", concurrent="one-won") == {}
    assert judged(with_lockfile, create_only="honoured", concurrent="0-won") == {}  # AWS's 409s
    for racy in ({"concurrent": "2-won"}, {"concurrent_if_match": "3-won"}):
        assert judged(with_lockfile, create_only="honoured", **racy) == {"conditional-writes-racy": "warning"}
        assert store.heartbeat_off(racy) == store.takeover_off(racy) == "conditional-writes-racy"
    assert judged(with_lockfile, create_only="honoured", delete_if_match="ignored") == {
        "delete-conditions-ignored": "warning"
    }
    assert store.heartbeat_off({"delete_if_match": "ignored"}) == ""
    assert store.takeover_off({"delete_if_match": "ignored"}) == "delete-conditions-ignored"
    assert judged(with_lockfile, create_only="unsupported") == {"conditional-writes-unsupported": "error"}
    # DynamoDB locks this state: the store's refusal is worth knowing, not a reason to stop.
    assert judged(dynamodb_only, create_only="unsupported") == {"conditional-writes-unsupported": "warning"}
    for value in ("ignored", "creates-missing", "unsupported"):
        assert judged(with_lockfile, create_only="honoured", if_match=value) == {
            "if-match-unreliable": "warning"
        }
    denied = judged(with_lockfile, denied={"action": "s3:PutObject", "key": "k"})
    assert denied == {"probe-denied": "warning"}
    assert judged(with_lockfile, checksum="rejected", checksum_error="BadDigest") == {
        "checksum-unsupported": "warning"
    }


def test_version_managers_are_recognised(tmp_path: Path, tools: Any) -> None:
    """The chain's seam (tfwrap/chain.py): scripts by their words, proxies by their names."""
    from tfwrap.terraform import chain

    asdf = tmp_path / "shims" / "terraform"
    asdf.parent.mkdir()
    asdf.write_text('#!/usr/bin/env bash\n# asdf-plugin: terraform\nexec asdf exec "terraform" "$@"\n')
    mise = tmp_path / "mise"
    mise.write_bytes(b"\x7fELF not really")
    linked = tmp_path / "terraform-via-mise"
    linked.symlink_to(mise)
    assert chain.version_manager(str(asdf)) == "asdf"
    assert chain.version_manager(str(linked)) == "mise"
    assert chain.version_manager(str(tools.engine)) == ""  # a binary of its own
    data = tmp_path / "asdf-data"
    (data / "installs" / "terraform" / "1.11.4" / "bin").mkdir(parents=True)
    (data / "installs" / "terraform" / "1.11.4" / "bin" / "terraform").write_text("")
    found = chain.installed("asdf", "1.11.4", str(asdf), {"ASDF_DATA_DIR": str(data)})
    assert found == str(data / "installs" / "terraform" / "1.11.4" / "bin" / "terraform")
    assert chain.installed("asdf", "1.10.0", str(asdf), {"ASDF_DATA_DIR": str(data)}) is None


def test_a_fleet_of_fresh_runners_probes_a_store_once_and_shares_the_verdict(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str]
) -> None:
    """The verdict is kept beside the state (written conditionally): a runner with an empty
    cache reads it instead of probing; an identity's denial is never shared."""
    make_bucket(s3.url, bucket_name)
    with FaultProxy(s3.url, "pass") as proxy:
        work = write_config(tmp_path / "work", proxy.url, bucket_name)
        first = {**env, "TFWRAP_CACHE_DIR": str(tmp_path / "runner-1")}
        assert run(["terraform", "init", *QUIET], work, first).returncode == 0
        probed = probe_puts(proxy)
        assert probed >= 1
        for n in (2, 3):  # fresh runners: nothing cached on their machines
            fresh = {**env, "TFWRAP_CACHE_DIR": str(tmp_path / f"runner-{n}")}
            again = run(["terraform", "init", *QUIET, "-reconfigure"], work, fresh)
            assert again.returncode == 0, again.stderr
        assert probe_puts(proxy) == probed + 0, "a fresh runner probed the store again"
    key = KEY + store.SHARED_SUFFIX
    versions = s3_client(s3.url).list_object_versions(Bucket=bucket_name, Prefix=key).get("Versions", [])
    assert len(versions) == 1, versions  # written once
    shared = json.loads(s3_client(s3.url).get_object(Bucket=bucket_name, Key=key)["Body"].read())
    assert shared["facts"]["create_only"] == "honoured" and "denied" not in shared["facts"]
