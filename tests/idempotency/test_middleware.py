"""Idempotency-Key on POSTs under /api/v1, through the real app on both backends."""

import asyncio
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI

from tests import mediagen
from tests.factories import TestUser, new_user
from tests.idempotency.support import (
    MEDIA,
    media_ids,
    new_key,
    replayed,
    stored_rows,
    upload,
)


async def test_a_replayed_upload_returns_the_first_answer_and_stores_once(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    key = new_key()
    first_bytes = mediagen.jpeg()
    first = await upload(client, user, first_bytes, key)
    assert first.status_code == 201, first.text
    assert not replayed(first)
    again = await upload(client, user, mediagen.jpeg(), key)  # other bytes, same key
    assert again.status_code == 201
    assert replayed(again)
    assert again.content == first.content
    assert again.headers["content-type"] == first.headers["content-type"]
    assert again.json()["id"] == first.json()["id"]
    assert await media_ids(client, user) == [first.json()["id"]]


async def test_concurrent_duplicates_make_one_media(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    key = new_key()
    answers = await asyncio.gather(*(upload(client, user, mediagen.jpeg(), key) for _ in range(5)))
    statuses = sorted(a.status_code for a in answers)
    created = [a for a in answers if a.status_code == 201 and not replayed(a)]
    assert len(created) == 1, statuses
    media_id = created[0].json()["id"]
    for answer in answers:
        if answer.status_code == 409:
            assert answer.json()["error"]["code"] == "conflict"
            assert "in progress" in answer.json()["error"]["message"]
            assert answer.headers["retry-after"] == "1"
        else:
            assert answer.status_code == 201
            assert answer.json()["id"] == media_id
    assert await media_ids(client, user) == [media_id]
    # Once the first has finished, every retry gets its answer.
    late = await upload(client, user, mediagen.jpeg(), key)
    assert replayed(late)
    assert late.json()["id"] == media_id


async def test_a_new_key_is_a_new_request(client: httpx.AsyncClient, user: TestUser) -> None:
    first = await upload(client, user, mediagen.jpeg(), new_key())
    second = await upload(client, user, mediagen.jpeg(), new_key())
    assert first.status_code == second.status_code == 201
    assert not replayed(second)
    assert first.json()["id"] != second.json()["id"]
    assert sorted(await media_ids(client, user)) == sorted(
        [first.json()["id"], second.json()["id"]]
    )


async def test_the_same_key_of_another_principal_is_independent(
    client: httpx.AsyncClient, user: TestUser, other_user: TestUser
) -> None:
    key = new_key()
    mine = await upload(client, user, mediagen.jpeg(), key)
    theirs = await upload(client, other_user, mediagen.jpeg(), key)
    assert mine.status_code == theirs.status_code == 201
    assert not replayed(theirs)
    assert mine.json()["id"] != theirs.json()["id"]
    assert await media_ids(client, other_user) == [theirs.json()["id"]]


async def test_the_same_key_in_another_org_header_is_independent(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    key = new_key()
    plain = await upload(client, user, mediagen.jpeg(), key)
    with_org = await upload(client, user, mediagen.jpeg(), key, {"X-Org": user.org_slug})
    assert plain.status_code == with_org.status_code == 201
    assert not replayed(with_org)
    again = await upload(client, user, mediagen.jpeg(), key, {"X-Org": user.org_slug})
    assert replayed(again)
    assert again.json()["id"] == with_org.json()["id"]


async def test_a_key_reused_on_another_path_is_409_naming_it(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    key = new_key()
    assert (await upload(client, user, mediagen.jpeg(), key)).status_code == 201
    other = await client.post(
        f"{MEDIA}/batch", json={"ids": []}, headers=user.headers | {"Idempotency-Key": key}
    )
    assert other.status_code == 409
    error = other.json()["error"]
    assert error["code"] == "conflict"
    assert f"POST {MEDIA}/upload" in error["message"]
    assert f"{MEDIA}/batch" in error["message"]


async def test_keys_longer_than_255_characters_are_400(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    refused = await upload(client, user, mediagen.jpeg(), "k" * 256)
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == "validation.invalid"
    assert error["details"][0]["field"] == "Idempotency-Key"
    assert await media_ids(client, user) == []
    accepted = await upload(client, user, mediagen.jpeg(), "k" * 255)
    assert accepted.status_code == 201


async def test_a_4xx_answer_is_kept_and_replayed(client: httpx.AsyncClient, user: TestUser) -> None:
    key = new_key()
    refused = await upload(client, user, b"this is not an image at all" * 10, key)
    assert refused.status_code == 415
    again = await upload(client, user, mediagen.jpeg(), key)
    assert again.status_code == 415
    assert replayed(again)
    assert again.json()["error"]["code"] == "validation.mime.unsupported"
    assert await media_ids(client, user) == []


async def test_a_replay_does_not_read_the_request_body(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    key = new_key()
    first = await upload(client, user, mediagen.jpeg(), key)
    assert first.status_code == 201
    read: list[bytes] = []

    async def body() -> AsyncIterator[bytes]:
        for piece in (b"--x\r\n", b"never read", b"\r\n--x--\r\n"):
            read.append(piece)
            yield piece

    again = await client.post(
        f"{MEDIA}/upload",
        content=body(),
        headers=user.headers
        | {"Idempotency-Key": key, "Content-Type": "multipart/form-data; boundary=x"},
    )
    assert replayed(again)
    assert again.json()["id"] == first.json()["id"]
    assert read == []


async def test_gets_and_requests_without_a_key_are_untouched(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    before = len(await stored_rows(app))
    key = new_key()
    listed = await client.get(MEDIA, headers=user.headers | {"Idempotency-Key": key})
    assert listed.status_code == 200
    assert not replayed(listed)
    first = await upload(client, user, mediagen.jpeg(), None)
    second = await upload(client, user, mediagen.jpeg(), None)
    assert first.json()["id"] != second.json()["id"]
    assert len(await stored_rows(app)) == before


async def test_a_replayed_api_key_creation_makes_one_key_kept_only_sealed(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    owner = await new_user(client)
    key = new_key()
    headers = owner.headers | {"Idempotency-Key": key}
    first = await client.post("/api/v1/api-keys", headers=headers, json={"name": "deploy"})
    again = await client.post("/api/v1/api-keys", headers=headers, json={"name": "deploy"})
    assert first.status_code == again.status_code == 201
    assert replayed(again)
    assert again.json() == first.json()
    listed = await client.get("/api/v1/api-keys", headers=owner.headers)
    assert [k["id"] for k in listed.json()["data"]] == [first.json()["id"]]
    # The answer holds the one-time secret; the table never holds it readable.
    secret = first.json()["key"].encode()
    for row in await stored_rows(app):
        assert row.body is None or secret not in row.body
        assert key not in (row.key_hash, row.principal_hash)
