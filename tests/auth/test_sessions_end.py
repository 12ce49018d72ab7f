"""Access tokens end with their login session at once (API.md: logout, logout-all, password
change, refresh-token reuse), not at their expiry; each case over HTTP on both backends, with
the principal cache warm (the first request of each case fills it)."""

from typing import Any

import httpx

from tests.auth.support import assert_error, bearer
from tests.factories import TestUser

API = "/api/v1"


async def _login(client: httpx.AsyncClient, user: TestUser) -> dict[str, Any]:
    response = await client.post(
        f"{API}/auth/login", json={"email": user.email, "password": user.password}
    )
    assert response.status_code == 200, response.text
    pair: dict[str, Any] = response.json()
    return pair


async def _me(client: httpx.AsyncClient, access_token: str) -> httpx.Response:
    return await client.get(f"{API}/users/me", headers=bearer(access_token))


async def test_logout_ends_that_sessions_access_token_at_once(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    other = await _login(client, user)
    assert (await _me(client, user.access_token)).status_code == 200  # warm
    assert (await _me(client, other["access_token"])).status_code == 200
    out = await client.post(f"{API}/auth/logout", json={"refresh_token": user.refresh_token})
    assert out.status_code == 204, out.text
    assert_error(await _me(client, user.access_token), 401, "auth.unauthorized")
    # Another login of the same user is another session: it goes on.
    assert (await _me(client, other["access_token"])).status_code == 200


async def test_logout_all_ends_every_session_and_access_token(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    other = await _login(client, user)
    assert (await _me(client, other["access_token"])).status_code == 200  # warm
    out = await client.post(f"{API}/auth/logout-all", headers=user.headers)
    assert out.status_code == 204, out.text
    for access in (user.access_token, other["access_token"]):
        assert_error(await _me(client, access), 401, "auth.unauthorized")
    for refresh in (user.refresh_token, other["refresh_token"]):
        refused = await client.post(f"{API}/auth/refresh", json={"refresh_token": refresh})
        assert_error(refused, 401, "auth.unauthorized")
    # The password still works: a new session starts.
    assert (await _me(client, (await _login(client, user))["access_token"])).status_code == 200


async def test_a_password_change_needs_the_current_password(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    for body in (
        {"password": "a brand new passphrase"},
        {"password": "a brand new passphrase", "current_password": "not the password"},
    ):
        refused = await client.patch(f"{API}/users/me", headers=user.headers, json=body)
        assert_error(refused, 403, "auth.forbidden")
    still = await client.post(
        f"{API}/auth/login", json={"email": user.email, "password": user.password}
    )
    assert still.status_code == 200, still.text


async def test_a_password_change_ends_every_other_sessions_access_token_at_once(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    other = await _login(client, user)
    assert (await _me(client, other["access_token"])).status_code == 200  # warm
    changed = await client.patch(
        f"{API}/users/me",
        headers=user.headers,
        json={"password": "a brand new passphrase", "current_password": user.password},
    )
    assert changed.status_code == 200, changed.text
    assert_error(await _me(client, other["access_token"]), 401, "auth.unauthorized")
    assert (await _me(client, user.access_token)).status_code == 200


async def test_reusing_a_refresh_token_ends_the_familys_access_tokens_at_once(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    rotated = await client.post(f"{API}/auth/refresh", json={"refresh_token": user.refresh_token})
    assert rotated.status_code == 200, rotated.text
    fresh = rotated.json()
    assert (await _me(client, fresh["access_token"])).status_code == 200  # warm
    reused = await client.post(f"{API}/auth/refresh", json={"refresh_token": user.refresh_token})
    assert_error(reused, 401, "auth.unauthorized")
    # The reuse revoked the family (committed although the answer was 401) ...
    after = await client.post(f"{API}/auth/refresh", json={"refresh_token": fresh["refresh_token"]})
    assert_error(after, 401, "auth.unauthorized")
    # ... and with it every access token of that login.
    assert_error(await _me(client, fresh["access_token"]), 401, "auth.unauthorized")


async def test_a_viewer_api_key_cannot_change_the_profile(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    for role, allowed in (("viewer", False), ("member", True)):
        created = await client.post(
            f"{API}/api-keys", json={"name": role, "role": role}, headers=user.headers
        )
        assert created.status_code == 201, created.text
        answer = await client.patch(
            f"{API}/users/me",
            headers={"X-Api-Key": created.json()["key"]},
            json={"name": f"renamed by {role}"},
        )
        if allowed:
            assert answer.status_code == 200, answer.text
            assert answer.json()["name"] == f"renamed by {role}"
        else:
            assert_error(answer, 403, "auth.forbidden")
    me = await client.get(f"{API}/users/me", headers=user.headers)
    assert me.json()["name"] == "renamed by member"
