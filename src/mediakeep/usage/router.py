"""HTTP route of usage; logic lives in service.py."""

from typing import Any

from fastapi import APIRouter

from mediakeep.deps import ReadSession, SettingsDep, Viewer
from mediakeep.usage import service
from mediakeep.usage.schemas import UsageOut

router = APIRouter(tags=["usage"])

_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing, expired, revoked or bad credentials (`auth.unauthorized`)"},
    403: {"description": "The role may not do this (`auth.forbidden`)"},
    404: {"description": "No such organisation that you belong to (`not_found`)"},
}


@router.get("/usage", response_model=UsageOut, responses=_RESPONSES)
async def get_usage(principal: Viewer, session: ReadSession, settings: SettingsDep) -> UsageOut:
    """Media, stored bytes, jobs and AI requests of the acting organisation, and its quota."""
    return await service.get_usage(session, settings, principal.org_id)
