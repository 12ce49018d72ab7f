"""SQL of the events table: an org's events (SSE replay, publishing) and the system-wide log
the embedded bus tails and the sender prunes."""

from collections.abc import Sequence
from datetime import datetime
from typing import Generic

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mediakeep.db import SessionT
from mediakeep.models import EventRecord
from mediakeep.repository import TenantRepository


class EventRepository(TenantRepository[EventRecord, SessionT]):
    model = EventRecord

    async def seq_of(self, org_id: str, event_id: str) -> int | None:
        seq: int | None = await self.session.scalar(
            select(EventRecord.seq).where(EventRecord.org_id == org_id, EventRecord.id == event_id)
        )
        return seq

    async def after(self, org_id: str, seq: int, limit: int) -> Sequence[EventRecord]:
        """The org's events after sequence number `seq`, oldest first."""
        rows = await self.session.scalars(
            self.select_by_org(org_id, EventRecord.seq > seq).order_by(EventRecord.seq).limit(limit)
        )
        return rows.all()


class EventLog(Generic[SessionT]):
    """The events of every org, system-wide: what the embedded bus tails (it delivers to
    subscribers, which filter by org) and what retention prunes."""

    def __init__(self, session: SessionT) -> None:
        self.session = session

    async def last_seq(self) -> int:
        return int(await self.session.scalar(select(func.max(EventRecord.seq))) or 0)

    async def ids_after(self, seq: int) -> Sequence[str]:
        rows = await self.session.scalars(select(EventRecord.id).where(EventRecord.seq > seq))
        return rows.all()

    async def after(self, seq: int, limit: int) -> Sequence[EventRecord]:
        rows = await self.session.scalars(
            select(EventRecord).where(EventRecord.seq > seq).order_by(EventRecord.seq).limit(limit)
        )
        return rows.all()

    async def prune_before(self: "EventLog[AsyncSession]", cutoff: datetime) -> None:
        await self.session.execute(delete(EventRecord).where(EventRecord.created_at < cutoff))
