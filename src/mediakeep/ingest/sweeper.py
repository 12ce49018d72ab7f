"""The orphan sweep: whatever a crash left half-done is removed once it is older than its TTL."""

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import timedelta

import structlog

from mediakeep.idempotency.service import purge_expired as purge_expired_idempotency_keys
from mediakeep.kit.time import now
from mediakeep.media.repository import MediaRepository
from mediakeep.services import Services
from mediakeep.storage.base import StorageUnavailable

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class SweepReport:
    incomplete: int
    unreferenced_originals: int


async def sweep_once(services: Services, max_age: timedelta | None = None) -> SweepReport:
    """Remove spool/incoming files, unfinished multipart uploads and originals no row points to,
    all older than `max_age` (default MEDIA_ORPHAN_TTL)."""
    cutoff = now() - (max_age if max_age is not None else services.settings.orphan_ttl)
    storage = services.storage
    incomplete = await storage.sweep_incomplete(cutoff)
    candidates: dict[str, list[str]] = {}
    async for info in storage.list_objects(""):
        parts = info.key.split("/")
        if len(parts) == 3 and parts[1] == "originals" and info.modified < cutoff:
            candidates.setdefault(parts[0], []).append(info.key)
    removed = 0
    for org_id, org_keys in candidates.items():
        async with services.db.read_session() as session:
            orphans = await MediaRepository(session).unreferenced_originals(org_id, org_keys)
        for key in sorted(orphans):
            await storage.delete(key)
            removed += 1
    report = SweepReport(incomplete=incomplete, unreferenced_originals=removed)
    if incomplete or removed:
        log.info("sweep", incomplete=incomplete, unreferenced_originals=removed)
    return report


async def run_sweeper(services: Services) -> None:
    interval = services.settings.sweep_interval.total_seconds()
    while True:
        await purge_expired_idempotency_keys(services.db)
        with contextlib.suppress(StorageUnavailable):
            try:
                await sweep_once(services)
            except StorageUnavailable:
                raise
            except Exception:  # keep sweeping on the next tick; log what went wrong
                log.exception("sweep failed")
        await asyncio.sleep(interval)
