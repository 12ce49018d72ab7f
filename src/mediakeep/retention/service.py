"""MEDIA_RETENTION_DAYS: media older than that are deleted exactly as a user's DELETE does."""

from datetime import timedelta

import structlog

from mediakeep.auth.principal import Principal
from mediakeep.kit.time import now
from mediakeep.media import service as media_service
from mediakeep.retention.repository import RetentionRepository
from mediakeep.services import Services

log = structlog.get_logger(__name__)

BATCH_SIZE = 100
SYSTEM_USER = "system:retention"


def _acting_in(org_id: str) -> Principal:
    """The retention sweep acts in each org as the system, with the rights of its owner."""
    return Principal(user_id=SYSTEM_USER, org_id=org_id, org_slug="", role="owner", via="local")


async def delete_expired_media(
    services: Services, *, retention_days: int | None = None, batch_size: int = BATCH_SIZE
) -> int:
    """Delete every media created more than `retention_days` (default MEDIA_RETENTION_DAYS;
    0 = keep forever) days ago; returns how many.

    Batches of `batch_size`, each its own transaction, oldest first: a crash loses at most the
    batch in flight, and the next run resumes from `created_at` alone. Rows, variants and
    memberships go in the transaction; objects are deleted after it commits (what a failed
    object delete leaves, the orphan sweep removes).
    """
    days = services.settings.retention_days if retention_days is None else retention_days
    if days <= 0:
        return 0
    cutoff = now() - timedelta(days=days)
    removed = 0
    while True:
        async with services.db.write_session() as session:
            batch = await RetentionRepository(session).expired(cutoff, batch_size)
            for org_id, media_id in batch:
                # media_service.delete publishes media.deleted, as for a user's DELETE.
                await media_service.delete(services, session, _acting_in(org_id), media_id)
        removed += len(batch)
        if len(batch) < batch_size:
            break
    if removed:
        log.info("retention", deleted=removed, older_than_days=days)
    return removed


async def run_retention(services: Services) -> None:
    """One retention pass for the background sweeper; a failure is logged, never raised, so
    the sweeper keeps running and the next pass resumes where this one stopped."""
    try:
        await delete_expired_media(services)
    except Exception:
        log.exception("retention sweep failed")
