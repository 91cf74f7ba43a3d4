"""The lock arguments Terraform accepts, read as Terraform reads them."""

from __future__ import annotations

import pytest

from tfwrap.terraform import commands
from tfwrap.terraform.lockargs import lock_timeout, with_lock_timeout


@pytest.mark.parametrize(
    ("args", "seconds"),
    [
        (["-lock-timeout=5m"], 300),
        (["-lock-timeout", "5m"], 300),  # Go's flag package takes the space form too
        (["--lock-timeout", "1m30s"], 90),
        (["--lock-timeout=1500ms"], 1.5),
        (["-lock-timeout=10s", "-lock-timeout", "20s"], 20),  # the last one wins
        (["-lock-timeout=5x"], 0),
        ([], 0),
    ],
)
def test_lock_timeout_in_every_form(args: list[str], seconds: float) -> None:
    assert lock_timeout(["-auto-approve", *args]) == pytest.approx(seconds)


def test_lock_timeout_from_tf_cli_args(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TF_CLI_ARGS_apply", "-lock-timeout=2m")
    assert lock_timeout(commands.parse(["apply", "-auto-approve"]).effective_args()) == 120
    monkeypatch.setenv("TF_CLI_ARGS", "-lock-timeout 3m")
    assert lock_timeout(commands.parse(["apply"]).effective_args()) == 180  # after _apply: wins
    assert lock_timeout(commands.parse(["apply", "-lock-timeout=4m"]).effective_args()) == 240


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["apply", "-lock-timeout", "5m", "plan.out"], ["apply", "-lock-timeout=42s", "plan.out"]),
        (["-chdir=x", "apply", "-lock-timeout=5m"], ["-chdir=x", "apply", "-lock-timeout=42s"]),
        # from TF_CLI_ARGS: ours goes after the command, where it follows (and beats) theirs
        (["plan", "-out=p"], ["plan", "-lock-timeout=42s", "-out=p"]),
        (["state", "mv", "a", "b"], ["state", "mv", "-lock-timeout=42s", "a", "b"]),
    ],
)
def test_a_retry_waits_only_what_is_left(argv: list[str], expected: list[str]) -> None:
    command = commands.parse(argv)
    once = with_lock_timeout(command, argv, 42.7)
    assert once == expected
    assert with_lock_timeout(command, once, 42.7) == expected  # a second retry: still one flag


@pytest.mark.parametrize(
    ("argv", "takes"),
    [
        (["apply", "-lock=false"], False),
        (["apply", "-lock=0"], False),
        (["apply", "--lock=false"], False),
        (["apply", "-lock=F"], False),
        (["apply", "-lock=false", "-lock=true"], True),
        (["apply", "-lock=1"], True),
        (["apply"], True),
    ],
)
def test_lock_false_in_every_form(argv: list[str], takes: bool) -> None:
    assert commands.parse(argv).takes_lock is takes


def test_lock_false_from_tf_cli_args(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TF_CLI_ARGS_plan", "-lock=0")
    assert commands.parse(["plan"]).takes_lock is False
    assert commands.parse(["apply"]).takes_lock is True
