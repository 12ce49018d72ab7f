"""Usage of an org: what it stores (media, bytes of originals), its jobs and AI requests, and
its quota."""

from collections.abc import Sequence

from mediakeep.config import Settings
from mediakeep.db import ReadOnlySession
from mediakeep.jobs.repository import JobRepository
from mediakeep.usage.repository import UsageRepository
from mediakeep.usage.schemas import KindUsage, UsageOut

KINDS = ("image", "video", "audio", "document")


def quota_bytes(settings: Settings) -> int | None:
    """The per-org storage cap in bytes, or None when there is none (MEDIA_ORG_QUOTA_BYTES=0)."""
    return settings.org_quota_bytes or None


async def bytes_stored(session: ReadOnlySession, org_id: str) -> int:
    """Bytes of the org's originals, each distinct original once (what the quota caps)."""
    return await UsageRepository(session).original_bytes(org_id)


async def get_usage(session: ReadOnlySession, settings: Settings, org_id: str) -> UsageOut:
    usage = UsageRepository(session)
    counts = await usage.media_count_by_kind(org_id)
    sizes = await usage.original_bytes_by_kind(org_id)
    kinds = list(KINDS) + sorted(set(counts) - set(KINDS))
    return UsageOut(
        media_count=sum(counts.values()),
        bytes_stored=await usage.original_bytes(org_id),
        by_kind={
            kind: KindUsage(count=counts.get(kind, 0), bytes=sizes.get(kind, 0)) for kind in kinds
        },
        jobs_by_status=await JobRepository(session).counts_by_status(org_id),
        ai_requests_today=0,  # no AI generation in this version yet
        quota_bytes=quota_bytes(settings),
    )


async def media_counts(session: ReadOnlySession, org_ids: Sequence[str]) -> dict[str, int]:
    """Media per org, 0 for orgs without any."""
    found = await UsageRepository(session).media_counts(org_ids)
    return {org_id: found.get(org_id, 0) for org_id in org_ids}
