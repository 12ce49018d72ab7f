"""Creating organisations and listing the caller's: slug rules, the caller becomes owner, every
org the caller belongs to is listed with their role, nobody else's."""

import re

import httpx
import pytest

from tests.auth.support import assert_error
from tests.factories import TestUser
from tests.orgs.support import ORGS, add_member, create_org, new_slug

ORG_ID = re.compile(r"^org_[0-9a-hjkmnp-tv-z]{26}$")
RFC3339_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


async def test_creating_an_org_makes_the_caller_its_owner(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    slug = new_slug()
    response = await client.post(
        ORGS, json={"slug": slug, "name": "  Acme Media  "}, headers=user.headers
    )
    assert response.status_code == 201, response.text
    org = response.json()
    assert set(org) == {"id", "slug", "name", "role", "created_at"}
    assert ORG_ID.match(org["id"])
    assert org["slug"] == slug
    assert org["name"] == "Acme Media"
    assert org["role"] == "owner"
    assert RFC3339_Z.match(org["created_at"])

    members = await client.get(f"{ORGS}/{slug}/members", headers=user.headers)
    assert members.status_code == 200, members.text
    [me] = members.json()["data"]
    assert (me["user_id"], me["role"]) == (user.user_id, "owner")


async def test_the_new_org_is_listed_beside_the_personal_one(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    created = await create_org(client, user)
    response = await client.get(ORGS, headers=user.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"data", "next_cursor"}
    assert body["next_cursor"] is None
    assert [(o["id"], o["role"]) for o in body["data"]] == [
        (user.org_id, "owner"),
        (created["id"], "owner"),
    ]
    assert body["data"][1] == created


async def test_the_new_org_can_be_acted_in_with_x_org(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    created = await create_org(client, user)
    listed = await client.get("/api/v1/media", headers=user.headers | {"X-Org": created["slug"]})
    assert listed.status_code == 200, listed.text
    assert listed.json()["data"] == []
    by_query = await client.get(
        "/api/v1/usage", params={"org": created["slug"]}, headers=user.headers
    )
    assert by_query.status_code == 200, by_query.text


async def test_a_taken_slug_is_409_conflict(
    client: httpx.AsyncClient, user: TestUser, other_user: TestUser
) -> None:
    created = await create_org(client, user)
    for who in (user, other_user):
        again = await client.post(
            ORGS, json={"slug": created["slug"], "name": "Copy"}, headers=who.headers
        )
        assert_error(again, 409, "conflict")
    personal = await client.post(
        ORGS, json={"slug": other_user.org_slug, "name": "Mine now"}, headers=user.headers
    )
    assert_error(personal, 409, "conflict")
    listed = (await client.get(ORGS, headers=other_user.headers)).json()["data"]
    assert [o["id"] for o in listed] == [other_user.org_id]


@pytest.mark.parametrize("slug", ["local", "admin", "api"])
async def test_reserved_slugs_are_409_conflict(
    client: httpx.AsyncClient, user: TestUser, slug: str
) -> None:
    response = await client.post(ORGS, json={"slug": slug, "name": "Nope"}, headers=user.headers)
    assert_error(response, 409, "conflict")


@pytest.mark.parametrize(
    "slug",
    ["x", "-team", "Team", "team_one", "team one", "tëam", "a" * 64, "", "team/one", 42],
)
async def test_a_slug_off_the_pattern_is_400(
    client: httpx.AsyncClient, user: TestUser, slug: object
) -> None:
    response = await client.post(ORGS, json={"slug": slug, "name": "Bad"}, headers=user.headers)
    error = assert_error(response, 400, "validation.invalid")
    assert [d["field"] for d in error["details"]] == ["slug"]


@pytest.mark.parametrize("slug", ["ab", "0team", "a-", "a" * 63, "team--two"])
async def test_slugs_on_the_pattern_are_accepted(
    client: httpx.AsyncClient, user: TestUser, slug: str
) -> None:
    unique = slug if len(slug) > 20 else f"{slug}{new_slug('')}"[:63]
    if slug == "a" * 63:
        unique = new_slug("a")[:10] + "a" * 53
    response = await client.post(ORGS, json={"slug": unique, "name": "Ok"}, headers=user.headers)
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    "body", [{"slug": "ok-slug"}, {"name": "x"}, {"slug": "ok-slug", "name": "   "}, {}]
)
async def test_a_missing_or_blank_field_is_400(
    client: httpx.AsyncClient, user: TestUser, body: dict[str, str]
) -> None:
    response = await client.post(ORGS, json=body, headers=user.headers)
    assert_error(response, 400, "validation.invalid")


async def test_the_list_holds_only_the_callers_orgs(
    client: httpx.AsyncClient, user: TestUser, other_user: TestUser
) -> None:
    theirs = await create_org(client, other_user)
    shared = await create_org(client, other_user)
    await add_member(client, other_user, shared["slug"], user, "viewer")

    listed = (await client.get(ORGS, headers=user.headers)).json()["data"]
    assert [(o["id"], o["role"]) for o in listed] == [
        (user.org_id, "owner"),
        (shared["id"], "viewer"),
    ]
    assert theirs["id"] not in str(listed)


async def test_the_list_pages_with_a_cursor_and_counts_on_request(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    ids = [user.org_id] + [(await create_org(client, user))["id"] for _ in range(3)]
    first = (await client.get(ORGS, params={"limit": 3}, headers=user.headers)).json()
    assert [o["id"] for o in first["data"]] == ids[:3]
    assert first["next_cursor"]
    second = await client.get(
        ORGS,
        params={"limit": 3, "cursor": first["next_cursor"], "include_total": "true"},
        headers=user.headers,
    )
    assert second.status_code == 200, second.text
    assert [o["id"] for o in second.json()["data"]] == ids[3:]
    assert second.json()["next_cursor"] is None
    assert second.json()["total"] == 4
    for bad in ("%%%", "eDox", "bTp4", "eHl6"):
        response = await client.get(ORGS, params={"cursor": bad}, headers=user.headers)
        assert_error(response, 400, "validation.invalid")
    assert_error(
        await client.get(ORGS, params={"limit": 0}, headers=user.headers),
        400,
        "validation.invalid",
    )


async def test_an_api_key_lists_only_its_own_org_with_the_keys_role(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    await create_org(client, user)
    key = await client.post(
        "/api/v1/api-keys", json={"name": "ci", "role": "viewer"}, headers=user.headers
    )
    assert key.status_code == 201, key.text
    listed = await client.get(ORGS, headers={"X-API-Key": key.json()["key"]})
    assert listed.status_code == 200, listed.text
    assert [(o["id"], o["role"]) for o in listed.json()["data"]] == [(user.org_id, "viewer")]


async def test_an_api_key_cannot_create_orgs(client: httpx.AsyncClient, user: TestUser) -> None:
    key = await client.post(
        "/api/v1/api-keys", json={"name": "ci", "role": "owner"}, headers=user.headers
    )
    slug = new_slug()
    response = await client.post(
        ORGS, json={"slug": slug, "name": "By key"}, headers={"X-API-Key": key.json()["key"]}
    )
    assert_error(response, 403, "auth.forbidden")
    listed = (await client.get(ORGS, headers=user.headers)).json()["data"]
    assert slug not in [o["slug"] for o in listed]


async def test_org_routes_without_credentials_are_401(client: httpx.AsyncClient) -> None:
    assert_error(await client.get(ORGS), 401, "auth.unauthorized")
    assert_error(
        await client.post(ORGS, json={"slug": new_slug(), "name": "x"}), 401, "auth.unauthorized"
    )
