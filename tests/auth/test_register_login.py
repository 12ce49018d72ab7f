"""Registration creates a user and a personal org; login accepts JSON and the OAuth2 form."""

import os
import re

import httpx

from tests.auth.support import PASSWORD, assert_error, bearer
from tests.factories import TestUser

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
ULID = r"[0-9a-hjkmnp-tv-z]{26}"


def _email(local: str = "someone") -> str:
    return f"{local}-{os.urandom(4).hex()}@example.com"


async def test_register_returns_the_user_with_a_personal_org(client: httpx.AsyncClient) -> None:
    email = _email("Jane.Doe")
    response = await client.post(
        "/api/v1/auth/register", json={"email": email, "password": PASSWORD, "name": "Jane"}
    )
    assert response.status_code == 201, response.text
    user = response.json()
    assert set(user) == {"id", "email", "name", "created_at", "default_org_id", "orgs"}
    assert re.fullmatch(f"usr_{ULID}", user["id"])
    assert user["email"] == email.lower()
    assert user["name"] == "Jane"
    assert user["created_at"].endswith("Z")
    assert "password" not in response.text
    [org] = user["orgs"]
    assert set(org) == {"id", "slug", "name", "role"}
    assert re.fullmatch(f"org_{ULID}", org["id"])
    assert org["id"] == user["default_org_id"]
    assert org["role"] == "owner"
    assert SLUG.match(org["slug"])
    assert org["slug"].startswith("jane-doe-")


async def test_personal_org_slugs_are_unique_for_the_same_local_part(
    client: httpx.AsyncClient,
) -> None:
    local = f"twin{os.urandom(3).hex()}"
    slugs = []
    for domain in ("a.example.com", "b.example.com", "c.example.com"):
        response = await client.post(
            "/api/v1/auth/register", json={"email": f"{local}@{domain}", "password": PASSWORD}
        )
        assert response.status_code == 201, response.text
        slugs.append(response.json()["orgs"][0]["slug"])
    assert slugs == [local, f"{local}-2", f"{local}-3"]


async def test_odd_local_parts_still_give_a_valid_slug(client: httpx.AsyncClient) -> None:
    for local in ("x", "_", "a+b", "---", "Ünïcode.ñame", "z" * 64):
        email = f"{local}@{os.urandom(4).hex()}.example.com"
        response = await client.post(
            "/api/v1/auth/register", json={"email": email, "password": PASSWORD}
        )
        assert response.status_code == 201, (local, response.text)
        assert SLUG.match(response.json()["orgs"][0]["slug"]), local


async def test_the_local_slug_is_reserved(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/register",
        json={"email": f"local@{os.urandom(4).hex()}.example.com", "password": PASSWORD},
    )
    assert response.status_code == 201, response.text
    assert response.json()["orgs"][0]["slug"] != "local"


async def test_registering_a_taken_email_is_a_conflict(client: httpx.AsyncClient) -> None:
    email = _email()
    first = await client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    assert first.status_code == 201
    again = await client.post(
        "/api/v1/auth/register", json={"email": email.upper(), "password": PASSWORD + "!"}
    )
    assert_error(again, 409, "conflict")


async def test_short_password_is_invalid(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/register", json={"email": _email(), "password": "seven77"}
    )
    error = assert_error(response, 400, "validation.invalid")
    assert [d["field"] for d in error["details"]] == ["password"]


async def test_malformed_email_is_invalid(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/register", json={"email": "not-an-email", "password": PASSWORD}
    )
    error = assert_error(response, 400, "validation.invalid")
    assert [d["field"] for d in error["details"]] == ["email"]


async def test_login_with_json_gives_a_token_pair(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    response = await client.post(
        "/api/v1/auth/login", json={"email": user.email, "password": user.password}
    )
    assert response.status_code == 200, response.text
    tokens = response.json()
    assert set(tokens) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 15 * 60
    me = await client.get("/api/v1/users/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200
    assert me.json()["id"] == user.user_id


async def test_login_email_is_case_insensitive(client: httpx.AsyncClient, user: TestUser) -> None:
    response = await client.post(
        "/api/v1/auth/login", json={"email": user.email.upper(), "password": user.password}
    )
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    me = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["id"] == user.user_id  # the same account, not a new one


async def test_login_with_an_oauth2_password_form(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    response = await client.post(
        "/api/v1/auth/login",
        data={"grant_type": "password", "username": user.email, "password": user.password},
    )
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "Bearer"
    me = await client.get("/api/v1/users/me", headers=bearer(response.json()["access_token"]))
    assert me.json()["id"] == user.user_id


async def test_login_form_without_password_is_invalid(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    response = await client.post("/api/v1/auth/login", data={"username": user.email})
    error = assert_error(response, 400, "validation.invalid")
    assert [d["field"] for d in error["details"]] == ["form.password"]


async def test_login_with_malformed_json_is_invalid(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/login", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert_error(response, 400, "validation.invalid")


async def test_bad_password_and_unknown_email_get_the_same_401(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    wrong = await client.post(
        "/api/v1/auth/login", json={"email": user.email, "password": "wrong password"}
    )
    unknown = await client.post(
        "/api/v1/auth/login", json={"email": _email("nobody"), "password": user.password}
    )
    wrong_error = assert_error(wrong, 401, "auth.unauthorized")
    unknown_error = assert_error(unknown, 401, "auth.unauthorized")
    assert wrong_error["message"] == unknown_error["message"]
    assert wrong_error["details"] == []
    assert wrong.headers["www-authenticate"] == "Bearer"


async def test_the_local_admin_cannot_log_in_without_a_password(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/api/v1/auth/login", json={"email": "admin@localhost", "password": "anything-at-all"}
    )
    assert_error(response, 401, "auth.unauthorized")
