"""SQL of the AI requests table (one row per distinct request of an org: the dedup key)."""

from datetime import datetime

from mediakeep.db import SessionT
from mediakeep.models import AiRequest
from mediakeep.repository import TenantRepository


class AiRequestRepository(TenantRepository[AiRequest, SessionT]):
    model = AiRequest

    async def count_since(self, org_id: str, since: datetime) -> int:
        count = await self.session.scalar(self.count_by_org(org_id, AiRequest.created_at >= since))
        return int(count or 0)

    async def find(self, org_id: str, kind: str, digest: str, model: str) -> AiRequest | None:
        """The org's earlier identical request, if any."""
        row: AiRequest | None = await self.session.scalar(
            self.select_by_org(
                org_id,
                AiRequest.kind == kind,
                AiRequest.request_hash == digest,
                AiRequest.model == model,
            )
        )
        return row
