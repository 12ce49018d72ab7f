"""Roles in a shared org (acted in with X-Org): a viewer reads; a member also uploads, edits
and deletes; an admin also manages API keys; the owner also manages members. Each refusal is
403 `auth.forbidden` and changes nothing."""

import hashlib
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests import mediagen
from tests.auth.support import assert_error
from tests.factories import TestUser, new_user
from tests.media.support import MEDIA, original_exists
from tests.orgs.support import ORGS, Team, new_team


@pytest.fixture
async def team(client: httpx.AsyncClient) -> Team:
    return await new_team(client)


async def _upload(
    client: httpx.AsyncClient, headers: dict[str, str], data: bytes
) -> httpx.Response:
    return await client.post(
        f"{MEDIA}/upload", files={"file": ("team.jpg", data, "image/jpeg")}, headers=headers
    )


@pytest.fixture
async def shared_media(client: httpx.AsyncClient, team: Team) -> dict[str, Any]:
    """A media in the shared org, uploaded by its member."""
    response = await _upload(client, team.as_(team.member), mediagen.jpeg())
    assert response.status_code == 201, response.text
    media: dict[str, Any] = response.json()
    assert media["org_id"] == team.org["id"]
    return media


async def test_a_viewer_reads_the_orgs_media(
    client: httpx.AsyncClient, team: Team, shared_media: dict[str, Any]
) -> None:
    headers = team.as_(team.viewer)
    media_id = shared_media["id"]
    listed = await client.get(MEDIA, headers=headers)
    assert listed.status_code == 200, listed.text
    assert [m["id"] for m in listed.json()["data"]] == [media_id]
    reads = {
        "get": await client.get(f"{MEDIA}/{media_id}", headers=headers),
        "presign": await client.get(f"{MEDIA}/{media_id}/presign", headers=headers),
        "content": await client.get(f"{MEDIA}/{media_id}/content", headers=headers),
        "variants": await client.get(f"{MEDIA}/{media_id}/variants", headers=headers),
        "batch": await client.post(f"{MEDIA}/batch", json={"ids": [media_id]}, headers=headers),
        "resolve": await client.post(f"{MEDIA}/resolve", json={"ids": [media_id]}, headers=headers),
        "usage": await client.get("/api/v1/usage", headers=headers),
        "members": await client.get(f"{ORGS}/{team.slug}/members", headers=headers),
    }
    for name, response in reads.items():
        assert response.status_code == 200, (name, response.text)
    assert hashlib.sha256(reads["content"].content).hexdigest() == shared_media["sha256"]


async def test_a_viewer_may_not_upload_create_edit_or_delete(
    app: FastAPI, client: httpx.AsyncClient, team: Team, shared_media: dict[str, Any]
) -> None:
    headers = team.as_(team.viewer)
    media_id = shared_media["id"]
    png = mediagen.png()
    refusals = {
        "upload": await _upload(client, headers, mediagen.jpeg(40, 40)),
        "create-from-data-url": await client.post(
            MEDIA,
            json={"source": {"type": "data_url", "data_url": mediagen.data_url(png)}},
            headers=headers,
        ),
        "create-from-url": await client.post(
            MEDIA,
            json={"source": {"type": "remote_url", "url": "https://example.com/cat.png"}},
            headers=headers,
        ),
        "patch": await client.patch(
            f"{MEDIA}/{media_id}", json={"alt": "defaced"}, headers=headers
        ),
        "delete": await client.delete(f"{MEDIA}/{media_id}", headers=headers),
    }
    for name, response in refusals.items():
        error = assert_error(response, 403, "auth.forbidden")
        assert "viewer" in error["message"], name

    listed = (await client.get(MEDIA, headers=headers)).json()["data"]
    assert [(m["id"], m["alt"]) for m in listed] == [(media_id, None)]
    assert original_exists(app, team.org["id"], shared_media["sha256"])


async def test_a_member_uploads_edits_and_deletes(
    client: httpx.AsyncClient, team: Team, shared_media: dict[str, Any]
) -> None:
    headers = team.as_(team.member)
    media_id = shared_media["id"]
    patched = await client.patch(f"{MEDIA}/{media_id}", json={"alt": "the team"}, headers=headers)
    assert patched.status_code == 200, patched.text
    assert patched.json()["alt"] == "the team"
    created = await client.post(
        MEDIA,
        json={"source": {"type": "data_url", "data_url": mediagen.data_url(mediagen.png())}},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    assert created.json()["org_id"] == team.org["id"]
    deleted = await client.delete(f"{MEDIA}/{media_id}", headers=headers)
    assert deleted.status_code == 204, deleted.text


async def test_a_member_may_not_manage_api_keys(client: httpx.AsyncClient, team: Team) -> None:
    headers = team.as_(team.member)
    assert_error(
        await client.post("/api/v1/api-keys", json={"name": "mine"}, headers=headers),
        403,
        "auth.forbidden",
    )
    assert_error(await client.get("/api/v1/api-keys", headers=headers), 403, "auth.forbidden")
    # In their own personal org the same user is owner and may.
    own = await client.post("/api/v1/api-keys", json={"name": "mine"}, headers=team.member.headers)
    assert own.status_code == 201, own.text
    assert own.json()["org_id"] == team.member.org_id


async def test_an_admin_manages_api_keys_of_the_org(client: httpx.AsyncClient, team: Team) -> None:
    headers = team.as_(team.admin)
    created = await client.post(
        "/api/v1/api-keys", json={"name": "deploy", "role": "member"}, headers=headers
    )
    assert created.status_code == 201, created.text
    key = created.json()
    assert key["org_id"] == team.org["id"]
    uploaded = await _upload(client, {"X-API-Key": key["key"]}, mediagen.jpeg(33, 21))
    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()["org_id"] == team.org["id"]
    listed = await client.get("/api/v1/api-keys", headers=headers)
    assert [k["id"] for k in listed.json()["data"]] == [key["id"]]
    revoked = await client.delete(f"/api/v1/api-keys/{key['id']}", headers=headers)
    assert revoked.status_code == 204


async def test_an_admin_may_not_add_or_remove_members(
    client: httpx.AsyncClient, team: Team
) -> None:
    newcomer = await new_user(client)
    added = await client.post(
        f"{ORGS}/{team.slug}/members",
        json={"email": newcomer.email, "role": "viewer"},
        headers=team.as_(team.admin),
    )
    assert_error(added, 403, "auth.forbidden")
    removed = await client.delete(
        f"{ORGS}/{team.slug}/members/{team.viewer.user_id}", headers=team.as_(team.admin)
    )
    assert_error(removed, 403, "auth.forbidden")


async def test_the_owner_adds_and_removes_members(client: httpx.AsyncClient, team: Team) -> None:
    newcomer = await new_user(client)
    added = await client.post(
        f"{ORGS}/{team.slug}/members",
        json={"email": newcomer.email, "role": "member"},
        headers=team.as_(team.owner),
    )
    assert added.status_code == 201, added.text
    uploaded = await _upload(client, newcomer.headers | {"X-Org": team.slug}, mediagen.jpeg(20, 20))
    assert uploaded.status_code == 201, uploaded.text
    members = await client.get(f"{ORGS}/{team.slug}/members", headers=team.as_(team.owner))
    assert newcomer.user_id in [m["user_id"] for m in members.json()["data"]]
    removed = await client.delete(
        f"{ORGS}/{team.slug}/members/{newcomer.user_id}", headers=team.as_(team.owner)
    )
    assert removed.status_code == 204
    members = await client.get(f"{ORGS}/{team.slug}/members", headers=team.as_(team.owner))
    assert newcomer.user_id not in [m["user_id"] for m in members.json()["data"]]
    # Out of the org: the newcomer can no longer act in it.
    after = await client.get("/api/v1/media", headers=newcomer.headers | {"X-Org": team.slug})
    assert after.status_code in (403, 404), after.text


@pytest.mark.parametrize(
    ("role", "allowed"),
    [("viewer", False), ("member", True), ("admin", True), ("owner", True)],
)
async def test_uploading_needs_at_least_the_member_role(
    client: httpx.AsyncClient, team: Team, role: str, allowed: bool
) -> None:
    who: TestUser = getattr(team, role)
    response = await _upload(client, team.as_(who), mediagen.jpeg(21, 13 + len(role)))
    if allowed:
        assert response.status_code == 201, response.text
    else:
        assert_error(response, 403, "auth.forbidden")


@pytest.mark.parametrize(
    ("role", "allowed"),
    [("viewer", False), ("member", False), ("admin", True), ("owner", True)],
)
async def test_creating_api_keys_needs_at_least_the_admin_role(
    client: httpx.AsyncClient, team: Team, role: str, allowed: bool
) -> None:
    who: TestUser = getattr(team, role)
    response = await client.post(
        "/api/v1/api-keys", json={"name": "k", "role": "viewer"}, headers=team.as_(who)
    )
    if allowed:
        assert response.status_code == 201, response.text
    else:
        assert_error(response, 403, "auth.forbidden")
