"""Caption rows; every query names the org."""

from collections.abc import Sequence
from typing import Generic

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mediakeep.db import SessionT
from mediakeep.models import Caption


class CaptionRepository(Generic[SessionT]):
    def __init__(self, session: SessionT) -> None:
        self.session = session

    async def get(self, org_id: str, media_id: str, language: str) -> Caption | None:
        result = await self.session.execute(
            select(Caption).where(
                Caption.org_id == org_id,
                Caption.media_id == media_id,
                Caption.language == language,
            )
        )
        return result.scalar_one_or_none()

    async def list(
        self, org_id: str, media_ids: Sequence[str], language: str | None = None
    ) -> list[Caption]:
        if not media_ids:
            return []
        statement = select(Caption).where(
            Caption.org_id == org_id, Caption.media_id.in_(list(media_ids))
        )
        if language is not None:
            statement = statement.where(Caption.language == language)
        result = await self.session.execute(statement.order_by(Caption.language))
        return list(result.scalars())

    async def add(self: "CaptionRepository[AsyncSession]", caption: Caption) -> None:
        self.session.add(caption)
        await self.session.flush()
