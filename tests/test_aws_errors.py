"""One way to read an AWS failure's code, safe on any exception (a ``response`` of None too)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from tfwrap.aws.errors import error_code
from tfwrap.supervise import cleanup


class NoResponse(Exception):
    """An SDK error whose ``response`` is None (botocore leaves it so on some paths)."""

    response = None


def test_error_code_of_any_failure() -> None:
    denied = ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "GetObject")
    bare = ClientError({"ResponseMetadata": {"HTTPStatusCode": 412}}, "PutObject")  # type: ignore[typeddict-item]
    assert error_code(denied) == "AccessDenied" and error_code(bare) == "412"
    assert error_code(NoResponse()) == "" and error_code(ValueError()) == ""
    assert error_code(EndpointConnectionError(endpoint_url="http://127.0.0.1:9")) == ""


def test_cleanup_says_one_line_when_the_failure_has_no_response(capsys: pytest.CaptureFixture[str]) -> None:
    class Store:
        def __getattr__(self, name: str) -> Any:
            def fail(*_: Any, **__: Any) -> Any:
                raise NoResponse

            return fail

    locks = SimpleNamespace(s3=Store(), dynamo=None)
    store = SimpleNamespace(for_cleanup=lambda: locks)
    heartbeat: Any = SimpleNamespace(
        locked="5f0c", unlocked=False, attempted="5f0c", connect_error="", locks=store
    )
    assert cleanup.clean_up(heartbeat, 1) == ""
    line = capsys.readouterr().err.strip()
    assert line.startswith("tfwrap: could not check whether Terraform left its lock 5f0c behind (NoResponse)")
    assert "tfwrap lock clear --id 5f0c" in line


def test_an_aws_failure_is_one_refusal_line_with_what_to_do() -> None:
    from tfwrap.aws.errors import refused
    from tfwrap.errors import TfwrapError

    def refusal(exc: Exception, **how: Any) -> TfwrapError:
        with (
            pytest.raises(TfwrapError) as caught,
            refused("read the lock s3://b/k", "http://127.0.0.1:9", **how),
        ):
            raise exc
        return caught.value

    denied = ClientError(
        {"Error": {"Code": "AccessDenied", "Message": "User: x is not authorized"}}, "GetObject"
    )
    granted = refusal(denied, action="s3:GetObject", grant="s3:GetObject on s3://b/k")
    assert granted.code == 80
    assert granted.message == "cannot read the lock s3://b/k: access denied; grant s3:GetObject on s3://b/k"
    # Without a grant to name, the same failure is said as it is, with its kind.
    assert refusal(denied).message == "cannot read the lock s3://b/k: access denied [access-denied]"
    # A failure tfwrap cannot name gets AWS's own words; one it names is not said twice.
    odd = ClientError(
        {"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."}}, "GetObject"
    )
    said = refusal(odd, code=81, action="s3:GetObject")
    assert said.code == 81
    assert said.message == (
        "cannot read the lock s3://b/k (s3:GetObject): "
        "SlowDown: Please reduce your request rate. [check-failed]"
    )
    missing = ClientError(
        {"Error": {"Code": "NoSuchBucket", "Message": "The specified bucket does not exist"}}, "X"
    )
    assert (
        refusal(missing).message
        == "cannot read the lock s3://b/k: the bucket does not exist [bucket-missing]"
    )
    # Anything but an AWS failure passes through untouched.
    with pytest.raises(KeyError), refused("read", None):
        raise KeyError("k")
