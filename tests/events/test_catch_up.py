"""GET /api/v1/events?follow=false: the replay after Last-Event-ID, then the end of the stream."""

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from mediakeep.client._routes import _parse_sse
from mediakeep.models.event import EventRecord
from tests.factories import TestUser
from tests.media.support import upload_ok
from tests.mediagen import jpeg, png


async def _first_event_id(app: FastAPI, org_id: str) -> str:
    async with app.state.services.db.read_session() as session:
        found = await session.scalar(
            select(EventRecord.id).where(EventRecord.org_id == org_id).order_by(EventRecord.seq)
        )
    assert found is not None
    return str(found)


async def test_catch_up_replays_the_org_events_after_the_given_one_and_ends(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser, other_user: TestUser
) -> None:
    first = await upload_ok(client, user, jpeg(20, 10))
    second = await upload_ok(client, user, png(12, 8), part_name="b.png", declared="image/png")
    await upload_ok(client, other_user, jpeg(16, 9))
    after = await _first_event_id(app, user.org_id)

    answer = await client.get(
        "/api/v1/events",
        params={"follow": "false", "types": "media.uploaded"},
        headers={**user.headers, "Last-Event-ID": after},
    )

    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/event-stream")
    events = _parse_sse(answer)
    assert {e["org_id"] for e in events} == {user.org_id}
    uploaded = [e["data"]["id"] for e in events if e["type"] == "media.uploaded"]
    assert second["id"] in uploaded
    assert set(uploaded) <= {first["id"], second["id"]}
