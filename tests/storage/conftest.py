"""Storage fixtures: the local backend in a temp dir and S3 against a real SeaweedFS server."""

import itertools
import os
from pathlib import Path
from typing import Any

import pytest

from mediakeep.config import Settings
from mediakeep.storage.base import Storage
from mediakeep.storage.factory import create_storage
from mediakeep.storage.local import LocalStorage
from mediakeep.storage.s3 import S3Storage
from tests.fixtures.services import S3Server

MULTIPART_THRESHOLD = 5 * 1024 * 1024
_buckets = itertools.count(1)


def local_settings_for(data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "storage_backend": "local",
        "local_storage_base_url": "http://files.test/files",
        "s3_multipart_threshold": MULTIPART_THRESHOLD,
        "auth_secret_key": "x" * 32,
    }
    return Settings(**(values | overrides))


def s3_settings_for(data_dir: Path, server: S3Server, bucket: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "storage_backend": "s3",
        "s3_endpoint": server.endpoint,
        "s3_bucket": bucket,
        "s3_region": server.region,
        "s3_access_key_id": server.access_key,
        "s3_secret_access_key": server.secret_key,
        "s3_use_path_style": True,
        "s3_multipart_threshold": MULTIPART_THRESHOLD,
        "auth_secret_key": "x" * 32,
    }
    return Settings(**(values | overrides))


def new_bucket(server: S3Server) -> str:
    name = f"mk-storage-{next(_buckets)}-{os.urandom(3).hex()}"
    server.create_bucket(name)
    return name


@pytest.fixture
def local_settings(tmp_path: Path) -> Settings:
    return local_settings_for(tmp_path)


@pytest.fixture
def s3_settings(tmp_path: Path, s3_server: S3Server) -> Settings:
    return s3_settings_for(tmp_path, s3_server, new_bucket(s3_server))


@pytest.fixture
def local_storage(local_settings: Settings) -> LocalStorage:
    storage = create_storage(local_settings)
    assert isinstance(storage, LocalStorage)
    return storage


@pytest.fixture
def s3_storage(s3_settings: Settings) -> S3Storage:
    storage = create_storage(s3_settings)
    assert isinstance(storage, S3Storage)
    return storage


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest) -> Storage:
    """Each conformance test runs once per backend."""
    backend: Storage = request.getfixturevalue(f"{request.param}_storage")
    return backend
