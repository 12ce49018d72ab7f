"""HTTP routes of organisations and their members; logic lives in service.py."""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from mediakeep.deps import CurrentPrincipal, ReadSession, WriteSession
from mediakeep.linkkeys.schemas import RotateIn, RotateOut
from mediakeep.orgs import service
from mediakeep.orgs.schemas import MemberAdd, MemberList, MemberOut, OrgCreate, OrgList, OrgOut

router = APIRouter(prefix="/orgs", tags=["orgs"])

_DESCRIPTIONS = {
    400: "Invalid request (`validation.invalid`)",
    401: "Missing, expired, revoked or bad credentials (`auth.unauthorized`)",
    403: "The role may not do this (`auth.forbidden`)",
    404: "No such organisation (that you belong to), user or member (`not_found`)",
    409: "Slug taken, already a member, or the last owner (`conflict`)",
}


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"description": _DESCRIPTIONS[status]} for status in statuses}


OrgRef = Annotated[
    str, Path(alias="slug", max_length=64, description="The organisation's slug (or id)")
]
Limit = Annotated[int, Query(ge=1, le=200)]
Cursor = Annotated[str | None, Query(max_length=200)]


@router.post("", status_code=201, response_model=OrgOut, responses=_errors(400, 401, 403, 404, 409))
async def create_org(body: OrgCreate, principal: CurrentPrincipal, session: WriteSession) -> OrgOut:
    """Create an organisation; the caller becomes its owner."""
    return await service.create_org(session, principal, body)


@router.get("", response_model=OrgList, responses=_errors(400, 401, 404))
async def list_orgs(
    principal: CurrentPrincipal,
    session: ReadSession,
    limit: Limit = 50,
    cursor: Cursor = None,
    include_total: bool = False,
) -> OrgList:
    """The caller's organisations with the caller's role in each."""
    return await service.list_orgs(
        session, principal, limit=limit, cursor=cursor, include_total=include_total
    )


@router.post(
    "/{slug}/members",
    status_code=201,
    response_model=MemberOut,
    responses=_errors(400, 401, 403, 404, 409),
)
async def add_member(
    org: OrgRef, body: MemberAdd, principal: CurrentPrincipal, session: WriteSession
) -> MemberOut:
    """Add an existing user to the organisation with a role (owners only)."""
    return await service.add_member(session, principal, org, body)


@router.get("/{slug}/members", response_model=MemberList, responses=_errors(400, 401, 404))
async def list_members(
    org: OrgRef,
    principal: CurrentPrincipal,
    session: ReadSession,
    limit: Limit = 50,
    cursor: Cursor = None,
    include_total: bool = False,
) -> MemberList:
    """The organisation's members and their roles, in the order they joined."""
    return await service.list_members(
        session, principal, org, limit=limit, cursor=cursor, include_total=include_total
    )


@router.delete(
    "/{slug}/members/{user_id}",
    status_code=204,
    response_class=Response,
    responses=_errors(401, 403, 404, 409),
)
async def remove_member(
    org: OrgRef,
    user_id: Annotated[str, Path(max_length=40)],
    principal: CurrentPrincipal,
    session: WriteSession,
) -> Response:
    """Remove a member (owners only); their API keys in the organisation are revoked."""
    await service.remove_member(session, principal, org, user_id)
    return Response(status_code=204)


@router.post(
    "/{slug}/signing-keys/rotate",
    response_model=RotateOut,
    responses=_errors(400, 401, 403, 404),
)
async def rotate_signing_key(
    org: OrgRef, principal: CurrentPrincipal, session: WriteSession, body: RotateIn | None = None
) -> RotateOut:
    """A new link-signing key (admins): every signed link of the organisation minted with an
    older key (`/files` links, stream URLs, transform URLs) stops working after
    `grace_seconds` (default 0: at once; at most 7 days)."""
    return await service.rotate_signing_key(session, principal, org, body or RotateIn())
