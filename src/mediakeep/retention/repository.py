"""SQL of the retention sweep: the oldest media of every org past the cutoff."""

from datetime import datetime
from typing import Generic

from sqlalchemy import select

from mediakeep.db import SessionT
from mediakeep.models import Media


class RetentionRepository(Generic[SessionT]):
    def __init__(self, session: SessionT) -> None:
        self.session = session

    async def expired(self, cutoff: datetime, limit: int) -> list[tuple[str, str]]:
        """(org_id, media_id) of up to `limit` media created before `cutoff`, oldest first.

        Across all orgs on purpose: retention is the deployment's rule, not a tenant's. Each
        pair is handed back to the media service, which scopes its own queries by org_id.
        """
        result = await self.session.execute(
            select(Media.org_id, Media.id)
            .where(Media.created_at < cutoff)
            .order_by(Media.created_at, Media.id)
            .limit(limit)
        )
        return [(org_id, media_id) for org_id, media_id in result]
