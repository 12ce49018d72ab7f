"""/users/me, and how a request's credentials and org choice become a principal."""

import httpx

from tests.auth.support import assert_error, bearer
from tests.factories import TestUser


async def test_me_returns_the_user_and_their_orgs(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    response = await client.get("/api/v1/users/me", headers=user.headers)
    assert response.status_code == 200, response.text
    me = response.json()
    assert me["id"] == user.user_id
    assert me["email"] == user.email
    assert me["name"] == "Test User"
    assert me["default_org_id"] == user.org_id
    assert me["orgs"] == [
        {"id": user.org_id, "slug": user.org_slug, "name": "Test User", "role": "owner"}
    ]


async def test_patch_me_changes_only_the_given_fields(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    renamed = await client.patch("/api/v1/users/me", headers=user.headers, json={"name": "Neo"})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "Neo"
    untouched = await client.patch("/api/v1/users/me", headers=user.headers, json={})
    assert untouched.json()["name"] == "Neo"
    cleared = await client.patch("/api/v1/users/me", headers=user.headers, json={"name": None})
    assert cleared.json()["name"] is None


async def test_password_change_takes_effect_for_login(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    new_password = "a much better passphrase"
    other_device = await client.post(
        "/api/v1/auth/login", json={"email": user.email, "password": user.password}
    )
    changed = await client.patch(
        "/api/v1/users/me",
        headers=user.headers,
        json={"password": new_password, "current_password": user.password},
    )
    assert changed.status_code == 200, changed.text
    old = await client.post(
        "/api/v1/auth/login", json={"email": user.email, "password": user.password}
    )
    assert_error(old, 401, "auth.unauthorized")
    new = await client.post(
        "/api/v1/auth/login", json={"email": user.email, "password": new_password}
    )
    assert new.status_code == 200, new.text
    # Every other session opened with the old password is over (API.md); this one goes on.
    stale = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": other_device.json()["refresh_token"]}
    )
    assert_error(stale, 401, "auth.unauthorized")
    assert (await client.get("/api/v1/users/me", headers=user.headers)).status_code == 200


async def test_patch_me_refuses_a_short_password(client: httpx.AsyncClient, user: TestUser) -> None:
    response = await client.patch(
        "/api/v1/users/me", headers=user.headers, json={"password": "short"}
    )
    error = assert_error(response, 400, "validation.invalid")
    assert [d["field"] for d in error["details"]] == ["password"]


async def test_no_credentials_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/users/me")
    assert_error(response, 401, "auth.unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"


async def test_garbage_bearer_is_401(client: httpx.AsyncClient) -> None:
    for header in ("Bearer garbage", "Bearer a.b.c", "Basic dXNlcjpwYXNz", "Bearer", "token"):
        response = await client.get("/api/v1/users/me", headers={"Authorization": header})
        assert_error(response, 401, "auth.unauthorized")


async def test_the_refresh_token_is_not_an_access_token(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    response = await client.get("/api/v1/users/me", headers=bearer(user.refresh_token))
    assert_error(response, 401, "auth.unauthorized")


async def test_own_org_can_be_named_by_slug_or_id(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    for headers, params in (
        ({"X-Org": user.org_slug}, {}),
        ({"X-Org": user.org_id}, {}),
        ({}, {"org": user.org_slug}),
    ):
        response = await client.get(
            "/api/v1/users/me", headers=user.headers | headers, params=params
        )
        assert response.status_code == 200, response.text
        assert response.json()["id"] == user.user_id


async def test_an_org_the_user_is_not_in_is_404(
    client: httpx.AsyncClient, user: TestUser, other_user: TestUser
) -> None:
    for headers, params in (
        ({"X-Org": other_user.org_slug}, {}),
        ({"X-Org": other_user.org_id}, {}),
        ({}, {"org": other_user.org_slug}),
        ({"X-Org": "no-such-org-anywhere"}, {}),
    ):
        response = await client.get(
            "/api/v1/users/me", headers=user.headers | headers, params=params
        )
        error = assert_error(response, 404, "not_found")
        named = headers.get("X-Org") or params["org"]
        assert named in error["message"]
