"""Collections: create, read, list (newest first, cursor, total), rename, delete."""

import re
from typing import Any

import httpx
import pytest

from tests import mediagen
from tests.collections.support import (
    COLLECTION_FIELDS,
    COLLECTION_ID,
    COLLECTIONS,
    UNKNOWN_COLLECTION,
    add_media,
    create_collection,
    get_collection,
)
from tests.factories import TestUser, new_user
from tests.media.support import MEDIA, assert_error, upload_ok

RFC3339_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


async def test_create_answers_201_with_the_collection(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    response = await client.post(
        COLLECTIONS,
        json={"name": "  Summer 2026 ", "description": "Beach days"},
        headers=user.headers,
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == COLLECTION_FIELDS
    assert COLLECTION_ID.match(body["id"])
    assert body["name"] == "Summer 2026"
    assert body["description"] == "Beach days"
    assert body["media_count"] == 0
    assert body["created_by"] == user.user_id
    assert RFC3339_Z.match(body["created_at"])
    assert RFC3339_Z.match(body["updated_at"])
    assert await get_collection(client, user.headers, body["id"]) == body


async def test_description_is_optional(client: httpx.AsyncClient, user: TestUser) -> None:
    body = await create_collection(client, user.headers, "Plain")
    assert body["description"] is None


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"name": ""},
        {"name": "   "},
        {"name": "x" * 201},
        {"name": None},
        {"name": 5},
        {"name": "ok", "description": "x" * 10_001},
        {"name": "ok", "colour": "red"},
    ],
)
async def test_bad_bodies_are_400(
    client: httpx.AsyncClient, user: TestUser, payload: dict[str, Any]
) -> None:
    response = await client.post(COLLECTIONS, json=payload, headers=user.headers)
    assert_error(response, 400, "validation.invalid")


async def test_routes_need_credentials(client: httpx.AsyncClient, user: TestUser) -> None:
    collection = await create_collection(client, user.headers)
    for response in (
        await client.get(COLLECTIONS),
        await client.post(COLLECTIONS, json={"name": "x"}),
        await client.get(f"{COLLECTIONS}/{collection['id']}"),
        await client.delete(f"{COLLECTIONS}/{collection['id']}"),
    ):
        assert_error(response, 401, "auth.unauthorized")


async def test_unknown_and_malformed_ids_are_404(client: httpx.AsyncClient, user: TestUser) -> None:
    for collection_id in (UNKNOWN_COLLECTION, "med_01aaaaaaaaaaaaaaaaaaaaaaaa", "nope"):
        response = await client.get(f"{COLLECTIONS}/{collection_id}", headers=user.headers)
        assert_error(response, 404, "not_found")


async def test_list_is_newest_first_and_the_cursor_walks_each_once(
    client: httpx.AsyncClient,
) -> None:
    owner = await new_user(client)
    made = [(await create_collection(client, owner.headers, f"c{i}"))["id"] for i in range(5)]

    first = await client.get(COLLECTIONS, params={"limit": 2}, headers=owner.headers)
    assert first.status_code == 200, first.text
    assert set(first.json()) == {"data", "next_cursor"}

    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2, "include_total": "true"}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get(COLLECTIONS, params=params, headers=owner.headers)).json()
        pages += 1
        assert page["total"] == 5
        seen.extend(item["id"] for item in page["data"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(made))
    assert pages == 3


async def test_list_shows_media_counts(client: httpx.AsyncClient, user: TestUser) -> None:
    full = await create_collection(client, user.headers, "full")
    empty = await create_collection(client, user.headers, "empty")
    media = [(await upload_ok(client, user, mediagen.png()))["id"] for _ in range(2)]
    await add_media(client, user.headers, full["id"], media)

    listed = (await client.get(COLLECTIONS, headers=user.headers)).json()["data"]
    counts = {item["id"]: item["media_count"] for item in listed}
    assert counts[full["id"]] == 2
    assert counts[empty["id"]] == 0


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 201}, {"cursor": "%%%"}])
async def test_bad_list_parameters_are_400(
    client: httpx.AsyncClient, user: TestUser, params: dict[str, Any]
) -> None:
    response = await client.get(COLLECTIONS, params=params, headers=user.headers)
    assert_error(response, 400, "validation.invalid")


async def test_patch_changes_only_the_given_fields(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    made = await create_collection(client, user.headers, "Before", description="keep me")

    renamed = await client.patch(
        f"{COLLECTIONS}/{made['id']}", json={"name": "After"}, headers=user.headers
    )
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "After"
    assert renamed.json()["description"] == "keep me"
    assert renamed.json()["updated_at"] >= made["updated_at"]
    assert renamed.json()["created_at"] == made["created_at"]

    cleared = await client.patch(
        f"{COLLECTIONS}/{made['id']}", json={"description": None}, headers=user.headers
    )
    assert cleared.json()["description"] is None
    assert cleared.json()["name"] == "After"
    assert (await get_collection(client, user.headers, made["id"]))["name"] == "After"


@pytest.mark.parametrize("payload", [{"name": None}, {"name": ""}, {"id": "col_x"}])
async def test_patch_refuses_bad_values(
    client: httpx.AsyncClient, user: TestUser, payload: dict[str, Any]
) -> None:
    made = await create_collection(client, user.headers)
    response = await client.patch(f"{COLLECTIONS}/{made['id']}", json=payload, headers=user.headers)
    assert_error(response, 400, "validation.invalid")


async def test_delete_removes_the_collection_but_keeps_its_media(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    made = await create_collection(client, user.headers)
    media = await upload_ok(client, user, mediagen.jpeg())
    await add_media(client, user.headers, made["id"], [media["id"]])

    response = await client.delete(f"{COLLECTIONS}/{made['id']}", headers=user.headers)

    assert response.status_code == 204
    assert response.content == b""
    gone = await client.get(f"{COLLECTIONS}/{made['id']}", headers=user.headers)
    assert_error(gone, 404, "not_found")
    again = await client.delete(f"{COLLECTIONS}/{made['id']}", headers=user.headers)
    assert_error(again, 404, "not_found")
    kept = await client.get(f"{MEDIA}/{media['id']}", headers=user.headers)
    assert kept.status_code == 200
    content = await client.get(f"{MEDIA}/{media['id']}/content", headers=user.headers)
    assert content.status_code == 200
    listed = (await client.get(COLLECTIONS, headers=user.headers)).json()["data"]
    assert made["id"] not in [item["id"] for item in listed]


async def test_collection_routes_are_in_the_openapi_document(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert set(paths[COLLECTIONS]) == {"get", "post"}
    assert set(paths[f"{COLLECTIONS}/{{collection_id}}"]) == {"get", "patch", "delete"}
    assert set(paths[f"{COLLECTIONS}/{{collection_id}}/media"]) == {"get", "post"}
    assert set(paths[f"{COLLECTIONS}/{{collection_id}}/media/{{media_id}}"]) == {"delete"}
    assert "collection_id" in [p["name"] for p in paths[MEDIA]["get"]["parameters"]]
