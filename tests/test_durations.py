"""One Go-duration grammar (Terraform's ``duration`` settings and ``-lock-timeout``) for every caller."""

from __future__ import annotations

import pytest

from tfwrap.aws import clients
from tfwrap.durations import parse_duration
from tfwrap.errors import TfwrapError
from tfwrap.terraform import lockargs

ROLE = "arn:aws:iam::123456789012:role/state"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1h", 3600),
        ("1.5h", 5400),
        ("15m30s", 930),
        ("1500ms", 1.5),
        ("2h45m", 9900),
        ("0", 0),
        ("300s", 300),
    ],
)
def test_every_caller_reads_a_go_duration_alike(text: str, seconds: float) -> None:
    assert lockargs.lock_timeout([f"-lock-timeout={text}"]) == pytest.approx(seconds)
    assert parse_duration(text) == pytest.approx(seconds)
    params = clients.assume_role_params({"role_arn": ROLE, "duration": text})
    assert params.get("DurationSeconds", 0) == int(seconds)


@pytest.mark.parametrize("text", ["1.5", "h", "1hh", "-", "1 h", "1d2"])
def test_not_a_duration(text: str) -> None:
    assert lockargs.lock_timeout([f"-lock-timeout={text}"]) == 0
    with pytest.raises(TfwrapError):
        parse_duration(text)
    assert "DurationSeconds" not in clients.assume_role_params({"role_arn": ROLE, "duration": text})


def test_days_are_tfwraps_own_extension() -> None:
    """``--soak 2d`` is tfwrap's; Terraform's grammar has no days."""
    assert parse_duration("2d") == 172800
    assert lockargs.lock_timeout(["-lock-timeout=2d"]) == 0
