"""The Python SDK against a real `mediakeep serve` (auth on): every method that has a route,
sync and async, and the client's own behaviour (retries, streaming, errors)."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.client.conftest import PASSWORD, Account, new_account, start_server
from tests.client.fakes import DroppingProxy, FakeServer, Reply, error, fake_server
from tests.fixtures.services import PostgresServer, S3Server, free_port
from tests.live import LiveServer, small_png, wav_header

from mediakeep.client import (
    ApiKeyCreated,
    AsyncClient,
    Client,
    Job,
    Media,
    MediakeepConnectionError,
    MediakeepError,
    Page,
)

MiB = 1024 * 1024


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_wav(path: Path, size: int) -> bytes:
    data = wav_header(size) + os.urandom(size - 44)
    path.write_bytes(data)
    return data


def png(seed: int) -> bytes:
    """A small PNG whose bytes differ by seed (so uploads do not dedupe)."""
    return small_png(16 + seed % 200, 12 + seed // 200)


# ---------------------------------------------------------------- auth, users, keys, orgs


def test_register_login_me_refresh_logout(server: LiveServer) -> None:
    email = f"r{uuid.uuid4().hex[:10]}@example.com"
    with Client(server.base_url, api_key=None, token=None) as client:
        client.api_key = client.token = None
        user = client.register(email, PASSWORD, name="Ann")
        assert user.id.startswith("usr_")
        assert user.email == email
        assert [o.role for o in user.orgs] == ["owner"]
        assert user.raw["id"] == user.id

        with pytest.raises(MediakeepError) as anonymous:
            client.me()
        assert anonymous.value.status == 401
        assert anonymous.value.code == "auth.unauthorized"

        tokens = client.login(email, PASSWORD)
        assert client.token == tokens.access_token
        assert tokens.token_type == "Bearer"
        assert client.me().id == user.id
        assert client.update_me(name="Ann B").name == "Ann B"

        first_refresh = client.refresh_token
        pair = client.refresh()
        assert pair.refresh_token != first_refresh
        assert client.token == pair.access_token
        assert client.me().name == "Ann B"

        client.logout()
        assert client.token is None
        with pytest.raises(MediakeepError) as spent:
            client.refresh(pair.refresh_token)
        assert spent.value.status == 401

        with pytest.raises(MediakeepError) as taken:
            client.register(email, PASSWORD)
        assert (taken.value.status, taken.value.code) == (409, "conflict")


def test_an_expired_access_token_is_refreshed_once(server: LiveServer, account: Account) -> None:
    renewed: list[Any] = []
    with Client(
        server.base_url,
        token="not-a-valid-access-token",
        refresh_token=account.client.refresh_token,
        on_tokens=renewed.append,
    ) as client:
        assert client.me().email == account.email
        assert len(renewed) == 1
        assert client.token == renewed[0].access_token


def test_api_keys(server: LiveServer, client: Client) -> None:
    created = client.create_api_key("ci", role="member")
    assert isinstance(created, ApiKeyCreated)
    assert created.id.startswith("key_")
    assert created.key
    assert created.role == "member"

    page = client.list_api_keys()
    assert isinstance(page, Page)
    assert created.id in [k.id for k in page.data]
    assert all("key" not in k.raw for k in page.data)
    assert created.id in [k.id for k in client.iterate(client.list_api_keys, limit=1)]

    with Client(server.base_url, api_key=created.key) as by_key:
        assert by_key.usage().media_count == 0
        client.revoke_api_key(created.id)
        with pytest.raises(MediakeepError) as revoked:
            by_key.usage()
    assert revoked.value.status == 401
    assert revoked.value.request_id
    assert revoked.value.request_id.startswith("req_")


def test_orgs_and_members(server: LiveServer, client: Client) -> None:
    other = new_account(server)
    slug = f"team-{uuid.uuid4().hex[:8]}"
    org = client.create_org(slug, "Team")
    assert (org.slug, org.role) == (slug, "owner")
    orgs = client.list_orgs(include_total=True)
    assert slug in [o.slug for o in orgs.data]
    assert orgs.total == 2

    member = client.add_member(slug, other.email, role="viewer")
    assert member.role == "viewer"
    members = client.list_members(slug)
    assert {m.email for m in members.data} >= {other.email}

    with Client(server.base_url, token=other.client.token, org=slug) as as_viewer:
        assert as_viewer.list_media().data == []
        with pytest.raises(MediakeepError) as forbidden:
            as_viewer.upload(png(1), filename="x.png")
        assert (forbidden.value.status, forbidden.value.code) == (403, "auth.forbidden")

        client.remove_member(slug, member.user_id)
        with pytest.raises(MediakeepError) as gone:
            as_viewer.list_media()
        assert (gone.value.status, gone.value.code) == (404, "not_found")
    other.client.close()


# ---------------------------------------------------------------- uploads


def test_upload_a_path_bytes_and_file_objects(client: Client, tmp_path: Path) -> None:
    data = png(2)
    path = tmp_path / "cat.png"
    path.write_bytes(data)
    seen: list[tuple[int, int | None]] = []

    media = client.upload(path, alt="a cat", progress=lambda sent, size: seen.append((sent, size)))
    assert isinstance(media, Media)
    assert media.id.startswith("med_")
    assert media.sha256 == sha256(data)
    assert (media.filename, media.kind, media.source, media.alt) == (
        "cat.png",
        "image",
        "upload",
        "a cat",
    )
    assert media.deduped is False
    assert seen[-1] == (len(data), len(data))

    again = client.upload(data, filename="copy.png")
    assert (again.id, again.deduped) == (media.id, True)

    other = png(3)
    from_file = client.upload(io.BytesIO(other), filename="other.png", caption="c")
    assert (from_file.sha256, from_file.caption) == (sha256(other), "c")

    class Pipe(io.RawIOBase):  # readable once, not seekable: streamed with chunked encoding
        def __init__(self, payload: bytes) -> None:
            self.rest = payload

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            n = min(len(buffer), len(self.rest), 1000)
            buffer[:n] = self.rest[:n]
            self.rest = self.rest[n:]
            return n

    third = png(4)
    piped = client.upload(io.BufferedReader(Pipe(third)), filename="piped.png")
    assert piped.sha256 == sha256(third)
    assert piped.filename == "piped.png"


def test_upload_streams_from_disk(client: Client, tmp_path: Path) -> None:
    path = tmp_path / "big.wav"
    data = write_wav(path, 24 * MiB)
    reads: list[int] = []

    class Watched(io.FileIO):
        def read(self, size: int | None = -1) -> bytes:
            reads.append(-1 if size is None else size)
            return super().read(size)

    with Watched(path) as handle:
        media = client.upload(handle, method="multipart")
    assert media.sha256 == sha256(data)
    assert media.size_bytes == len(data)
    assert reads
    assert max(reads) <= client.chunk_size
    assert -1 not in reads

    other = tmp_path / "other.wav"
    write_wav(other, 24 * MiB)
    tracemalloc.start()
    try:
        client.upload(other, method="multipart")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * MiB, f"uploading 24 MiB peaked at {peak / MiB:.1f} MiB of Python memory"


def test_create_from_data_url_and_remote_errors(client: Client) -> None:
    import base64

    data = png(5)
    media = client.create_from_data_url(
        "data:image/png;base64," + base64.b64encode(data).decode(), alt="inline"
    )
    assert (media.sha256, media.source, media.alt) == (sha256(data), "data_url", "inline")

    with pytest.raises(MediakeepError) as refused:  # loopback is refused by the SSRF guard
        client.create_from_url("http://127.0.0.1:9/cat.png")
    assert (refused.value.status, refused.value.code) == (502, "upstream.fetch_failed")


def test_presigned_upload(server: LiveServer, account: Account, tmp_path: Path) -> None:
    path = tmp_path / "song.wav"
    data = write_wav(path, 2 * MiB)
    seen: list[tuple[int, int | None]] = []
    with Client(
        server.base_url, token=account.client.token, presigned_threshold=MiB, tus_threshold=None
    ) as client:
        media = client.upload(path, alt="a song", progress=lambda s, t: seen.append((s, t)))
        assert media.source == "presigned"
        assert (media.sha256, media.size_bytes, media.alt) == (sha256(data), len(data), "a song")
        assert seen[-1] == (len(data), len(data))

        again = client.upload(path)  # the sha256 is known: no bytes are sent again
        assert (again.id, again.deduped) == (media.id, True)

        # The steps one by one, with the alias route.
        small = png(6)
        ticket = client.create_upload_url("step.png", "image/png", len(small), alias=True)
        assert ticket.upload_url
        assert ticket.upload_method in ("PUT", "POST")
        etag = client.send_to_storage(ticket, small)
        done = client.finalize_upload(ticket.media_id, etag=etag, sha256=sha256(small))
        assert (done.id, done.sha256, done.status) == (ticket.media_id, sha256(small), "ready")
        with pytest.raises(MediakeepError) as twice:
            client.finalize_upload(ticket.media_id)
        assert twice.value.status in (404, 409)

        dedup = client.create_upload_url("x.png", "image/png", len(small), sha256=sha256(small))
        assert (dedup.media_id, dedup.deduped) == (done.id, True)


def test_tus_upload_above_the_threshold_resumes_after_a_dropped_connection(
    server: LiveServer, account: Account, tmp_path: Path
) -> None:
    path = tmp_path / "long.wav"
    data = write_wav(path, 5 * MiB)
    proxy = DroppingProxy(server.port, drop_after=MiB // 2, from_offset=2 * MiB)
    seen: list[int] = []
    try:
        with Client(
            proxy.url,
            token=account.client.token,
            tus_threshold=2 * MiB,
            tus_chunk_size=MiB,
            backoff=0.05,
        ) as client:
            assert client.tus_discover().available
            media = client.upload(path, alt="over tus", progress=lambda s, _t: seen.append(s))
    finally:
        proxy.close()
    assert (media.source, media.sha256, media.alt) == ("tus", sha256(data), "over tus")
    assert proxy.dropped == 1
    # Resumed, not restarted: the offsets only go forward and no chunk went twice in full.
    assert proxy.patch_offsets == sorted(proxy.patch_offsets)
    assert proxy.patch_offsets[0] == 0
    assert max(proxy.patch_offsets) >= 4 * MiB
    assert proxy.bytes_up < len(data) + 2 * MiB
    assert seen[-1] == len(data)


def test_tus_upload_resumes_in_a_new_client_from_the_store(
    server: LiveServer, account: Account, tmp_path: Path
) -> None:
    path = tmp_path / "interrupted.wav"
    data = write_wav(path, 4 * MiB)
    store: dict[str, str] = {}

    class Interrupted(Exception):
        pass

    def stop_midway(sent: int, _total: int | None) -> None:
        if sent > int(2.5 * MiB):
            raise Interrupted  # as a Ctrl-C would

    options: dict[str, Any] = {"tus_threshold": MiB, "tus_chunk_size": MiB, "tus_store": store}
    with Client(server.base_url, token=account.client.token, **options) as first:
        with pytest.raises(Interrupted):
            first.upload(path, progress=stop_midway)
    assert len(store) == 1
    upload_url = next(iter(store.values()))
    with Client(server.base_url, token=account.client.token, **options) as second:
        begun = second.tus_status(upload_url)
        assert begun.offset >= 2 * MiB
        assert begun.length == len(data)
        started: list[int] = []
        media = second.upload(path, progress=lambda s, _t: started.append(s))
    assert started[0] == begun.offset  # picked up where the first process stopped
    assert media.sha256 == sha256(data)
    assert store == {}


def test_tus_routes_one_by_one(client: Client) -> None:
    data = png(60)
    url = client.tus_create(len(data), {"filename": "steps.png", "alt": "step"})
    assert client.tus_discover(url).available
    assert client.tus_status(url).offset == 0
    half = len(data) // 2
    client.tus_append(url, data, offset=0, length=half)
    done = client.tus_append(url, data, offset=half)
    assert done.offset == len(data)
    assert done.media_id
    media = client.get_media(done.media_id)
    assert (media.sha256, media.filename, media.alt) == (sha256(data), "steps.png", "step")

    other = client.tus_create(10)
    client.tus_terminate(other)
    with pytest.raises(MediakeepError) as gone:
        client.tus_status(other)
    assert gone.value.status in (404, 410)


@pytest.mark.postgres
@pytest.mark.s3
def test_presigned_and_tus_uploads_on_s3(
    tmp_path: Path, postgres: PostgresServer, s3_server: S3Server
) -> None:
    """On S3 the bytes go straight to the bucket (a presigned POST form, no credentials of
    ours), and tus assembles them in an S3 multipart upload."""
    bucket = f"sdk-{uuid.uuid4().hex[:12]}"
    s3_server.create_bucket(bucket)
    live = start_server(
        tmp_path / "s3",
        {
            "DB_POSTGRESQL_WRITE_DSN": postgres.create_database(),
            "MEDIA_STORAGE_BACKEND": "s3",
            "MEDIA_S3_ENDPOINT": s3_server.endpoint,
            "MEDIA_S3_BUCKET": bucket,
            "MEDIA_S3_ACCESS_KEY_ID": s3_server.access_key,
            "MEDIA_S3_SECRET_ACCESS_KEY": s3_server.secret_key,
            "MEDIA_S3_USE_PATH_STYLE": "true",
            "MEDIA_S3_REGION": s3_server.region,
        },
    )
    try:
        account = new_account(live)
        presigned_file = tmp_path / "direct.wav"
        direct = write_wav(presigned_file, 2 * MiB)
        resumable_file = tmp_path / "resumable.wav"
        resumable = write_wav(resumable_file, 6 * MiB)
        with Client(
            live.base_url,
            token=account.client.token,
            presigned_threshold=MiB,
            tus_threshold=4 * MiB,
            tus_chunk_size=5 * MiB,
        ) as client:
            ticket = client.create_upload_url("probe.wav", "audio/wav", 100)
            assert ticket.upload_method == "POST"
            assert ticket.upload_url
            assert not client.is_own(ticket.upload_url)
            media = client.upload(presigned_file)
            assert (media.source, media.sha256) == ("presigned", sha256(direct))
            big = client.upload(resumable_file)
            assert (big.source, big.sha256) == ("tus", sha256(resumable))
            assert client.get_content(big.id) == resumable
        account.client.close()
    finally:
        live.stop()


# ---------------------------------------------------------------- reading and editing


def test_list_and_iter_media_across_pages(client: Client) -> None:
    ids = [client.upload(png(10 + i), filename=f"page{i}.png").id for i in range(5)]
    page = client.list_media(limit=2, include_total=True)
    assert len(page.data) == 2
    assert page.next_cursor
    assert page.has_more
    assert page.total == 5

    newest_first = [m.id for m in client.iter_media(limit=2)]
    assert sorted(newest_first) == sorted(ids)
    assert [m.id for m in client.iter_media(limit=2, order="asc")] == newest_first[::-1]
    assert client.list_media(kind="video").data == []
    assert [m.id for m in client.list_media(search="page3").data] == [ids[3]]


def test_read_edit_resolve_presign_download_delete(client: Client, tmp_path: Path) -> None:
    data = small_png(400, 300)
    media = client.upload(data, filename="photo.png")

    got = client.get_media(media.id)
    assert (got.id, got.sha256, got.width, got.height) == (media.id, sha256(data), 400, 300)
    assert got.url

    updated = client.update_media(media.id, alt="new alt", metadata={"k": "v"})
    assert updated.alt == "new alt"
    assert updated.filename == "photo.png"

    batch = client.batch([media.id, "med_01aaaaaaaaaaaaaaaaaaaaaaaa"])
    assert [m.id for m in batch.data] == [media.id]
    assert batch.missing == ["med_01aaaaaaaaaaaaaaaaaaaaaaaa"]
    resolved = client.resolve([media.id])
    assert resolved.media[0].id == media.id
    assert client.get_file(resolved.media[0].url) == data

    link = client.presign(media.id, expires_in=60)
    assert link.expires_in == 60
    assert client.get_file(link.url) == data
    assert client.get_content(media.id) == data

    out = tmp_path / "down.png"
    seen: list[tuple[int, int | None]] = []
    assert client.download(media.id, out, progress=lambda d, t: seen.append((d, t))) == len(data)
    assert out.read_bytes() == data
    assert seen[-1] == (len(data), len(data))
    assert client.download_url(got.url, tmp_path / "again.png") == len(data)

    variants = client.list_variants(media.id)
    names = [v.name for v in variants]
    assert "thumbnail" in names
    thumb = client.get_variant_url(media.id, "thumbnail")
    assert client.get_file(thumb)[:4] == b"RIFF"  # WebP
    assert client.get_content(media.id, variant="thumbnail")[:4] == b"RIFF"

    transform = client.create_transform_url(media.id, width=40, height=30, format="png")
    assert client.get_file(transform.url)[:8] == b"\x89PNG\r\n\x1a\n"

    client.delete_media(media.id)
    with pytest.raises(MediakeepError) as gone:
        client.get_media(media.id)
    assert (gone.value.status, gone.value.code) == (404, "not_found")


def test_image_operations_and_variants(client: Client) -> None:
    original = client.upload(small_png(120, 80), filename="ops.png")

    webp = client.convert(original.id, "webp", quality=80)
    assert webp.mime == "image/webp"
    assert webp.derived_from is not None
    assert (webp.derived_from.media_id, webp.derived_from.operation) == (
        original.id,
        "image.convert",
    )
    small = client.resize(original.id, width=60)
    assert (small.width, small.height) == (60, 40)
    piece = client.crop(original.id, x=10, y=10, width=50, height=30, mode="copy")
    assert (piece.width, piece.height) == (50, 30)
    assert piece.id != original.id
    turned = client.crop(original.id, x=0, y=0, width=40, height=20, rotate=90, mode="replace")
    assert (turned.id, turned.version, turned.width, turned.height) == (original.id, 2, 20, 40)

    remade = client.regenerate_variants(original.id, ["thumbnail"])
    assert "thumbnail" in [v.name for v in remade]


def test_guest_login_is_refused_unless_enabled(server: LiveServer) -> None:
    with Client(server.base_url, api_key=None, token=None) as client:
        client.api_key = client.token = None
        with pytest.raises(MediakeepError) as off:
            client.guest_login()
    assert (off.value.status, off.value.code) == (404, "not_found")


def test_errors_carry_code_status_and_request_id(client: Client) -> None:
    with pytest.raises(MediakeepError) as missing:
        client.get_media("med_01aaaaaaaaaaaaaaaaaaaaaaaa")
    error = missing.value
    assert (error.status, error.code) == (404, "not_found")
    assert error.request_id
    assert error.request_id.startswith("req_")
    assert error.message
    assert error.request_id in str(error)

    media = client.upload(png(20), filename="e.png")
    with pytest.raises(MediakeepError) as invalid:
        client.presign(media.id, expires_in=0)
    assert (invalid.value.status, invalid.value.code) == (400, "validation.invalid")
    assert invalid.value.details
    assert invalid.value.details[0]["field"] == "expires_in"

    with pytest.raises(MediakeepError) as unsupported:
        client.upload(b"just some text, not an image", filename="notes.txt")
    assert (unsupported.value.status, unsupported.value.code) == (
        415,
        "validation.mime.unsupported",
    )

    with Client(f"http://127.0.0.1:{free_port()}", max_retries=1, backoff=0.01) as nowhere:
        with pytest.raises(MediakeepConnectionError) as unreachable:
            nowhere.health()
    assert unreachable.value.status is None
    assert unreachable.value.code == "connection.failed"


def test_usage_and_system(client: Client) -> None:
    data = png(21)
    client.upload(data, filename="u.png")
    usage = client.usage()
    assert usage.media_count == 1
    assert usage.bytes_stored == len(data)
    assert usage.by_kind["image"].count == 1
    assert client.health() == {"status": "ok"}
    assert client.ready().status == "ok"
    assert "# HELP" in client.metrics()


# ---------------------------------------------------------------- collections and jobs


def test_collections(client: Client) -> None:
    collection = client.create_collection("Trip", description="summer")
    assert collection.id.startswith("col_")
    first = client.upload(png(30), filename="a.png", collection_id=collection.id)
    second = client.upload(png(31), filename="b.png")
    added = client.add_to_collection(collection.id, [second.id, "med_01aaaaaaaaaaaaaaaaaaaaaaaa"])
    assert second.id in added.added
    assert added.missing == ["med_01aaaaaaaaaaaaaaaaaaaaaaaa"]

    inside = {m.id for m in client.list_collection_media(collection.id).data}
    assert inside == {first.id, second.id}
    assert {m.id for m in client.iter_media(collection_id=collection.id)} == inside
    assert client.get_collection(collection.id).media_count == 2

    renamed = client.update_collection(collection.id, name="Trip 2", description=None)
    assert (renamed.name, renamed.description) == ("Trip 2", None)
    assert collection.id in [c.id for c in client.list_collections().data]

    client.remove_from_collection(collection.id, first.id)
    assert client.get_collection(collection.id).media_count == 1
    client.delete_collection(collection.id)
    with pytest.raises(MediakeepError) as gone:
        client.get_collection(collection.id)
    assert gone.value.status == 404
    assert client.get_media(first.id).id == first.id  # deleting a collection keeps its media


def test_async_upload_and_wait_for_job(client: Client, tmp_path: Path) -> None:
    path = tmp_path / "clip.wav"
    write_wav(path, MiB)
    media = client.upload(path, async_=True)
    assert media.job is not None
    assert isinstance(media.job, Job)

    polled: list[Job] = []
    job = client.wait_for_job(
        media.job.id, timeout=120, poll_interval=0.2, on_progress=polled.append
    )
    assert job.status == "completed"
    assert job.done
    assert polled
    assert polled[-1].status == "completed"
    assert client.get_job(job.id).status == "completed"
    assert job.id in [j.id for j in client.list_jobs(media_id=media.id).data]
    assert client.get_media(media.id).status == "ready"

    with pytest.raises(MediakeepError) as finished:
        client.cancel_job(job.id)
    assert finished.value.status == 409


# ---------------------------------------------------------------- async client


def test_async_client_has_the_same_surface(server: LiveServer, account: Account) -> None:
    async def scenario() -> None:
        async with AsyncClient(server.base_url, token=account.client.token) as client:
            me = await client.me()
            assert me.email == account.email
            data = png(40)
            media = await client.upload(data, filename="async.png", alt="from asyncio")
            assert (media.sha256, media.alt) == (sha256(data), "from asyncio")
            assert (await client.get_media(media.id)).id == media.id
            await client.upload(png(41), filename="async2.png")
            ids = [m.id async for m in client.iter_media(limit=1)]
            assert len(ids) == 2
            assert media.id in ids
            assert await client.get_content(media.id) == data
            buffer = io.BytesIO()
            await client.download(media.id, buffer)
            assert buffer.getvalue() == data
            with pytest.raises(MediakeepError) as missing:
                await client.get_media("med_01aaaaaaaaaaaaaaaaaaaaaaaa")
            assert missing.value.status == 404
            await client.delete_media(media.id)

    asyncio.run(scenario())


def test_sync_and_async_clients_offer_the_same_methods() -> None:
    def public(cls: type) -> set[str]:
        return {name for name in dir(cls) if not name.startswith("_")}

    assert public(Client) - {"close", "__enter__"} == public(AsyncClient) - {"aclose"}


def test_no_credentials_go_to_other_hosts(server: LiveServer, account: Account) -> None:
    with httpx.Client() as plain:
        assert plain.get(f"{server.base_url}/healthz").status_code == 200
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> None:
        seen.append(request)

    http = httpx.Client(event_hooks={"request": [record]})
    with Client(server.base_url, token=account.client.token, http_client=http) as client:
        media = client.upload(png(50), filename="h.png")
        link = client.presign(media.id).url.replace("127.0.0.1", "localhost")
        client.get_file(link)  # another origin (by name): no Authorization header
    http.close()
    api_calls = [r for r in seen if r.url.host == "127.0.0.1"]
    other = [r for r in seen if r.url.host == "localhost"]
    assert all("authorization" in r.headers for r in api_calls)
    assert other
    assert all("authorization" not in r.headers for r in other)


# ---------------------------------------------------------------- retries (a scripted server)
# The fake on loopback stands in for network conditions: rate limits with Retry-After, a
# service briefly unavailable, connections dropped before the answer.

BATCH = "/api/v1/media/batch"
BATCH_OK = Reply(200, {"data": [], "missing": ["med_x"]})


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    yield from fake_server()


def test_429_waits_for_retry_after_and_the_retry_reuses_the_idempotency_key(
    fake: FakeServer,
) -> None:
    fake.script("POST", BATCH, error(429, "rate.limited", **{"Retry-After": "1"}), BATCH_OK)
    with Client(fake.url, api_key="mk_test") as client:
        started = time.monotonic()
        result = client.batch(["med_x"])
        waited = time.monotonic() - started
    assert result.missing == ["med_x"]
    first, second = fake.requests("POST", BATCH)
    assert waited >= 0.95
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"]
    assert first.headers["idempotency-key"].startswith("sdk-")
    assert first.headers["x-api-key"] == "mk_test"


def test_503_is_retried_with_backoff(fake: FakeServer) -> None:
    usage = {"media_count": 1, "bytes_stored": 5}
    fake.script("GET", "/api/v1/usage", error(503, "storage.unavailable"), Reply(200, usage))
    with Client(fake.url, api_key="k", backoff=0.01) as client:
        assert client.usage().media_count == 1
    assert len(fake.requests("GET", "/api/v1/usage")) == 2


def test_retries_end_with_the_last_error(fake: FakeServer) -> None:
    fake.script("GET", "/api/v1/usage", error(429, "rate.limited", **{"Retry-After": "0"}))
    with Client(fake.url, api_key="k", max_retries=2) as client:
        with pytest.raises(MediakeepError) as limited:
            client.usage()
    assert (limited.value.status, limited.value.code) == (429, "rate.limited")
    assert limited.value.request_id == "req_fake"
    assert len(fake.requests("GET", "/api/v1/usage")) == 3


def test_what_is_not_retried(fake: FakeServer) -> None:
    fake.script("POST", "/api/v1/jobs/job_1/cancel", error(429, "ai.refused.budget"))
    fake.script("GET", "/api/v1/usage", error(429, "rate.limited", **{"Retry-After": "3600"}))
    fake.script("PATCH", "/api/v1/media/med_1", Reply(drop=True))
    fake.script("GET", "/api/v1/media/med_2", error(400, "validation.invalid"))
    with Client(fake.url, api_key="k", backoff=0.01) as client:
        with pytest.raises(MediakeepError) as budget:
            client.cancel_job("job_1")
        assert budget.value.code == "ai.refused.budget"
        with pytest.raises(MediakeepError) as too_long:
            client.usage()
        assert too_long.value.headers["retry-after"] == "3600"
        with pytest.raises(MediakeepConnectionError):
            client.update_media("med_1", alt="x")  # not idempotent: it may have been done
        with pytest.raises(MediakeepError):
            client.get_media("med_2")
    for method, path in [
        ("POST", "/api/v1/jobs/job_1/cancel"),
        ("GET", "/api/v1/usage"),
        ("PATCH", "/api/v1/media/med_1"),
        ("GET", "/api/v1/media/med_2"),
    ]:
        assert len(fake.requests(method, path)) == 1, (method, path)


def test_dropped_connections_are_retried_for_idempotent_requests(fake: FakeServer) -> None:
    media = {"id": "med_1", "sha256": "ab"}
    fake.script("GET", "/api/v1/media/med_1", Reply(drop=True), Reply(200, media))
    fake.script("POST", BATCH, Reply(drop=True), BATCH_OK)
    with Client(fake.url, api_key="k", backoff=0.01) as client:
        assert client.get_media("med_1").sha256 == "ab"
        assert client.batch(["med_x"]).missing == ["med_x"]  # safe: it has an Idempotency-Key
    first, second = fake.requests("POST", BATCH)
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"]


def test_a_busy_idempotency_key_is_waited_for(fake: FakeServer) -> None:
    fake.script("POST", BATCH, error(409, "conflict", **{"Retry-After": "0"}), BATCH_OK)
    with Client(fake.url, api_key="k") as client:
        assert client.batch(["med_x"]).missing == ["med_x"]
    assert len(fake.requests("POST", BATCH)) == 2


def test_wait_for_job_times_out(fake: FakeServer) -> None:
    fake.script("GET", "/api/v1/jobs/job_1", Reply(200, {"id": "job_1", "status": "active"}))
    with Client(fake.url, api_key="k") as client:
        with pytest.raises(MediakeepError) as late:
            client.wait_for_job("job_1", timeout=0.5, poll_interval=0.1)
    assert late.value.code == "client.timeout"
    assert len(fake.requests("GET", "/api/v1/jobs/job_1")) >= 3


def test_async_client_retries_too(fake: FakeServer) -> None:
    fake.script("POST", BATCH, error(429, "rate.limited", **{"Retry-After": "1"}), BATCH_OK)

    async def scenario() -> float:
        async with AsyncClient(fake.url, api_key="k") as client:
            started = time.monotonic()
            assert (await client.batch(["med_x"])).missing == ["med_x"]
            return time.monotonic() - started

    assert asyncio.run(scenario()) >= 0.95
    first, second = fake.requests("POST", BATCH)
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"]
