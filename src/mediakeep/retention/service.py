"""MEDIA_RETENTION_DAYS: media older than that are deleted exactly as a user's DELETE does."""

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from mediakeep.auth.principal import Principal
from mediakeep.media import service as media_service
from mediakeep.retention.repository import RetentionRepository
from mediakeep.services import Services

BATCH_SIZE = 100
SYSTEM_USER = "system:retention"


def _acting_in(org_id: str) -> Principal:
    """The retention sweep acts in each org as the system, with the rights of its owner."""
    return Principal(user_id=SYSTEM_USER, org_id=org_id, org_slug="", role="owner", via="local")


async def delete_expired_batch(
    services: Services, session: AsyncSession, cutoff: datetime, batch_size: int = BATCH_SIZE
) -> int:
    """Delete up to `batch_size` media created before `cutoff`, oldest first, in the caller's
    unit of work; returns how many. Rows, variants and memberships go in the transaction;
    objects are deleted after it commits (what a failed object delete leaves, the orphan sweep
    removes)."""
    batch = await RetentionRepository(session).expired(cutoff, batch_size)
    for org_id, media_id in batch:
        # media_service.delete publishes media.deleted, as for a user's DELETE.
        await media_service.delete(services, session, _acting_in(org_id), media_id)
    return len(batch)
