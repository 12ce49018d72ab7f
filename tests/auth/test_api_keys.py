"""API keys: shown once, stored hashed, scoped to one org and role, revocable, expiring."""

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select, update

from mediakeep.auth.security import API_KEY_PREFIX, sha256_hex
from mediakeep.models.base import utcnow
from mediakeep.models.identity import ApiKey
from tests.auth.support import assert_error, execute
from tests.factories import TestUser

ULID = r"[0-9a-hjkmnp-tv-z]{26}"


async def _create(
    client: httpx.AsyncClient, headers: dict[str, str], **body: Any
) -> dict[str, Any]:
    response = await client.post("/api/v1/api-keys", headers=headers, json={"name": "ci"} | body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_create_shows_the_key_once(client: httpx.AsyncClient, user: TestUser) -> None:
    response = await client.post(
        "/api/v1/api-keys", headers=user.headers, json={"name": "deploy bot"}
    )
    assert response.status_code == 201, response.text
    key = response.json()
    assert set(key) == {
        "id", "name", "key", "prefix", "role", "org_id", "created_at", "expires_at", "last_used_at"
    }
    assert re.fullmatch(f"key_{ULID}", key["id"])
    assert key["name"] == "deploy bot"
    assert key["key"].startswith(API_KEY_PREFIX)
    assert len(key["key"]) > 40
    assert key["prefix"] == key["key"][:10]
    assert key["role"] == "member"
    assert key["org_id"] == user.org_id
    assert key["created_at"].endswith("Z")
    assert key["expires_at"] is None
    assert key["last_used_at"] is None


async def test_list_never_shows_the_key(client: httpx.AsyncClient, user: TestUser) -> None:
    created = await _create(client, user.headers)
    response = await client.get("/api/v1/api-keys", headers=user.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["next_cursor"] is None
    [listed] = body["data"]
    assert listed["id"] == created["id"]
    assert listed["prefix"] == created["prefix"]
    assert "key" not in listed
    assert created["key"] not in response.text


async def test_keys_are_stored_only_hashed(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    created = await _create(client, user.headers)
    async with app.state.services.db.read_session() as session:
        row = (
            await session.execute(select(ApiKey).where(ApiKey.id == created["id"]))
        ).scalar_one()
    assert row.key_hash == sha256_hex(created["key"])


async def test_an_api_key_authenticates_as_its_user(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    created = await _create(client, user.headers)
    response = await client.get("/api/v1/users/me", headers={"X-API-Key": created["key"]})
    assert response.status_code == 200, response.text
    assert response.json()["id"] == user.user_id
    listed = await client.get("/api/v1/api-keys", headers=user.headers)
    assert listed.json()["data"][0]["last_used_at"] is not None


async def test_the_first_use_of_a_key_on_a_write_route_is_recorded(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    """On SQLite a write request holds the only write lock from its first statement (the key
    lookup): its last use is recorded in the request's own unit of work, never by a second
    writer that would wait on that lock until it gave up."""
    created = await _create(client, user.headers)
    response = await client.patch(
        "/api/v1/users/me", headers={"X-API-Key": created["key"]}, json={"name": "Keyed"}
    )
    assert response.status_code == 200, response.text
    listed = await client.get("/api/v1/api-keys", headers=user.headers)
    assert listed.json()["data"][0]["last_used_at"] is not None


async def test_an_api_key_also_works_as_a_bearer_token(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    created = await _create(client, user.headers)
    response = await client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {created['key']}"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["id"] == user.user_id


async def test_a_wrong_api_key_is_401(client: httpx.AsyncClient, user: TestUser) -> None:
    created = await _create(client, user.headers)
    for wrong in (created["key"] + "x", created["key"][len(API_KEY_PREFIX):], "garbage"):
        response = await client.get("/api/v1/users/me", headers={"X-API-Key": wrong})
        assert_error(response, 401, "auth.unauthorized")


async def test_a_revoked_key_is_401(client: httpx.AsyncClient, user: TestUser) -> None:
    created = await _create(client, user.headers)
    deleted = await client.delete(f"/api/v1/api-keys/{created['id']}", headers=user.headers)
    assert deleted.status_code == 204
    response = await client.get("/api/v1/users/me", headers={"X-API-Key": created["key"]})
    assert_error(response, 401, "auth.unauthorized")
    listed = await client.get("/api/v1/api-keys", headers=user.headers)
    assert listed.json()["data"] == []
    again = await client.delete(f"/api/v1/api-keys/{created['id']}", headers=user.headers)
    assert again.status_code == 204


async def test_an_expired_key_is_401(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    created = await _create(client, user.headers, expires_at=soon)
    assert created["expires_at"].endswith("Z")
    ok = await client.get("/api/v1/users/me", headers={"X-API-Key": created["key"]})
    assert ok.status_code == 200
    await execute(
        app,
        update(ApiKey)
        .where(ApiKey.id == created["id"])
        .values(expires_at=utcnow() - timedelta(seconds=1)),
    )
    response = await client.get("/api/v1/users/me", headers={"X-API-Key": created["key"]})
    assert_error(response, 401, "auth.unauthorized")


async def test_a_key_cannot_be_created_already_expired(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    response = await client.post(
        "/api/v1/api-keys",
        headers=user.headers,
        json={"name": "late", "expires_at": "2001-01-01T00:00:00Z"},
    )
    error = assert_error(response, 400, "validation.invalid")
    assert error["details"][0]["field"] == "expires_at"


async def test_another_orgs_key_is_404(
    client: httpx.AsyncClient, user: TestUser, other_user: TestUser
) -> None:
    theirs = await _create(client, other_user.headers)
    response = await client.delete(f"/api/v1/api-keys/{theirs['id']}", headers=user.headers)
    assert_error(response, 404, "not_found")
    still = await client.get("/api/v1/users/me", headers={"X-API-Key": theirs["key"]})
    assert still.status_code == 200
    mine = await client.get("/api/v1/api-keys", headers=user.headers)
    assert mine.json()["data"] == []


async def test_unknown_key_id_is_404(client: httpx.AsyncClient, user: TestUser) -> None:
    response = await client.delete(
        "/api/v1/api-keys/key_01hqr8v9k2x3f4g5h6j7k8m9n0", headers=user.headers
    )
    assert_error(response, 404, "not_found")


async def test_a_key_acts_only_in_its_own_org(
    client: httpx.AsyncClient, user: TestUser, other_user: TestUser
) -> None:
    created = await _create(client, user.headers)
    own = await client.get(
        "/api/v1/users/me", headers={"X-API-Key": created["key"], "X-Org": user.org_slug}
    )
    assert own.status_code == 200
    other = await client.get(
        "/api/v1/users/me", headers={"X-API-Key": created["key"], "X-Org": other_user.org_slug}
    )
    assert_error(other, 404, "not_found")


async def test_a_key_role_cannot_exceed_the_callers(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    admin_key = await _create(client, user.headers, role="admin")
    as_admin = {"X-API-Key": admin_key["key"]}
    member_key = await _create(client, as_admin, role="member")
    assert member_key["role"] == "member"
    refused = await client.post(
        "/api/v1/api-keys", headers=as_admin, json={"name": "escalate", "role": "owner"}
    )
    assert_error(refused, 403, "auth.forbidden")


async def test_a_member_key_cannot_manage_keys(client: httpx.AsyncClient, user: TestUser) -> None:
    member_key = await _create(client, user.headers, role="member")
    as_member = {"X-API-Key": member_key["key"]}
    assert_error(await client.get("/api/v1/api-keys", headers=as_member), 403, "auth.forbidden")
    assert_error(
        await client.post("/api/v1/api-keys", headers=as_member, json={"name": "x"}),
        403,
        "auth.forbidden",
    )


async def test_an_api_key_cannot_change_the_password(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    owner_key = await _create(client, user.headers, role="owner")
    response = await client.patch(
        "/api/v1/users/me",
        headers={"X-API-Key": owner_key["key"]},
        json={"password": "hijacked password"},
    )
    assert_error(response, 403, "auth.forbidden")


async def test_unknown_role_is_invalid(client: httpx.AsyncClient, user: TestUser) -> None:
    response = await client.post(
        "/api/v1/api-keys", headers=user.headers, json={"name": "x", "role": "god"}
    )
    assert_error(response, 400, "validation.invalid")


async def test_keys_are_listed_newest_first_in_pages(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    ids = [(await _create(client, user.headers, name=f"k{i}"))["id"] for i in range(3)]
    first = (await client.get("/api/v1/api-keys?limit=2", headers=user.headers)).json()
    assert [k["id"] for k in first["data"]] == ids[::-1][:2]
    assert first["next_cursor"]
    page_two = {"limit": 2, "cursor": first["next_cursor"]}
    second = (await client.get("/api/v1/api-keys", headers=user.headers, params=page_two)).json()
    assert [k["id"] for k in second["data"]] == ids[:1]
    assert second["next_cursor"] is None
    bad = await client.get("/api/v1/api-keys?cursor=%%%", headers=user.headers)
    assert_error(bad, 400, "validation.invalid")
