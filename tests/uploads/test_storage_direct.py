"""The storage methods direct uploads rely on, per backend: `promote` (a move that never takes
the bytes out of the store, pinned to a version), `read(if_match=)`, `presigned_upload`, and
`sweep_incomplete(keep=)`. S3 runs against SeaweedFS, including boto3's managed copy."""

import os
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from mediakeep.config import Settings
from mediakeep.kit.time import now
from mediakeep.storage.base import ObjectChanged, Storage
from mediakeep.storage.factory import create_storage
from mediakeep.storage.local import LocalStorage
from mediakeep.storage.s3 import S3Storage
from tests.fixtures.services import S3Server
from tests.storage.conftest import local_settings_for, new_bucket, s3_settings_for

SRC = "org_a/incoming/upl_1"
DST = "org_a/originals/" + "ab" * 32


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    settings: Settings
    if request.param == "local":
        settings = local_settings_for(tmp_path)
    else:
        server: S3Server = request.getfixturevalue("s3_server")
        settings = s3_settings_for(tmp_path, server, new_bucket(server))
    return create_storage(settings)


async def _put(storage: Storage, tmp_path: Path, key: str, data: bytes) -> str:
    path = tmp_path / f"put-{os.urandom(4).hex()}"
    path.write_bytes(data)
    await storage.commit_file(path, key, "application/octet-stream")
    info = await storage.stat(key)
    assert info is not None
    assert info.etag
    return info.etag


async def _read(storage: Storage, key: str) -> bytes:
    return b"".join([chunk async for chunk in storage.read(key)])


async def test_promote_moves_the_object_to_its_new_key(storage: Storage, tmp_path: Path) -> None:
    etag = await _put(storage, tmp_path, SRC, b"the bytes")

    await storage.promote(SRC, DST, "image/png", if_match=etag)

    assert await storage.stat(SRC) is None
    assert await _read(storage, DST) == b"the bytes"


async def test_promote_of_another_version_changes_nothing(storage: Storage, tmp_path: Path) -> None:
    await _put(storage, tmp_path, SRC, b"first version")
    stale = "0" * 32

    with pytest.raises(ObjectChanged):
        await storage.promote(SRC, DST, "image/png", if_match=stale)

    assert await _read(storage, SRC) == b"first version"
    assert await storage.stat(DST) is None


async def test_promote_of_a_missing_object_is_not_found(storage: Storage) -> None:
    with pytest.raises(FileNotFoundError):
        await storage.promote(SRC, DST, "image/png")
    assert await storage.stat(DST) is None


async def test_read_pinned_to_another_version_is_refused(storage: Storage, tmp_path: Path) -> None:
    old = await _put(storage, tmp_path, SRC, b"first version")
    new = await _put(storage, tmp_path, SRC, b"second, longer version")
    assert old != new

    with pytest.raises(ObjectChanged):
        await _drain(storage.read(SRC, if_match=old))
    assert b"".join([c async for c in storage.read(SRC, if_match=new)]) == b"second, longer version"


async def _drain(chunks: AsyncIterator[bytes]) -> None:
    async for _ in chunks:
        pass


async def test_sweep_keeps_live_incoming_objects_and_removes_the_others(
    storage: Storage, tmp_path: Path
) -> None:
    await _put(storage, tmp_path, "org_a/incoming/upl_live", b"live")
    await _put(storage, tmp_path, "org_a/incoming/upl_dead", b"dead")
    await _put(storage, tmp_path, "org_b/incoming/upl_dead", b"dead")
    await _put(storage, tmp_path, DST, b"an original")

    removed = await storage.sweep_incomplete(
        now() + timedelta(seconds=1), keep={"org_a/incoming/upl_live"}
    )

    assert removed >= 2
    assert await storage.stat("org_a/incoming/upl_live") is not None
    assert await storage.stat("org_a/incoming/upl_dead") is None
    assert await storage.stat("org_b/incoming/upl_dead") is None
    assert await storage.stat(DST) is not None


def test_presigned_upload_is_a_post_on_s3_and_a_put_locally(storage: Storage) -> None:
    target = storage.presigned_upload(SRC, "image/png", 1234, 60)
    if isinstance(storage, S3Storage):
        assert target.method == "POST"
        assert target.fields["key"] == SRC
        assert target.fields["Content-Type"] == "image/png"
        assert target.headers == {}
    else:
        assert isinstance(storage, LocalStorage)
        assert target.method == "PUT"
        assert target.fields == {}
        assert target.headers == {"Content-Type": "image/png"}
        assert "/uploads/local/org_a/incoming/upl_1?" in target.url
        assert "size=1234" in target.url


async def test_s3_promote_of_a_large_object_uses_the_managed_multipart_copy(
    s3_server: S3Server, tmp_path: Path
) -> None:
    storage = create_storage(s3_settings_for(tmp_path, s3_server, new_bucket(s3_server)))
    assert isinstance(storage, S3Storage)
    data = os.urandom(6 * 1024 * 1024)
    etag = await _put(storage, tmp_path, SRC, data)
    storage.copy_limit = 1024 * 1024  # stands in for CopyObject's 5 GiB
    calls: list[str] = []
    storage.client.meta.events.register(
        "before-call.s3.UploadPartCopy", lambda **_: calls.append("part")
    )

    await storage.promote(SRC, DST, "video/mp4", if_match=etag)

    assert calls
    assert await storage.stat(SRC) is None
    assert await _read(storage, DST) == data
    head = storage.client.head_object(Bucket=storage.bucket, Key=DST)
    assert head["ContentType"] == "video/mp4"
