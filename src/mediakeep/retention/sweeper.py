"""The retention sweep (MEDIA_RETENTION_DAYS): the scope of its units of work, one per batch."""

from datetime import timedelta

import structlog

from mediakeep.kit.time import now
from mediakeep.retention.service import BATCH_SIZE, delete_expired_batch
from mediakeep.services import Services

log = structlog.get_logger(__name__)


async def delete_expired_media(
    services: Services, *, retention_days: int | None = None, batch_size: int = BATCH_SIZE
) -> int:
    """Delete every media created more than `retention_days` (default MEDIA_RETENTION_DAYS;
    0 = keep forever) days ago; returns how many.

    Batches of `batch_size`, each its own unit of work, oldest first: a crash loses at most
    the batch in flight, and the next run resumes from `created_at` alone.
    """
    days = services.settings.retention_days if retention_days is None else retention_days
    if days <= 0:
        return 0
    cutoff = now() - timedelta(days=days)
    removed = 0
    while True:
        async with services.db.write_session() as session:
            deleted = await delete_expired_batch(services, session, cutoff, batch_size)
        removed += deleted
        if deleted < batch_size:
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
