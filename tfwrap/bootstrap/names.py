"""S3 bucket-name and region rules, checked before any AWS call (pure, no botocore)."""

from __future__ import annotations

import re

_CHARS = re.compile(r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$")
_IP = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
# Reserved by S3 (general purpose bucket naming rules).
_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
RULES = (
    "3-63 lowercase letters, digits, '.' and '-', starting and ending with a letter or digit, "
    "not an IP address"
)


def bucket_problem(name: str) -> str | None:
    """Why ``name`` is not a valid (DNS-compatible) S3 bucket name, or None when it is."""
    if not 3 <= len(name) <= 63:
        return f"it is {len(name)} characters long"
    if not _CHARS.match(name):
        return "it has a character other than a-z, 0-9, '.' and '-', or does not start and end with a-z/0-9"
    for bad in ("..", ".-", "-."):
        if bad in name:
            return f"it contains {bad!r}"
    if _IP.match(name):
        return "it looks like an IP address"
    for prefix in _PREFIXES:
        if name.startswith(prefix):
            return f"the prefix {prefix!r} is reserved"
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            return f"the suffix {suffix!r} is reserved"
    return None


def region_problem(region: str) -> str | None:
    """Why ``region`` cannot be an AWS region name (e.g. ``eu-west-1``), or None."""
    return None if _REGION.match(region) else "it is not a region name such as us-east-1 or eu-west-1"


def partition(region: str) -> str:
    """The ARN partition of ``region``."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"
