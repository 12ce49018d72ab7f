"""SQL of webhooks and deliveries."""

from collections.abc import Sequence
from datetime import datetime
from typing import Generic

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mediakeep.db import SessionT
from mediakeep.models import Webhook, WebhookDelivery


class WebhookRepository(Generic[SessionT]):
    def __init__(self, session: SessionT) -> None:
        self.session = session

    async def add(self: "WebhookRepository[AsyncSession]", webhook: Webhook) -> None:
        self.session.add(webhook)
        await self.session.flush()

    async def get(self, org_id: str, webhook_id: str) -> Webhook | None:
        return await self.session.scalar(
            select(Webhook).where(Webhook.org_id == org_id, Webhook.id == webhook_id)
        )

    async def list(self, org_id: str) -> Sequence[Webhook]:
        result = await self.session.scalars(
            select(Webhook)
            .where(Webhook.org_id == org_id)
            .order_by(Webhook.created_at.desc(), Webhook.id.desc())
            .limit(500)
        )
        return result.all()

    async def enabled_for(self, org_id: str) -> Sequence[Webhook]:
        result = await self.session.scalars(
            select(Webhook).where(Webhook.org_id == org_id, Webhook.enabled.is_(True))
        )
        return result.all()

    async def delete(self: "WebhookRepository[AsyncSession]", webhook: Webhook) -> None:
        await self.session.delete(webhook)
        await self.session.flush()

    async def add_delivery(
        self: "WebhookRepository[AsyncSession]", delivery: WebhookDelivery
    ) -> None:
        self.session.add(delivery)

    async def deliveries(
        self, org_id: str, webhook_id: str, limit: int
    ) -> Sequence[WebhookDelivery]:
        result = await self.session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.org_id == org_id, WebhookDelivery.webhook_id == webhook_id)
            .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
            .limit(limit)
        )
        return result.all()


class DeliveryQueue(Generic[SessionT]):
    """The sender's side, system-wide: due deliveries of every org."""

    def __init__(self, session: SessionT) -> None:
        self.session = session

    async def due(self, at: datetime, limit: int, busy: set[str]) -> Sequence[WebhookDelivery]:
        query = (
            select(WebhookDelivery)
            .where(
                WebhookDelivery.status == "pending",
                WebhookDelivery.next_attempt_at <= at,
                or_(WebhookDelivery.locked_until.is_(None), WebhookDelivery.locked_until < at),
            )
            .order_by(WebhookDelivery.next_attempt_at)
            .limit(limit)
        )
        if busy:
            query = query.where(WebhookDelivery.webhook_id.notin_(busy))
        return (await self.session.scalars(query)).all()

    async def lock(
        self: "DeliveryQueue[AsyncSession]", delivery_id: str, at: datetime, until: datetime
    ) -> bool:
        """Take the lease on one delivery (false: another sender took it first)."""
        result = await self.session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == delivery_id,
                WebhookDelivery.status == "pending",
                or_(WebhookDelivery.locked_until.is_(None), WebhookDelivery.locked_until < at),
            )
            .values(locked_until=until)
        )
        return bool(getattr(result, "rowcount", 0))

    async def prune_finished(self: "DeliveryQueue[AsyncSession]", before: datetime) -> None:
        await self.session.execute(
            delete(WebhookDelivery).where(
                WebhookDelivery.status != "pending", WebhookDelivery.updated_at < before
            )
        )

    async def release(self: "DeliveryQueue[AsyncSession]", delivery_ids: Sequence[str]) -> None:
        await self.session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(delivery_ids), WebhookDelivery.status == "pending")
            .values(locked_until=None)
        )

    async def delivery(self, delivery_id: str) -> WebhookDelivery | None:
        return await self.session.get(WebhookDelivery, delivery_id)

    async def webhook(self, webhook_id: str) -> Webhook | None:
        return await self.session.get(Webhook, webhook_id)
