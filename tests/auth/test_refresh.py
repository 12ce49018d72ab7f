"""Refresh tokens rotate; a spent one presented again revokes its whole family."""

from datetime import timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import update

from mediakeep.auth.security import sha256_hex
from mediakeep.models.base import utcnow
from mediakeep.models.identity import RefreshToken
from tests.auth.support import assert_error, bearer, execute
from tests.factories import TestUser


async def _refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/api/v1/auth/refresh", json={"refresh_token": token})


async def _login(client: httpx.AsyncClient, user: TestUser) -> dict[str, str]:
    response = await client.post(
        "/api/v1/auth/login", json={"email": user.email, "password": user.password}
    )
    assert response.status_code == 200, response.text
    tokens: dict[str, str] = response.json()
    return tokens


async def test_refresh_gives_a_new_working_pair(client: httpx.AsyncClient, user: TestUser) -> None:
    response = await _refresh(client, user.refresh_token)
    assert response.status_code == 200, response.text
    pair = response.json()
    assert set(pair) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert pair["token_type"] == "Bearer"
    assert pair["refresh_token"] != user.refresh_token
    me = await client.get("/api/v1/users/me", headers=bearer(pair["access_token"]))
    assert me.status_code == 200
    assert me.json()["id"] == user.user_id


async def test_a_spent_refresh_token_is_refused(client: httpx.AsyncClient, user: TestUser) -> None:
    first = await _refresh(client, user.refresh_token)
    assert first.status_code == 200
    again = await _refresh(client, user.refresh_token)
    assert_error(again, 401, "auth.unauthorized")


async def test_reusing_a_spent_token_revokes_the_whole_family(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    second = (await _refresh(client, user.refresh_token)).json()["refresh_token"]
    third = (await _refresh(client, second)).json()["refresh_token"]
    # An attacker replays the first token: the legitimate holder's newest token dies too.
    assert_error(await _refresh(client, user.refresh_token), 401, "auth.unauthorized")
    assert_error(await _refresh(client, third), 401, "auth.unauthorized")
    assert_error(await _refresh(client, second), 401, "auth.unauthorized")


async def test_reuse_does_not_touch_other_logins(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    other_login = await _login(client, user)
    assert (await _refresh(client, user.refresh_token)).status_code == 200
    assert_error(await _refresh(client, user.refresh_token), 401, "auth.unauthorized")
    assert (await _refresh(client, other_login["refresh_token"])).status_code == 200


async def test_logout_revokes_the_family(client: httpx.AsyncClient, user: TestUser) -> None:
    rotated = (await _refresh(client, user.refresh_token)).json()["refresh_token"]
    response = await client.post("/api/v1/auth/logout", json={"refresh_token": user.refresh_token})
    assert response.status_code == 204
    assert response.content == b""
    assert_error(await _refresh(client, rotated), 401, "auth.unauthorized")


async def test_logout_with_an_unknown_token_is_harmless(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/auth/logout", json={"refresh_token": "mkr_unknown"})
    assert response.status_code == 204


async def test_unknown_or_empty_refresh_token_is_refused(client: httpx.AsyncClient) -> None:
    assert_error(await _refresh(client, "mkr_never-issued"), 401, "auth.unauthorized")
    assert_error(await _refresh(client, ""), 400, "validation.invalid")


async def test_an_expired_refresh_token_is_refused(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    await execute(
        app,
        update(RefreshToken)
        .where(RefreshToken.token_hash == sha256_hex(user.refresh_token))
        .values(expires_at=utcnow() - timedelta(seconds=1)),
    )
    assert_error(await _refresh(client, user.refresh_token), 401, "auth.unauthorized")


async def test_refresh_tokens_are_stored_only_hashed(app: FastAPI, user: TestUser) -> None:
    from sqlalchemy import select

    async with app.state.services.db.read_session() as session:
        rows = (
            await session.execute(select(RefreshToken).where(RefreshToken.user_id == user.user_id))
        ).scalars().all()
    assert rows
    assert all(row.token_hash != user.refresh_token for row in rows)
    assert sha256_hex(user.refresh_token) in {row.token_hash for row in rows}
