"""The data loader every tfwrap botocore session shares (docs/decisions/090-botocore-model-loader.md):
it must give botocore exactly the models botocore reads itself, only faster."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from botocore.exceptions import UnknownServiceError
from botocore.loaders import JSONFileLoader, Loader

from tests.support.world import make_bucket
from tfwrap.aws import clients
from tfwrap.backend.config import BackendConfig
from tfwrap.demo.server import S3Server


def backend_for(url: str, bucket: str = "tfstate-loader") -> BackendConfig:
    settings = {"bucket": bucket, "key": "app/terraform.tfstate", "region": "us-east-1"}
    settings |= {"endpoints": {"s3": url}, "use_path_style": True}
    return BackendConfig(Path("."), Path(".terraform"), "default", "s3", settings)


def test_models_read_back_from_the_cache_are_botocores_own(tmp_path: Path) -> None:
    loader = clients._loader(None)
    ours = loader.file_loader
    for name in ("endpoints", "s3/2006-03-01/service-2", "s3/2006-03-01/endpoint-rule-set-1"):
        path = os.path.join(Loader.BUILTIN_DATA_PATH, name)
        expected = JSONFileLoader().load_file(path)
        first = ours.load_file(path)  # parsed, and written to the cache
        again = ours.load_file(path)  # read back from the cache
        assert first == expected
        assert again == expected
    cached = [p.name for p in (tmp_path / "cache").iterdir()]
    assert len([n for n in cached if n.startswith("botocore-")]) == 3
    assert ours.load_file(os.path.join(Loader.BUILTIN_DATA_PATH, "no-such-model")) is None


def test_service_names_are_known_without_listing_every_service() -> None:
    loader = clients._loader(None)
    services = loader.list_available_services("service-2")
    assert "s3" in services
    assert "dynamodb" in services
    assert "no-such-service" not in services
    listed = list(services)  # iterating gives botocore's full, sorted list
    assert listed == Loader().list_available_services("service-2")
    assert len(listed) > 100


def test_sessions_share_one_loader_and_unknown_services_fail_as_before(s3: S3Server) -> None:
    backend = backend_for(s3.url)
    first, second = clients.session(backend), clients.session(backend)
    assert first.get_component("data_loader") is second.get_component("data_loader")
    with pytest.raises(UnknownServiceError, match="Unknown service: 'no-such-service'"):
        first.create_client("no-such-service", region_name="us-east-1")


def test_clients_through_the_shared_loader_talk_to_s3(s3: S3Server, bucket_name: str) -> None:
    make_bucket(s3.url, bucket_name)
    backend = backend_for(s3.url, bucket_name)
    session = clients.session(backend)
    for retries in (False, True):  # the second client: models from memory, not the files
        s3c = clients.client(backend, "s3", session, retries=retries)
        assert s3c.get_bucket_versioning(Bucket=bucket_name)["Status"] == "Enabled"
    ddb = clients.client(backend, "dynamodb", session)
    assert ddb.meta.service_model.service_name == "dynamodb"
