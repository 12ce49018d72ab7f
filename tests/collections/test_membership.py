"""Putting media in collections and taking them out: bulk add with missing ids, idempotent
adds, removal, and what deleting a media or a collection does to memberships."""

from typing import Any

import httpx
import pytest

from tests import mediagen
from tests.collections.support import (
    COLLECTIONS,
    add_media,
    create_collection,
    get_collection,
    member_ids,
)
from tests.factories import TestUser
from tests.media.support import MEDIA, assert_error, upload_ok

UNKNOWN_MEDIA = "med_01aaaaaaaaaaaaaaaaaaaaaaaa"


async def _uploads(client: httpx.AsyncClient, user: TestUser, count: int) -> list[str]:
    return [(await upload_ok(client, user, mediagen.png()))["id"] for _ in range(count)]


async def test_bulk_add_lists_unknown_and_foreign_ids_as_missing(
    client: httpx.AsyncClient, user: TestUser, other_user: TestUser
) -> None:
    made = await create_collection(client, user.headers)
    mine = await _uploads(client, user, 2)
    theirs = (await upload_ok(client, other_user, mediagen.png()))["id"]

    answer = await add_media(
        client, user.headers, made["id"], [mine[0], UNKNOWN_MEDIA, theirs, mine[1], "junk"]
    )

    assert answer == {"added": mine, "missing": [UNKNOWN_MEDIA, theirs, "junk"]}
    assert sorted(await member_ids(client, user.headers, made["id"])) == sorted(mine)
    assert (await get_collection(client, user.headers, made["id"]))["media_count"] == 2
    # The other org's media is untouched and in none of this org's collections.
    assert (await client.get(f"{MEDIA}/{theirs}", headers=other_user.headers)).status_code == 200


async def test_adding_twice_is_a_no_op(client: httpx.AsyncClient, user: TestUser) -> None:
    made = await create_collection(client, user.headers)
    media = await _uploads(client, user, 2)
    first = await add_media(client, user.headers, made["id"], [media[0]])
    after_first = await get_collection(client, user.headers, made["id"])

    again = await add_media(client, user.headers, made["id"], [media[0], media[0]])

    assert first == again == {"added": [media[0]], "missing": []}
    after_again = await get_collection(client, user.headers, made["id"])
    assert after_again["media_count"] == 1
    assert after_again["updated_at"] == after_first["updated_at"]
    both = await add_media(client, user.headers, made["id"], media)
    assert both == {"added": media, "missing": []}
    assert (await get_collection(client, user.headers, made["id"]))["media_count"] == 2


async def test_a_media_may_be_in_several_collections(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    first = await create_collection(client, user.headers, "one")
    second = await create_collection(client, user.headers, "two")
    [media_id] = await _uploads(client, user, 1)
    await add_media(client, user.headers, first["id"], [media_id])
    await add_media(client, user.headers, second["id"], [media_id])

    assert await member_ids(client, user.headers, first["id"]) == [media_id]
    assert await member_ids(client, user.headers, second["id"]) == [media_id]


async def test_bulk_add_takes_up_to_500_ids(client: httpx.AsyncClient, user: TestUser) -> None:
    made = await create_collection(client, user.headers)
    [media_id] = await _uploads(client, user, 1)
    ids = [media_id] + [f"med_01{i:024d}" for i in range(499)]

    answer = await add_media(client, user.headers, made["id"], ids)

    assert answer["added"] == [media_id]
    assert len(answer["missing"]) == 499
    too_many = await client.post(
        f"{COLLECTIONS}/{made['id']}/media",
        json={"media_ids": [*ids, "med_x"]},
        headers=user.headers,
    )
    assert_error(too_many, 400, "validation.invalid")


@pytest.mark.parametrize(
    "payload",
    [{}, {"media_ids": []}, {"media_ids": "med_x"}, {"media_ids": ["x" * 65]}, {"ids": ["a"]}],
)
async def test_bulk_add_refuses_bad_bodies(
    client: httpx.AsyncClient, user: TestUser, payload: dict[str, Any]
) -> None:
    made = await create_collection(client, user.headers)
    response = await client.post(
        f"{COLLECTIONS}/{made['id']}/media", json=payload, headers=user.headers
    )
    assert_error(response, 400, "validation.invalid")


async def test_remove_takes_a_media_out_and_keeps_it(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    made = await create_collection(client, user.headers)
    media = await _uploads(client, user, 2)
    await add_media(client, user.headers, made["id"], media)

    response = await client.delete(
        f"{COLLECTIONS}/{made['id']}/media/{media[0]}", headers=user.headers
    )

    assert response.status_code == 204
    assert response.content == b""
    assert await member_ids(client, user.headers, made["id"]) == [media[1]]
    assert (await get_collection(client, user.headers, made["id"]))["media_count"] == 1
    assert (await client.get(f"{MEDIA}/{media[0]}", headers=user.headers)).status_code == 200
    again = await client.delete(
        f"{COLLECTIONS}/{made['id']}/media/{media[0]}", headers=user.headers
    )
    assert_error(again, 404, "not_found")


async def test_removing_a_media_that_is_not_a_member_is_404(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    made = await create_collection(client, user.headers)
    [outside] = await _uploads(client, user, 1)
    for media_id in (outside, UNKNOWN_MEDIA):
        response = await client.delete(
            f"{COLLECTIONS}/{made['id']}/media/{media_id}", headers=user.headers
        )
        assert_error(response, 404, "not_found")


async def test_deleting_a_media_removes_its_memberships(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    first = await create_collection(client, user.headers, "one")
    second = await create_collection(client, user.headers, "two")
    media = await _uploads(client, user, 2)
    await add_media(client, user.headers, first["id"], media)
    await add_media(client, user.headers, second["id"], [media[0]])

    deleted = await client.delete(f"{MEDIA}/{media[0]}", headers=user.headers)

    assert deleted.status_code == 204
    assert (await get_collection(client, user.headers, first["id"]))["media_count"] == 1
    assert (await get_collection(client, user.headers, second["id"]))["media_count"] == 0
    assert await member_ids(client, user.headers, first["id"]) == [media[1]]
    assert await member_ids(client, user.headers, second["id"]) == []


async def test_deleting_a_collection_deletes_no_media(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    made = await create_collection(client, user.headers)
    other = await create_collection(client, user.headers, "other")
    media = await _uploads(client, user, 3)
    await add_media(client, user.headers, made["id"], media)
    await add_media(client, user.headers, other["id"], media[:1])

    assert (
        await client.delete(f"{COLLECTIONS}/{made['id']}", headers=user.headers)
    ).status_code == 204

    found = await client.post(f"{MEDIA}/batch", json={"ids": media}, headers=user.headers)
    assert found.json()["missing"] == []
    assert await member_ids(client, user.headers, other["id"]) == media[:1]
