"""Uploading straight into a collection (`collection_id`, multipart or JSON): the new or deduped
media is added in the upload's transaction; an unknown collection stores nothing."""

import hashlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from mediakeep.collections import service as collections_service
from mediakeep.ingest.sweeper import sweep_once
from tests import mediagen
from tests.collections.support import (
    UNKNOWN_COLLECTION,
    create_collection,
    get_collection,
    member_ids,
)
from tests.factories import TestUser, new_user
from tests.media.support import (
    MEDIA,
    LoopbackServer,
    asgi_client,
    assert_error,
    extra_app,
    leftover_spool_files,
    serve_bytes,
    stored_originals,
    upload,
    upload_ok,
)
from tests.orgs.support import new_team

BOUNDARY = "mediakeep-test-boundary-7f3a"


def _file_then_fields(data: bytes, **fields: str) -> tuple[bytes, dict[str, str]]:
    """A multipart body whose text fields come after the file part (browsers may send them in
    any order; httpx always sends fields first)."""
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="late.png"\r\n'
        "Content-Type: image/png\r\n\r\n".encode()
        + data
        + b"\r\n"
    ]
    for name, value in fields.items():
        parts.append(
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
            f"{value}\r\n".encode()
        )
    body = b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()
    return body, {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}


async def _json_upload(
    client: httpx.AsyncClient, user: TestUser, data: bytes, **fields: Any
) -> httpx.Response:
    return await client.post(
        MEDIA,
        json={"source": {"type": "data_url", "data_url": mediagen.data_url(data)}, **fields},
        headers=user.headers,
    )


async def _assert_nothing_stored(app: FastAPI, client: httpx.AsyncClient, user: TestUser) -> None:
    listed = await client.get(MEDIA, headers=user.headers)
    assert listed.json()["data"] == []
    assert stored_originals(app, user.org_id) == []
    assert leftover_spool_files(app, user.org_id) == []


async def test_multipart_upload_adds_the_new_media_to_the_collection(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    made = await create_collection(client, user.headers)

    body = await upload_ok(client, user, mediagen.jpeg(), collection_id=made["id"])

    assert await member_ids(client, user.headers, made["id"]) == [body["id"]]
    assert (await get_collection(client, user.headers, made["id"]))["media_count"] == 1


async def test_a_collection_id_sent_after_the_file_counts_too(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    made = await create_collection(client, user.headers)
    data = mediagen.png()
    content, headers = _file_then_fields(data, collection_id=made["id"], alt="late")

    response = await client.post(f"{MEDIA}/upload", content=content, headers=user.headers | headers)

    assert response.status_code == 201, response.text
    assert response.json()["alt"] == "late"
    assert response.json()["sha256"] == hashlib.sha256(data).hexdigest()
    assert await member_ids(client, user.headers, made["id"]) == [response.json()["id"]]


async def test_json_upload_adds_the_new_media_to_the_collection(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    made = await create_collection(client, user.headers)

    response = await _json_upload(client, user, mediagen.png(), collection_id=made["id"])

    assert response.status_code == 201, response.text
    assert await member_ids(client, user.headers, made["id"]) == [response.json()["id"]]


async def test_an_async_upload_adds_its_media_at_once(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    made = await create_collection(client, user.headers)

    response = await upload(
        client, user, mediagen.jpeg(), collection_id=made["id"], **{"async": "true"}
    )

    assert response.status_code == 202, response.text
    assert await member_ids(client, user.headers, made["id"]) == [response.json()["media"]["id"]]


async def test_a_deduped_upload_adds_the_existing_media(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    first = await create_collection(client, user.headers, "first")
    second = await create_collection(client, user.headers, "second")
    data = mediagen.png()
    original = await upload_ok(client, user, data, declared="image/png", collection_id=first["id"])

    again = await upload(client, user, data, declared="image/png", collection_id=second["id"])
    by_json = await _json_upload(client, user, data, collection_id=second["id"])

    assert again.status_code == 200, again.text
    assert again.json()["deduped"] is True
    assert again.json()["id"] == original["id"]
    assert by_json.status_code == 200, by_json.text
    assert await member_ids(client, user.headers, first["id"]) == [original["id"]]
    assert await member_ids(client, user.headers, second["id"]) == [original["id"]]
    assert (await get_collection(client, user.headers, second["id"]))["media_count"] == 1


@pytest.mark.parametrize(
    "collection_id", [UNKNOWN_COLLECTION, "junk", "med_01aaaaaaaaaaaaaaaaaaaaaaaa"]
)
async def test_multipart_with_an_unknown_collection_is_404_and_stores_nothing(
    app: FastAPI, client: httpx.AsyncClient, collection_id: str
) -> None:
    user = await new_user(client)

    before = await upload(client, user, mediagen.jpeg(), collection_id=collection_id)
    content, headers = _file_then_fields(mediagen.png(), collection_id=collection_id)
    after = await client.post(f"{MEDIA}/upload", content=content, headers=user.headers | headers)

    assert_error(before, 404, "not_found")
    assert_error(after, 404, "not_found")
    await _assert_nothing_stored(app, client, user)


async def test_json_with_an_unknown_collection_is_404_and_stores_nothing(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    user = await new_user(client)

    response = await _json_upload(client, user, mediagen.png(), collection_id=UNKNOWN_COLLECTION)

    assert_error(response, 404, "not_found")
    await _assert_nothing_stored(app, client, user)


async def test_a_member_may_not_upload_into_another_members_collection(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    team = await new_team(client)
    theirs = await create_collection(client, team.as_(team.admin), "The admin's")
    response = await client.post(
        f"{MEDIA}/upload",
        files={"file": ("x.png", mediagen.png(), "image/png")},
        data={"collection_id": theirs["id"]},
        headers=team.as_(team.member),
    )

    assert_error(response, 403, "auth.forbidden")
    assert stored_originals(app, team.org["id"]) == []
    assert (await get_collection(client, team.as_(team.admin), theirs["id"]))["media_count"] == 0
    mine = await create_collection(client, team.as_(team.member), "Mine")
    ok = await client.post(
        f"{MEDIA}/upload",
        files={"file": ("x.png", mediagen.png(), "image/png")},
        data={"collection_id": mine["id"]},
        headers=team.as_(team.member),
    )
    assert ok.status_code == 201, ok.text


# ------------------------------------------------------------------ an app that fetches loopback


@pytest.fixture(scope="module")
async def open_app(
    request: pytest.FixtureRequest, backend: str, service_root: Path
) -> AsyncIterator[FastAPI]:
    async with extra_app(
        request, backend, service_root, "collections-open", allow_private_networks=True
    ) as application:
        yield application


@pytest.fixture
async def open_client(open_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(open_app) as http:
        yield http


async def test_the_collection_is_checked_before_a_remote_url_is_fetched(
    open_app: FastAPI, open_client: httpx.AsyncClient
) -> None:
    user = await new_user(open_client)
    async with LoopbackServer({"/x.png": serve_bytes(mediagen.png())}) as upstream:
        refused = await open_client.post(
            MEDIA,
            json={
                "source": {"type": "remote_url", "url": upstream.url("/x.png")},
                "collection_id": UNKNOWN_COLLECTION,
            },
            headers=user.headers,
        )
        assert_error(refused, 404, "not_found")
        assert upstream.connections == 0

        made = await create_collection(open_client, user.headers)
        fetched = await open_client.post(
            MEDIA,
            json={
                "source": {"type": "remote_url", "url": upstream.url("/x.png")},
                "collection_id": made["id"],
            },
            headers=user.headers,
        )
    assert fetched.status_code == 201, fetched.text
    assert await member_ids(open_client, user.headers, made["id"]) == [fetched.json()["id"]]
    await _assert_nothing_stored_but(open_app, user, fetched.json()["sha256"])


async def _assert_nothing_stored_but(app: FastAPI, user: TestUser, sha256: str) -> None:
    assert stored_originals(app, user.org_id) == [sha256]


async def test_a_collection_gone_by_the_end_of_the_upload_leaves_nothing_after_the_sweep(
    open_app: FastAPI, open_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The final check runs in the upload's transaction: if the collection vanished after the
    early check (here: the early check is skipped), the row is rolled back and the stored
    object is an orphan that the sweep removes."""
    user = await new_user(open_client)

    async def passes(*_: Any) -> None:
        return None

    monkeypatch.setattr(collections_service, "check_upload_target", passes)
    response = await upload(open_client, user, mediagen.jpeg(), collection_id=UNKNOWN_COLLECTION)

    assert_error(response, 404, "not_found")
    listed = await open_client.get(MEDIA, headers=user.headers)
    assert listed.json()["data"] == []
    await sweep_once(open_app.state.services, max_age=timedelta(0))
    assert stored_originals(open_app, user.org_id) == []
    assert leftover_spool_files(open_app, user.org_id) == []
