"""publish_after_commit: write the event in the caller's unit of work, run the in-transaction
subscribers (webhooks add their deliveries there, subscribed at start-up by
`mediakeep.bootstrap.wire`), and tell the bus once that unit of work has committed.

Events carry plain data (JSON-able): the publisher never imports the domains that follow them.
"""

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from mediakeep.db import after_commit
from mediakeep.events.bus import Event, bus_of_session, record_to_event
from mediakeep.events.repository import EventRepository
from mediakeep.ids import new_id
from mediakeep.models.base import utcnow
from mediakeep.models.event import EventRecord

EVENT_TYPES = (
    "media.uploaded",
    "media.ready",
    "media.updated",
    "media.deleted",
    "media.quarantined",
    "job.progress",
    "job.completed",
    "job.failed",
    "collection.created",
    "collection.updated",
    "collection.deleted",
    "user.registered",
)
REALTIME_ONLY = frozenset({"job.progress"})

# Runs in the transaction that records an event (not for REALTIME_ONLY types): what it writes
# commits with the event or not at all.
InTransaction = Callable[[AsyncSession, Event], Awaitable[Any]]
_IN_TRANSACTION: list[InTransaction] = []


def subscribe_in_transaction(subscriber: InTransaction) -> None:
    """Have `subscriber(session, event)` run for every recorded event (idempotent)."""
    if subscriber not in _IN_TRANSACTION:
        _IN_TRANSACTION.append(subscriber)


def jsonable(data: Any) -> Any:
    if isinstance(data, BaseModel):
        return data.model_dump(mode="json")
    if isinstance(data, dict):
        return {str(k): jsonable(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [jsonable(v) for v in data]
    if isinstance(data, datetime):
        return data.isoformat().replace("+00:00", "Z")
    return data


async def publish_after_commit(
    session: AsyncSession, type: str, org_id: str, data: Any, *, at: datetime | None = None
) -> Event:
    """Record `type` for `org_id` in this transaction; it is announced only if it commits."""
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type}")
    record = EventRecord(
        id=new_id("evt"), org_id=org_id, type=type, data=jsonable(data), created_at=at or utcnow()
    )
    EventRepository(session).add(record)
    event = record_to_event(record)
    if type not in REALTIME_ONLY:
        for subscriber in _IN_TRANSACTION:
            await subscriber(session, event)

    bus = bus_of_session(session)

    async def announce() -> None:
        if bus is not None:
            await bus.published(event)

    after_commit(session, announce)
    return event
