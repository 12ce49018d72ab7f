"""Helpers shared by the org tests: shared orgs with members of every role."""

import os
from dataclasses import dataclass
from typing import Any

import httpx

from tests.factories import TestUser, new_user

ORGS = "/api/v1/orgs"


def new_slug(stem: str = "team") -> str:
    return f"{stem}-{os.urandom(5).hex()}"


async def create_org(
    client: httpx.AsyncClient, owner: TestUser, slug: str | None = None, name: str = "The Team"
) -> dict[str, Any]:
    response = await client.post(
        ORGS, json={"slug": slug or new_slug(), "name": name}, headers=owner.headers
    )
    assert response.status_code == 201, response.text
    org: dict[str, Any] = response.json()
    return org


async def add_member(
    client: httpx.AsyncClient, owner: TestUser, slug: str, who: TestUser, role: str
) -> dict[str, Any]:
    response = await client.post(
        f"{ORGS}/{slug}/members", json={"email": who.email, "role": role}, headers=owner.headers
    )
    assert response.status_code == 201, response.text
    member: dict[str, Any] = response.json()
    return member


@dataclass
class Team:
    """A shared org whose owner added one user of each other role."""

    org: dict[str, Any]
    owner: TestUser
    admin: TestUser
    member: TestUser
    viewer: TestUser

    @property
    def slug(self) -> str:
        return str(self.org["slug"])

    def as_(self, who: TestUser) -> dict[str, str]:
        """Headers acting as `who` in the shared org."""
        return who.headers | {"X-Org": self.slug}


async def new_team(client: httpx.AsyncClient) -> Team:
    owner = await new_user(client, name="Olive Owner")
    org = await create_org(client, owner)
    team = Team(
        org=org,
        owner=owner,
        admin=await new_user(client, name="Adam Admin"),
        member=await new_user(client, name="Mia Member"),
        viewer=await new_user(client, name="Vic Viewer"),
    )
    for role in ("admin", "member", "viewer"):
        await add_member(client, owner, team.slug, getattr(team, role), role)
    return team
