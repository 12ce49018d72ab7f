"""A collection's media: GET /collections/{id}/media and GET /media?collection_id= list with
the media list's filters, sorting and cursors."""

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
)
from tests.factories import TestUser, new_user
from tests.media.support import MEDIA, asgi_client, assert_error, upload_ok


@dataclass
class Album:
    """One org: six media, four of them (two JPEGs, two PNGs) in the collection."""

    owner: TestUser
    collection_id: str
    members: list[dict[str, Any]]  # in upload order
    outsiders: list[dict[str, Any]]


@pytest.fixture(scope="module")
async def album(app: FastAPI) -> Album:
    async with asgi_client(app) as http:
        owner = await new_user(http)
        made = await create_collection(http, owner.headers, "Album")
        members = [
            await upload_ok(http, owner, mediagen.jpeg(40, 30), part_name="a-sea.jpg"),
            await upload_ok(
                http, owner, mediagen.png(50, 40), declared="image/png", part_name="b-sea.png"
            ),
            await upload_ok(http, owner, mediagen.jpeg(120, 90), part_name="c-hill.jpg"),
            await upload_ok(
                http, owner, mediagen.png(20, 10), declared="image/png", part_name="d-hill.png"
            ),
        ]
        outsiders = [
            await upload_ok(http, owner, mediagen.jpeg(), part_name="e-sea.jpg"),
            await upload_ok(http, owner, mediagen.png(), declared="image/png", part_name="f.png"),
        ]
        await add_media(http, owner.headers, made["id"], [m["id"] for m in members])
    return Album(owner, made["id"], members, outsiders)


def _ids(items: list[dict[str, Any]], *positions: int) -> list[str]:
    return [items[p]["id"] for p in positions]


async def _page(client: httpx.AsyncClient, album: Album, via: str, **params: Any) -> dict[str, Any]:
    if via == "collection":
        response = await client.get(
            f"{COLLECTIONS}/{album.collection_id}/media", params=params, headers=album.owner.headers
        )
    else:
        response = await client.get(
            MEDIA,
            params={"collection_id": album.collection_id, **params},
            headers=album.owner.headers,
        )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _walk(client: httpx.AsyncClient, album: Album, via: str, **params: Any) -> list[str]:
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(20):
        page = await _page(client, album, via, **params, **({"cursor": cursor} if cursor else {}))
        seen.extend(item["id"] for item in page["data"])
        cursor = page["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError("the cursor never ends")


VIA = pytest.mark.parametrize("via", ["collection", "media"])


@VIA
async def test_lists_only_the_collections_media_newest_first(
    client: httpx.AsyncClient, album: Album, via: str
) -> None:
    page = await _page(client, album, via)
    assert [item["id"] for item in page["data"]] == _ids(album.members, 3, 2, 1, 0)
    assert page["next_cursor"] is None
    assert "total" not in page
    assert page["data"][0]["url"]


@VIA
@pytest.mark.parametrize(
    ("params", "positions"),
    [
        ({"mime": "image/png"}, [3, 1]),
        ({"kind": "image", "order": "asc"}, [0, 1, 2, 3]),
        ({"search": "SEA"}, [1, 0]),
        ({"sort": "filename", "order": "asc"}, [0, 1, 2, 3]),
        ({"kind": "video"}, []),
    ],
)
async def test_filters_and_sorting_apply_within_the_collection(
    client: httpx.AsyncClient, album: Album, via: str, params: dict[str, Any], positions: list[int]
) -> None:
    page = await _page(client, album, via, **params)
    assert [item["id"] for item in page["data"]] == _ids(album.members, *positions)


@VIA
async def test_the_cursor_walks_the_collection_with_the_filters(
    client: httpx.AsyncClient, album: Album, via: str
) -> None:
    assert await _walk(client, album, via, limit=1) == _ids(album.members, 3, 2, 1, 0)
    assert await _walk(client, album, via, limit=1, mime="image/jpeg", order="asc") == _ids(
        album.members, 0, 2
    )
    by_size = sorted(album.members, key=lambda m: (m["size_bytes"], m["id"]))
    assert await _walk(client, album, via, limit=3, sort="size_bytes", order="asc") == [
        m["id"] for m in by_size
    ]


@VIA
async def test_include_total_counts_the_collections_matches(
    client: httpx.AsyncClient, album: Album, via: str
) -> None:
    first = await _page(client, album, via, include_total="true", limit=1)
    assert first["total"] == 4
    pngs = await _page(client, album, via, include_total="true", mime="image/png")
    assert pngs["total"] == 2


@VIA
@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 201},
        {"sort": "size"},
        {"cursor": "nope"},
        {"created_after": "2026-01-01T00:00:00"},
    ],
)
async def test_bad_parameters_are_400(
    client: httpx.AsyncClient, album: Album, via: str, params: dict[str, Any]
) -> None:
    if via == "collection":
        url, query = f"{COLLECTIONS}/{album.collection_id}/media", params
    else:
        url, query = MEDIA, {"collection_id": album.collection_id, **params}
    response = await client.get(url, params=query, headers=album.owner.headers)
    assert_error(response, 400, "validation.invalid")


async def test_the_unfiltered_media_list_still_shows_everything(
    client: httpx.AsyncClient, album: Album
) -> None:
    response = await client.get(MEDIA, headers=album.owner.headers)
    ids = {item["id"] for item in response.json()["data"]}
    assert ids == {m["id"] for m in album.members + album.outsiders}


async def test_an_empty_collection_lists_nothing(client: httpx.AsyncClient, user: TestUser) -> None:
    made = await create_collection(client, user.headers)
    await upload_ok(client, user, mediagen.png(), declared="image/png")
    for response in (
        await client.get(f"{COLLECTIONS}/{made['id']}/media", headers=user.headers),
        await client.get(MEDIA, params={"collection_id": made["id"]}, headers=user.headers),
    ):
        assert response.json() == {"data": [], "next_cursor": None}


async def test_an_unknown_collection_is_404_on_both_lists(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    for response in (
        await client.get(f"{COLLECTIONS}/{UNKNOWN_COLLECTION}/media", headers=user.headers),
        await client.get(MEDIA, params={"collection_id": UNKNOWN_COLLECTION}, headers=user.headers),
        await client.get(MEDIA, params={"collection_id": "junk"}, headers=user.headers),
    ):
        assert_error(response, 404, "not_found")
