"""Members of an organisation: owners add existing users by email with a role and remove them
(never the last owner); any member lists them; to anyone else the org does not exist."""

import asyncio
import re

import httpx
import pytest

from tests.auth.support import assert_error
from tests.factories import TestUser, new_user
from tests.orgs.support import ORGS, Team, add_member, create_org, new_slug, new_team

RFC3339_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


@pytest.fixture
async def team(client: httpx.AsyncClient) -> Team:
    return await new_team(client)


async def test_the_owner_adds_a_user_by_email_with_a_role(
    client: httpx.AsyncClient, user: TestUser, other_user: TestUser
) -> None:
    org = await create_org(client, user)
    response = await client.post(
        f"{ORGS}/{org['slug']}/members",
        json={"email": other_user.email.upper(), "role": "admin"},
        headers=user.headers,
    )
    assert response.status_code == 201, response.text
    member = response.json()
    assert set(member) == {"user_id", "email", "name", "role", "created_at"}
    assert member["user_id"] == other_user.user_id
    assert member["email"] == other_user.email
    assert member["name"] == "Test User"
    assert member["role"] == "admin"
    assert RFC3339_Z.match(member["created_at"])

    theirs = (await client.get(ORGS, headers=other_user.headers)).json()["data"]
    assert (org["id"], "admin") in [(o["id"], o["role"]) for o in theirs]
    listed = (await client.get(f"{ORGS}/{org['slug']}/members", headers=user.headers)).json()
    assert [(m["user_id"], m["role"]) for m in listed["data"]] == [
        (user.user_id, "owner"),
        (other_user.user_id, "admin"),
    ]
    assert listed["data"][1] == member
    assert listed["next_cursor"] is None


async def test_the_role_defaults_to_member(
    client: httpx.AsyncClient, user: TestUser, other_user: TestUser
) -> None:
    org = await create_org(client, user)
    response = await client.post(
        f"{ORGS}/{org['slug']}/members", json={"email": other_user.email}, headers=user.headers
    )
    assert response.status_code == 201, response.text
    assert response.json()["role"] == "member"


async def test_adding_an_unknown_email_is_404(client: httpx.AsyncClient, user: TestUser) -> None:
    org = await create_org(client, user)
    response = await client.post(
        f"{ORGS}/{org['slug']}/members",
        json={"email": "nobody-here@example.com", "role": "member"},
        headers=user.headers,
    )
    assert_error(response, 404, "not_found")


async def test_adding_someone_who_is_already_a_member_is_409(
    client: httpx.AsyncClient, team: Team
) -> None:
    for who, role in ((team.viewer, "admin"), (team.viewer, "viewer"), (team.owner, "member")):
        response = await client.post(
            f"{ORGS}/{team.slug}/members",
            json={"email": who.email, "role": role},
            headers=team.owner.headers,
        )
        assert_error(response, 409, "conflict")
    listed = (await client.get(f"{ORGS}/{team.slug}/members", headers=team.owner.headers)).json()
    roles = {m["user_id"]: m["role"] for m in listed["data"]}
    assert roles[team.viewer.user_id] == "viewer"
    assert roles[team.owner.user_id] == "owner"


@pytest.mark.parametrize(
    "body",
    [
        {"email": "a@example.com", "role": "god"},
        {"email": "not-an-email", "role": "member"},
        {"role": "member"},
    ],
)
async def test_a_bad_member_body_is_400(
    client: httpx.AsyncClient, team: Team, body: dict[str, str]
) -> None:
    response = await client.post(
        f"{ORGS}/{team.slug}/members", json=body, headers=team.owner.headers
    )
    assert_error(response, 400, "validation.invalid")


@pytest.mark.parametrize("role", ["admin", "member", "viewer"])
async def test_every_member_may_list_the_members(
    client: httpx.AsyncClient, team: Team, role: str
) -> None:
    who: TestUser = getattr(team, role)
    response = await client.get(f"{ORGS}/{team.slug}/members", headers=who.headers)
    assert response.status_code == 200, response.text
    assert [(m["email"], m["role"]) for m in response.json()["data"]] == [
        (team.owner.email, "owner"),
        (team.admin.email, "admin"),
        (team.member.email, "member"),
        (team.viewer.email, "viewer"),
    ]


@pytest.mark.parametrize("role", ["admin", "member", "viewer"])
async def test_only_the_owner_adds_or_removes_members(
    client: httpx.AsyncClient, team: Team, role: str
) -> None:
    who: TestUser = getattr(team, role)
    newcomer = await new_user(client)
    added = await client.post(
        f"{ORGS}/{team.slug}/members",
        json={"email": newcomer.email, "role": "viewer"},
        headers=who.headers,
    )
    assert_error(added, 403, "auth.forbidden")
    removed = await client.delete(
        f"{ORGS}/{team.slug}/members/{team.viewer.user_id}", headers=who.headers
    )
    assert_error(removed, 403, "auth.forbidden")
    listed = (await client.get(f"{ORGS}/{team.slug}/members", headers=who.headers)).json()
    assert len(listed["data"]) == 4
    assert newcomer.user_id not in str(listed)


async def test_an_org_the_caller_is_not_in_is_404_on_every_member_route(
    client: httpx.AsyncClient, team: Team, other_user: TestUser
) -> None:
    for slug in (team.slug, new_slug("never-made")):
        calls = [
            client.get(f"{ORGS}/{slug}/members", headers=other_user.headers),
            client.post(
                f"{ORGS}/{slug}/members",
                json={"email": other_user.email, "role": "owner"},
                headers=other_user.headers,
            ),
            client.delete(
                f"{ORGS}/{slug}/members/{team.owner.user_id}", headers=other_user.headers
            ),
        ]
        for call in calls:
            error = assert_error(await call, 404, "not_found")
            assert team.owner.email not in error["message"]
    listed = (await client.get(f"{ORGS}/{team.slug}/members", headers=team.owner.headers)).json()
    assert len(listed["data"]) == 4


async def test_the_owner_removes_a_member_who_then_cannot_act_in_the_org(
    client: httpx.AsyncClient, team: Team
) -> None:
    response = await client.delete(
        f"{ORGS}/{team.slug}/members/{team.member.user_id}", headers=team.owner.headers
    )
    assert response.status_code == 204, response.text
    assert response.content == b""

    listed = (await client.get(f"{ORGS}/{team.slug}/members", headers=team.owner.headers)).json()
    assert team.member.user_id not in [m["user_id"] for m in listed["data"]]
    theirs = (await client.get(ORGS, headers=team.member.headers)).json()["data"]
    assert team.org["id"] not in [o["id"] for o in theirs]
    acting = await client.get("/api/v1/media", headers=team.as_(team.member))
    assert_error(acting, 404, "not_found")
    again = await client.delete(
        f"{ORGS}/{team.slug}/members/{team.member.user_id}", headers=team.owner.headers
    )
    assert_error(again, 404, "not_found")


async def test_removing_a_member_revokes_their_api_keys_in_that_org(
    client: httpx.AsyncClient, team: Team
) -> None:
    created = await client.post(
        "/api/v1/api-keys", json={"name": "bot", "role": "admin"}, headers=team.as_(team.admin)
    )
    assert created.status_code == 201, created.text
    key = {"X-API-Key": created.json()["key"]}
    assert (await client.get("/api/v1/media", headers=key)).status_code == 200
    own = await client.post("/api/v1/api-keys", json={"name": "own"}, headers=team.admin.headers)

    removed = await client.delete(
        f"{ORGS}/{team.slug}/members/{team.admin.user_id}", headers=team.owner.headers
    )
    assert removed.status_code == 204
    assert_error(await client.get("/api/v1/media", headers=key), 401, "auth.unauthorized")
    # Coming back does not bring the old key back.
    await add_member(client, team.owner, team.slug, team.admin, "admin")
    assert_error(await client.get("/api/v1/media", headers=key), 401, "auth.unauthorized")
    # Keys of the user's other orgs are untouched.
    still = await client.get("/api/v1/media", headers={"X-API-Key": own.json()["key"]})
    assert still.status_code == 200


async def test_removing_an_unknown_user_is_404(client: httpx.AsyncClient, team: Team) -> None:
    response = await client.delete(
        f"{ORGS}/{team.slug}/members/usr_01aaaaaaaaaaaaaaaaaaaaaaaa", headers=team.owner.headers
    )
    assert_error(response, 404, "not_found")


async def test_the_last_owner_cannot_be_removed(client: httpx.AsyncClient, team: Team) -> None:
    alone = await client.delete(
        f"{ORGS}/{team.slug}/members/{team.owner.user_id}", headers=team.owner.headers
    )
    assert_error(alone, 409, "conflict")

    second = await new_user(client)
    await add_member(client, team.owner, team.slug, second, "owner")
    leaves = await client.delete(
        f"{ORGS}/{team.slug}/members/{team.owner.user_id}", headers=team.owner.headers
    )
    assert leaves.status_code == 204, leaves.text
    last = await client.delete(
        f"{ORGS}/{team.slug}/members/{second.user_id}", headers=second.headers
    )
    assert_error(last, 409, "conflict")
    listed = (await client.get(f"{ORGS}/{team.slug}/members", headers=second.headers)).json()
    assert [m["role"] for m in listed["data"] if m["role"] == "owner"] == ["owner"]


async def test_a_personal_orgs_only_owner_cannot_be_removed(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    response = await client.delete(
        f"{ORGS}/{user.org_slug}/members/{user.user_id}", headers=user.headers
    )
    assert_error(response, 409, "conflict")


async def test_the_path_names_the_org_whatever_x_org_says(
    client: httpx.AsyncClient, team: Team
) -> None:
    # The owner acts in their personal org by X-Org, yet manages the team named in the path.
    newcomer = await new_user(client)
    response = await client.post(
        f"{ORGS}/{team.slug}/members",
        json={"email": newcomer.email, "role": "viewer"},
        headers=team.owner.headers | {"X-Org": team.owner.org_slug},
    )
    assert response.status_code == 201, response.text
    # The viewer acts in the team by X-Org; in their own personal org they are owner.
    own = await client.post(
        f"{ORGS}/{team.viewer.org_slug}/members",
        json={"email": newcomer.email, "role": "viewer"},
        headers=team.as_(team.viewer),
    )
    assert own.status_code == 201, own.text
    # ... and the team, where they are a viewer, stays closed to them whatever X-Org says.
    refused = await client.delete(
        f"{ORGS}/{team.slug}/members/{newcomer.user_id}",
        headers=team.viewer.headers | {"X-Org": team.viewer.org_slug},
    )
    assert_error(refused, 403, "auth.forbidden")


async def test_the_org_id_works_in_the_path_like_the_slug(
    client: httpx.AsyncClient, team: Team
) -> None:
    response = await client.get(f"{ORGS}/{team.org['id']}/members", headers=team.viewer.headers)
    assert response.status_code == 200, response.text
    assert len(response.json()["data"]) == 4


async def test_an_api_key_manages_members_only_of_its_own_org(
    client: httpx.AsyncClient, team: Team
) -> None:
    owner_key = await client.post(
        "/api/v1/api-keys", json={"name": "ops", "role": "owner"}, headers=team.as_(team.owner)
    )
    key = {"X-API-Key": owner_key.json()["key"]}
    newcomer = await new_user(client)
    added = await client.post(
        f"{ORGS}/{team.slug}/members",
        json={"email": newcomer.email, "role": "viewer"},
        headers=key,
    )
    assert added.status_code == 201, added.text
    elsewhere = await client.get(f"{ORGS}/{team.owner.org_slug}/members", headers=key)
    assert_error(elsewhere, 404, "not_found")

    admin_key = await client.post(
        "/api/v1/api-keys", json={"name": "ops", "role": "admin"}, headers=team.as_(team.owner)
    )
    capped = await client.delete(
        f"{ORGS}/{team.slug}/members/{newcomer.user_id}",
        headers={"X-API-Key": admin_key.json()["key"]},
    )
    assert_error(capped, 403, "auth.forbidden")


async def test_members_are_listed_in_pages(client: httpx.AsyncClient, team: Team) -> None:
    url = f"{ORGS}/{team.slug}/members"
    first = (await client.get(url, params={"limit": 3}, headers=team.viewer.headers)).json()
    assert [m["user_id"] for m in first["data"]] == [
        team.owner.user_id,
        team.admin.user_id,
        team.member.user_id,
    ]
    second = (
        await client.get(
            url,
            params={"limit": 3, "cursor": first["next_cursor"], "include_total": "true"},
            headers=team.viewer.headers,
        )
    ).json()
    assert [m["user_id"] for m in second["data"]] == [team.viewer.user_id]
    assert second["next_cursor"] is None
    assert second["total"] == 4


async def test_member_routes_without_credentials_are_401(
    client: httpx.AsyncClient, team: Team
) -> None:
    assert_error(await client.get(f"{ORGS}/{team.slug}/members"), 401, "auth.unauthorized")
    assert_error(
        await client.delete(f"{ORGS}/{team.slug}/members/{team.viewer.user_id}"),
        401,
        "auth.unauthorized",
    )


async def test_two_owners_removing_each_other_at_once_leave_one_owner(
    client: httpx.AsyncClient, team: Team
) -> None:
    second = await new_user(client)
    await add_member(client, team.owner, team.slug, second, "owner")
    results = await asyncio.gather(
        client.delete(f"{ORGS}/{team.slug}/members/{second.user_id}", headers=team.owner.headers),
        client.delete(f"{ORGS}/{team.slug}/members/{team.owner.user_id}", headers=second.headers),
    )
    statuses = sorted(r.status_code for r in results)
    # The loser finds itself removed (404) or the other as the last owner (409).
    assert statuses[0] == 204, [r.text for r in results]
    assert statuses[1] in (404, 409), [r.text for r in results]
    survivor = team.owner if results[0].status_code == 204 else second
    listed = (await client.get(f"{ORGS}/{team.slug}/members", headers=survivor.headers)).json()
    assert [m["user_id"] for m in listed["data"] if m["role"] == "owner"] == [survivor.user_id]
