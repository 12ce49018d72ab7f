"""SQL of image operations. Every query takes the org id: tenancy lives here."""

from typing import Generic

from sqlalchemy import select

from mediakeep.db import SessionT
from mediakeep.models import Media


class ImageOpsRepository(Generic[SessionT]):
    def __init__(self, session: SessionT) -> None:
        self.session = session

    async def lock_media(self, org_id: str, media_id: str) -> Media | None:
        """The media row, locked until commit (PostgreSQL; SQLite's writer holds the database)
        so two versions cannot be written from the same one."""
        result = await self.session.execute(
            select(Media)
            .where(Media.org_id == org_id, Media.id == media_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return result.scalar_one_or_none()
