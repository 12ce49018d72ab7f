"""HTTP routes of webhooks (Admin manages them); logic lives in service.py."""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from mediakeep.deps import Admin, ReadSession, SettingsDep, WriteSession
from mediakeep.webhooks import service
from mediakeep.webhooks.schemas import (
    DeliveryList,
    DeliveryOut,
    WebhookCreated,
    WebhookIn,
    WebhookList,
    WebhookOut,
    WebhookPatch,
)

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

_DESCRIPTIONS = {
    400: "Invalid request, or a URL the SSRF guard refuses (`validation.invalid`)",
    401: "Missing, expired, revoked or bad credentials (`auth.unauthorized`)",
    403: "Only admins manage webhooks (`auth.forbidden`)",
    404: "No such webhook in this organisation (`not_found`)",
}


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"description": _DESCRIPTIONS[status]} for status in statuses}


WebhookId = Annotated[str, Path(max_length=64)]


@router.post("", status_code=201, response_model=WebhookCreated, responses=_errors(400, 401, 403))
async def create_webhook(
    body: WebhookIn, principal: Admin, session: WriteSession, settings: SettingsDep
) -> WebhookCreated:
    """Subscribe a URL to events; the answer carries the signing `secret`, shown only once."""
    return await service.create(session, settings, principal, body)


@router.get("", response_model=WebhookList, responses=_errors(401, 403))
async def list_webhooks(principal: Admin, session: ReadSession) -> WebhookList:
    """The org's webhooks, newest first."""
    return await service.list_webhooks(session, principal.org_id)


@router.get("/{webhook_id}", response_model=WebhookOut, responses=_errors(400, 401, 403, 404))
async def get_webhook(webhook_id: WebhookId, principal: Admin, session: ReadSession) -> WebhookOut:
    """One webhook (without its secret)."""
    return await service.read(session, principal.org_id, webhook_id)


@router.patch("/{webhook_id}", response_model=WebhookOut, responses=_errors(400, 401, 403, 404))
async def update_webhook(
    webhook_id: WebhookId,
    body: WebhookPatch,
    principal: Admin,
    session: WriteSession,
    settings: SettingsDep,
) -> WebhookOut:
    """Change the URL, events, description, or enable/disable; only given fields."""
    return await service.update(session, settings, principal.org_id, webhook_id, body)


@router.delete(
    "/{webhook_id}",
    status_code=204,
    response_class=Response,
    responses=_errors(400, 401, 403, 404),
)
async def delete_webhook(webhook_id: WebhookId, principal: Admin, session: WriteSession) -> None:
    """Delete the webhook and its pending deliveries."""
    await service.delete(session, principal.org_id, webhook_id)


@router.get(
    "/{webhook_id}/deliveries", response_model=DeliveryList, responses=_errors(400, 401, 403, 404)
)
async def list_deliveries(
    webhook_id: WebhookId,
    principal: Admin,
    session: ReadSession,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> DeliveryList:
    """Recent deliveries, newest first, each with its attempts (status, latency, excerpt)."""
    return await service.list_deliveries(session, principal.org_id, webhook_id, limit)


@router.post(
    "/{webhook_id}/test",
    status_code=202,
    response_model=DeliveryOut,
    responses=_errors(400, 401, 403, 404),
)
async def test_webhook(
    webhook_id: WebhookId, principal: Admin, session: WriteSession
) -> DeliveryOut:
    """Queue a `webhook.test` event to this webhook; follow it in its deliveries."""
    return await service.send_test(session, principal.org_id, webhook_id)
