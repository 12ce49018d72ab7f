"""SQL of `signing_keys`, every statement scoped by org."""

from datetime import datetime

from sqlalchemy import or_
from sqlalchemy.ext.asyncio import AsyncSession

from mediakeep.db import SessionT
from mediakeep.models import SigningKey
from mediakeep.repository import TenantRepository


class SigningKeyRepository(TenantRepository[SigningKey, SessionT]):
    model = SigningKey

    async def live(self, org_id: str, now: datetime) -> list[SigningKey]:
        """The org's current key and the retired ones still inside their grace period."""
        result = await self.session.scalars(
            self.select_by_org(
                org_id, or_(SigningKey.valid_until.is_(None), SigningKey.valid_until > now)
            ).order_by(SigningKey.created_at)
        )
        return list(result)

    async def count(self, org_id: str) -> int:
        return int(await self.session.scalar(self.count_by_org(org_id)) or 0)

    async def retire(
        self: "SigningKeyRepository[AsyncSession]", org_id: str, until: datetime
    ) -> None:
        """Every key of the org stops working at `until` at the latest (an earlier end stays)."""
        await self.session.execute(
            self.update_by_org(
                org_id, or_(SigningKey.valid_until.is_(None), SigningKey.valid_until > until)
            ).values(valid_until=until)
        )
