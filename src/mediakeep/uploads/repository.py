"""SQL for direct uploads' `pending` media rows. Tenant queries take the org id; the two
sweeper queries below work across orgs on purpose and say so."""

from datetime import datetime
from typing import Generic

from sqlalchemy import select

from mediakeep.db import SessionT
from mediakeep.models import Media

SOURCE = "presigned"


class UploadRepository(Generic[SessionT]):
    def __init__(self, session: SessionT) -> None:
        self.session = session

    async def claim_pending(self, org_id: str, media_id: str) -> Media | None:
        """The org's still-pending upload row, locked until the unit of work ends."""
        result = await self.session.execute(
            select(Media)
            .where(
                Media.org_id == org_id,
                Media.id == media_id,
                Media.source == SOURCE,
                Media.status == "pending",
            )
            .with_for_update()
        )
        return result.scalar_one_or_none()

    async def expired(self, deadline: datetime, limit: int = 1000) -> list[Media]:
        """Pending uploads of every org whose URL expired before `deadline` (the sweeper's)."""
        result = await self.session.execute(
            select(Media)
            .where(
                Media.source == SOURCE,
                Media.status == "pending",
                Media.upload_expires_at < deadline,
            )
            .order_by(Media.org_id, Media.id)
            .limit(limit)
        )
        return list(result.scalars())

    async def live_upload_keys(self) -> set[str]:
        """Incoming keys of every org's pending uploads (kept by the sweep until they expire)."""
        result = await self.session.execute(
            select(Media.org_id, Media.upload_key).where(
                Media.source == SOURCE,
                Media.status == "pending",
                Media.upload_key.is_not(None),
            )
        )
        return {key for _org_id, key in result.all() if key}
