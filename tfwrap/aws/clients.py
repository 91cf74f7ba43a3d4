"""AWS clients that reach exactly what Terraform reaches: same endpoint, region, profile,
credentials and role, with time-outs short enough that a check never hangs a run.

botocore is imported here and only here, lazily: it costs ~160 ms, paid only on a cold check.
Building a client costs as much again, mostly botocore reading its JSON models; every
session here shares one data loader that skips that where it can
(docs/decisions/090-botocore-model-loader.md).
Why: docs/decisions/109-retries-where-they-are-safe.md.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tfwrap import durations
from tfwrap.backend.config import BackendConfig

if TYPE_CHECKING:
    from botocore.client import BaseClient
    from botocore.session import Session

# A check must never hang a run ("bounded time-outs, a few seconds at most").
CONNECT_TIMEOUT = 2.0
READ_TIMEOUT = 3.0


def session(backend: BackendConfig) -> Session:
    """A botocore session with the backend's profile, files, keys and assumed role."""
    import botocore.session

    sess = botocore.session.Session(profile=backend.profile)
    config_files = backend.get("shared_config_files")
    if config_files:
        sess.set_config_variable("config_file", os.path.expanduser(next(iter(config_files))))
    _share_loader(sess)
    _shared_credentials(sess, backend)
    if backend.get("access_key") and backend.get("secret_key"):
        sess.set_credentials(backend.get("access_key"), backend.get("secret_key"), backend.get("token"))
    role = backend.assume_role
    if role.get("role_arn"):
        _assume_role(sess, backend, role)
    return sess


_loaders: dict[str | None, Any] = {}  # one data loader per AWS_DATA_PATH, for the whole process


def _share_loader(sess: Session) -> None:
    """Give the session this process's data loader for its ``data_path``: a second session
    (the probe's, the heartbeat's cleanup) reuses every model the first one read."""
    try:
        data_path = sess.get_config_variable("data_path")
    except Exception:  # noqa: BLE001 - a bad profile: botocore's own loader, and its own error later
        return
    loader = _loaders.get(data_path)
    if loader is None:
        loader = _loaders[data_path] = _loader(data_path)
    sess.register_component("data_loader", loader)


def _loader(data_path: str | None) -> Any:
    """botocore's ``create_loader(data_path)``, with the two costs it need not pay here."""
    import gzip
    import json

    from botocore.exceptions import DataNotFoundError
    from botocore.loaders import JSONFileLoader, Loader

    from tfwrap.findings import cache

    class Files(JSONFileLoader):
        """Model files read back from tfwrap's cache (marshal) once parsed: botocore's JSON
        parse of endpoints.json and the S3 model is most of a client's construction.
        Keyed by the file's path and stat, so a botocore upgrade is a miss."""

        def load_file(self, file_path: str) -> Any:
            for ext, opener in ((".json", open), (".json.gz", gzip.open)):
                path = file_path + ext
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                key = cache.digest("botocore-data", path, st.st_mtime_ns, st.st_size)
                kept = cache.get("botocore", key)
                if isinstance(kept, dict) and "data" in kept:
                    return kept["data"]
                with opener(path, "rb") as f:
                    data = json.loads(f.read().decode("utf-8"))
                cache.put("botocore", key, {"data": data})  # wrapped: get() stamps a dict it returns
                return data
            return None

    class Services(Sequence[str]):
        """The known services of one model type, as botocore's loader lists them; ``in``
        asks only the one service's directory instead of listing ~450 of them."""

        def __init__(self, loader: Any, type_name: str) -> None:
            self._loader, self._type = loader, type_name
            self._all: list[str] | None = None

        def __contains__(self, name: object) -> bool:
            try:
                return bool(self._loader.list_api_versions(name, self._type))
            except DataNotFoundError:
                return False

        def _listed(self) -> list[str]:
            if self._all is None:
                self._all = list(Loader.list_available_services(self._loader, self._type))
            return self._all

        def __getitem__(self, index: Any) -> Any:
            return self._listed()[index]

        def __len__(self) -> int:
            return len(self._listed())

    class SharedLoader(Loader):
        def list_available_services(self, type_name: str) -> Any:  # Services: a lazy list
            return Services(self, type_name)

    paths = None
    if data_path is not None:
        paths = [os.path.expanduser(os.path.expandvars(p)) for p in data_path.split(os.pathsep)]
    return SharedLoader(extra_search_paths=paths, file_loader=Files())


def _shared_credentials(sess: Session, backend: BackendConfig) -> None:
    """``shared_credentials_files``: every file, as Terraform's SDK reads them.

    aws-sdk-go-v2 (``config.loadIniFiles``) reads the files in order, skips any it cannot
    read, and merges them key by key, a later file winning. botocore takes one file only, so
    one file is handed to it as is; with several, the profile's keys are merged here and its
    static keys set on the session. Environment keys still come first when no profile is
    named, as botocore's own chain does.
    """
    files = [os.path.expanduser(str(f)) for f in backend.get("shared_credentials_files") or []]
    if len(files) <= 1:
        if files:
            sess.set_config_variable("credentials_file", files[0])
        return
    from botocore.configloader import raw_config_parse

    profile = backend.profile or "default"
    merged: dict[str, str] = {}
    for path in files:
        try:
            merged.update(raw_config_parse(path).get(profile) or {})
        except Exception:  # noqa: BLE001, S112 - unreadable or missing: skipped, as the SDK does
            continue
    sess.set_config_variable("credentials_file", files[-1])
    key, secret = merged.get("aws_access_key_id"), merged.get("aws_secret_access_key")
    from_env = os.environ.get("AWS_ACCESS_KEY_ID") and not backend.profile  # botocore: a profile wins
    if key and secret and not from_env:
        sess.set_credentials(key, secret, merged.get("aws_session_token"))


def _assume_role(sess: Session, backend: BackendConfig, role: dict[str, Any]) -> None:
    """Credentials of the backend's role that botocore renews before they expire.

    Fixed credentials from one AssumeRole would die with ExpiredToken an hour into a long
    apply, and with them the heartbeat and the cleanup.
    """
    from botocore.credentials import RefreshableCredentials

    sts: Any = sess.create_client(
        "sts",
        region_name=backend.region or "us-east-1",
        endpoint_url=backend.sts_endpoint,
        config=_config(backend, retries=False),  # the check's promise; a failed renewal is retried
    )
    params = assume_role_params(role)

    def fetch() -> dict[str, str]:
        creds = sts.assume_role(**params)["Credentials"]
        return {
            "access_key": creds["AccessKeyId"],
            "secret_key": creds["SecretAccessKey"],
            "token": creds["SessionToken"],
            "expiry_time": creds["Expiration"].isoformat(),
        }

    # botocore's own mechanism (what its AssumeRoleProvider builds), set where set_credentials
    # puts fixed ones: each client asks it for fresh credentials before every request.
    target: Any = sess  # botocore has no public setter for refreshable credentials
    target._credentials = RefreshableCredentials.create_from_metadata(
        metadata=fetch(), refresh_using=fetch, method="assume-role"
    )


def assume_role_params(role: dict[str, Any]) -> dict[str, Any]:
    """The AssumeRole call Terraform makes for the backend's ``assume_role`` block."""
    params: dict[str, Any] = {
        "RoleArn": role["role_arn"],
        "RoleSessionName": role.get("session_name") or "tfwrap",
    }
    if role.get("external_id"):
        params["ExternalId"] = role["external_id"]
    seconds = durations.go_seconds(str(role.get("duration") or ""))
    if seconds:
        params["DurationSeconds"] = int(seconds)
    return params


def _config(
    backend: BackendConfig,
    retries: bool,
    checksums: str | None = None,
    pool: int | None = None,
    read_timeout: float | None = None,
) -> Any:
    from botocore.config import Config

    config = Config(
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=read_timeout or READ_TIMEOUT,
        # Off only where a quick answer matters more than a sure one: the check before
        # Terraform runs, the heartbeat (it backs off itself). Elsewhere one 503 must not
        # abort a cleanup, a migration or a bootstrap.
        retries={"total_max_attempts": 1} if not retries else {"mode": "standard", "total_max_attempts": 4},
        s3={"addressing_style": "path" if backend.path_style else "auto"},
    )
    if pool:  # many requests at once on one client (tfwrap lock ls): one connection each
        config = config.merge(Config(max_pool_connections=pool))
    if checksums == "when_required":
        return config.merge(Config(request_checksum_calculation="when_required"))
    return config


def client(
    backend: BackendConfig,
    service: str,
    sess: Session | None = None,
    checksums: str | None = None,
    *,
    retries: bool = True,
    pool: int | None = None,
    read_timeout: float | None = None,
) -> BaseClient:
    """An S3 or DynamoDB client for the backend's endpoint and region (``retries=False``:
    one try per call, for the fast check).

    ``checksums``: botocore's ``request_checksum_calculation`` (``when_required`` sends no
    checksum the operation does not need); None keeps the SDK default, as Terraform's SDK.
    ``read_timeout``: longer than the check's for a command a person waits for on purpose
    (``tfwrap state``: a page of 1,000 versions, a large state body).
    """
    sess = sess or session(backend)
    # Other services (KMS) have no backend setting: botocore reads AWS_ENDPOINT_URL_<SERVICE>.
    endpoint = {"s3": backend.s3_endpoint, "dynamodb": backend.dynamodb_endpoint}.get(service)
    return sess.create_client(
        service,
        region_name=backend.region or "us-east-1",
        endpoint_url=endpoint,
        config=_config(backend, retries, checksums, pool, read_timeout),
        verify=False if backend.get("insecure") is True else None,
    )
