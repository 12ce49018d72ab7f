"""Reading recorded events back (SSE replay) and pruning old ones."""

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from mediakeep.db import ReadOnlySession
from mediakeep.events.bus import Event, record_to_event
from mediakeep.events.repository import EventLog, EventRepository

REPLAY_LIMIT = 1000


async def replay_after(session: ReadOnlySession, org_id: str, last_event_id: str) -> list[Event]:
    """The org's events recorded after `last_event_id` (none if it is unknown or expired)."""
    repo = EventRepository(session)
    seq = await repo.seq_of(org_id, last_event_id)
    if seq is None:
        return []
    return [record_to_event(row) for row in await repo.after(org_id, seq, REPLAY_LIMIT)]


async def prune_before_all_orgs(session: AsyncSession, cutoff: datetime) -> None:
    await EventLog(session).prune_before(cutoff)
