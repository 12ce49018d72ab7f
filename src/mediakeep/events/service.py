"""Reading recorded events back (SSE replay) and pruning old ones."""

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from mediakeep.events.bus import Event, record_to_event
from mediakeep.models import EventRecord

REPLAY_LIMIT = 1000


async def replay_after(session: AsyncSession, org_id: str, last_event_id: str) -> list[Event]:
    """The org's events recorded after `last_event_id` (none if it is unknown or expired)."""
    seq = await session.scalar(
        select(EventRecord.seq).where(EventRecord.org_id == org_id, EventRecord.id == last_event_id)
    )
    if seq is None:
        return []
    rows = await session.scalars(
        select(EventRecord)
        .where(EventRecord.org_id == org_id, EventRecord.seq > seq)
        .order_by(EventRecord.seq)
        .limit(REPLAY_LIMIT)
    )
    return [record_to_event(row) for row in rows]


async def prune_before_all_orgs(session: AsyncSession, cutoff: datetime) -> None:
    await session.execute(delete(EventRecord).where(EventRecord.created_at < cutoff))
