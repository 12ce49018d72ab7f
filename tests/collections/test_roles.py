"""Roles (API.md): viewers read; members create collections and change their own; admins and
owners also change other people's."""

from collections.abc import Awaitable, Callable

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
from tests.media.support import assert_error, upload_ok
from tests.orgs.support import Team, add_member, new_team

Write = Callable[[httpx.AsyncClient, dict[str, str], str, str], Awaitable[httpx.Response]]

WRITES: dict[str, Write] = {
    "patch": lambda c, h, col, _: c.patch(f"{COLLECTIONS}/{col}", json={"name": "x"}, headers=h),
    "delete": lambda c, h, col, _: c.delete(f"{COLLECTIONS}/{col}", headers=h),
    "add media": lambda c, h, col, med: c.post(
        f"{COLLECTIONS}/{col}/media", json={"media_ids": [med]}, headers=h
    ),
    "remove media": lambda c, h, col, med: c.delete(f"{COLLECTIONS}/{col}/media/{med}", headers=h),
}


async def assert_write_took_effect(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    write: str,
    collection_id: str,
    media_id: str,
    response: httpx.Response,
) -> None:
    """The answer of a successful write and what it changed, read back by `headers`."""
    if write == "delete":
        assert response.status_code == 204, response.text
        gone = await client.get(f"{COLLECTIONS}/{collection_id}", headers=headers)
        assert_error(gone, 404, "not_found")
        return
    assert response.status_code in (200, 204), (write, response.text)
    members = await member_ids(client, headers, collection_id)
    if write == "patch":
        assert response.json()["name"] == "x"
        assert (await get_collection(client, headers, collection_id))["name"] == "x"
    elif write == "add media":
        assert response.json()["added"] == [media_id]
        assert media_id in members
    else:  # remove media
        assert media_id not in members


@pytest.fixture
async def team(client: httpx.AsyncClient) -> Team:
    return await new_team(client)


async def _upload_in(client: httpx.AsyncClient, team: Team, who: TestUser) -> str:
    response = await client.post(
        "/api/v1/media/upload",
        files={"file": ("t.png", mediagen.png(), "image/png")},
        headers=team.as_(who),
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def test_a_viewer_reads_but_may_not_create(client: httpx.AsyncClient, team: Team) -> None:
    made = await create_collection(client, team.as_(team.member), "Shared")
    media_id = await _upload_in(client, team, team.member)
    await add_media(client, team.as_(team.member), made["id"], [media_id])

    viewer = team.as_(team.viewer)
    assert (await get_collection(client, viewer, made["id"]))["media_count"] == 1
    listed = (await client.get(COLLECTIONS, headers=viewer)).json()["data"]
    assert [item["id"] for item in listed] == [made["id"]]
    assert await member_ids(client, viewer, made["id"]) == [media_id]
    refused = await client.post(COLLECTIONS, json={"name": "mine"}, headers=viewer)
    assert_error(refused, 403, "auth.forbidden")


@pytest.mark.parametrize("write", list(WRITES))
async def test_a_viewer_may_not_change_any_collection(
    client: httpx.AsyncClient, team: Team, write: str
) -> None:
    made = await create_collection(client, team.as_(team.owner), "Owned")
    media_id = await _upload_in(client, team, team.owner)
    await add_media(client, team.as_(team.owner), made["id"], [media_id])

    response = await WRITES[write](client, team.as_(team.viewer), made["id"], media_id)

    assert_error(response, 403, "auth.forbidden")
    after = await get_collection(client, team.as_(team.owner), made["id"])
    assert (after["name"], after["media_count"]) == ("Owned", 1)


@pytest.mark.parametrize("write", list(WRITES))
async def test_a_member_may_not_change_another_members_collection(
    client: httpx.AsyncClient, team: Team, write: str
) -> None:
    made = await create_collection(client, team.as_(team.admin), "The admin's")
    media_id = await _upload_in(client, team, team.member)
    await add_media(client, team.as_(team.admin), made["id"], [media_id])

    response = await WRITES[write](client, team.as_(team.member), made["id"], media_id)

    assert_error(response, 403, "auth.forbidden")
    after = await get_collection(client, team.as_(team.admin), made["id"])
    assert (after["name"], after["media_count"]) == ("The admin's", 1)


@pytest.mark.parametrize("who", ["member", "admin", "owner"])
async def test_the_creator_changes_and_deletes_their_own_collection(
    client: httpx.AsyncClient, team: Team, who: str
) -> None:
    headers = team.as_(getattr(team, who))
    made = await create_collection(client, headers, "Mine")
    assert made["created_by"] == getattr(team, who).user_id
    media_id = await _upload_in(client, team, team.member)

    assert (await add_media(client, headers, made["id"], [media_id]))["added"] == [media_id]
    for write in ("patch", "remove media", "delete"):
        response = await WRITES[write](client, headers, made["id"], media_id)
        await assert_write_took_effect(client, headers, write, made["id"], media_id, response)


@pytest.mark.parametrize("who", ["admin", "owner"])
@pytest.mark.parametrize("write", list(WRITES))
async def test_admins_and_owners_change_other_peoples_collections(
    client: httpx.AsyncClient, team: Team, who: str, write: str
) -> None:
    made = await create_collection(client, team.as_(team.member), "The member's")
    media_id = await _upload_in(client, team, team.member)
    if write == "remove media":
        await add_media(client, team.as_(team.member), made["id"], [media_id])

    headers = team.as_(getattr(team, who))
    response = await WRITES[write](client, headers, made["id"], media_id)

    await assert_write_took_effect(client, headers, write, made["id"], media_id, response)


async def test_a_member_deletes_own_but_not_another_members_collection(
    client: httpx.AsyncClient, team: Team, user: TestUser
) -> None:
    """The issue's case in one story: two members, then the admin steps in."""
    await add_member(client, team.owner, team.slug, user, "member")
    theirs = await create_collection(client, team.as_(team.member), "Mia's")
    mine = await create_collection(client, team.as_(user), "Mine")

    refused = await client.delete(f"{COLLECTIONS}/{theirs['id']}", headers=team.as_(user))
    assert_error(refused, 403, "auth.forbidden")
    own = await client.delete(f"{COLLECTIONS}/{mine['id']}", headers=team.as_(user))
    assert own.status_code == 204
    by_admin = await client.delete(f"{COLLECTIONS}/{theirs['id']}", headers=team.as_(team.admin))
    assert by_admin.status_code == 204


async def test_a_viewer_api_key_reads_but_may_not_write(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    made = await create_collection(client, user.headers)
    media = await upload_ok(client, user, mediagen.png())
    created = await client.post(
        "/api/v1/api-keys", json={"name": "ro", "role": "viewer"}, headers=user.headers
    )
    assert created.status_code == 201, created.text
    key = {"X-API-Key": created.json()["key"]}

    assert (await get_collection(client, key, made["id"]))["id"] == made["id"]
    for call in WRITES.values():
        assert_error(await call(client, key, made["id"], media["id"]), 403, "auth.forbidden")
