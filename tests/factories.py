"""Builders for test principals, through the public API (no back doors into the DB)."""

import itertools
import os
from dataclasses import dataclass

import httpx

_counter = itertools.count()


@dataclass
class TestUser:
    __test__ = False  # not a test class, despite the name

    email: str
    password: str
    user_id: str
    org_id: str
    org_slug: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


async def new_user(client: httpx.AsyncClient, name: str = "Test User") -> TestUser:
    email = f"user{next(_counter)}-{os.getpid()}-{os.urandom(3).hex()}@example.com"
    password = "correct horse battery staple"
    registered = await client.post(
        "/api/v1/auth/register", json={"email": email, "password": password, "name": name}
    )
    assert registered.status_code == 201, registered.text
    tokens = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    me = await client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert me.status_code == 200, me.text
    profile = me.json()
    personal = next(org for org in profile["orgs"] if org["id"] == profile["default_org_id"])
    return TestUser(
        email=email,
        password=password,
        user_id=profile["id"],
        org_id=personal["id"],
        org_slug=personal["slug"],
        access_token=body["access_token"],
        refresh_token=body["refresh_token"],
    )
