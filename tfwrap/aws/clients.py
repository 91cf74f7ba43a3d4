"""AWS clients that reach exactly what Terraform reaches: same endpoint, region, profile,
credentials and role, with time-outs short enough that a check never hangs a run.

botocore is imported here and only here, lazily: it costs ~160 ms, paid only on a cold check.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from tfwrap.backend.config import BackendConfig

if TYPE_CHECKING:
    from botocore.client import BaseClient
    from botocore.session import Session

# A check must never hang a run (issue 2: "bounded time-outs, a few seconds at most").
CONNECT_TIMEOUT = 2.0
READ_TIMEOUT = 3.0


def session(backend: BackendConfig) -> Session:
    """A botocore session with the backend's profile, files, keys and assumed role."""
    import botocore.session

    sess = botocore.session.Session(profile=backend.profile)
    for setting, variable in (
        ("shared_credentials_files", "credentials_file"),
        ("shared_config_files", "config_file"),
    ):
        files = backend.get(setting)
        if files:
            sess.set_config_variable(variable, os.path.expanduser(next(iter(files))))
    if backend.get("access_key") and backend.get("secret_key"):
        sess.set_credentials(backend.get("access_key"), backend.get("secret_key"), backend.get("token"))
    role = backend.assume_role
    if role.get("role_arn"):
        _assume_role(sess, backend, role)
    return sess


def _assume_role(sess: Session, backend: BackendConfig, role: dict[str, Any]) -> None:
    sts: Any = sess.create_client(
        "sts",
        region_name=backend.region or "us-east-1",
        endpoint_url=backend.sts_endpoint,
        config=_config(backend),
    )
    params: dict[str, Any] = {
        "RoleArn": role["role_arn"],
        "RoleSessionName": role.get("session_name") or "tfwrap",
    }
    if role.get("external_id"):
        params["ExternalId"] = role["external_id"]
    creds = sts.assume_role(**params)["Credentials"]
    sess.set_credentials(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])


def _config(backend: BackendConfig, checksums: str | None = None) -> Any:
    from botocore.config import Config

    config = Config(
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        retries={"total_max_attempts": 1},
        s3={"addressing_style": "path" if backend.path_style else "auto"},
    )
    if checksums == "when_required":
        return config.merge(Config(request_checksum_calculation="when_required"))
    return config


def client(
    backend: BackendConfig, service: str, sess: Session | None = None, checksums: str | None = None
) -> BaseClient:
    """An S3 or DynamoDB client for the backend's endpoint and region.

    ``checksums``: botocore's ``request_checksum_calculation`` (``when_required`` sends no
    checksum the operation does not need); None keeps the SDK default, as Terraform's SDK.
    """
    sess = sess or session(backend)
    endpoint = backend.s3_endpoint if service == "s3" else backend.dynamodb_endpoint
    return sess.create_client(
        service,
        region_name=backend.region or "us-east-1",
        endpoint_url=endpoint,
        config=_config(backend, checksums),
        verify=False if backend.get("insecure") is True else None,
    )
