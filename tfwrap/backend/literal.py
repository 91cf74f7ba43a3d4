"""Backend settings Terraform refuses before it starts: an empty ``bucket``, or an expression.

A ``backend`` block takes literal values only: ``bucket = var.b`` is "Variables not allowed"
and ``bucket = ""`` fails the S3 backend's validation. Checking such a bucket with AWS only
gave four ``check-failed ... ParamValidationError`` warnings pointing at IAM, then ran
Terraform: it is an unreadable configuration, one line and exit 82.
"""

from __future__ import annotations

from typing import Any

from tfwrap.backend.config import BackendConfig
from tfwrap.errors import BackendConfigError


def _expression(value: Any) -> str | None:
    """The first interpolation in a value (python-hcl2 renders ``var.b`` as ``${var.b}``)."""
    if isinstance(value, str):
        return value if "${" in value else None
    if isinstance(value, dict):
        return next((found for v in value.values() if (found := _expression(v))), None)
    if isinstance(value, list):
        return next((found for v in value if (found := _expression(v))), None)
    return None


def refuse_unusable(backend: BackendConfig) -> None:
    """BackendConfigError (exit 82) when Terraform would refuse the S3 backend's settings."""
    for source in backend.sources:
        if source.where.endswith(("terraform.tfstate", "=...")):
            continue  # written by Terraform itself, or a -backend-config key=value (a plain string)
        for name, value in source.settings.items():
            found = _expression(value)
            if found:
                raise BackendConfigError(
                    f"{name} = {found} in {source.where}: a backend block takes literal values only "
                    "(Terraform: Variables not allowed); write the value, or pass it with "
                    f"`terraform init -backend-config={name}=VALUE`"
                )
    if "bucket" in backend.settings and not str(backend.settings["bucket"]).strip():
        where = next((s.where for s in reversed(backend.sources) if "bucket" in s.settings), "the backend")
        raise BackendConfigError(
            f'bucket is empty in {where}, which Terraform refuses; set bucket = "NAME" in the '
            'backend "s3" block'
        )
