"""The suite's one IAM-enforcing S3/DynamoDB API server (moto with IAM enforcement on): an
admin made with the few requests it lets through unchecked, then users whose only policy is
the one a test gives them. The fixtures ``iam_server`` and ``world`` are in tests/conftest.py."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.support.world import make_bucket
from tfwrap.demo.server import S3Server

# The requests the server lets through unchecked: the admin's user, key and policy.
SETUP_CALLS = 3


@dataclass
class IamWorld:
    """The IAM-enforcing server, its admin and its compliant bucket."""

    server: S3Server
    log: Path
    admin: dict[str, str] = field(default_factory=dict)
    bucket: str = ""

    def client(self, service: str, creds: dict[str, str]) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.server.url,
            region_name="us-east-1",
            aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
        )

    def bootstrap(self) -> None:
        """Spend the unchecked requests on an admin, then check that enforcement is on."""
        anyone = {"AWS_ACCESS_KEY_ID": "AKIABOOTSTRAPNOTCHKD", "AWS_SECRET_ACCESS_KEY": "unchecked"}
        self.admin = self._user(self.client("iam", anyone), "admin", {"Action": "*", "Resource": "*"})
        with pytest.raises(ClientError) as refused:
            self.client("s3", anyone).list_buckets()
        assert refused.value.response["Error"]["Code"] == "InvalidAccessKeyId"
        self.bucket = f"tfstate-iam-{uuid.uuid4().hex[:8]}"
        with self.as_admin():
            make_bucket(self.server.url, self.bucket)  # Object Lock, encryption, public access block
        self._check_the_action_model()

    def _check_the_action_model(self) -> None:
        """Fail closed on a moto whose IAM model is not the one the IAM tests were written for
        (docs/decisions/113-the-suites-pinned-parts.md): moto 5.2.5 checks a bucket's Object
        Lock read as s3:ListBucket, 5.2.6 as the operation's name, an action AWS does not have."""
        arn = f"arn:aws:s3:::{self.bucket}"
        lister = self.user({"Action": "s3:ListBucket", "Resource": arn})
        try:
            self.client("s3", lister).get_object_lock_configuration(Bucket=self.bucket)
        except ClientError as error:
            if error.response["Error"]["Code"] != "AccessDenied":
                raise
            pytest.fail(
                "this moto checks S3 requests against API operation names, not AWS's IAM actions:"
                " install the suite's pinned parts (bash tests/run does, from tests/constraints.txt)"
            )

    @contextmanager
    def as_admin(self) -> Iterator[None]:
        """``tests.support.world`` helpers take credentials from the environment."""
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(boto3, "DEFAULT_SESSION", None)  # it caches the credentials it found
            for name, value in self.admin.items():
                patch.setenv(name, value)
            yield

    def user(self, document: dict[str, Any]) -> dict[str, str]:
        """A new IAM user whose only policy is ``document``: its keys, as environment variables."""
        return self._user(self.client("iam", self.admin), "tf", document)

    @staticmethod
    def _user(iam_client: Any, hint: str, document: dict[str, Any]) -> dict[str, str]:
        if "Statement" not in document:
            document = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", **document}]}
        name = f"{hint}-{uuid.uuid4().hex[:8]}"
        iam_client.create_user(UserName=name)
        key = iam_client.create_access_key(UserName=name)["AccessKey"]
        iam_client.put_user_policy(UserName=name, PolicyName="tfwrap", PolicyDocument=json.dumps(document))
        return {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
