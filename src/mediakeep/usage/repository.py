"""SQL for what an org stores. Every query takes the org id: tenancy lives here."""

from collections.abc import Sequence
from typing import Generic

from sqlalchemy import func, select

from mediakeep.db import SessionT
from mediakeep.models import Media


class UsageRepository(Generic[SessionT]):
    def __init__(self, session: SessionT) -> None:
        self.session = session

    async def media_count_by_kind(self, org_id: str) -> dict[str, int]:
        result = await self.session.execute(
            select(Media.kind, func.count()).where(Media.org_id == org_id).group_by(Media.kind)
        )
        return {kind: int(count) for kind, count in result.all()}

    async def original_bytes_by_kind(self, org_id: str) -> dict[str, int]:
        """Bytes of stored originals per kind; an original several media point at counts once."""
        originals = (
            select(Media.kind, Media.storage_key, func.max(Media.size_bytes).label("size"))
            .where(Media.org_id == org_id, Media.storage_key.is_not(None))
            .group_by(Media.kind, Media.storage_key)
            .subquery()
        )
        result = await self.session.execute(
            select(originals.c.kind, func.sum(originals.c.size)).group_by(originals.c.kind)
        )
        return {kind: int(total or 0) for kind, total in result.all()}

    async def original_bytes(self, org_id: str) -> int:
        """Bytes of the org's stored originals, each counted once."""
        originals = (
            select(Media.storage_key, func.max(Media.size_bytes).label("size"))
            .where(Media.org_id == org_id, Media.storage_key.is_not(None))
            .group_by(Media.storage_key)
            .subquery()
        )
        result = await self.session.execute(select(func.sum(originals.c.size)))
        return int(result.scalar_one() or 0)

    async def media_counts(self, org_ids: Sequence[str]) -> dict[str, int]:
        """Media per org for these orgs (orgs without media are absent)."""
        if not org_ids:
            return {}
        result = await self.session.execute(
            select(Media.org_id, func.count())
            .where(Media.org_id.in_(list(org_ids)))
            .group_by(Media.org_id)
        )
        return {org_id: int(count) for org_id, count in result.all()}
