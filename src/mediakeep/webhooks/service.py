"""Webhook logic: CRUD, the delivery outbox (filled in the event's transaction) and signing."""

import base64
import secrets
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from mediakeep.auth.principal import Principal
from mediakeep.config import Settings
from mediakeep.db import ReadOnlySession, after_commit
from mediakeep.errors import invalid, not_found
from mediakeep.ids import WEBHOOK, new_id
from mediakeep.ingest.remote import FetchError, check_url
from mediakeep.kit.time import now
from mediakeep.models import Webhook, WebhookDelivery
from mediakeep.webhooks.repository import WebhookRepository
from mediakeep.webhooks.schemas import (
    AttemptOut,
    DeliveryList,
    DeliveryOut,
    WebhookCreated,
    WebhookIn,
    WebhookList,
    WebhookOut,
    WebhookPatch,
)
from mediakeep.webhooks.sender import wake
from mediakeep.webhooks.signing import SECRET_PREFIX


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


async def check_target(settings: Settings, url: str) -> None:
    """The SSRF guard of remote fetch: private targets only with MEDIA_ALLOW_PRIVATE_NETWORKS."""
    try:
        await check_url(url, allow_private=settings.allow_private_networks)
    except FetchError as exc:
        raise invalid(f"The webhook URL is not allowed: {exc}", "url") from exc


def _out(webhook: Webhook) -> WebhookOut:
    return WebhookOut(
        id=webhook.id,
        url=webhook.url,
        events=list(webhook.events),
        description=webhook.description,
        enabled=webhook.enabled,
        disabled_reason=webhook.disabled_reason,
        created_at=webhook.created_at,
        updated_at=webhook.updated_at,
    )


def delivery_out(delivery: WebhookDelivery) -> DeliveryOut:
    return DeliveryOut(
        id=delivery.id,
        webhook_id=delivery.webhook_id,
        event_id=delivery.event_id,
        event_type=delivery.event_type,
        status=delivery.status,
        attempts=delivery.attempts,
        next_attempt_at=delivery.next_attempt_at if delivery.status == "pending" else None,
        last_status_code=delivery.last_status_code,
        attempt_log=[AttemptOut(**entry) for entry in delivery.attempt_log or []],
        created_at=delivery.created_at,
    )


async def _get(session: ReadOnlySession, org_id: str, webhook_id: str) -> Webhook:
    webhook = await WebhookRepository(session).get(org_id, webhook_id)
    if webhook is None:
        raise not_found("webhook")
    return webhook


async def create(
    session: AsyncSession, settings: Settings, principal: Principal, body: WebhookIn
) -> WebhookCreated:
    await check_target(settings, body.url)
    webhook = Webhook(
        id=new_id(WEBHOOK),
        org_id=principal.org_id,
        url=body.url,
        events=sorted(set(body.events)),
        description=body.description,
        secret=new_secret(),
        enabled=True,
    )
    await WebhookRepository(session).add(webhook)
    return WebhookCreated(**_out(webhook).model_dump(), secret=webhook.secret)


async def list_webhooks(session: ReadOnlySession, org_id: str) -> WebhookList:
    return WebhookList(data=[_out(w) for w in await WebhookRepository(session).list(org_id)])


async def read(session: ReadOnlySession, org_id: str, webhook_id: str) -> WebhookOut:
    return _out(await _get(session, org_id, webhook_id))


async def update(
    session: AsyncSession, settings: Settings, org_id: str, webhook_id: str, patch: WebhookPatch
) -> WebhookOut:
    webhook = await _get(session, org_id, webhook_id)
    changes = patch.model_dump(exclude_unset=True)
    for name in ("url", "events", "enabled"):
        if name in changes and changes[name] is None:
            raise invalid(f"{name} cannot be null", name)
    if "url" in changes:
        await check_target(settings, changes["url"])
        webhook.url = changes["url"]
    if "events" in changes:
        webhook.events = sorted(set(changes["events"]))
    if "description" in changes:
        webhook.description = changes["description"]
    if "enabled" in changes:
        webhook.enabled = changes["enabled"]
        if webhook.enabled:
            webhook.disabled_reason = None
            webhook.failing_since = None
    webhook.updated_at = now()
    await session.flush()
    return _out(webhook)


async def delete(session: AsyncSession, org_id: str, webhook_id: str) -> None:
    await WebhookRepository(session).delete(await _get(session, org_id, webhook_id))


async def list_deliveries(
    session: ReadOnlySession, org_id: str, webhook_id: str, limit: int
) -> DeliveryList:
    await _get(session, org_id, webhook_id)
    rows = await WebhookRepository(session).deliveries(org_id, webhook_id, limit)
    return DeliveryList(data=[delivery_out(row) for row in rows])


def _new_delivery(webhook: Webhook, event: dict[str, Any]) -> WebhookDelivery:
    at = now()
    return WebhookDelivery(
        id=new_id("whd"),
        org_id=webhook.org_id,
        webhook_id=webhook.id,
        event_id=event["id"],
        event_type=event["type"],
        payload=event,
        status="pending",
        attempts=0,
        next_attempt_at=at,
        attempt_log=[],
        created_at=at,
        updated_at=at,
    )


def _wake_after_commit(session: AsyncSession) -> None:
    async def nudge() -> None:
        wake()

    after_commit(session, nudge)


async def send_test(session: AsyncSession, org_id: str, webhook_id: str) -> DeliveryOut:
    """Queue a `webhook.test` event to this webhook only (enabled or not)."""
    webhook = await _get(session, org_id, webhook_id)
    event = {
        "id": new_id("evt"),
        "type": "webhook.test",
        "org_id": org_id,
        "data": {"webhook_id": webhook.id},
        "timestamp": now().isoformat().replace("+00:00", "Z"),
    }
    delivery = _new_delivery(webhook, event)
    await WebhookRepository(session).add_delivery(delivery)
    await session.flush()
    _wake_after_commit(session)
    return delivery_out(delivery)


async def enqueue_deliveries(session: AsyncSession, event: dict[str, Any]) -> int:
    """Add a delivery of `event` for each enabled webhook of its org that wants it, in the
    transaction that records the event: both commit or neither does (the outbox)."""
    repo = WebhookRepository(session)
    count = 0
    for webhook in await repo.enabled_for(event["org_id"]):
        wanted = set(webhook.events)
        if "*" in wanted or event["type"] in wanted:
            await repo.add_delivery(_new_delivery(webhook, event))
            count += 1
    if count:
        _wake_after_commit(session)
    return count
