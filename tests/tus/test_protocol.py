"""tus 1.0 over the ASGI app on both backends: core, creation(-with-upload), termination,
checksum and expiration, and every way a client can get it wrong."""

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from mediakeep.ingest.sweeper import sweep_once
from mediakeep.kit.time import now
from mediakeep.models import Media
from mediakeep.tus import service as tus_service
from tests.factories import TestUser, new_user
from tests.live import small_png
from tests.media.support import MEDIA, asgi_client, assert_error, extra_app, original_exists
from tests.tus.support import (
    NOTHING_LEFT,
    OFFSET_STREAM,
    TUS,
    V1,
    MiB,
    checksum,
    create,
    create_ok,
    head,
    leftovers,
    metadata,
    offset_of,
    patch,
    path_of,
    send_all,
    set_upload,
    sha256,
    upload_rows,
    wav,
)

SIZE = 3 * MiB + 1234  # several chunks and a short last one


def assert_head_status(response: httpx.Response, status: int) -> None:
    """A HEAD error has no body to check: the status and the tus header it must carry."""
    assert response.status_code == status, response.headers
    assert response.headers["tus-resumable"] == "1.0.0"


async def test_options_advertises_the_version_extensions_checksums_and_max_size(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    response = await client.options(TUS)
    assert response.status_code == 204
    assert response.headers["tus-version"] == "1.0.0"
    assert response.headers["tus-resumable"] == "1.0.0"
    extensions = response.headers["tus-extension"].split(",")
    assert extensions == [
        "creation",
        "creation-with-upload",
        "termination",
        "checksum",
        "expiration",
    ]
    assert response.headers["tus-checksum-algorithm"] == "sha1,md5,sha256"
    assert int(response.headers["tus-max-size"]) == app.state.services.settings.max_bytes_video


async def test_a_chunked_upload_becomes_a_media_with_the_sources_sha256(
    client: httpx.AsyncClient, user: TestUser, app: FastAPI
) -> None:
    data = wav(SIZE)
    created = await create(
        client,
        user,
        SIZE,
        headers={"Upload-Metadata": metadata(filename="take 1.wav", alt="Ünïcode alt")},
    )
    assert created.status_code == 201, created.text
    assert created.headers["upload-expires"].endswith(" GMT")
    url = path_of(created.headers["location"])
    assert url.startswith(f"{TUS}/tus_")
    assert await offset_of(client, user, url) == 0

    last = await send_all(client, user, url, data)

    media_id = last.headers["media-id"]
    assert int(last.headers["upload-offset"]) == SIZE
    media = (await client.get(f"{MEDIA}/{media_id}", headers=user.headers)).json()
    assert media["sha256"] == sha256(data)
    assert media["size_bytes"] == SIZE
    assert (media["source"], media["kind"], media["mime"]) == ("tus", "audio", "audio/wav")
    assert (media["filename"], media["alt"]) == ("take 1.wav", "Ünïcode alt")
    assert original_exists(app, user.org_id, sha256(data))
    status = await head(client, user, url)
    assert status.status_code == 200
    assert status.headers["media-id"] == media_id
    assert status.headers["upload-offset"] == status.headers["upload-length"] == str(SIZE)
    assert status.headers["cache-control"] == "no-store"
    # The finished upload's bytes are not kept twice: only the row stays, until it expires.
    left = await leftovers(app, user.org_id)
    assert left == NOTHING_LEFT | {"rows": left["rows"]}


async def test_creation_with_upload_stores_the_first_chunk(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    data = wav(SIZE)
    created = await create(
        client, user, SIZE, body=data[:MiB], headers={"Upload-Checksum": checksum(data[:MiB])}
    )
    assert created.status_code == 201, created.text
    assert created.headers["upload-offset"] == str(MiB)
    url = path_of(created.headers["location"])
    last = await send_all(client, user, url, data, start=MiB)
    media = (await client.get(f"{MEDIA}/{last.headers['media-id']}", headers=user.headers)).json()
    assert media["sha256"] == sha256(data)


async def test_a_whole_file_in_the_creation_request_answers_its_media_id(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    png = small_png(40, 30)
    created = await create(
        client, user, len(png), body=png, headers={"Upload-Metadata": metadata(name="a.png")}
    )
    assert created.status_code == 201, created.text
    media = (
        await client.get(f"{MEDIA}/{created.headers['media-id']}", headers=user.headers)
    ).json()
    assert (media["sha256"], media["filename"], media["width"]) == (sha256(png), "a.png", 40)


async def test_the_same_bytes_twice_give_the_same_media(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    data = wav(MiB + 100)
    first = await send_all(client, user, await create_ok(client, user, len(data)), data)
    second = await send_all(client, user, await create_ok(client, user, len(data)), data)
    assert first.headers["media-id"] == second.headers["media-id"]


async def test_a_wrong_offset_is_409_and_names_the_right_one(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    data = wav(SIZE)
    url = await create_ok(client, user, SIZE)
    assert (await patch(client, user, url, 0, data[:MiB])).status_code == 204

    for wrong in (0, MiB - 1, MiB + 1, SIZE):
        response = await patch(client, user, url, wrong, data[wrong : wrong + 10])
        assert_error(response, 409, "conflict")
        assert response.headers["upload-offset"] == str(MiB)
        assert response.headers["tus-resumable"] == "1.0.0"
    assert await offset_of(client, user, url) == MiB


async def test_a_bad_checksum_is_460_and_the_chunk_is_discarded(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    data = wav(SIZE)
    url = await create_ok(client, user, SIZE)
    await send_all(client, user, url, data[:MiB])  # first chunk, checked

    tampered = bytearray(data[MiB : 2 * MiB])
    tampered[1000] ^= 0xFF
    response = await patch(
        client, user, url, MiB, bytes(tampered), {"Upload-Checksum": checksum(data[MiB : 2 * MiB])}
    )
    assert_error(response, 460, "tus.checksum_mismatch")
    assert await offset_of(client, user, url) == MiB

    last = await send_all(client, user, url, data, start=MiB)
    media = (await client.get(f"{MEDIA}/{last.headers['media-id']}", headers=user.headers)).json()
    assert media["sha256"] == sha256(data)


async def test_a_checksum_algorithm_not_offered_is_400(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    url = await create_ok(client, user, SIZE)
    response = await patch(client, user, url, 0, b"abc", {"Upload-Checksum": "crc32 NSRBwg=="})
    assert_error(response, 400, "validation.invalid")
    response = await patch(client, user, url, 0, b"abc", {"Upload-Checksum": "sha256 !!!"})
    assert_error(response, 400, "validation.invalid")
    assert await offset_of(client, user, url) == 0


async def test_after_termination_every_request_is_404_and_nothing_is_left(
    client: httpx.AsyncClient, user: TestUser, app: FastAPI
) -> None:
    data = wav(SIZE)
    url = await create_ok(client, user, SIZE)
    await send_all(client, user, url, data[: 2 * MiB])

    deleted = await client.delete(url, headers=V1 | user.headers)
    assert deleted.status_code == 204
    assert deleted.headers["tus-resumable"] == "1.0.0"

    assert_error(await patch(client, user, url, 2 * MiB, data[2 * MiB :]), 404, "not_found")
    assert_head_status(await head(client, user, url), 404)
    assert_error(await client.delete(url, headers=V1 | user.headers), 404, "not_found")
    assert await leftovers(app, user.org_id) == NOTHING_LEFT


async def test_bytes_past_the_length_are_413_and_corrupt_nothing(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    data = wav(SIZE)
    url = await create_ok(client, user, SIZE)
    await send_all(client, user, url, data[: 3 * MiB])

    # Declared too long: refused before the body is read.
    too_long = data[3 * MiB :] + b"x" * 5000
    assert_error(
        await patch(client, user, url, 3 * MiB, too_long), 413, "validation.size.exceeds_limit"
    )
    assert await offset_of(client, user, url) == 3 * MiB

    # Undeclared (chunked): refused at the first byte past the end, the whole chunk dropped.
    async def chunked() -> AsyncIterator[bytes]:
        yield data[3 * MiB :]
        yield b"junk past the end"

    response = await patch(client, user, url, 3 * MiB, chunked())
    assert_error(response, 413, "validation.size.exceeds_limit")
    assert await offset_of(client, user, url) == 3 * MiB

    last = await send_all(client, user, url, data, start=3 * MiB)
    media = (await client.get(f"{MEDIA}/{last.headers['media-id']}", headers=user.headers)).json()
    assert media["sha256"] == sha256(data)
    # Finished: not one more byte.
    response = await patch(client, user, url, SIZE, b"more")
    assert_error(response, 413, "validation.size.exceeds_limit")


async def test_another_orgs_upload_is_404_on_head_patch_and_delete(
    client: httpx.AsyncClient, user: TestUser, other_user: TestUser
) -> None:
    data = wav(SIZE)
    url = await create_ok(client, user, SIZE)
    await send_all(client, user, url, data[:MiB])

    assert_head_status(await head(client, other_user, url), 404)
    assert_error(await patch(client, other_user, url, MiB, data[MiB:]), 404, "not_found")
    assert_error(await client.delete(url, headers=V1 | other_user.headers), 404, "not_found")
    unknown = f"{TUS}/tus_01hqr8v9k2x3f4g5h6j7k8m9n0"
    assert_head_status(await head(client, other_user, unknown), 404)
    assert await offset_of(client, user, url) == MiB


async def test_a_missing_or_unsupported_tus_resumable_is_412(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    url = await create_ok(client, user, SIZE)
    base = user.headers | {"Upload-Offset": "0", "Content-Type": OFFSET_STREAM}
    for version in (None, "0.2.2", "1.0"):
        sent = base | ({"Tus-Resumable": version} if version else {})
        for response in (
            await client.post(TUS, headers=sent | {"Upload-Length": "10"}),
            await client.head(url, headers=sent),
            await client.patch(url, headers=sent, content=b"abc"),
            await client.delete(url, headers=sent),
        ):
            assert response.status_code == 412, response.text
            assert response.headers["tus-version"] == "1.0.0"
            if response.request.method != "HEAD":
                assert_error(response, 412, "tus.version_unsupported")
    assert await offset_of(client, user, url) == 0


async def test_creation_over_the_max_size_is_413(
    client: httpx.AsyncClient, user: TestUser, app: FastAPI
) -> None:
    limit = app.state.services.settings.max_bytes_video
    assert_error(await create(client, user, limit + 1), 413, "validation.size.exceeds_limit")
    assert (await create(client, user, limit)).status_code == 201
    assert_error(await create(client, user, 0), 400, "validation.invalid")
    response = await client.post(TUS, headers=V1 | user.headers | {"Upload-Defer-Length": "1"})
    assert_error(response, 400, "validation.invalid")
    response = await client.post(TUS, headers=V1 | user.headers | {"Upload-Length": "-1"})
    assert_error(response, 400, "validation.invalid")


async def test_every_tus_request_without_credentials_is_401(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    url = await create_ok(client, user, SIZE)
    for response in (
        await create(client, None, SIZE),
        await head(client, None, url),
        await patch(client, None, url, 0, b"abc"),
        await client.delete(url, headers=V1),
    ):
        assert response.status_code == 401, response.text
        assert response.headers["tus-resumable"] == "1.0.0"
    assert await offset_of(client, user, url) == 0


async def test_upload_metadata_is_parsed_and_bad_metadata_refused(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    fields = metadata(
        filename="dir/évé.wav", alt="the alt", caption="cap", description="desc", is_private="true"
    )
    data = wav(MiB)
    url = await create_ok(
        client, user, len(data), headers={"Upload-Metadata": fields + ",filetype"}
    )
    echoed = await head(client, user, url)
    assert echoed.headers["upload-metadata"] == fields + ",filetype"
    last = await send_all(client, user, url, data)
    media = (await client.get(f"{MEDIA}/{last.headers['media-id']}", headers=user.headers)).json()
    assert media["filename"] == "évé.wav"
    assert (media["alt"], media["caption"], media["description"]) == ("the alt", "cap", "desc")
    assert media["is_private"] is True

    for bad in ("filename not-base64!", "a b,a c", "key" + " x" * 2, "is_private " + "bWF5YmU="):
        response = await create(client, user, 10, headers={"Upload-Metadata": bad})
        assert_error(response, 400, "validation.invalid")


async def test_a_type_that_is_not_allowed_is_refused_at_once_and_the_upload_removed(
    client: httpx.AsyncClient, user: TestUser, app: FastAPI
) -> None:
    text = b"#!/bin/sh\necho this is not media\n" * 4000
    url = await create_ok(client, user, len(text) + MiB)
    response = await patch(client, user, url, 0, text)
    assert_error(response, 415, "validation.mime.unsupported")
    assert_head_status(await head(client, user, url), 404)
    assert await leftovers(app, user.org_id) == NOTHING_LEFT


async def test_a_patch_body_of_another_type_is_415(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    url = await create_ok(client, user, SIZE)
    response = await patch(client, user, url, 0, b"abc", {"Content-Type": "application/json"})
    assert_error(response, 415, "tus.content_type")


async def test_a_second_patch_while_one_is_appending_is_423(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    data = wav(SIZE)
    url = await create_ok(client, user, SIZE)
    halfway = asyncio.Event()
    go_on = asyncio.Event()

    async def slow() -> AsyncIterator[bytes]:
        yield data[: MiB // 2]
        halfway.set()
        await go_on.wait()
        yield data[MiB // 2 : MiB]

    first = asyncio.create_task(patch(client, user, url, 0, slow()))
    await asyncio.wait_for(halfway.wait(), 30)
    second = await patch(client, user, url, 0, data[:MiB])
    assert_error(second, 423, "tus.locked")
    # HEAD meanwhile answers the acknowledged offset; DELETE waits its turn too.
    assert await offset_of(client, user, url) == 0
    assert_error(await client.delete(url, headers=V1 | user.headers), 423, "tus.locked")
    go_on.set()
    assert (await first).status_code == 204
    assert await offset_of(client, user, url) == MiB


async def test_a_lease_left_by_a_dead_request_is_taken_over(
    client: httpx.AsyncClient, user: TestUser, app: FastAPI
) -> None:
    data = wav(SIZE)
    url = await create_ok(client, user, SIZE)
    upload_id = url.rsplit("/", 1)[1]
    await send_all(client, user, url, data[:MiB])
    # As a process killed mid-PATCH leaves it: locked at MiB, its lease no longer renewed.
    await set_upload(
        app, user.org_id, upload_id, offset=-MiB - 1, updated_at=now() - timedelta(minutes=1)
    )
    assert await offset_of(client, user, url) == MiB
    last = await send_all(client, user, url, data, start=MiB)
    media = (await client.get(f"{MEDIA}/{last.headers['media-id']}", headers=user.headers)).json()
    assert media["sha256"] == sha256(data)


async def test_a_lease_taken_over_before_the_finish_commits_leaves_no_media(
    client: httpx.AsyncClient, user: TestUser, app: FastAPI
) -> None:
    # The finishing unit (the media row with the release that marks the upload finished)
    # commits only while the lease is still this request's: taken over meanwhile, it rolls
    # back whole and the request answers 423.
    data = wav(SIZE)
    url = await create_ok(client, user, SIZE)
    upload_id = url.rsplit("/", 1)[1]
    await send_all(client, user, url, data[:MiB])

    async def rest() -> AsyncIterator[bytes]:
        yield data[MiB:]
        # Every byte is in; before the body ends, another node takes the lease over (as a
        # holder it thought dead would: locked at MiB, stamped anew).
        await set_upload(app, user.org_id, upload_id, updated_at=now() + timedelta(minutes=1))

    assert_error(await patch(client, user, url, MiB, rest()), 423, "tus.locked")
    async with app.state.services.db.read_session() as session:
        media = (await session.execute(select(Media).where(Media.org_id == user.org_id))).all()
    assert media == []
    (row,) = await upload_rows(app, user.org_id)
    assert (row.offset, row.media_id, row.completed_at) == (-MiB - 1, None, None)


async def test_a_renewal_waiting_for_the_database_does_not_stall_the_finish(
    client: httpx.AsyncClient, user: TestUser, app: FastAPI
) -> None:
    # The finishing unit has begun (on SQLite: it holds the write lock) when a renewal fires:
    # the renewal waits for the database without the lease's guard, so the finish takes the
    # guard, releases and commits at once. (A renewal that took the guard first and then
    # waited for the lock stalled the finish until SQLite's busy timeout, 30 s: the 10 s
    # bound below is only there to turn such a stall into a failure.)
    url = await create_ok(client, user, SIZE)
    upload_id = url.rsplit("/", 1)[1]
    services = app.state.services
    units = tus_service.TusUnits(services.db.write_session, services.db.read_session)
    lease, _ = await tus_service._claim(units, user.org_id, upload_id, 0)
    assert lease is not None
    async with lease.finishing() as finishing, units.write() as session:
        await session.connection()
        renewal = asyncio.create_task(lease._renew())
        await asyncio.sleep(0)  # the renewal starts: its unit begins (SQLite: waits for the lock)
        await asyncio.wait_for(
            finishing.release(session, offset=0, expires_at=now() + timedelta(hours=1)), 10
        )
    assert await asyncio.wait_for(renewal, 10) in (None, True)
    (row,) = await upload_rows(app, user.org_id)
    assert row.offset == 0  # released: unlocked at offset 0


async def test_an_expired_upload_is_410_then_swept_without_leftovers(
    client: httpx.AsyncClient, user: TestUser, app: FastAPI, backend: str
) -> None:
    data = wav(12 * MiB)  # on S3: whole parts are staged, a tail is in the spool
    url = await create_ok(client, user, len(data))
    await send_all(client, user, url, data[: 11 * MiB])
    upload_id = url.rsplit("/", 1)[1]
    before = await leftovers(app, user.org_id)
    assert before["rows"] == [upload_id]
    assert before["spool_files"]
    if backend == "postgres-s3":  # whole parts went to S3 as they came
        assert len(before["multipart_uploads"]) == 1
        (row,) = await upload_rows(app, user.org_id)
        assert row.s3_parts is not None
        assert [end for _, _, end in row.s3_parts["parts"]] == [5 * MiB, 10 * MiB]

    await set_upload(app, user.org_id, upload_id, expires_at=now() - timedelta(seconds=1))
    assert_head_status(await head(client, user, url), 410)
    assert_error(await patch(client, user, url, 11 * MiB, data[11 * MiB :]), 410, "tus.expired")

    report = await sweep_once(app.state.services)

    assert report.expired_tus_uploads >= 1
    assert await leftovers(app, user.org_id) == NOTHING_LEFT
    assert_head_status(await head(client, user, url), 404)


async def test_the_sweep_keeps_live_uploads_however_old(
    client: httpx.AsyncClient, user: TestUser, app: FastAPI
) -> None:
    data = wav(12 * MiB)
    url = await create_ok(client, user, len(data))
    await send_all(client, user, url, data[: 11 * MiB])

    await sweep_once(app.state.services, max_age=timedelta(0))

    assert await offset_of(client, user, url) == 11 * MiB
    last = await send_all(client, user, url, data, start=11 * MiB)
    media = (await client.get(f"{MEDIA}/{last.headers['media-id']}", headers=user.headers)).json()
    assert media["sha256"] == sha256(data)
    assert [row.media_id for row in await upload_rows(app, user.org_id)] == [media["id"]]


# On the local backend the spool file is the store: every node sees it whole.
@pytest.mark.backends("postgres-s3")
async def test_an_upload_resumed_on_another_node_goes_on_from_its_last_staged_part(
    client: httpx.AsyncClient, user: TestUser, app: FastAPI
) -> None:
    data = wav(17 * MiB)
    url = await create_ok(client, user, len(data))
    upload_id = url.rsplit("/", 1)[1]
    await send_all(client, user, url, data[: 13 * MiB])  # parts end at 5 and 10 MiB
    # As another replica (other spool) sees it: the 3 MiB tail is not in its spool.
    (row,) = await upload_rows(app, user.org_id)
    assert row.s3_parts is not None
    await set_upload(
        app, user.org_id, upload_id, s3_parts=row.s3_parts | {"holder": "another-node:/spool"}
    )

    response = await patch(client, user, url, 13 * MiB, data[13 * MiB : 14 * MiB])
    assert_error(response, 409, "conflict")
    assert response.headers["upload-offset"] == str(10 * MiB)
    assert await offset_of(client, user, url) == 10 * MiB

    # This node's spool holds only [10 MiB, end): the finish fetches the object back whole.
    last = await send_all(client, user, url, data, start=10 * MiB)
    media = (await client.get(f"{MEDIA}/{last.headers['media-id']}", headers=user.headers)).json()
    assert media["sha256"] == sha256(data)
    left = await leftovers(app, user.org_id)
    assert left == NOTHING_LEFT | {"rows": [upload_id]}


async def test_one_big_patch_is_staged_in_parts_while_it_streams(
    client: httpx.AsyncClient, user: TestUser, app: FastAPI, backend: str
) -> None:
    data = wav(21 * MiB)
    url = await create_ok(client, user, len(data))
    response = await patch(client, user, url, 0, data[: 20 * MiB])
    assert response.status_code == 204, response.text
    assert response.headers["upload-offset"] == str(20 * MiB)
    if backend == "postgres-s3":  # 8 MiB parts cut on the way; the 4 MiB tail is in the spool
        (row,) = await upload_rows(app, user.org_id)
        assert row.s3_parts is not None
        assert [end for _, _, end in row.s3_parts["parts"]] == [8 * MiB, 16 * MiB]
    last = await send_all(client, user, url, data, start=20 * MiB)
    media = (await client.get(f"{MEDIA}/{last.headers['media-id']}", headers=user.headers)).json()
    assert media["sha256"] == sha256(data)
    left = await leftovers(app, user.org_id)
    assert left == NOTHING_LEFT | {"rows": left["rows"]}


async def test_a_browser_tus_client_may_send_and_read_the_tus_headers(
    request: pytest.FixtureRequest, backend: str, service_root: Path
) -> None:
    origin = "https://app.example"
    async with (
        extra_app(request, backend, service_root, "tus-cors", cors_origins=[origin]) as cors_app,
        asgi_client(cors_app) as browser,
    ):
        user = await new_user(browser)
        preflight = await browser.options(
            TUS + "/tus_01hqr8v9k2x3f4g5h6j7k8m9n0",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "PATCH",
                "Access-Control-Request-Headers": "tus-resumable,upload-offset,upload-checksum,"
                "content-type,authorization",
            },
        )
        assert preflight.status_code == 200, preflight.text
        assert "PATCH" in preflight.headers["access-control-allow-methods"]
        created = await create(browser, user, 10, headers={"Origin": origin})
        assert created.status_code == 201
        exposed = {
            h.strip().lower() for h in created.headers["access-control-expose-headers"].split(",")
        }
        assert {
            "location",
            "upload-offset",
            "upload-length",
            "upload-expires",
            "upload-metadata",
            "tus-version",
            "tus-resumable",
            "tus-extension",
            "tus-max-size",
            "media-id",
        } <= exposed
