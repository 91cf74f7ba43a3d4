"""``tfwrap lock ls`` and ``tfwrap lock clear --stale --all``: every lock of an estate, judged as
``lock status`` judges one, and only the stale ones removed, each exactly as judged. End to
end: the installed ``tfwrap``, the real engine taking real locks, a loopback S3/DynamoDB."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support.gate import Gate
from tests.support.world import (
    Tools,
    ddb_client,
    holding,
    make_bucket,
    make_table,
    run,
    s3_client,
    write_config,
)
from tests.test_lock_cli import QUIET, UNRENEWED, body, live_info, stale_info, tfwrap
from tfwrap.demo.server import S3Server

pytestmark = [pytest.mark.engine, pytest.mark.shim]


def put(url: str, bucket: str, state_key: str, info: str) -> tuple[str, str]:
    """A lock object as Terraform writes it; returns (ID, ETag)."""
    lock_id = str(uuid.uuid4())
    got = s3_client(url).put_object(
        Bucket=bucket,
        Key=state_key + ".tflock",
        Body=body(lock_id, info).encode(),
        IfNoneMatch="*",
        ContentType="application/json",
    )
    return lock_id, str(got["ETag"])


def etag(url: str, bucket: str, state_key: str) -> str | None:
    from botocore.exceptions import ClientError

    try:
        return str(s3_client(url).head_object(Bucket=bucket, Key=state_key + ".tflock")["ETag"])
    except ClientError:
        return None


def stack(
    root: Path, name: str, url: str, bucket: str, tools: Tools, env: dict[str, str], **cfg: Any
) -> Path:
    work = write_config(root / name, url, bucket, key=f"{name}/terraform.tfstate", **cfg)
    init = run([str(tools.engine), "init", *QUIET], work, env)
    assert init.returncode == 0, init.stderr
    return work


def wait_for(predicate: Any, what: str, proc: subprocess.Popen[str], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def ls(tools: Tools, args: list[str], cwd: Path, env: dict[str, str]) -> dict[str, Any]:
    got = tfwrap(tools, ["lock", "ls", "--json", *args], cwd, env)
    assert got.returncode == 0, got.stderr
    doc: dict[str, Any] = json.loads(got.stdout)
    return doc


def test_four_locks_four_verdicts_and_only_the_dead_one_cleared(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools, gate: Gate
) -> None:
    make_bucket(s3.url, bucket_name)
    root = tmp_path / "estate"
    live = stack(root, "live", s3.url, bucket_name, tools, env, resource=gate.resource())
    stack(root, "dead", s3.url, bucket_name, tools, env)
    plain = stack(root, "plain", s3.url, bucket_name, tools, env, resource=gate.resource())
    new_ws = run([str(tools.engine), "workspace", "new", "dev", *QUIET[:1]], live, env)
    assert new_ws.returncode == 0, new_ws.stderr
    ws_key = "env:/dev/live/terraform.tfstate"

    _, live_etag = put(s3.url, bucket_name, "live/terraform.tfstate", live_info())
    dead_id, _ = put(s3.url, bucket_name, "dead/terraform.tfstate", stale_info())
    time.sleep(UNRENEWED)  # the store's clock must show the dead lock unrenewed (interval + 2 s)
    # A plain Terraform run (not under tfwrap) and a tfwrap run in workspace dev, both real.
    direct = holding(tools, plain, env, "apply", "-auto-approve", *QUIET)
    wrapped = subprocess.Popen(
        ["terraform", "apply", "-auto-approve", *QUIET],
        cwd=live,
        env={**env, "TF_WORKSPACE": "dev"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: etag(s3.url, bucket_name, "plain/terraform.tfstate"), "no plain lock", direct)

        def heartbeat() -> bool:
            try:
                got = s3_client(s3.url).get_object(Bucket=bucket_name, Key=ws_key + ".tflock")
            except Exception:  # noqa: BLE001 - not there yet
                return False
            return bool(json.loads(got["Body"].read())["Info"].startswith("tfwrap "))

        wait_for(heartbeat, "tfwrap never wrote its heartbeat", wrapped)
        plain_etag = etag(s3.url, bucket_name, "plain/terraform.tfstate")
        ws_etag = etag(s3.url, bucket_name, ws_key)

        doc = ls(tools, [str(root)], tmp_path, env)
        verdicts = {row["state_key"]: row["verdict"] for row in doc["locks"]}
        assert verdicts == {
            "live/terraform.tfstate": "alive",
            "dead/terraform.tfstate": "stale",
            "plain/terraform.tfstate": "unknown",
            ws_key: "alive",
        }, doc
        rows = {row["state_key"]: row for row in doc["locks"]}
        assert rows["dead/terraform.tfstate"]["s3"]["ID"] == dead_id
        assert rows["live/terraform.tfstate"]["holder"]["ci"] == "https://ci.example/runs/7"
        assert rows[ws_key]["stack"] == str(live) and rows[ws_key]["s3"]["Operation"] == "OperationTypeApply"
        assert rows["plain/terraform.tfstate"]["holder"] is None and doc["problems"] == []
        assert doc["summary"] == "4 locks in 1 bucket: 2 alive, 1 stale, 1 unknown"

        human = tfwrap(tools, ["lock", "ls", str(root)], tmp_path, env)
        assert human.returncode == 0 and human.stderr == "", human.stderr
        assert human.stdout.splitlines()[0].split()[:3] == ["VERDICT", "AGE", "LOCK"]
        assert f"s3://{bucket_name}/{ws_key}.tflock" in human.stdout
        only = ls(tools, ["--stale", str(root)], tmp_path, env)
        assert [r["state_key"] for r in only["locks"]] == ["dead/terraform.tfstate"]
        both = ls(tools, ["--stale", "--unknown", str(root)], tmp_path, env)
        assert {r["verdict"] for r in both["locks"]} == {"stale", "unknown"}
        assert ls(tools, ["--older-than", "1h", str(root)], tmp_path, env)["locks"] == []

        # No terminal and no --yes: a dry run, nothing removed.
        dry = tfwrap(
            tools, ["lock", "clear", "--stale", "--all", str(root)], tmp_path, env, stdin=subprocess.DEVNULL
        )
        assert dry.returncode == 0, dry.stderr
        assert "dry run: 1 stale locks would be removed" in dry.stderr and dry.stdout == ""
        assert etag(s3.url, bucket_name, "dead/terraform.tfstate")

        cleared = tfwrap(tools, ["lock", "clear", "--stale", "--all", "--yes", str(root)], tmp_path, env)
        assert cleared.returncode == 0, cleared.stderr
        assert f"removed the stale lock s3://{bucket_name}/dead/terraform.tfstate.tflock (ID {dead_id}" in (
            cleared.stderr
        )
        plain_id = rows["plain/terraform.tfstate"]["s3"]["ID"]
        assert "plain/terraform.tfstate.tflock is unknown, never removed in bulk" in cleared.stderr
        assert f"`tfwrap lock clear --id {plain_id} -chdir {plain}`" in cleared.stderr
        assert "1 removed, 0 kept (changed since judged), 1 refused (not stale), 0 failed" in cleared.stderr
        assert etag(s3.url, bucket_name, "dead/terraform.tfstate") is None
        assert etag(s3.url, bucket_name, "live/terraform.tfstate") == live_etag
        assert etag(s3.url, bucket_name, "plain/terraform.tfstate") == plain_etag
        # The heartbeat may have renewed the workspace lock meanwhile; it is still there.
        assert ws_etag and etag(s3.url, bucket_name, ws_key)
        assert direct.poll() is None and wrapped.poll() is None  # held at the gate all along
        gate.open(runs=2)
        _, err = direct.communicate(timeout=120)
        assert direct.returncode == 0, err
        _, err = wrapped.communicate(timeout=120)
        assert wrapped.returncode == 0, err
    finally:
        for proc in (direct, wrapped):
            if proc.poll() is None:
                proc.terminate()
                proc.wait(30)
    assert (
        etag(s3.url, bucket_name, ws_key) is None
        and etag(s3.url, bucket_name, "plain/terraform.tfstate") is None
    )
    assert etag(s3.url, bucket_name, "live/terraform.tfstate") == live_etag  # alive: never touched


def test_a_renewal_between_judgement_and_delete_keeps_its_lock_and_stragglers_are_listed(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools
) -> None:
    """The bulk delete is conditional on the exact object (ETag) and item (Info) judged."""
    from tfwrap.cli import lock_estate
    from tfwrap.lock import bulk

    make_bucket(s3.url, bucket_name)
    table = make_table(s3.url, f"{bucket_name}-locks")
    root = tmp_path / "estate"
    for name in ("a", "b"):
        stack(root, name, s3.url, bucket_name, tools, env)
    stack(root, "straggler", s3.url, bucket_name, tools, env, dynamodb_table=table)
    put(s3.url, bucket_name, "a/terraform.tfstate", stale_info())
    put(s3.url, bucket_name, "b/terraform.tfstate", stale_info())
    # A straggler still on DynamoDB locking left its item behind, and no .tflock object.
    ddb = ddb_client(s3.url)
    item_key = {"LockID": {"S": f"{bucket_name}/straggler/terraform.tfstate"}}
    ddb.put_item(TableName=table, Item={**item_key, "Info": {"S": body("gone", stale_info())}})
    ddb.put_item(  # its state digest is not a lock
        TableName=table,
        Item={"LockID": {"S": f"{bucket_name}/straggler/terraform.tfstate-md5"}, "Digest": {"S": "x"}},
    )
    time.sleep(UNRENEWED)  # the store's clock must show the dead locks unrenewed (interval + 2 s)

    found = lock_estate.read((root,), (), "", None)
    assert {(r.state_key, r.verdict) for r in found.rows} == {
        ("a/terraform.tfstate", "stale"),
        ("b/terraform.tfstate", "stale"),
        ("straggler/terraform.tfstate", "stale"),
    }
    straggler = next(r for r in found.rows if r.state_key.startswith("straggler"))
    assert straggler.found.s3 is None and straggler.found.item is not None
    # Holder b was only slow: it renews its heartbeat (same ID) after the listing judged it.
    b = next(r for r in found.rows if r.state_key.startswith("b/"))
    assert b.found.s3 is not None
    renewed = b.found.lockfile.rewrite_info(b.found.s3, live_info()).etag

    done = bulk.clear_stale(found.rows)
    assert len(done.removed) == 2 and len(done.kept) == 1 and done.partial
    assert "b/terraform.tfstate.tflock changed since it was read" in done.kept[0]
    assert etag(s3.url, bucket_name, "b/terraform.tfstate") == renewed
    assert etag(s3.url, bucket_name, "a/terraform.tfstate") is None
    assert "Item" not in ddb.get_item(TableName=table, Key=item_key, ConsistentRead=True)
    md5 = {"LockID": {"S": f"{bucket_name}/straggler/terraform.tfstate-md5"}}
    assert "Item" in ddb.get_item(TableName=table, Key=md5, ConsistentRead=True)

    # Through the command: b is alive now, nothing stale is left.
    again = tfwrap(tools, ["lock", "clear", "--stale", "--all", "--yes", str(root)], tmp_path, env)
    assert again.returncode == 0 and "no stale lock among 1 held" in again.stderr, again.stderr


def test_bucket_listing_prefix_and_unreadable_buckets(
    s3: S3Server, bucket_name: str, tmp_path: Path, env: dict[str, str], tools: Tools
) -> None:
    make_bucket(s3.url, bucket_name)
    for key in ("team-a/x/terraform.tfstate", "team-a/env:/dev/y.tfstate", "team-b/z.tfstate"):
        put(s3.url, bucket_name, key, "")
    s3_client(s3.url).put_object(Bucket=bucket_name, Key="team-a/x/terraform.tfstate", Body=b"{}")
    here = {**env, "AWS_ENDPOINT_URL_S3": s3.url, "AWS_REGION": "us-east-1"}
    doc = ls(tools, ["--bucket", bucket_name, "--prefix", "team-a/"], tmp_path, here)
    assert [r["state_key"] for r in doc["locks"]] == [
        "team-a/env:/dev/y.tfstate",
        "team-a/x/terraform.tfstate",
    ]
    assert {r["verdict"] for r in doc["locks"]} == {"unknown"} and doc["locks"][0]["stack"] is None

    missing = f"{bucket_name}-absent"
    partial = tfwrap(tools, ["lock", "ls", "--bucket", bucket_name, "--bucket", missing], tmp_path, here)
    assert partial.returncode == 92, partial.stderr
    assert partial.stderr.splitlines() == [
        f"tfwrap: cannot read s3://{missing}: the bucket does not exist [bucket-missing]"
    ]
    assert "3 locks in 2 buckets: 3 unknown" in partial.stdout
    nothing = tfwrap(tools, ["lock", "ls", "--bucket", missing], tmp_path, here)
    assert nothing.returncode == 80, nothing.stderr
    refused = tfwrap(
        tools, ["lock", "clear", "--stale", "--all", "--yes", "--bucket", bucket_name], tmp_path, here
    )
    assert refused.returncode == 0 and "no stale lock among 3 held" in refused.stderr
    assert refused.stderr.count("never removed in bulk") == 3
    wrong = tfwrap(tools, ["lock", "clear", "--stale", "--bucket", bucket_name], tmp_path, here)
    assert wrong.returncode == 83 and "go with --stale --all" in wrong.stderr


def test_bulk_clear_refuses_stale_locks_on_a_store_that_ignores_delete_conditions() -> None:
    """Where the probe found delete-conditions-ignored, an exact removal is not exact: a stale
    lock there is refused in bulk as in `lock clear --stale` and the takeover."""
    from types import SimpleNamespace

    from tfwrap.lock import bulk, verdict

    safe, unsafe = (
        SimpleNamespace(verdict=verdict.STALE, name="a"),
        SimpleNamespace(verdict=verdict.STALE, name="b"),
    )
    alive = SimpleNamespace(verdict=verdict.ALIVE, name="c")

    def off(row: object) -> str:
        return "delete-conditions-ignored" if row is unsafe else ""

    removed, refused = bulk.plan([safe, unsafe, alive], off)  # type: ignore[list-item]
    assert removed == [safe] and refused == [unsafe]
    assert bulk.plan([safe, unsafe, alive]) == ([safe, unsafe], [])  # type: ignore[list-item]
