"""SQL for variant rows. Every query takes the org id: tenancy lives here."""

from collections.abc import Sequence
from typing import Generic

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from mediakeep.db import SessionT
from mediakeep.models import Variant


class VariantRepository(Generic[SessionT]):
    def __init__(self, session: SessionT) -> None:
        self.session = session

    async def of_media(self, org_id: str, media_id: str) -> list[Variant]:
        result = await self.session.execute(
            select(Variant)
            .where(Variant.org_id == org_id, Variant.media_id == media_id)
            .order_by(Variant.id)
        )
        return list(result.scalars())

    def add(self: "VariantRepository[AsyncSession]", variant: Variant) -> None:
        self.session.add(variant)

    async def delete_named(
        self: "VariantRepository[AsyncSession]", org_id: str, media_id: str, names: Sequence[str]
    ) -> None:
        if not names:
            return
        await self.session.execute(
            delete(Variant).where(
                Variant.org_id == org_id,
                Variant.media_id == media_id,
                Variant.name.in_(list(names)),
            )
        )

    async def flush(self: "VariantRepository[AsyncSession]") -> None:
        await self.session.flush()
