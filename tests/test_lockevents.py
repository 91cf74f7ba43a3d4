"""Reading Terraform's lock events from its log, and keeping the user's own logging."""

from __future__ import annotations

from pathlib import Path

import pytest

from tfwrap.supervise.lockevents import LogPlan, LogWatcher, parse_line

LOCK_ID = "e566f7e4-9910-5493-3a8f-d0e08506624d"
ID = f"tf_backend.lock.id={LOCK_ID}"
S3 = "T [INFO]  backend-s3:"


@pytest.mark.parametrize(
    ("line", "kind", "mode"),
    [
        (
            f"{S3} Attempting to lock remote state (S3 Native only)...: {ID}",
            "attempt",
            "S3 Native only",
        ),
        (
            f"{S3} Locked remote state (S3 Native and DynamoDB): {ID} x=y",
            "locked",
            "S3 Native and DynamoDB",
        ),
        (
            f"{S3} Attempting to unlock remote state (DynamoDB only)...: {ID}",
            "unlock-attempt",
            "DynamoDB only",
        ),
        (
            '{"@message":"backend-s3: Unlocked remote state (S3 Native only)",'
            f'"tf_backend.lock.id":"{LOCK_ID}"}}',
            "unlocked",
            "S3 Native only",
        ),
    ],
)
def test_lock_events_in_text_and_json_logs(line: str, kind: str, mode: str) -> None:
    event = parse_line(line)
    assert event is not None and (event.kind, event.mode, event.lock_id) == (kind, mode, LOCK_ID)


def test_other_lines_are_not_events() -> None:
    assert parse_line("T [INFO]  Terraform version: 1.15.5") is None
    assert parse_line("the remote state (S3) was read") is None


def test_our_own_log_when_the_user_has_none(tmp_path: Path) -> None:
    plan = LogPlan({"PATH": "/bin"}, str(tmp_path))
    assert plan.child_env["TF_LOG_CORE"] == "INFO" and plan.child_env["TF_LOG_PATH"].startswith(str(tmp_path))
    assert not plan.relay


def test_users_log_file_gets_the_lines_terraform_logs_privately(tmp_path: Path) -> None:
    """Terraform logs to a private file; the user's TF_LOG_PATH gets a copy, and
    another run's lines in the user's file are never read as this run's lock."""
    theirs = tmp_path / "mine.log"
    other_run = f"T [INFO]  backend-s3: Locked remote state (S3 Native only): tf_backend.lock.id={LOCK_ID}\n"
    theirs.write_text("old run\n" + other_run)
    plan = LogPlan({"TF_LOG": "DEBUG", "TF_LOG_PATH": str(theirs)}, str(tmp_path))
    assert plan.child_env["TF_LOG_PATH"] == str(tmp_path / "terraform-1.log")
    assert "TF_LOG_CORE" not in plan.child_env and plan.copy_to == str(theirs) and not plan.relay
    watcher = LogWatcher(plan)
    assert not watcher.has_output() and watcher.poll() == []  # the other run's line is not ours
    ours = "c0ffee00-9910-5493-3a8f-d0e08506624d"
    locked = f"T [INFO]  backend-s3: Locked remote state (S3 Native only): tf_backend.lock.id={ours}"
    Path(plan.path).write_text(f"T [DEBUG] something\n{locked}\n")
    events = watcher.poll()
    assert watcher.has_output() and [(e.kind, e.lock_id) for e in events] == [("locked", ours)]
    assert theirs.read_text() == "old run\n" + other_run + Path(plan.path).read_text()


def test_each_attempt_logs_to_a_file_of_its_own(tmp_path: Path) -> None:
    """A retry never re-reads the previous attempt's lines (nor its lock ID)."""
    first, second = LogPlan({}, str(tmp_path), 1), LogPlan({}, str(tmp_path), 2)
    assert first.path != second.path
    Path(first.path).write_text(f"T [INFO]  backend-s3: Locked remote state (S3 Native only): {ID}\n")
    assert LogWatcher(second).poll() == []


def test_user_log_path_without_a_level_gets_nothing(tmp_path: Path) -> None:
    theirs = tmp_path / "mine.log"
    plan = LogPlan({"TF_LOG_PATH": str(theirs)}, str(tmp_path))
    Path(plan.path).write_text(f"T [INFO]  backend-s3: Locked remote state (S3 Native only): {ID}\n")
    assert [e.kind for e in LogWatcher(plan).poll()] == ["locked"]
    assert not theirs.exists()  # Terraform itself writes nothing there when no level is set


def test_logs_asked_for_on_stderr_are_relayed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = LogPlan({"TF_LOG": "WARN"}, str(tmp_path))
    assert plan.relay and plan.drop_info and plan.child_env["TF_LOG_CORE"] == "INFO"
    Path(plan.path).write_text(
        f"T [INFO]  backend-s3: Locked remote state (S3 Native only): tf_backend.lock.id={LOCK_ID}\n"
        "T [WARN]  something the user wants to see\n"
    )
    events = LogWatcher(plan).poll()
    err = capsys.readouterr().err
    assert [e.kind for e in events] == ["locked"]
    assert "something the user wants to see" in err and "Locked remote state" not in err
