"""State changes publish API.md's events after commit, each shaped {id, type, org_id, data,
timestamp}, and only when their transaction commits."""

import re
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from mediakeep.events.publish import publish_after_commit
from mediakeep.events.service import replay_after
from mediakeep.kit.time import now
from mediakeep.models import Media
from mediakeep.retention.sweeper import delete_expired_media
from mediakeep.services import Services
from tests import mediagen
from tests.events.support import collect
from tests.factories import TestUser, new_user


def services_of(app: FastAPI) -> Services:
    services: Services = app.state.services
    return services


async def upload(client: httpx.AsyncClient, user: TestUser, **fields: str) -> dict[str, object]:
    response = await client.post(
        "/api/v1/media/upload",
        headers=user.headers,
        files={"file": ("e.jpg", mediagen.jpeg(), "image/jpeg")},
        data=fields,
    )
    assert response.status_code in (201, 202), response.text
    body: dict[str, object] = response.json()
    return body


async def test_media_lifecycle_events(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    async with collect(app) as events:
        media = await upload(client, user)
        uploaded = await events.wait_for("media.uploaded", id=media["id"])
        ready = await events.wait_for("media.ready", id=media["id"])
        patched = await client.patch(
            f"/api/v1/media/{media['id']}", headers=user.headers, json={"alt": "a cat"}
        )
        assert patched.status_code == 200
        updated = await events.wait_for("media.updated", id=media["id"])
        deleted_response = await client.delete(f"/api/v1/media/{media['id']}", headers=user.headers)
        assert deleted_response.status_code == 204
        deleted = await events.wait_for("media.deleted", id=media["id"])
    for event in (uploaded, ready, updated, deleted):
        assert set(event) == {"id", "type", "org_id", "data", "timestamp"}
        assert re.fullmatch(r"evt_[0-9a-z]{26}", event["id"])
        assert event["org_id"] == user.org_id
        assert event["timestamp"].endswith("Z")
    assert updated["data"]["alt"] == "a cat"
    assert ready["data"]["status"] == "ready"


async def test_collection_and_registration_events(app: FastAPI, client: httpx.AsyncClient) -> None:
    async with collect(app) as events:
        user = await new_user(client)
        registered = await events.wait_for("user.registered", id=user.user_id)
        assert registered["org_id"] == user.org_id
        assert "password" not in str(registered["data"])
        created = await client.post(
            "/api/v1/collections", headers=user.headers, json={"name": "trips"}
        )
        collection_id = created.json()["id"]
        await events.wait_for("collection.created", id=collection_id)
        await client.patch(
            f"/api/v1/collections/{collection_id}", headers=user.headers, json={"name": "t2"}
        )
        assert (await events.wait_for("collection.updated", id=collection_id))["data"][
            "name"
        ] == "t2"
        await client.delete(f"/api/v1/collections/{collection_id}", headers=user.headers)
        await events.wait_for("collection.deleted", id=collection_id)


async def test_rolled_back_work_publishes_nothing(app: FastAPI, user: TestUser) -> None:
    services = services_of(app)
    async with collect(app) as events:

        async def undone() -> None:
            async with services.db.write_session() as session:
                await publish_after_commit(session, "collection.created", user.org_id, {"id": "x"})
                raise RuntimeError("undo")

        with pytest.raises(RuntimeError):
            await undone()
        async with services.db.write_session() as session:
            kept = await publish_after_commit(
                session, "collection.created", user.org_id, {"id": "kept"}
            )
        got = await events.wait_for("collection.created", id="kept")
        assert got["id"] == kept["id"]
        assert not [e for e in await events.drain(0.3) if e["data"].get("id") == "x"]


async def test_replay_is_per_org(app: FastAPI, user: TestUser, other_user: TestUser) -> None:
    services = services_of(app)
    async with services.db.write_session() as session:
        first = await publish_after_commit(session, "collection.created", user.org_id, {"id": "a"})
    async with services.db.write_session() as session:
        await publish_after_commit(session, "collection.created", other_user.org_id, {"id": "b"})
        await publish_after_commit(session, "collection.created", user.org_id, {"id": "c"})
    async with services.db.read_session() as session:
        mine = await replay_after(session, user.org_id, first["id"])
        theirs = await replay_after(session, other_user.org_id, first["id"])
    assert [e["data"]["id"] for e in mine] == ["c"]
    assert theirs == []  # an event id of another org replays nothing


async def test_retention_publishes_media_deleted(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    services = services_of(app)
    old = await upload(client, user)
    young = await upload(client, user)
    async with services.db.write_session() as session:
        await session.execute(
            update(Media)
            .where(Media.org_id == user.org_id, Media.id == old["id"])
            .values(created_at=now() - timedelta(days=400))
        )
    async with collect(app) as events:
        assert await delete_expired_media(services, retention_days=365) >= 1
        deleted = await events.wait_for("media.deleted", id=old["id"])
        assert deleted["org_id"] == user.org_id
        assert not [
            e
            for e in await events.drain(0.3)
            if e["type"] == "media.deleted" and e["data"]["id"] == young["id"]
        ]
