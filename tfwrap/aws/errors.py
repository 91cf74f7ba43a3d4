"""Turning AWS failures into what they mean for a check: a finding id and a plain sentence."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from tfwrap import exitcodes

_DENIED = frozenset({"AccessDenied", "AccessDeniedException", "AllAccessDisabled", "403"})
_BAD_CREDENTIALS = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "UnrecognizedClientException",
    }
)


def error_code(exc: BaseException) -> str:
    """The AWS error code of a failure (``"NoSuchKey"``), else its HTTP status as text
    (``"412"``), else ``""``. Safe on any exception, including a ClientError whose
    ``response`` is None or partial."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return ""
    code = (response.get("Error") or {}).get("Code")
    if code:
        return str(code)
    status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    return str(status) if status else ""


def error_message(exc: BaseException) -> str:
    """The store's own sentence for a failure (``Error.Message``), or ``""``."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return ""
    return str((response.get("Error") or {}).get("Message") or "").strip()


def http_status(exc: BaseException) -> int | None:
    """The HTTP status of an AWS failure, when it has one."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    return int(status) if isinstance(status, int) else None


@dataclass(frozen=True)
class Failure:
    """Why a call did not answer: ``kind`` is a finding id from the catalogue."""

    kind: str
    detail: str


def classify(exc: BaseException, endpoint: str | None) -> Failure:
    """Map a botocore exception to a finding kind, without leaking any secret."""
    from botocore import exceptions as bx

    where = endpoint or "AWS"
    if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
        return Failure("no-credentials", "no AWS credentials found")
    if isinstance(exc, bx.ProfileNotFound):
        return Failure("no-credentials", f"AWS profile not found: {exc.kwargs.get('profile')}")
    if isinstance(exc, bx.ConnectTimeoutError | bx.ReadTimeoutError):
        return Failure("endpoint-unreachable", f"{where} did not answer in time")
    if isinstance(exc, bx.EndpointConnectionError | bx.ConnectionClosedError):
        return Failure("endpoint-unreachable", f"cannot connect to {where}")
    if isinstance(exc, bx.ClientError):
        code = error_code(exc)  # the HTTP status when the store gave no code
        if code in _DENIED:
            return Failure("access-denied", "access denied")
        if code in _BAD_CREDENTIALS:
            return Failure("bad-credentials", f"AWS rejected the credentials ({code})")
        if code == "NoSuchBucket":
            return Failure("bucket-missing", "the bucket does not exist")
        return Failure("check-failed", code)
    if isinstance(exc, bx.BotoCoreError):
        return Failure("check-failed", type(exc).__name__)
    return Failure("check-failed", type(exc).__name__)


@contextmanager
def refused(
    what: str, endpoint: str | None, *, code: int = exitcodes.AWS_FAILURE, action: str = "", grant: str = ""
) -> Iterator[None]:
    """An AWS failure inside as one line, ``TfwrapError`` with ``code`` (``AWS_FAILURE``, 80):
    "cannot WHAT (ACTION): why [kind]"; access denied with ``grant`` says what to grant."""
    from botocore.exceptions import BotoCoreError, ClientError

    from tfwrap.errors import TfwrapError

    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        failure = classify(exc, endpoint)
        if grant and failure.kind == "access-denied":
            raise TfwrapError(f"cannot {what}: access denied; grant {grant}", code) from exc
        said = error_message(exc) if failure.kind == "check-failed" else ""  # the others say it
        detail = f"{failure.detail}: {said}" if said and said != failure.detail else failure.detail
        label = f"{what} ({action})" if action else what
        raise TfwrapError(f"cannot {label}: {detail} [{failure.kind}]", code) from exc
