"""``tfwrap iam-policy``: the policy's shape, and proof against an S3 API that enforces IAM.

The end-to-end half starts its own moto server with IAM enforcement on
(``INITIAL_NO_AUTH_ACTION_COUNT``: the first N requests are not checked, every later one is
checked against the IAM policies of the caller's access key). Those N requests create an
admin user; the admin creates the compliant bucket, then one user per case with exactly the
generated policy (or the policy less one statement), and that user runs Terraform through
the installed shim.

What moto 5.2.5 can and cannot prove (moto/iam/access_control.py, moto/s3/responses.py; the
suite holds it there, tests/constraints.txt, and the server fails closed on another model):

- S3 object actions (GetObject/HEAD, PutObject, DeleteObject) are checked against the
  object's ARN, s3:ListBucket and s3:GetBucketVersioning against the bucket's: proven.
- Without s3:ListBucket, AWS answers 403 instead of 404 for a missing object; moto answers
  404. And Terraform ignores AccessDenied on its workspace listing when the prefix is the
  default ``env:``. So s3:ListBucket is proven with another ``workspace_key_prefix``.
- GetObjectLockConfiguration, GetBucketEncryption and GetPublicAccessBlock are checked as
  s3:ListBucket (their query strings are missing from moto's ACTION_MAP), so within
  TfwrapChecks only s3:GetBucketVersioning is proven by removal.
- DynamoDB calls are checked against Resource "*" (no ``_determine_resource``), so a
  statement scoped to the table's ARN never matches: the dual-locking cases widen the
  DynamoDB statements to "*" to prove the actions (the ARN is checked by the unit tests).
- Conditions are not evaluated for identity policies, and S3 never calls KMS: the KMS
  statement is shown to work, not to be needed.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.support.iam import IamWorld
from tests.support.world import make_table, run, write_config
from tfwrap import iam
from tfwrap.bootstrap import names
from tfwrap.cli import main

QUIET = ["-no-color", "-input=false"]
BASE_SIDS = ["TerraformListBucket", "TerraformState", "TerraformLockFile", "TfwrapChecks", "TfwrapProbe"]
# The tutorial's Object Lock actions: Terraform's lock file never needs them.
TUTORIAL_ONLY = ("LegalHold", "Retention", "BypassGovernance")
KMS_ARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-4cde-a6ef-1234567890ab"
# An apply that lasts until tfwrap's heartbeat has written the lock's Info (and, with a
# table, the DynamoDB item's), read with the user's own keys: no guessing how long it takes.
WAIT_FOR_HEARTBEAT = """
resource "terraform_data" "wait" {
  triggers_replace = timestamp()
  provisioner "local-exec" {
    command = "%s %s"
  }
}
"""
WAIT_SCRIPT = """
import json, sys, time
import boto3

url, bucket, key, table = {url!r}, {bucket!r}, {key!r}, {table!r}
s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1")
ddb = boto3.client("dynamodb", endpoint_url=url, region_name="us-east-1")


def annotated(raw):
    return json.loads(raw)["Info"].startswith("tfwrap heartbeat=")


deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    done = annotated(s3.get_object(Bucket=bucket, Key=key + ".tflock")["Body"].read())
    if done and table:
        lock_id = {{"LockID": {{"S": bucket + "/" + key}}}}
        item = ddb.get_item(TableName=table, Key=lock_id, ConsistentRead=True)
        done = annotated(item["Item"]["Info"]["S"])
    if done:
        time.sleep(0.5)  # a DynamoDB beat that fails is reported right after the S3 one
        sys.exit(0)
    time.sleep(0.1)
sys.exit("no heartbeat within 60 s")
"""


def actions_of(document: dict[str, Any]) -> set[str]:
    return {a for s in document["Statement"] for a in s["Action"]}


def sids_of(document: dict[str, Any]) -> list[str]:
    return [s["Sid"] for s in document["Statement"]]


def without(document: dict[str, Any], sid: str) -> dict[str, Any]:
    kept = [s for s in document["Statement"] if s["Sid"] != sid]
    assert len(kept) == len(document["Statement"]) - 1, f"no statement {sid}"
    return {**document, "Statement": kept}


def as_list(resource: str | list[str]) -> list[str]:
    return resource if isinstance(resource, list) else [resource]


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any] | None, str]:
    code = main(["iam-policy", *args])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out else None), err


# ---------------------------------------------------------------------------------------------
# The policy's shape (pure functions and the command, no server)


def test_base_policy_is_terraform_plus_tfwrap_checks() -> None:
    document = iam.policy(iam.Target(bucket="acme-state", key="app/terraform.tfstate"))
    assert document["Version"] == "2012-10-17"
    assert sids_of(document) == BASE_SIDS
    by_sid = {s["Sid"]: s for s in document["Statement"]}
    assert all(s["Effect"] == "Allow" and "Condition" not in s for s in document["Statement"])
    assert by_sid["TerraformListBucket"]["Action"] == ["s3:ListBucket"]
    assert by_sid["TerraformListBucket"]["Resource"] == "arn:aws:s3:::acme-state"
    assert by_sid["TerraformState"]["Action"] == ["s3:GetObject", "s3:PutObject"]
    assert by_sid["TerraformState"]["Resource"] == "arn:aws:s3:::acme-state/app/terraform.tfstate"
    assert by_sid["TerraformLockFile"]["Action"] == ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    assert by_sid["TerraformLockFile"]["Resource"] == "arn:aws:s3:::acme-state/app/terraform.tfstate.tflock"
    assert by_sid["TfwrapChecks"]["Action"] == [
        "s3:GetBucketVersioning",
        "s3:GetBucketObjectLockConfiguration",
        "s3:GetEncryptionConfiguration",
        "s3:GetBucketPublicAccessBlock",
        "s3:GetBucketPolicy",
        "s3:GetBucketLogging",
    ]
    assert by_sid["TfwrapChecks"]["Resource"] == "arn:aws:s3:::acme-state"
    # The conditional-write probe's scratch objects, next to the lock file.
    assert by_sid["TfwrapProbe"]["Action"] == [
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:DeleteObjectVersion",
    ]
    assert by_sid["TfwrapProbe"]["Resource"] == (
        "arn:aws:s3:::acme-state/app/terraform.tfstate.tfwrap-probe-*"
    )


@pytest.mark.parametrize(
    ("target", "state_resources"),
    [
        (iam.Target("b", "k.tfstate", workspace="staging"), ["arn:aws:s3:::b/env:/staging/k.tfstate"]),
        (
            iam.Target("b", "k.tfstate", workspace="staging", workspace_key_prefix="teams/a"),
            ["arn:aws:s3:::b/teams/a/staging/k.tfstate"],
        ),
        (
            iam.Target("b", "k.tfstate", workspace="qa", workspace_key_prefix=""),
            ["arn:aws:s3:::b/qa/k.tfstate"],
        ),
        (
            iam.Target("b", "k.tfstate", workspace="qa", all_workspaces=True),
            ["arn:aws:s3:::b/k.tfstate", "arn:aws:s3:::b/env:/*/k.tfstate"],
        ),
        (
            iam.Target("b", "k.tfstate", all_workspaces=True, workspace_key_prefix=""),
            ["arn:aws:s3:::b/k.tfstate", "arn:aws:s3:::b/*/k.tfstate"],
        ),
    ],
)
def test_state_and_lock_follow_the_workspace(target: iam.Target, state_resources: list[str]) -> None:
    by_sid = {s["Sid"]: s for s in iam.policy(target)["Statement"]}
    assert as_list(by_sid["TerraformState"]["Resource"]) == state_resources
    assert as_list(by_sid["TerraformLockFile"]["Resource"]) == [r + ".tflock" for r in state_resources]
    assert by_sid["TerraformListBucket"]["Resource"] == "arn:aws:s3:::b"  # listing is bucket-wide


def test_an_acl_in_the_backend_needs_put_object_acl() -> None:
    by_sid = {s["Sid"]: s for s in iam.policy(iam.Target("b", "k", object_acl=True))["Statement"]}
    assert by_sid["TerraformState"]["Action"] == ["s3:GetObject", "s3:PutObject", "s3:PutObjectAcl"]
    assert by_sid["TerraformLockFile"]["Action"][-1] == "s3:PutObjectAcl"


def test_kms_dynamodb_and_migration_statements() -> None:
    target = iam.Target(
        "b", "k", kms_key_arn=KMS_ARN, dynamodb_table="locks", region="eu-west-1", account_id="111122223333"
    )
    plain = iam.policy(target)
    assert sids_of(plain) == [*BASE_SIDS, "TerraformKMS", "TerraformDynamoDBLock", "TfwrapHeartbeatDynamoDB"]
    by_sid = {s["Sid"]: s for s in plain["Statement"]}
    assert by_sid["TerraformKMS"] == {
        "Sid": "TerraformKMS",
        "Effect": "Allow",
        "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
        "Resource": KMS_ARN,
    }
    table = "arn:aws:dynamodb:eu-west-1:111122223333:table/locks"
    assert by_sid["TerraformDynamoDBLock"]["Action"] == [
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:DeleteItem",
    ]
    assert by_sid["TerraformDynamoDBLock"]["Resource"] == table
    assert by_sid["TfwrapHeartbeatDynamoDB"] == {
        "Sid": "TfwrapHeartbeatDynamoDB",
        "Effect": "Allow",
        "Action": ["dynamodb:UpdateItem"],
        "Resource": table,
    }
    migration = iam.policy(target, migration=True)
    assert sids_of(migration) == [
        *sids_of(plain),
        "TfwrapMigrationBucket",
        "TfwrapMigrationTable",
        "TfwrapMigrationJournal",  # the journal next to the state
        "TfwrapMigrationStates",  # it reads every workspace's state for its digest
    ]
    assert actions_of(migration) - actions_of(plain) == {
        "s3:PutBucketVersioning",
        "s3:PutBucketObjectLockConfiguration",
        "dynamodb:DescribeTable",
        "dynamodb:Scan",
        "dynamodb:DeleteTable",
    }
    # What `tfwrap migrate` reads and the stale digest item it deletes are already allowed.
    assert {
        "s3:GetBucketVersioning",
        "s3:GetBucketObjectLockConfiguration",
        "dynamodb:DeleteItem",
    } <= actions_of(migration)
    resources = {s["Sid"]: s["Resource"] for s in migration["Statement"]}
    assert resources["TfwrapMigrationTable"] == table
    assert resources["TfwrapMigrationJournal"] == "arn:aws:s3:::b/k.tfwrap-migrate.json"
    assert resources["TfwrapMigrationStates"] == ["arn:aws:s3:::b/k", "arn:aws:s3:::b/env:/*/k"]
    every = iam.policy(dataclasses.replace(target, all_workspaces=True), migration=True)
    assert "TfwrapMigrationStates" not in sids_of(every)  # TerraformState allows them all already
    with pytest.raises(ValueError, match="DynamoDB lock table"):
        iam.policy(iam.Target("b", "k"), migration=True)


def test_no_legal_hold_or_retention_action_in_any_variant() -> None:
    target = iam.Target("b", "k", all_workspaces=True, kms_key_arn=KMS_ARN, dynamodb_table="t")
    for document in (iam.policy(iam.Target("b", "k")), iam.policy(target, migration=True)):
        assert not [a for a in actions_of(document) if any(word in a for word in TUTORIAL_ONLY)]
        assert not [a for a in actions_of(document) if "*" in a]  # no wildcard actions either


def test_kms_key_arns() -> None:
    assert iam.kms_key_arn(KMS_ARN) == KMS_ARN
    assert iam.kms_key_arn("abcd-1234", region="eu-west-1", account_id="1") == (
        "arn:aws:kms:eu-west-1:1:key/abcd-1234"
    )
    assert iam.kms_key_arn("k", partition=names.partition("cn-north-1")) == "arn:aws-cn:kms:*:*:key/k"
    for alias in ("alias/state", "arn:aws:kms:us-east-1:1:alias/state"):
        with pytest.raises(ValueError, match="alias"):
            iam.kms_key_arn(alias)
    with pytest.raises(ValueError, match="not a KMS key ARN"):
        iam.kms_key_arn("arn:aws:s3:::bucket")


def test_cli_options(capsys: pytest.CaptureFixture[str]) -> None:
    code, document, _ = cli(
        capsys,
        *("--bucket", "b", "--key", "app/terraform.tfstate", "--workspaces"),
        *("--kms-key", KMS_ARN, "--dynamodb-table", "locks", "--region", "us-gov-west-1"),
        *("--account-id", "111122223333", "--migration"),
    )
    assert code == 0
    assert document == iam.policy(
        iam.Target(
            "b",
            "app/terraform.tfstate",
            all_workspaces=True,
            kms_key_arn=KMS_ARN,
            dynamodb_table="locks",
            region="us-gov-west-1",
            account_id="111122223333",
            partition="aws-us-gov",
        ),
        migration=True,
    )
    code, document, _ = cli(capsys, "--bucket", "b", "--key", "k", "--workspace", "dev")
    assert code == 0 and document is not None
    assert document["Statement"][1]["Resource"] == "arn:aws:s3:::b/env:/dev/k"


def test_cli_reads_the_backend_configuration(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = write_config(
        tmp_path / "work",
        "http://127.0.0.1:9",
        "acme-state",
        key="net/terraform.tfstate",
        workspace_key_prefix="teams",
        dynamodb_table="locks",
        kms_key_id="1234abcd",
        encrypt=True,
        acl="bucket-owner-full-control",
    )
    monkeypatch.setenv("TF_WORKSPACE", "prod")
    code, document, err = cli(capsys, "-chdir", str(work), "--account-id", "111122223333")
    assert code == 0, err
    assert document == iam.policy(
        iam.Target(
            "acme-state",
            "net/terraform.tfstate",
            workspace="prod",
            workspace_key_prefix="teams",
            object_acl=True,
            kms_key_arn="arn:aws:kms:us-east-1:111122223333:key/1234abcd",
            dynamodb_table="locks",
            region="us-east-1",
            account_id="111122223333",
        )
    )
    # Options win over the configuration; the current directory is read without -chdir.
    monkeypatch.chdir(work)
    code, document, _ = cli(capsys, "--bucket", "other", "--workspace", "default", "--dynamodb-table", "t2")
    assert code == 0 and document is not None
    resources = {s["Sid"]: s["Resource"] for s in document["Statement"]}
    assert resources["TerraformState"] == "arn:aws:s3:::other/net/terraform.tfstate"
    assert resources["TerraformDynamoDBLock"] == "arn:aws:dynamodb:us-east-1:*:table/t2"


@pytest.mark.parametrize(
    ("args", "backend", "message"),
    [
        ([], None, "pass --bucket and --key"),
        (["--bucket", "b"], None, "pass --bucket and --key"),
        (["--bucket", "b", "--key", "k", "--kms-key", "alias/state"], None, "alias"),
        (["--bucket", "b", "--key", "k", "--migration"], None, "DynamoDB lock table"),
        (["-chdir", "{work}"], 'terraform {\n  backend "local" {}\n}\n', "'local', not s3"),
        (["-chdir", "{work}/missing"], None, "is not a directory"),
    ],
)
def test_cli_refuses_with_usage_exit_code(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    backend: str | None,
    message: str,
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    if backend:
        (work / "main.tf").write_text(backend)
    monkeypatch.chdir(work)
    code, document, err = cli(capsys, *(a.format(work=work) for a in args))
    assert code == 83 and document is None
    assert message in err and err.startswith("tfwrap: ")


# ---------------------------------------------------------------------------------------------
# Proof: a real Terraform, through the shim, against an S3 API that enforces IAM


@dataclass
class Steps:
    """What a user saw: tfwrap's check report, then init, plan and apply until one fails."""

    denied_checks: list[str]
    results: dict[str, Any]
    probe: dict[str, Any] | None = None  # the check's conditional-write probe (custom endpoint)
    probe_denied: list[str] = field(default_factory=list)

    @property
    def failed(self) -> str | None:
        return next((step for step, r in self.results.items() if r.returncode != 0), None)

    def output(self, step: str) -> str:
        return self.results[step].stdout + self.results[step].stderr

    def report(self) -> str:
        """Everything the user saw, for an assertion message (pytest keeps a str whole)."""
        shown = [f"--- {step} (exit {r.returncode})\n{self.output(step)}" for step, r in self.results.items()]
        return "\n".join([f"denied checks: {self.denied_checks}", *shown])


def state_dir(
    world: IamWorld, tmp_path: Path, *, wait_for_heartbeat: str | None = None, **backend: Any
) -> Path:
    """A configuration whose state key no other test uses.

    ``wait_for_heartbeat``: "s3" or a DynamoDB table name, to add the WAIT_FOR_HEARTBEAT resource.
    """
    key = f"iam/{uuid.uuid4().hex[:8]}/terraform.tfstate"
    extra = {}
    if wait_for_heartbeat:
        table = "" if wait_for_heartbeat == "s3" else wait_for_heartbeat
        script = tmp_path / "wait_for_heartbeat.py"
        script.write_text(WAIT_SCRIPT.format(url=world.server.url, bucket=world.bucket, key=key, table=table))
        extra["resource"] = WAIT_FOR_HEARTBEAT % (sys.executable, script)
    return write_config(tmp_path / "work", world.server.url, world.bucket, key=key, **extra, **backend)


def generated(work: Path, env: dict[str, str], *args: str) -> dict[str, Any]:
    """The policy as a user gets it: the installed ``tfwrap iam-policy`` for the directory."""
    result = run(["tfwrap", "iam-policy", "-chdir", str(work), *args], work, env)
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def run_steps(work: Path, env: dict[str, str]) -> Steps:
    report = json.loads(
        run(["tfwrap", "check", "--json", "--no-cache", "-chdir", str(work)], work, env).stdout
    )
    denied = [f["message"] for f in report["findings"] if f["id"] == "access-denied"]
    probe_denied = [f["message"] for f in report["findings"] if f["id"] == "probe-denied"]
    results: dict[str, Any] = {}
    for step in (["init"], ["plan"], ["apply", "-auto-approve"]):
        results[step[0]] = result = run(["terraform", step[0], *QUIET, *step[1:]], work, env)
        if result.returncode != 0:
            break
    return Steps(denied, results, report["probe"], probe_denied)


def lock_versions(world: IamWorld, lock_key: str) -> list[str]:
    """Every body the lock file ever had (the bucket is versioned: deleted locks stay as versions)."""
    s3 = world.client("s3", world.admin)
    listed = s3.list_object_versions(Bucket=world.bucket, Prefix=lock_key).get("Versions", [])
    return [
        s3.get_object(Bucket=world.bucket, Key=lock_key, VersionId=v["VersionId"])["Body"].read().decode()
        for v in listed
        if v["Key"] == lock_key
    ]


@pytest.mark.engine
@pytest.mark.shim
def test_exactly_the_generated_policy_runs_terraform_and_tfwrap(
    world: IamWorld, tmp_path: Path, env: dict[str, str]
) -> None:
    work = state_dir(world, tmp_path, wait_for_heartbeat="s3")
    document = generated(work, env)
    assert sids_of(document) == BASE_SIDS
    assert not [a for a in actions_of(document) if any(word in a for word in TUTORIAL_ONLY)]
    user = {**env, **world.user(document)}

    steps = run_steps(work, user)
    assert steps.denied_checks == []  # tfwrap's checks ran, with the same keys
    # The store behind this custom endpoint was probed with the same keys, and cleaned up.
    assert steps.probe_denied == [] and steps.probe is not None, steps.report()
    assert steps.probe["create_only"] == "honoured" and steps.probe["leftover"] == []
    assert steps.failed is None, steps.report()
    for step in steps.results:
        assert "[access-denied]" not in steps.output(step)
        assert "heartbeat failed" not in steps.output(step)
    assert "Apply complete! Resources: 1 added" in steps.results["apply"].stdout
    assert run(["tfwrap", "check", "-chdir", str(work)], work, user).stdout.endswith("all checks passed\n")

    # The heartbeat rewrote the lock file while Terraform held it, with nothing but the lock
    # file's statement (every version of the lock file stays in the versioned bucket).
    lock_key = document["Statement"][2]["Resource"].split(":::", 1)[1].split("/", 1)[1]
    bodies = [json.loads(b) for b in lock_versions(world, lock_key)]
    assert any(b["Operation"] == "OperationTypeApply" and "tfwrap heartbeat=" in b["Info"] for b in bodies)

    # Lock and unlock by hand: a lock left behind, seen by `tfwrap lock status`, removed by
    # `terraform force-unlock` (GetObject, then DeleteObject on the lock file).
    held = {"ID": "0e0e0e0e-stuck", "Operation": "OperationTypeApply", "Info": "", "Who": "ci@gone"}
    world.client("s3", world.admin).put_object(Bucket=world.bucket, Key=lock_key, Body=json.dumps(held))
    status = run(["tfwrap", "lock", "status", "--json", "-chdir", str(work)], work, user)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["s3"]["ID"] == held["ID"]
    blocked = run(["terraform", "plan", *QUIET, "-lock-timeout=0s"], work, user)
    assert blocked.returncode == 1 and "Error acquiring the state lock" in blocked.stderr
    unlock = run(["terraform", "force-unlock", "-force", held["ID"]], work, user)
    assert unlock.returncode == 0, unlock.stderr
    assert "successfully unlocked" in unlock.stdout
    assert run(["terraform", "plan", *QUIET], work, user).returncode == 0


# Where each missing statement shows, and in which configuration (moto: see the module docstring).
REMOVALS = [
    # Terraform lists "<workspace_key_prefix>/" to find workspaces. With the default prefix it
    # ignores AccessDenied there (the default workspace still works); with any other it stops.
    # (On AWS a caller without s3:ListBucket also gets 403, not 404, for a state that does not
    # exist yet; moto answers 404 regardless.)
    ("TerraformListBucket", {"workspace_key_prefix": "teams"}, "init"),
    ("TerraformState", {}, "init"),  # reading the state (HeadObject)
    ("TerraformLockFile", {}, "plan"),  # taking the lock (PutObject If-None-Match)
    ("TfwrapChecks", {}, None),  # Terraform runs; tfwrap cannot check the bucket
    ("TfwrapProbe", {}, None),  # Terraform runs; the probe says it could not run
]


@pytest.mark.engine
@pytest.mark.shim
@pytest.mark.parametrize(("sid", "backend", "expected"), REMOVALS, ids=[r[0] for r in REMOVALS])
def test_without_any_one_statement_something_is_denied(
    world: IamWorld,
    tmp_path: Path,
    env: dict[str, str],
    sid: str,
    backend: dict[str, str],
    expected: str | None,
) -> None:
    work = state_dir(world, tmp_path, **backend)
    document = generated(work, env)
    assert sids_of(document) == BASE_SIDS
    steps = run_steps(work, {**env, **world.user(without(document, sid))})
    assert steps.failed == expected, steps.report()
    if expected:
        assert "AccessDenied" in steps.output(expected) or "403" in steps.output(expected)
    elif sid == "TfwrapProbe":
        assert steps.denied_checks == [] and steps.probe is not None
        assert any("s3:PutObject" in m and ".tfwrap-probe-" in m for m in steps.probe_denied)
        assert "[probe-denied]" in steps.output("init")  # a warning, not a verdict on the store
    else:
        assert any("s3:GetBucketVersioning was denied" in m for m in steps.denied_checks)
        assert "[access-denied]" in steps.output("init")  # shown on every checked run


def test_every_base_statement_has_a_removal_case() -> None:
    assert [r[0] for r in REMOVALS] == BASE_SIDS


def widen_dynamodb(document: dict[str, Any]) -> dict[str, Any]:
    """moto checks DynamoDB calls against Resource "*": a table ARN never matches there."""
    statements = [
        {**s, "Resource": "*"} if s["Action"][0].startswith("dynamodb:") else s for s in document["Statement"]
    ]
    return {**document, "Statement": statements}


@pytest.mark.engine
@pytest.mark.shim
@pytest.mark.parametrize("missing", [None, "TerraformDynamoDBLock", "TfwrapHeartbeatDynamoDB"])
def test_dual_locking_needs_the_dynamodb_statements(
    world: IamWorld, tmp_path: Path, env: dict[str, str], missing: str | None
) -> None:
    table = f"locks-{uuid.uuid4().hex[:8]}"
    with world.as_admin():
        make_table(world.server.url, table)
    wait = "s3" if missing == "TfwrapHeartbeatDynamoDB" else table
    work = state_dir(world, tmp_path, wait_for_heartbeat=wait, dynamodb_table=table)
    document = generated(work, env)
    assert sids_of(document) == [*BASE_SIDS, "TerraformDynamoDBLock", "TfwrapHeartbeatDynamoDB"]
    assert document["Statement"][-1]["Resource"] == f"arn:aws:dynamodb:us-east-1:*:table/{table}"
    if missing is None:
        # The exact policy is refused by moto's DynamoDB: if this starts passing, moto scopes
        # DynamoDB by table now and widen_dynamodb() can go.
        exact = world.client("dynamodb", world.user(document))
        with pytest.raises(ClientError, match="not authorized to perform: dynamodb:GetItem"):
            exact.get_item(TableName=table, Key={"LockID": {"S": "probe"}})
    document = widen_dynamodb(document)
    if missing:
        document = without(document, missing)
    steps = run_steps(work, {**env, **world.user(document)})
    assert steps.denied_checks == []
    if missing == "TerraformDynamoDBLock":
        assert steps.failed == "plan"  # PutItem of the lock item
        assert "AccessDenied" in steps.output("plan") or "403" in steps.output("plan")
        return
    assert steps.failed is None, steps.report()
    assert "[locking-dual]" in steps.output("init")
    heartbeat_failed = "heartbeat failed" in steps.output("apply")
    assert heartbeat_failed is (missing == "TfwrapHeartbeatDynamoDB"), steps.output("apply")
    items = world.client("dynamodb", world.admin).scan(TableName=table)["Items"]
    assert [i["LockID"]["S"] for i in items] == [f"{world.bucket}/{work_state_key(document)}-md5"]


def work_state_key(document: dict[str, Any]) -> str:
    resource = next(s["Resource"] for s in document["Statement"] if s["Sid"] == "TerraformState")
    return str(resource).split(":::", 1)[1].split("/", 1)[1]


@pytest.mark.engine
@pytest.mark.shim
def test_workspaces_flag_allows_other_workspaces(
    world: IamWorld, tmp_path: Path, env: dict[str, str]
) -> None:
    work = state_dir(world, tmp_path)
    default_only = {**env, **world.user(generated(work, env))}
    assert run(["terraform", "init", *QUIET], work, default_only).returncode == 0
    refused = run(["terraform", "workspace", "new", "-no-color", "staging"], work, default_only)
    assert refused.returncode != 0 and "AccessDenied" in refused.stderr + refused.stdout

    every = generated(work, env, "--workspaces")
    assert "/env:/*/" in json.dumps(every)
    user = {**env, **world.user(every)}
    created = run(["terraform", "workspace", "new", "-no-color", "staging"], work, user)
    assert created.returncode == 0, created.stderr
    apply = run(["terraform", "apply", *QUIET, "-auto-approve"], work, user)
    assert apply.returncode == 0, apply.stderr
    assert "[access-denied]" not in apply.stderr
    # Generated again in the staging workspace without --workspaces: that workspace's keys.
    assert "/env:/staging/" in json.dumps(generated(work, env))


@pytest.mark.engine
@pytest.mark.shim
def test_kms_aware_policy_runs_terraform(world: IamWorld, tmp_path: Path, env: dict[str, str]) -> None:
    work = state_dir(world, tmp_path, encrypt=True, kms_key_id=KMS_ARN)
    document = generated(work, env)
    assert sids_of(document) == [*BASE_SIDS, "TerraformKMS"]
    assert document["Statement"][-1]["Resource"] == KMS_ARN
    steps = run_steps(work, {**env, **world.user(document)})
    assert steps.denied_checks == []
    assert steps.failed is None, steps.report()
    head = world.client("s3", world.admin).head_object(Bucket=world.bucket, Key=work_state_key(document))
    assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == KMS_ARN


def less(document: dict[str, Any], *actions: str) -> dict[str, Any]:
    """The policy without these actions (statements left empty are dropped)."""
    statements = []
    for st in document["Statement"]:
        kept = [a for a in st["Action"] if a not in actions]
        if kept:
            statements.append({**st, "Action": kept})
    return {**document, "Statement": statements}


def audited(work: Path, env: dict[str, str]) -> list[dict[str, Any]]:
    done = run(["tfwrap", "audit", "--format", "json", "--no-cache", str(work)], work, env)
    assert done.returncode in (0, 80, 90), done.stderr  # 90: a stack could not be checked (denied)
    found: list[dict[str, Any]] = json.loads(done.stdout)["findings"]
    return found


@pytest.mark.shim
def test_the_policy_and_logging_checks_need_exactly_their_actions(
    world: IamWorld, tmp_path: Path, env: dict[str, str]
) -> None:
    work = state_dir(world, tmp_path)
    document = generated(work, env)
    allowed = audited(work, {**env, **world.user(document)})
    assert not [f for f in allowed if f["id"] in ("access-denied", "check-failed")], allowed
    for action in ("s3:GetBucketPolicy", "s3:GetBucketLogging"):
        denied = audited(work, {**env, **world.user(less(document, action))})
        messages = [f["message"] for f in denied if f["id"] == "access-denied"]
        assert len(messages) == 1 and f"{action} was denied" in messages[0], denied


@pytest.mark.shim
def test_the_kms_check_needs_describe_key_and_never_touches_data(
    world: IamWorld, tmp_path: Path, env: dict[str, str]
) -> None:
    with world.as_admin():
        kms = boto3.client("kms", endpoint_url=world.server.url, region_name="us-east-1")
        key = kms.create_key(Description="state key")["KeyMetadata"]["Arn"]
    work = state_dir(world, tmp_path, encrypt=True, kms_key_id=key)
    document = generated(work, env)
    assert "kms:DescribeKey" in actions_of(document)
    # moto checks KMS calls against Resource "*", as DynamoDB's: the key's ARN never matches
    # there, so the statement is widened to prove the actions (the ARN is checked above).
    document = {
        **document,
        "Statement": [
            {**st, "Resource": "*"} if st["Sid"] == "TerraformKMS" else st for st in document["Statement"]
        ],
    }
    here = {**env, "AWS_ENDPOINT_URL_KMS": world.server.url}

    def checked(policy: dict[str, Any]) -> list[dict[str, Any]]:
        done = run(
            ["tfwrap", "check", "--json", "--no-cache", "-chdir", str(work)],
            work,
            {**here, **world.user(policy)},
        )
        found: list[dict[str, Any]] = json.loads(done.stdout)["findings"]
        return found

    assert not [f for f in checked(document) if f["id"] in ("kms-key-access", "check-failed")]
    (refused,) = [f for f in checked(less(document, "kms:DescribeKey")) if f["id"] == "kms-key-access"]
    assert "kms:DescribeKey was denied" in refused["message"] and refused["severity"] == "error"
    (dry,) = [f for f in checked(less(document, "kms:GenerateDataKey")) if f["id"] == "kms-key-access"]
    assert "kms:GenerateDataKey was denied" in dry["message"]
    requests = [line for line in world.log.read_text().splitlines() if "Decrypt" in line]
    assert requests == []  # the check never decrypts anything
