"""One state bucket as bootstrap sees it: the calls made on it, each failure a one-line refusal
naming its IAM action (``refusal``), and reading what is there (``Bucket``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from tfwrap import exitcodes
from tfwrap.aws.errors import classify, error_code, error_message, http_status
from tfwrap.errors import TfwrapError

if TYPE_CHECKING:
    from tfwrap.bootstrap.standard import Standard


def _region_header(answer: Any) -> str:
    """The ``x-amz-bucket-region`` of a response or of an error's response."""
    response = getattr(answer, "response", answer) or {}
    headers = (response.get("ResponseMetadata") or {}).get("HTTPHeaders") or {}
    return str(headers.get("x-amz-bucket-region") or "")


def refusal(exc: BaseException, action: str, bucket: str, endpoint: str | None) -> TfwrapError:
    """One line for an AWS failure: what was refused, and what to do."""
    failure = classify(exc, endpoint)
    where = endpoint or "AWS"
    if failure.kind == "access-denied":
        message = (
            f"access denied: {action} on bucket {bucket!r} was refused; "
            "grant it to the identity running tfwrap bootstrap"
        )
    elif failure.kind == "endpoint-unreachable":
        message = (
            f"cannot reach S3 at {where} ({failure.detail}); "
            "check the network, --endpoint-url, AWS_ENDPOINT_URL_S3 and AWS_ENDPOINT_URL"
        )
    elif failure.kind in ("no-credentials", "bad-credentials"):
        message = f"{failure.detail}; configure AWS credentials (AWS_PROFILE, --profile, `aws configure`)"
    elif failure.kind == "bucket-missing":
        message = f"{action}: bucket {bucket!r} does not exist at {where}"
    else:
        text = error_message(exc)
        message = f"{action} on bucket {bucket!r} failed: {failure.detail}" + (f": {text}" if text else "")
    return TfwrapError(message, exitcodes.AWS_FAILURE)


class Bucket:
    """The calls made on one bucket; each failure is a one-line refusal naming its IAM action."""

    def __init__(self, s3: Any, standard: Standard, endpoint: str | None) -> None:
        self.s3 = s3
        self.standard = standard
        self.name = standard.bucket
        self.endpoint = endpoint

    @contextmanager
    def _refusing(self, action: str) -> Iterator[None]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except (BotoCoreError, ClientError) as exc:
            raise refusal(exc, action, self.name, self.endpoint) from exc

    def call(self, action: str, method: str, **params: Any) -> dict[str, Any]:
        with self._refusing(action):
            answer: dict[str, Any] = getattr(self.s3, method)(Bucket=self.name, **params)
            return answer

    def read(self, action: str, method: str, absent: str) -> dict[str, Any] | None:
        """A ``Get*`` whose "not configured" error (``absent``) means None."""
        from botocore.exceptions import ClientError

        try:
            answer: dict[str, Any] = getattr(self.s3, method)(Bucket=self.name)
            return answer
        except ClientError as exc:
            if error_code(exc) == absent:
                return None
            raise refusal(exc, action, self.name, self.endpoint) from exc
        except Exception as exc:
            raise refusal(exc, action, self.name, self.endpoint) from exc

    def exists(self) -> bool:
        """Whether the bucket exists (and is reachable by us) in the standard's region."""
        from botocore.exceptions import ClientError

        try:
            answer = self.s3.head_bucket(Bucket=self.name)
        except ClientError as exc:
            status = http_status(exc)
            if status == 404 or error_code(exc) in ("404", "NoSuchBucket"):
                return False
            if status == 403:
                return self._forbidden()
            if status == 301 and _region_header(exc):
                self._same_region(_region_header(exc))
            raise refusal(exc, "s3:ListBucket", self.name, self.endpoint) from exc
        except Exception as exc:
            raise refusal(exc, "s3:ListBucket", self.name, self.endpoint) from exc
        if _region_header(answer):
            self._same_region(_region_header(answer))
        return True

    def _forbidden(self) -> bool:
        """HeadBucket said 403, which has no body: ask again with a call whose error says why."""
        from botocore.exceptions import ClientError

        try:
            self.s3.get_bucket_location(Bucket=self.name)
        except ClientError as exc:
            if error_code(exc) == "NoSuchBucket":
                return False
            if error_code(exc) not in ("AccessDenied", "AllAccessDisabled", "403", ""):
                raise refusal(exc, "s3:GetBucketLocation", self.name, self.endpoint) from exc
            raise TfwrapError(
                f"bucket {self.name!r} exists but s3:ListBucket on it was refused: it belongs to another "
                "AWS account (bucket names are global), or your identity lacks s3:ListBucket on it; "
                "choose another name or grant the action",
                exitcodes.AWS_FAILURE,
            ) from exc
        except Exception as exc:
            raise refusal(exc, "s3:GetBucketLocation", self.name, self.endpoint) from exc
        raise TfwrapError(
            f"access denied: s3:ListBucket on bucket {self.name!r} was refused; "
            "grant it to the identity running tfwrap bootstrap",
            exitcodes.AWS_FAILURE,
        )

    def _same_region(self, actual: str) -> None:
        if actual != self.standard.region:
            raise TfwrapError(
                f"bucket {self.name!r} is in {actual}, not {self.standard.region}: pass --region {actual}",
                exitcodes.USAGE,
            )

    def create(self) -> bool:
        """Create the bucket with Object Lock; False when it turned out to be ours already."""
        from botocore.exceptions import ClientError

        params: dict[str, Any] = {}
        if "Object Lock" not in self.standard.skip:
            params["ObjectLockEnabledForBucket"] = True
        if self.standard.region != "us-east-1":  # us-east-1 refuses a LocationConstraint of itself
            params["CreateBucketConfiguration"] = {"LocationConstraint": self.standard.region}
        try:
            self.s3.create_bucket(Bucket=self.name, **params)
        except ClientError as exc:
            code = error_code(exc)
            if code == "BucketAlreadyExists":
                raise TfwrapError(
                    f"bucket name {self.name!r} is taken by another AWS account (bucket names are "
                    "global); choose another name",
                    exitcodes.USAGE,
                ) from exc
            if code == "BucketAlreadyOwnedByYou":
                return False  # created by us in the meantime: treated as existing
            raise refusal(exc, "s3:CreateBucket", self.name, self.endpoint) from exc
        except Exception as exc:
            raise refusal(exc, "s3:CreateBucket", self.name, self.endpoint) from exc
        with self._refusing("s3:ListBucket"):  # a new bucket can take a moment to be visible
            self.s3.get_waiter("bucket_exists").wait(
                Bucket=self.name, WaiterConfig={"Delay": 1, "MaxAttempts": 15}
            )
        return True
