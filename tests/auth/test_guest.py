"""POST /auth/guest-login: off by default (404); with AUTH_GUEST_ENABLED a throwaway user."""

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from mediakeep.app import create_app
from mediakeep.migrate import upgrade_async
from mediakeep.models.identity import Membership, Org, User
from tests.auth.support import assert_error, bearer
from tests.conftest import make_settings

GUEST_LOGIN = "/api/v1/auth/guest-login"


@pytest.fixture(scope="module")
async def guest_app(
    backend: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> AsyncIterator[FastAPI]:
    settings = make_settings(
        backend, tmp_path_factory.mktemp(f"guest-{backend}"), request, auth_guest_enabled=True
    )
    await upgrade_async(settings)
    app = create_app(settings, run_background=False)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def guest_client(guest_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=guest_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def test_guest_login_is_off_by_default(app: FastAPI, client: httpx.AsyncClient) -> None:
    assert app.state.services.settings.auth_guest_enabled is False
    assert_error(await client.post(GUEST_LOGIN), 404, "not_found")


async def test_guest_login_is_documented(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    operation = document["paths"][GUEST_LOGIN]["post"]
    assert operation["operationId"] == "auth_guest_login"
    assert "404" in operation["responses"]


async def test_guest_login_gives_working_tokens_of_a_new_guest(
    guest_app: FastAPI, guest_client: httpx.AsyncClient
) -> None:
    response = await guest_client.post(GUEST_LOGIN)
    assert response.status_code == 200, response.text
    pair = response.json()
    assert set(pair) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert pair["token_type"] == "Bearer"
    assert pair["expires_in"] == 15 * 60

    me = await guest_client.get("/api/v1/users/me", headers=bearer(pair["access_token"]))
    assert me.status_code == 200, me.text
    profile = me.json()
    assert profile["email"].endswith("@guest.invalid")
    assert [org["role"] for org in profile["orgs"]] == ["owner"]
    assert profile["orgs"][0]["id"] == profile["default_org_id"]

    async with guest_app.state.services.db.read_session() as session:
        user = await session.get(User, profile["id"])
        assert user is not None
        assert user.is_guest
        assert user.password_hash is None
        assert user.external_subject is None
        org = await session.get(Org, profile["default_org_id"])
        assert org is not None
        assert org.is_personal
        members = (
            await session.execute(select(Membership.user_id).where(Membership.org_id == org.id))
        ).scalars().all()
    assert members == [profile["id"]]

    # The guest can refresh like anyone, and works in its own org.
    rotated = await guest_client.post(
        "/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
    )
    assert rotated.status_code == 200, rotated.text
    key = await guest_client.post(
        "/api/v1/api-keys", json={"name": "guest key"}, headers=bearer(pair["access_token"])
    )
    assert key.status_code == 201, key.text


async def test_every_guest_login_is_a_new_user_in_a_new_org(
    guest_client: httpx.AsyncClient,
) -> None:
    profiles = []
    for _ in range(3):
        pair = (await guest_client.post(GUEST_LOGIN)).json()
        me = await guest_client.get("/api/v1/users/me", headers=bearer(pair["access_token"]))
        profiles.append(me.json())
    assert len({p["id"] for p in profiles}) == 3
    assert len({p["default_org_id"] for p in profiles}) == 3
    assert len({p["email"] for p in profiles}) == 3


async def test_a_guest_cannot_sign_in_with_a_password(guest_client: httpx.AsyncClient) -> None:
    pair = (await guest_client.post(GUEST_LOGIN)).json()
    email = (
        await guest_client.get("/api/v1/users/me", headers=bearer(pair["access_token"]))
    ).json()["email"]
    for password in ("", "x" * 8, "guest", "None"):
        response = await guest_client.post(
            "/api/v1/auth/login", json={"email": email, "password": password or "?"}
        )
        assert_error(response, 401, "auth.unauthorized")
