"""Another org's collection is answered 404 `not_found` on every route that names it (never
403), exactly as an id that exists nowhere, and is left untouched."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests import mediagen
from tests.collections.support import (
    COLLECTIONS,
    UNKNOWN_COLLECTION,
    add_media,
    create_collection,
    get_collection,
    member_ids,
)
from tests.factories import TestUser
from tests.media.support import MEDIA, assert_error, stored_originals, upload_ok


@dataclass
class Theirs:
    owner: TestUser
    collection: dict[str, Any]
    media_id: str


Call = Callable[[httpx.AsyncClient, TestUser, str, str], Awaitable[httpx.Response]]

ROUTES: dict[str, Call] = {
    "get": lambda c, u, col, _: c.get(f"{COLLECTIONS}/{col}", headers=u.headers),
    "patch": lambda c, u, col, _: c.patch(
        f"{COLLECTIONS}/{col}", json={"name": "taken"}, headers=u.headers
    ),
    "delete": lambda c, u, col, _: c.delete(f"{COLLECTIONS}/{col}", headers=u.headers),
    "list media": lambda c, u, col, _: c.get(f"{COLLECTIONS}/{col}/media", headers=u.headers),
    "add media": lambda c, u, col, mine: c.post(
        f"{COLLECTIONS}/{col}/media", json={"media_ids": [mine]}, headers=u.headers
    ),
    "remove media": lambda c, u, col, _: c.delete(
        f"{COLLECTIONS}/{col}/media/{_}", headers=u.headers
    ),
    "media list filter": lambda c, u, col, _: c.get(
        MEDIA, params={"collection_id": col}, headers=u.headers
    ),
    "multipart upload": lambda c, u, col, _: c.post(
        f"{MEDIA}/upload",
        files={"file": ("x.png", mediagen.png(), "image/png")},
        data={"collection_id": col},
        headers=u.headers,
    ),
    "json upload": lambda c, u, col, _: c.post(
        MEDIA,
        json={
            "source": {"type": "data_url", "data_url": mediagen.data_url(mediagen.png())},
            "collection_id": col,
        },
        headers=u.headers,
    ),
}


@pytest.fixture
async def theirs(client: httpx.AsyncClient, other_user: TestUser) -> Theirs:
    collection = await create_collection(client, other_user.headers, "Secret plans")
    media = await upload_ok(client, other_user, mediagen.jpeg())
    await add_media(client, other_user.headers, collection["id"], [media["id"]])
    return Theirs(other_user, collection, media["id"])


@pytest.mark.parametrize("route", list(ROUTES))
async def test_another_orgs_collection_is_404_on_every_route(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser, theirs: Theirs, route: str
) -> None:
    mine = await upload_ok(client, user, mediagen.jpeg())
    originals_before = stored_originals(app, user.org_id)

    # The path's media id is theirs where the route takes a member (remove media).
    member = theirs.media_id if route == "remove media" else mine["id"]
    response = await ROUTES[route](client, user, theirs.collection["id"], member)

    error = assert_error(response, 404, "not_found")
    assert "Secret plans" not in response.text
    assert theirs.collection["id"] not in error["message"]
    after = await get_collection(client, theirs.owner.headers, theirs.collection["id"])
    assert after["name"] == "Secret plans"
    assert after["media_count"] == 1
    assert await member_ids(client, theirs.owner.headers, theirs.collection["id"]) == [
        theirs.media_id
    ]
    assert stored_originals(app, user.org_id) == originals_before


@pytest.mark.parametrize("route", list(ROUTES))
async def test_another_orgs_collection_and_an_unknown_id_get_the_same_answer(
    client: httpx.AsyncClient, user: TestUser, theirs: Theirs, route: str
) -> None:
    mine = await upload_ok(client, user, mediagen.jpeg())
    member = theirs.media_id if route == "remove media" else mine["id"]

    foreign = await ROUTES[route](client, user, theirs.collection["id"], member)
    unknown = await ROUTES[route](client, user, UNKNOWN_COLLECTION, member)

    assert (foreign.status_code, unknown.status_code) == (404, 404)
    assert foreign.json()["error"]["message"] == unknown.json()["error"]["message"]


async def test_lists_never_show_another_orgs_collections(
    client: httpx.AsyncClient, user: TestUser, theirs: Theirs
) -> None:
    listed = await client.get(COLLECTIONS, params={"include_total": "true"}, headers=user.headers)
    assert listed.status_code == 200
    assert theirs.collection["id"] not in listed.text
    mine = await create_collection(client, user.headers)
    listed = await client.get(COLLECTIONS, params={"include_total": "true"}, headers=user.headers)
    assert [item["id"] for item in listed.json()["data"]] == [mine["id"]]
    assert listed.json()["total"] == 1


async def test_another_orgs_media_cannot_be_put_in_or_taken_out_of_my_collection(
    client: httpx.AsyncClient, user: TestUser, theirs: Theirs
) -> None:
    mine = await create_collection(client, user.headers)

    added = await add_media(client, user.headers, mine["id"], [theirs.media_id])
    removed = await client.delete(
        f"{COLLECTIONS}/{mine['id']}/media/{theirs.media_id}", headers=user.headers
    )

    assert added == {"added": [], "missing": [theirs.media_id]}
    assert_error(removed, 404, "not_found")
    assert await member_ids(client, user.headers, mine["id"]) == []


async def test_x_org_of_an_org_one_is_not_in_is_404(
    client: httpx.AsyncClient, user: TestUser, theirs: Theirs
) -> None:
    response = await client.get(
        f"{COLLECTIONS}/{theirs.collection['id']}",
        headers=user.headers | {"X-Org": theirs.owner.org_slug},
    )
    assert_error(response, 404, "not_found")
