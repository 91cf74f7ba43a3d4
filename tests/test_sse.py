"""SSE-C: tfwrap sends the customer key exactly as Terraform does, from the backend or the
environment, (the headers botocore really builds; the end-to-end migration is in test_migrate.py)."""

from __future__ import annotations

import base64
import hashlib
import os
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tfwrap.aws import sse

KEY = os.urandom(32)
TEXT = base64.b64encode(KEY).decode()


def headers_sent(**params: Any) -> dict[str, str]:
    """The headers botocore puts on a GetObject with these parameters (nothing is sent)."""
    client = boto3.client(
        "s3",
        endpoint_url="http://127.0.0.1:9",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - not a secret
        config=Config(retries={"max_attempts": 0}),
    )
    seen: dict[str, str] = {}

    class Sent(Exception):
        pass

    def grab(request: Any, **_: Any) -> None:
        for name, value in request.headers.items():
            seen[name.lower()] = value.decode() if isinstance(value, bytes) else value
        raise Sent

    client.meta.events.register("before-send.s3.GetObject", grab)
    with pytest.raises(Sent):
        client.get_object(Bucket="b", Key="k", **params)
    return {k: v for k, v in seen.items() if "customer" in k}


def test_the_key_reaches_the_store_as_terraform_sends_it() -> None:
    expected = {
        "x-amz-server-side-encryption-customer-algorithm": "AES256",
        "x-amz-server-side-encryption-customer-key": TEXT,
        "x-amz-server-side-encryption-customer-key-md5": base64.b64encode(hashlib.md5(KEY).digest()).decode(),  # noqa: S324
    }
    assert headers_sent(**sse.params({"encrypt": True, "sse_customer_key": TEXT}, {})) == expected
    assert headers_sent(**sse.params({"encrypt": True}, {"AWS_SSE_CUSTOMER_KEY": TEXT})) == expected


def test_the_backend_setting_wins_and_no_key_means_no_parameters() -> None:
    other = base64.b64encode(b"x" * 32).decode()
    on = {"encrypt": True}
    assert (
        sse.params({**on, "sse_customer_key": TEXT}, {"AWS_SSE_CUSTOMER_KEY": other})["SSECustomerKey"] == KEY
    )
    assert sse.params({**on, "encrypt": "true"}, {"AWS_SSE_CUSTOMER_KEY": TEXT})["SSECustomerKey"] == KEY
    assert sse.params(on, {}) == {}
    assert sse.params({"sse_customer_key": TEXT}, {}) == {}  # no encrypt: Terraform sends no key
    assert sse.params({**on, "sse_customer_key": "<redacted>"}, {}) == {}
    assert sse.params({**on, "sse_customer_key": "not base64!"}, {}) == {}
