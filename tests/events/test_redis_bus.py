"""Distributed mode: with REDIS_URL the factory picks Redis pub/sub, and an event published by
one process (a worker's publish-only bus) reaches another's subscribers."""

import asyncio
from pathlib import Path

import pytest

from mediakeep.config import Settings
from mediakeep.db import Database
from mediakeep.events.bus import LocalEventBus, RedisEventBus, create_event_bus
from tests.fixtures.services import RedisServer


async def test_factory_and_roundtrip(redis_server: RedisServer, tmp_path: Path) -> None:
    embedded = Settings(data_dir=tmp_path / "a")
    db = Database(embedded)
    try:
        assert isinstance(create_event_bus(embedded, db), LocalEventBus)
    finally:
        await db.dispose()
    settings = Settings(data_dir=tmp_path / "b", redis_url=redis_server.url)
    db = Database(settings)
    listener = create_event_bus(settings, db)
    publisher = create_event_bus(settings, db, listen=False)
    assert isinstance(listener, RedisEventBus)
    await listener.start()
    try:
        async with listener.subscribe() as queue:
            event = {
                "id": "evt_1",
                "type": "job.completed",
                "org_id": "org_x",
                "data": {"id": "job_1"},
                "timestamp": "2026-01-01T00:00:00Z",
            }
            await publisher.published(event)
            async with asyncio.timeout(5):
                assert await queue.get() == event
    finally:
        await publisher.stop()
        await listener.stop()
        await db.dispose()


def test_unknown_event_type_is_refused() -> None:
    from mediakeep.events.publish import EVENT_TYPES

    assert "job.progress" in EVENT_TYPES
    with pytest.raises(ValueError, match="unknown event type"):
        asyncio.run(_publish_unknown())


async def _publish_unknown() -> None:
    from mediakeep.events.publish import publish_after_commit

    await publish_after_commit(None, "media.exploded", "org", {})  # type: ignore[arg-type]
