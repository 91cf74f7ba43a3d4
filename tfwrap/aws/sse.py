"""SSE-C: the customer-provided key of every S3 object call on the state, as Terraform sends it.

Terraform takes the key from the backend's ``sse_customer_key``, else from the environment's
``AWS_SSE_CUSTOMER_KEY`` (a base64 text of a 256-bit AES key), and sends it only when the
backend says ``encrypt = true`` (without it the state is written in the clear). An object
written with it can only be read with it, so every tfwrap call on the state, its lock or the
migration journal sends the same key. boto3 wants the raw key (botocore base64-encodes it and
adds its MD5 itself): the text is decoded here, or the store would see another key.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from typing import Any

ALGORITHM = "AES256"
ENVIRONMENT = "AWS_SSE_CUSTOMER_KEY"
_REDACTED = "<redacted>"  # an initialised copy whose secret was not kept


def customer_key(settings: Any, environ: Mapping[str, str] | None = None) -> bytes | None:
    """The raw SSE-C key Terraform sends, or None when it sends none: no ``encrypt``, no key, or
    not a 256-bit key in base64 (which Terraform itself refuses before it touches the state)."""
    encrypt = settings.get("encrypt")
    if encrypt is not True and str(encrypt).lower() != "true":
        return None
    env = os.environ if environ is None else environ
    text = settings.get("sse_customer_key") or env.get(ENVIRONMENT) or ""
    if not text or text == _REDACTED:
        return None
    try:
        key = base64.b64decode(str(text), validate=True)
    except (binascii.Error, ValueError):
        return None
    return key if len(key) == 32 else None


def params(settings: Any, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The keyword arguments that give an S3 object call the SSE-C key (``{}`` without one).

    ``settings``: anything with ``.get(name)`` (a BackendConfig or a settings dict)."""
    key = customer_key(settings, environ)
    return {"SSECustomerAlgorithm": ALGORITHM, "SSECustomerKey": key} if key else {}
