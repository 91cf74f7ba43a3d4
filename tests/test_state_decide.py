"""The pure pieces of ``tfwrap state``: holdings from lock versions, attribution of state
writes, the undo plan, the diff (never a value), and the recovery IAM policy."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from tfwrap import exitcodes, iam
from tfwrap.errors import TfwrapError
from tfwrap.findings import policy
from tfwrap.state import attribution, diff, summary
from tfwrap.state.versions import Version

T0 = dt.datetime(2026, 12, 1, 12, 0, 0, tzinfo=dt.timezone.utc)
SECRET = "SENTINEL-value-9d1"  # noqa: S105 - a sentinel attribute value


def at(seconds: int) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def lock(vid: str, second: int, deleted: bool = False) -> Version:
    return Version("k.tflock", vid, at(second), 0 if deleted else 200, "", False, deleted)


def state(vid: str, second: int, latest: bool = False) -> Version:
    return Version("k", vid, at(second), 100, f'"{vid}"', latest)


def newest_first(*versions: Version) -> list[Version]:
    """As the listing gives them: PUTs before markers within a second (it cannot tell)."""
    order = {id(v): i for i, v in enumerate(versions)}
    return sorted(versions, key=lambda v: (-v.written.timestamp(), v.deleted, -order[id(v)]))


def test_holdings_split_at_delete_markers() -> None:
    versions = newest_first(
        lock("p1", 0), lock("h1", 5), lock("d1", 9, True), lock("p2", 20), lock("d2", 25, True)
    )
    found = attribution.holdings(versions)
    assert [(h.start, h.end, h.newest.version_id) for h in found] == [
        (at(20), at(25), "p2"),
        (at(0), at(9), "h1"),  # the newest version names the holder: the last heartbeat
    ]


def test_a_second_with_a_heartbeat_and_a_release_keeps_the_heartbeat_in_its_holding() -> None:
    versions = newest_first(lock("p1", 0), lock("h1", 3), lock("d1", 3, True))
    assert attribution.ids_needed(versions) == [lock("p1", 0), lock("h1", 3)]
    found = attribution.holdings(versions, {"p1": "A", "h1": "A"})
    assert [(h.start, h.end, h.newest.version_id) for h in found] == [(at(0), at(3), "h1")]


def test_a_second_with_a_release_and_a_new_lock_starts_a_new_holding() -> None:
    versions = newest_first(lock("p1", 0), lock("d1", 3, True), lock("p2", 3), lock("d2", 6, True))
    found = attribution.holdings(versions, {"p1": "A", "p2": "B"})
    assert [(h.start, h.end, h.newest.version_id) for h in found] == [
        (at(3), at(6), "p2"),
        (at(0), at(3), "p1"),
    ]


def test_attribution_and_undo_plan() -> None:
    locks = newest_first(lock("p1", 0), lock("d1", 2, True), lock("p2", 10), lock("d2", 14, True))
    found = attribution.holdings(locks)
    writes = [state("s3", 14, latest=True), state("s2", 12), state("s1", 1), state("s0", -5)]
    attributed = attribution.attribute(writes, found)
    assert [a.writer.newest.version_id if a.writer else None for a in attributed] == ["p2", "p2", "p1", None]
    plan = attribution.undo_plan(attributed)
    # A long apply writes several versions: undo goes back past all of them.
    assert plan.target is not None and plan.target.version_id == "s1"
    assert [v.version_id for v in plan.undone] == ["s3", "s2"]


def test_undo_refuses_when_the_last_run_cannot_be_told_apart() -> None:
    locks = newest_first(lock("p1", 0), lock("d1", 4, True), lock("p2", 4), lock("d2", 8, True))
    found = attribution.holdings(locks, {"p1": "A", "p2": "B"})
    attributed = attribution.attribute([state("s2", 7, latest=True), state("s1", 4)], found)
    assert attributed[1].ambiguous and len(attributed[1].candidates) == 2
    plan = attribution.undo_plan(attributed)
    assert plan.target is None and "cannot be told apart" in plan.refusal
    assert [v.version_id for v in plan.candidates] == ["s2", "s1"]
    unknown = attribution.undo_plan(attribution.attribute([state("s9", 100, latest=True)], found))
    assert unknown.target is None and "no lock version encloses" in unknown.refusal


def body(serial: int, resources: dict[str, str], token: str = SECRET) -> bytes:
    return json.dumps(
        {
            "version": 4,
            "terraform_version": "1.15.5",
            "serial": serial,
            "lineage": "lin-1",
            "outputs": {"token": {"value": token, "type": "string", "sensitive": True}},
            "resources": [
                {
                    "mode": "managed",
                    "type": "terraform_data",
                    "name": name,
                    "provider": 'provider["terraform.io/builtin/terraform"]',
                    "instances": [{"attributes": {"id": name, "input": value}}],
                }
                for name, value in resources.items()
            ],
        }
    ).encode()


def test_diff_names_addresses_and_attributes_never_values() -> None:
    old = summary.summarise(body(3, {"a": SECRET, "b": "x"}))
    new = summary.summarise(body(4, {"a": SECRET + "-rotated", "c": "y"}, token=SECRET + "2"))
    found = diff.between(old, new)
    assert [c.address for c in found.added] == ["terraform_data.c"]
    assert [c.address for c in found.removed] == ["terraform_data.b"]
    assert [(c.address, c.attributes) for c in found.changed] == [("terraform_data.a", ["input"])]
    assert found.outputs_changed == ["token"]
    shown = "\n".join(diff.lines(found)) + json.dumps(found.document()) + repr(old) + repr(new)
    assert SECRET not in shown


def test_restored_body_gets_the_new_serial_and_keeps_everything_else() -> None:
    original = body(3, {"a": "v"})
    rewritten = summary.with_serial(original, 9)
    assert json.loads(rewritten) == {**json.loads(original), "serial": 9}


def test_recovery_policy_names_the_version_actions() -> None:
    document = iam.policy(iam.Target(bucket="b", key="app/terraform.tfstate"), recovery=True)
    by_sid = {s["Sid"]: s for s in document["Statement"]}
    assert by_sid["TfwrapRecoveryList"]["Action"] == ["s3:ListBucketVersions"]
    assert by_sid["TfwrapRecoveryVersions"]["Resource"] == [
        "arn:aws:s3:::b/app/terraform.tfstate",
        "arn:aws:s3:::b/app/terraform.tfstate.tflock",
    ]
    assert "TfwrapRecoveryList" not in {s["Sid"] for s in iam.statements(iam.Target(bucket="b", key="k"))}


def test_state_backup_setting(tmp_path: Path) -> None:
    assert policy.load(str(tmp_path), {}).state_backup is False
    (tmp_path / ".tfwrap.toml").write_text("state_backup = true\n")
    assert policy.load(str(tmp_path), {}).state_backup is True
    (tmp_path / ".tfwrap.toml").write_text('state_backup = "yes"\n')
    with pytest.raises(TfwrapError) as refused:
        policy.load(str(tmp_path), {})
    assert refused.value.code == exitcodes.POLICY and "true or false" in refused.value.message


def test_access_denied_names_the_recovery_actions() -> None:
    from botocore.exceptions import ClientError

    from tfwrap.backend.config import BackendConfig
    from tfwrap.cli.state import _aws

    nowhere = Path("/nonexistent")
    settings = {"bucket": "b", "key": "app/terraform.tfstate"}
    backend = BackendConfig(nowhere, nowhere, "default", backend_type="s3", settings=settings)
    denied = ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "ListObjectVersions")
    with pytest.raises(TfwrapError) as refused, _aws("list the versions", backend):
        raise denied
    assert refused.value.code == exitcodes.BLOCKED
    assert "s3:ListBucketVersions" in refused.value.message and "s3:GetObjectVersion" in refused.value.message
    assert "tfwrap iam-policy --recovery" in refused.value.message


def test_only_the_seconds_after_the_last_clean_release_need_ids() -> None:
    versions = newest_first(
        lock("p1", 0),
        lock("d1", 3, True),
        lock("p2", 3),
        lock("d2", 6, True),
        lock("p3", 9),
        lock("d3", 12, True),
    )
    # A write at 10 or later: the release at 6 (no PUT in that second) closes all before it.
    assert [v.version_id for v in attribution.since_release(versions, at(10))] == ["d3", "p3", "d2"]
    assert attribution.ids_needed(attribution.since_release(versions, at(10))) == []
    # A write at 4: no clean release before it, so everything, and the tie at 3 is read.
    assert attribution.since_release(versions, at(4)) == versions
    assert [v.version_id for v in attribution.ids_needed(versions)] == ["p1", "p2"]
