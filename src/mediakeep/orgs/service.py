"""Organisation logic: creating orgs, listing them, managing members, and the caller's role in
the org a path names."""

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mediakeep.auth.principal import ROLE_RANK, Principal, Role
from mediakeep.auth.repository import (
    ApiKeyRepository,
    MembershipRepository,
    OrgRepository,
    UserRepository,
)
from mediakeep.auth.service import RESERVED_SLUGS, as_role, normalize_email
from mediakeep.db import ReadOnlySession
from mediakeep.errors import MediaError, conflict, forbidden, invalid
from mediakeep.ids import new_id
from mediakeep.linkkeys import service as linkkeys
from mediakeep.linkkeys.schemas import RotateIn, RotateOut
from mediakeep.models.base import utcnow
from mediakeep.models.identity import Org
from mediakeep.orgs.repository import MemberRow, OrgDirectory, OrgSummary, OrgWithRole
from mediakeep.orgs.schemas import MemberAdd, MemberList, MemberOut, OrgCreate, OrgList, OrgOut

log = structlog.get_logger(__name__)

_CURSOR_PREFIX = "m:"

T = TypeVar("T")


@dataclass(frozen=True)
class OrgAccess:
    """The org a path names and the caller's role in it."""

    org_id: str
    slug: str
    role: Role


def _org_not_found(ref: str) -> MediaError:
    return MediaError("not_found", 404, f"No organisation '{ref}' that you belong to")


def _encode_cursor(membership_id: int) -> str:
    raw = f"{_CURSOR_PREFIX}{membership_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        value = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise invalid("Malformed cursor", "cursor") from exc
    head, _, number = value.partition(_CURSOR_PREFIX)
    if head or not number.isdigit():
        raise invalid("Malformed cursor", "cursor")
    return int(number)


def _page(rows: list[T], limit: int, position: Callable[[T], int]) -> tuple[list[T], str | None]:
    """The first `limit` rows and, when there were more, the cursor after the last of them."""
    if len(rows) <= limit:
        return rows, None
    page = rows[:limit]
    return page, _encode_cursor(position(page[-1]))


# ---------------------------------------------------------------- the caller's role


async def role_in(session: ReadOnlySession, principal: Principal, ref: str) -> OrgAccess:
    """The caller's role in the org whose slug (or id) is `ref`, whatever X-Org says.

    An API key acts only in its own org, with its own (capped) role; a user acts in any org
    they belong to. Any other org is 404, so slugs of other orgs cannot be probed.
    """
    if ref in (principal.org_slug, principal.org_id):
        return OrgAccess(principal.org_id, principal.org_slug, principal.role)
    if principal.via == "api_key":
        raise _org_not_found(ref)
    found = await MembershipRepository(session).role_in(principal.user_id, ref)
    if found is None:
        raise _org_not_found(ref)
    return OrgAccess(found.org_id, found.slug, as_role(found.role))


def _require(access: OrgAccess, role: Role, doing: str) -> None:
    if ROLE_RANK[access.role] < ROLE_RANK[role]:
        raise forbidden(f"{doing} needs the {role} role; you are {access.role}")


# ---------------------------------------------------------------- orgs


def _org_out(row: OrgWithRole) -> OrgOut:
    org = row.org
    return OrgOut(
        id=org.id, slug=org.slug, name=org.name, role=as_role(row.role), created_at=org.created_at
    )


async def create_org(session: AsyncSession, principal: Principal, body: OrgCreate) -> OrgOut:
    if principal.via == "api_key":
        raise forbidden(
            "An API key acts only in its own organisation; sign in as the user to create one"
        )
    directory = OrgDirectory(session)
    if body.slug in RESERVED_SLUGS or await directory.slug_taken(body.slug):
        raise conflict(f"The slug '{body.slug}' is already taken")
    org = Org(id=new_id("org"), slug=body.slug, name=body.name, is_personal=False)
    try:
        await OrgRepository(session).add(org)
        await MembershipRepository(session).add(org.id, principal.user_id, "owner")
    except IntegrityError as exc:  # a concurrent request took the slug between check and insert
        raise conflict(f"The slug '{body.slug}' is already taken") from exc
    log.info("org created", org_id=org.id, slug=org.slug, user_id=principal.user_id)
    return OrgOut(id=org.id, slug=org.slug, name=org.name, role="owner", created_at=org.created_at)


async def list_orgs(
    session: ReadOnlySession,
    principal: Principal,
    *,
    limit: int,
    cursor: str | None,
    include_total: bool = False,
) -> OrgList:
    """The caller's orgs with their role; an API key sees only its own org."""
    only = principal.org_id if principal.via == "api_key" else None
    directory = OrgDirectory(session)
    rows = await directory.orgs_of(
        principal.user_id, limit=limit + 1, after=_decode_cursor(cursor), org_id=only
    )
    page, next_cursor = _page(rows, limit, lambda row: row.membership_id)
    data = [_org_out(row) for row in page]
    if only is not None:  # the key's role, which may be below its owner's
        data = [item.model_copy(update={"role": principal.role}) for item in data]
    total = await directory.count_orgs_of(principal.user_id, org_id=only) if include_total else None
    return OrgList(data=data, next_cursor=next_cursor, total=total)


# ---------------------------------------------------------------- members


def _member_out(row: MemberRow) -> MemberOut:
    return MemberOut(
        user_id=row.user.id,
        email=row.user.email,
        name=row.user.name,
        role=as_role(row.membership.role),
        created_at=row.membership.created_at,
    )


async def add_member(
    session: AsyncSession, principal: Principal, ref: str, body: MemberAdd
) -> MemberOut:
    found = await role_in(session, principal, ref)
    _require(found, "owner", "Adding members")
    user = await UserRepository(session).get_by_email(normalize_email(str(body.email)))
    if user is None:
        raise MediaError("not_found", 404, "No user with that email")
    directory = OrgDirectory(session)
    await directory.lock(found.org_id)
    if await directory.membership(found.org_id, user.id) is not None:
        raise conflict("That user is already a member of this organisation")
    try:
        await MembershipRepository(session).add(found.org_id, user.id, body.role)
    except IntegrityError as exc:  # added concurrently
        raise conflict("That user is already a member of this organisation") from exc
    membership = await directory.membership(found.org_id, user.id)
    assert membership is not None
    log.info("member added", org_id=found.org_id, user_id=user.id, role=body.role)
    return _member_out(MemberRow(membership, user))


async def list_members(
    session: ReadOnlySession,
    principal: Principal,
    ref: str,
    *,
    limit: int,
    cursor: str | None,
    include_total: bool = False,
) -> MemberList:
    found = await role_in(session, principal, ref)  # any member may list
    directory = OrgDirectory(session)
    rows = await directory.members(found.org_id, limit=limit + 1, after=_decode_cursor(cursor))
    page, next_cursor = _page(rows, limit, lambda row: row.membership.id)
    total = await directory.count_members(found.org_id) if include_total else None
    return MemberList(data=[_member_out(r) for r in page], next_cursor=next_cursor, total=total)


async def remove_member(
    session: AsyncSession, principal: Principal, ref: str, user_id: str
) -> None:
    """Remove a member (owners only); the last owner stays. Their keys in the org are revoked."""
    found = await role_in(session, principal, ref)
    _require(found, "owner", "Removing members")
    directory = OrgDirectory(session)
    await directory.lock(found.org_id)
    membership = await directory.membership(found.org_id, user_id)
    if membership is None:
        raise MediaError("not_found", 404, "No such member in this organisation")
    if membership.role == "owner" and await directory.count_owners(found.org_id) <= 1:
        raise conflict("The last owner cannot be removed; add another owner first")
    await directory.remove_member(found.org_id, user_id)
    await ApiKeyRepository(session).revoke_all_of_user(found.org_id, user_id, utcnow())
    log.info("member removed", org_id=found.org_id, user_id=user_id, by=principal.user_id)


async def rotate_signing_key(
    session: AsyncSession, principal: Principal, ref: str, body: RotateIn
) -> RotateOut:
    """A new link-signing key for the org (admins); links signed with older keys stop working
    after `grace_seconds`."""
    found = await role_in(session, principal, ref)
    _require(found, "admin", "Rotating the signing key")
    rotated = await linkkeys.rotate(session, found.org_id, body.grace_seconds)
    log.info(
        "link-signing key rotated",
        org_id=found.org_id,
        key_id=rotated.key_id,
        grace_seconds=body.grace_seconds,
        by=principal.user_id,
    )
    return rotated


# ---------------------------------------------------------------- operators (CLI)


async def principal_for(session: ReadOnlySession, email: str, org_ref: str | None) -> Principal:
    """The user with this email acting in `org_ref` (default: their default org), as the admin
    CLI acts for them."""
    user = await UserRepository(session).get_by_email(normalize_email(email))
    if user is None:
        raise MediaError("not_found", 404, f"No user with the email {email}")
    memberships = MembershipRepository(session)
    found = await (
        memberships.role_in(user.id, org_ref) if org_ref else memberships.default_role(user.id)
    )
    if found is None:
        raise MediaError(
            "not_found",
            404,
            f"{email} is not a member of '{org_ref}'"
            if org_ref
            else f"{email} belongs to no organisation",
        )
    return Principal(
        user_id=user.id,
        org_id=found.org_id,
        org_slug=found.slug,
        role=as_role(found.role),
        via="local",
    )


async def all_orgs(session: ReadOnlySession) -> list[OrgSummary]:
    """Every org with its member count (for operators; no tenant filter)."""
    return list(await OrgDirectory(session).all_orgs())
