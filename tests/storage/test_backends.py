"""One conformance suite for every storage backend (local files and S3 on SeaweedFS)."""

import asyncio
import errno
import hashlib
import os
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from mediakeep.config import Settings
from mediakeep.storage import keys
from mediakeep.storage import local as local_module
from mediakeep.storage.base import Storage, StorageUnavailable
from mediakeep.storage.factory import create_storage
from mediakeep.storage.local import LocalStorage
from mediakeep.storage.s3 import S3Storage
from tests.fixtures.services import S3Server, free_port
from tests.storage.conftest import MULTIPART_THRESHOLD, local_settings_for, s3_settings_for

MiB = 1024 * 1024
ORG = "org_test"


def payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def incoming_key() -> str:
    return keys.incoming(ORG, f"upl_{os.urandom(6).hex()}")


def spool(storage: Storage, data: bytes) -> Path:
    path = storage.spool_path(incoming_key())
    path.write_bytes(data)
    return path


async def put(storage: Storage, key: str, data: bytes, content_type: str = "image/png") -> None:
    await storage.commit_file(spool(storage, data), key, content_type)


async def read_all(storage: Storage, key: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([chunk async for chunk in storage.read(key, start, end)])


async def listed(storage: Storage, prefix: str) -> list[str]:
    return [info.key async for info in storage.list_objects(prefix)]


def age(path: Path, seconds: float) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


# -- commit, stat, read ----------------------------------------------------------------------


def test_factory_builds_the_configured_backend(
    local_settings: Settings, s3_settings: Settings
) -> None:
    assert isinstance(create_storage(local_settings), LocalStorage)
    assert isinstance(create_storage(s3_settings), S3Storage)


async def test_committed_object_can_be_stat_read_and_opened_locally(storage: Storage) -> None:
    data = payload(3 * MiB + 123)
    key = keys.original(ORG, sha256(data))
    before = datetime.now(UTC) - timedelta(seconds=5)

    await put(storage, key, data)

    info = await storage.stat(key)
    assert info is not None
    assert (info.key, info.size) == (key, len(data))
    assert info.modified.tzinfo is not None
    assert before <= info.modified <= datetime.now(UTC) + timedelta(seconds=5)
    assert info.etag
    chunks = [chunk async for chunk in storage.read(key)]
    assert all(len(chunk) <= MiB for chunk in chunks)
    assert len(chunks) >= 4
    assert b"".join(chunks) == data
    async with storage.local_file(key) as path:
        assert path.read_bytes() == data


async def test_read_honours_inclusive_byte_ranges(storage: Storage) -> None:
    data = payload(2 * MiB + 10, seed=1)
    key = keys.original(ORG, sha256(data))
    await put(storage, key, data)
    size = len(data)

    cases = [
        (0, 0),
        (0, 9),
        (10, 19),
        (MiB - 3, MiB + 3),  # across a chunk boundary
        (5, None),
        (size - 5, None),
        (size - 5, size + 100),  # an end past the object is clamped
        (size - 1, size - 1),
    ]
    for start, end in cases:
        expected = data[start : None if end is None else end + 1]
        assert await read_all(storage, key, start, end) == expected, (start, end)


async def test_read_of_an_empty_or_inverted_range_yields_nothing(storage: Storage) -> None:
    data = payload(1000, seed=2)
    key = keys.original(ORG, sha256(data))
    await put(storage, key, data)

    assert await read_all(storage, key, 1000) == b""
    assert await read_all(storage, key, 5000, None) == b""
    assert await read_all(storage, key, 10, 9) == b""


async def test_object_is_invisible_until_commit_and_the_spool_file_is_consumed(
    storage: Storage,
) -> None:
    data = payload(MiB, seed=3)
    key = keys.original(ORG, sha256(data))
    path = spool(storage, data)

    assert await storage.stat(key) is None
    assert key not in await listed(storage, f"{ORG}/originals/")
    with pytest.raises(FileNotFoundError):
        await read_all(storage, key)

    await storage.commit_file(path, key, "image/png")

    assert not path.exists()
    info = await storage.stat(key)
    assert info is not None
    assert info.size == len(data)


async def test_a_concurrent_reader_never_sees_a_partial_object(storage: Storage) -> None:
    data = payload(12 * MiB + 7, seed=4)
    key = keys.original(ORG, sha256(data))
    path = spool(storage, data)

    commit = asyncio.create_task(storage.commit_file(path, key, "video/mp4"))
    observed: set[int | None] = set()
    while not commit.done():
        info = await storage.stat(key)
        observed.add(None if info is None else info.size)
        await asyncio.sleep(0)
    await commit

    assert observed <= {None, len(data)}
    assert sha256(await read_all(storage, key)) == sha256(data)


async def test_commit_above_the_multipart_threshold_round_trips_byte_exact(
    storage: Storage,
) -> None:
    data = payload(12 * MiB + 7, seed=5)
    assert len(data) > MULTIPART_THRESHOLD
    key = keys.original(ORG, sha256(data))

    await put(storage, key, data, "video/mp4")

    info = await storage.stat(key)
    assert info is not None
    assert info.size == len(data)
    if isinstance(storage, S3Storage):
        # 12 MiB in 8 MiB parts: an S3 multipart ETag ends in "-<number of parts>".
        assert info.etag is not None
        assert info.etag.endswith("-2")
    assert sha256(await read_all(storage, key)) == sha256(data)
    async with storage.local_file(key) as local_path:
        assert hashlib.sha256(local_path.read_bytes()).hexdigest() == sha256(data)


async def test_commit_replaces_an_existing_object(storage: Storage) -> None:
    key = keys.variant(ORG, "med_a", 1, "thumb", "webp")
    await put(storage, key, b"first version")
    await put(storage, key, b"second")

    assert await read_all(storage, key) == b"second"
    info = await storage.stat(key)
    assert info is not None
    assert info.size == len(b"second")


async def test_a_missing_object_is_none_on_stat_and_not_found_on_read(storage: Storage) -> None:
    key = keys.original(ORG, "0" * 64)

    assert await storage.stat(key) is None
    with pytest.raises(FileNotFoundError):
        await read_all(storage, key)
    with pytest.raises(FileNotFoundError):
        async with storage.local_file(key):
            pass


async def test_local_file_is_removed_after_the_block_only_when_it_is_a_copy(
    storage: Storage,
) -> None:
    data = payload(1000, seed=6)
    key = keys.original(ORG, sha256(data))
    await put(storage, key, data)

    async with storage.local_file(key) as path:
        assert path.read_bytes() == data

    if isinstance(storage, S3Storage):
        assert not path.exists()  # a download into the spool dir, gone after the block
    else:
        assert path.exists()  # the object itself, no copy


async def test_unsafe_keys_are_refused(storage: Storage) -> None:
    for bad in ["", "/etc/passwd", "../x", "a/../b", "a//b", "a/./b", "a\\b", ".tmp/x", "a/"]:
        with pytest.raises(ValueError, match="unsafe"):
            storage.spool_path(bad)
        with pytest.raises(ValueError, match="unsafe"):
            await storage.stat(bad)
        if storage.presigned is not None:  # the local backend's: tests/storage/test_links.py
            with pytest.raises(ValueError, match="unsafe"):
                storage.presigned.signed_url(bad, 60)


# -- delete, list ----------------------------------------------------------------------------


async def test_delete_removes_the_object_and_is_idempotent(storage: Storage) -> None:
    key = keys.variant(ORG, "med_a", 1, "small", "jpg")
    await put(storage, key, b"bytes")

    await storage.delete(key)
    await storage.delete(key)

    assert await storage.stat(key) is None


async def test_delete_prefix_removes_only_keys_under_the_prefix(storage: Storage) -> None:
    doomed = [keys.variant(ORG, "med_a", 1, name, "jpg") for name in ("small", "medium")]
    doomed.append(keys.variant(ORG, "med_a", 2, "small", "jpg"))
    kept = [
        keys.variant(ORG, "med_ab", 1, "small", "jpg"),  # shares the string prefix "med_a"
        keys.variant("org_other", "med_a", 1, "small", "jpg"),
        keys.original(ORG, "1" * 64),
    ]
    for key in doomed + kept:
        await put(storage, key, key.encode())

    deleted = await storage.delete_prefix(keys.variants_prefix(ORG, "med_a"))

    assert deleted == len(doomed)
    for key in doomed:
        assert await storage.stat(key) is None
    for key in kept:
        assert await read_all(storage, key) == key.encode()
    assert await storage.delete_prefix(keys.variants_prefix(ORG, "med_a")) == 0
    with pytest.raises(ValueError, match="whole"):
        await storage.delete_prefix("")


async def test_list_objects_yields_every_key_under_the_prefix_in_key_order(
    storage: Storage,
) -> None:
    names = ["b", "a", "a_b", "c"]
    variant_keys = [keys.variant(ORG, "med_a", 1, name, "png") for name in names]
    variant_keys += [
        keys.variant(ORG, "med_a", 2, "a", "png"),
        keys.variant(ORG, "med_ab", 1, "a", "png"),
    ]
    for index, key in enumerate(variant_keys):
        await put(storage, key, b"x" * (index + 1))
    await put(storage, keys.original(ORG, "2" * 64), b"other")

    infos = [info async for info in storage.list_objects(f"{ORG}/variants/")]

    assert [info.key for info in infos] == sorted(variant_keys)
    sizes = {info.key: info.size for info in infos}
    assert sizes == {key: index + 1 for index, key in enumerate(variant_keys)}
    # A prefix need not end at a "/": "med_a" also matches "med_ab".
    assert await listed(storage, f"{ORG}/variants/med_a") == sorted(variant_keys)
    assert await listed(storage, keys.variants_prefix(ORG, "med_ab")) == [variant_keys[-1]]
    assert await listed(storage, "org_nobody/") == []


# -- signed links ----------------------------------------------------------------------------


async def test_s3_signed_url_gives_exactly_the_object(s3_storage: S3Storage) -> None:
    data = payload(MiB + 5, seed=7)
    key = keys.original(ORG, sha256(data))
    await put(s3_storage, key, data)

    url = s3_storage.signed_url(
        key, 300, filename="Photo ☀ 1.png", content_type="image/png", disposition="attachment"
    )

    async with httpx.AsyncClient() as http:
        response = await http.get(url)
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-type"] == "image/png"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    assert "filename*=UTF-8''Photo%20%E2%98%80%201.png" in disposition


def test_the_local_backend_signs_no_links_of_its_own(local_storage: LocalStorage) -> None:
    # Its bytes are served by /files links signed with the org's key (storage/links.py,
    # tests/storage/test_links.py); a storage-wide key would outlive every rotation.
    assert local_storage.self_served is not None
    assert local_storage.presigned is None
    assert not hasattr(local_storage, "signed_url")


async def test_s3_signed_url_is_refused_when_tampered(s3_storage: S3Storage) -> None:
    key = keys.original(ORG, "5" * 64)
    await put(s3_storage, key, b"secret bytes")
    url = s3_storage.signed_url(key, 300, content_type="image/png")

    async with httpx.AsyncClient() as http:
        assert (await http.get(url)).status_code == 200
        bad_signature = url.replace("X-Amz-Signature=", "X-Amz-Signature=0")
        assert (await http.get(bad_signature)).status_code == 403
        other_type = url.replace("image%2Fpng", "text%2Fhtml")
        assert other_type != url
        assert (await http.get(other_type)).status_code == 403


async def test_s3_signed_url_points_at_the_public_endpoint(
    tmp_path: Path, s3_server: S3Server, s3_settings: Settings
) -> None:
    public = f"http://localhost:{s3_server.port}"
    storage = S3Storage(
        s3_settings_for(tmp_path, s3_server, s3_settings.s3_bucket, s3_public_endpoint=public)
    )
    key = keys.original(ORG, "6" * 64)
    await put(storage, key, b"public bytes")

    url = storage.signed_url(key, 300)

    assert url.startswith(f"{public}/{s3_settings.s3_bucket}/{key}?")
    async with httpx.AsyncClient() as http:
        response = await http.get(url)
    assert response.status_code == 200
    assert response.content == b"public bytes"


# -- sweeping --------------------------------------------------------------------------------


async def test_sweep_removes_stale_incoming_files_and_keeps_fresh_ones(storage: Storage) -> None:
    stale = spool(storage, b"abandoned upload")
    fresh = spool(storage, b"upload in progress")
    age(stale, 2 * 3600)
    committed = keys.original(ORG, "7" * 64)
    await put(storage, committed, b"kept")

    removed = await storage.sweep_incomplete(datetime.now(UTC) - timedelta(hours=1))

    assert removed == 1
    assert not stale.exists()
    assert fresh.exists()
    assert await read_all(storage, committed) == b"kept"


async def test_local_sweep_removes_leftover_commit_temp_files_but_never_objects(
    local_storage: LocalStorage,
) -> None:
    key = keys.original(ORG, "8" * 64)
    await put(local_storage, key, b"old but committed")
    object_path = local_storage.path_for(key)
    age(object_path, 10 * 86400)
    leftover = object_path.with_name(f".{object_path.name}.tmp-0123456789abcdef")
    leftover.write_bytes(b"half a copy")
    age(leftover, 2 * 3600)

    removed = await local_storage.sweep_incomplete(datetime.now(UTC) - timedelta(hours=1))

    assert removed == 1
    assert not leftover.exists()
    assert await read_all(local_storage, key) == b"old but committed"
    assert await listed(local_storage, f"{ORG}/") == [key]


async def test_s3_sweep_aborts_abandoned_multipart_uploads(
    s3_storage: S3Storage, s3_server: S3Server
) -> None:
    client = s3_server.client()
    bucket = s3_storage.bucket
    key = keys.original(ORG, "9" * 64)
    upload = client.create_multipart_upload(Bucket=bucket, Key=key)
    client.upload_part(
        Bucket=bucket, Key=key, UploadId=upload["UploadId"], PartNumber=1, Body=b"a" * (5 * MiB)
    )

    assert await s3_storage.sweep_incomplete(datetime.now(UTC) - timedelta(hours=1)) == 0
    assert [u["UploadId"] for u in client.list_multipart_uploads(Bucket=bucket)["Uploads"]] == [
        upload["UploadId"]
    ]

    assert await s3_storage.sweep_incomplete(datetime.now(UTC) + timedelta(minutes=1)) == 1

    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert await s3_storage.stat(key) is None


# -- health and failures ---------------------------------------------------------------------


async def test_ping_succeeds_on_a_working_store(storage: Storage) -> None:
    await storage.ping()


async def test_s3_on_a_closed_port_raises_storage_unavailable_quickly(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        storage_backend="s3",
        s3_endpoint=f"http://127.0.0.1:{free_port()}",
        s3_bucket="nowhere",
        s3_access_key_id="AK",
        s3_secret_access_key="SK",
        s3_use_path_style=True,
        auth_secret_key="x" * 32,
    )
    storage = create_storage(settings)
    data = b"never stored"
    path = spool(storage, data)
    key = keys.original(ORG, sha256(data))
    started = time.monotonic()

    with pytest.raises(StorageUnavailable):
        await storage.ping()
    with pytest.raises(StorageUnavailable):
        await storage.stat(key)
    with pytest.raises(StorageUnavailable):
        await read_all(storage, key)
    with pytest.raises(StorageUnavailable):
        await storage.commit_file(path, key, "image/png")
    with pytest.raises(StorageUnavailable):
        await listed(storage, f"{ORG}/")

    assert time.monotonic() - started < 15
    assert path.read_bytes() == data  # a failed commit leaves the spool file for a retry


async def test_local_ping_fails_when_the_root_is_gone(tmp_path: Path) -> None:
    storage = LocalStorage(local_settings_for(tmp_path, local_storage_path=str(tmp_path / "objs")))
    await storage.ping()
    (tmp_path / "objs").rmdir()

    with pytest.raises(StorageUnavailable):
        await storage.ping()


# -- local specifics -------------------------------------------------------------------------


async def test_local_commit_across_file_systems_copies_then_renames(
    local_storage: LocalStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = payload(2 * MiB, seed=8)
    key = keys.original(ORG, sha256(data))
    source = spool(local_storage, data)
    real_replace = os.replace

    def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if Path(src) == source:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_replace(src, dst)

    monkeypatch.setattr(local_module.os, "replace", replace)
    await local_storage.commit_file(source, key, "image/png")

    assert not source.exists()
    target = local_storage.path_for(key)
    assert target.read_bytes() == data
    assert [p.name for p in target.parent.iterdir()] == [target.name]  # no temp file left


async def test_local_delete_prefix_prunes_emptied_directories(local_storage: LocalStorage) -> None:
    for name in ("small", "large"):
        await put(local_storage, keys.variant(ORG, "med_a", 1, name, "jpg"), b"v")
    kept = keys.variant(ORG, "med_b", 1, "small", "jpg")
    await put(local_storage, kept, b"v")

    await local_storage.delete_prefix(keys.variants_prefix(ORG, "med_a"))

    variants_dir = local_storage.root / ORG / "variants"
    assert [p.name for p in variants_dir.iterdir()] == ["med_b"]
    assert local_storage.root.is_dir()
