"""SQL for organisations and their memberships as the orgs routes and the admin CLI see them."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mediakeep.db import SessionT
from mediakeep.models.identity import Membership, Org, User


@dataclass(frozen=True)
class OrgWithRole:
    """One org a user belongs to, the user's role there and the membership's id (the cursor)."""

    org: Org
    role: str
    membership_id: int


@dataclass(frozen=True)
class MemberRow:
    membership: Membership
    user: User


@dataclass(frozen=True)
class OrgSummary:
    id: str
    slug: str
    name: str
    members: int
    created_at: datetime


class OrgDirectory(Generic[SessionT]):
    def __init__(self, session: SessionT) -> None:
        self.session = session

    async def slug_taken(self, slug: str) -> bool:
        result = await self.session.execute(select(Org.id).where(Org.slug == slug))
        return result.first() is not None

    async def lock(self, org_id: str) -> None:
        """Serialise membership changes of one org until the transaction ends (PostgreSQL row
        lock; SQLite has one writer at a time anyway), so two owners removing each other cannot
        both see "another owner is left"."""
        await self.session.execute(select(Org.id).where(Org.id == org_id).with_for_update())

    async def orgs_of(
        self, user_id: str, *, limit: int, after: int | None = None, org_id: str | None = None
    ) -> list[OrgWithRole]:
        """The user's orgs in the order they joined them (optionally only `org_id`)."""
        query = (
            select(Org, Membership.role, Membership.id)
            .join(Membership, Membership.org_id == Org.id)
            .where(Membership.user_id == user_id)
        )
        if org_id is not None:
            query = query.where(Org.id == org_id)
        if after is not None:
            query = query.where(Membership.id > after)
        result = await self.session.execute(query.order_by(Membership.id).limit(limit))
        return [OrgWithRole(org, role, membership_id) for org, role, membership_id in result.all()]

    async def count_orgs_of(self, user_id: str, *, org_id: str | None = None) -> int:
        query = select(func.count()).select_from(Membership).where(Membership.user_id == user_id)
        if org_id is not None:
            query = query.where(Membership.org_id == org_id)
        return int((await self.session.execute(query)).scalar_one())

    async def members(
        self, org_id: str, *, limit: int, after: int | None = None
    ) -> list[MemberRow]:
        """Members of the org in the order they joined."""
        query = (
            select(Membership, User)
            .join(User, User.id == Membership.user_id)
            .where(Membership.org_id == org_id)
        )
        if after is not None:
            query = query.where(Membership.id > after)
        result = await self.session.execute(query.order_by(Membership.id).limit(limit))
        return [MemberRow(membership, user) for membership, user in result.all()]

    async def count_members(self, org_id: str) -> int:
        result = await self.session.execute(
            select(func.count()).select_from(Membership).where(Membership.org_id == org_id)
        )
        return int(result.scalar_one())

    async def membership(self, org_id: str, user_id: str) -> Membership | None:
        result = await self.session.execute(
            select(Membership).where(Membership.org_id == org_id, Membership.user_id == user_id)
        )
        return result.scalar_one_or_none()

    async def count_owners(self, org_id: str) -> int:
        result = await self.session.execute(
            select(func.count())
            .select_from(Membership)
            .where(Membership.org_id == org_id, Membership.role == "owner")
        )
        return int(result.scalar_one())

    async def remove_member(self: "OrgDirectory[AsyncSession]", org_id: str, user_id: str) -> None:
        await self.session.execute(
            delete(Membership).where(Membership.org_id == org_id, Membership.user_id == user_id)
        )

    async def all_orgs(self) -> Sequence[OrgSummary]:
        """Every org with its member count, oldest first (the operator's view, no tenant)."""
        members = (
            select(Membership.org_id, func.count().label("n"))
            .group_by(Membership.org_id)
            .subquery()
        )
        result = await self.session.execute(
            select(Org.id, Org.slug, Org.name, func.coalesce(members.c.n, 0), Org.created_at)
            .outerjoin(members, members.c.org_id == Org.id)
            .order_by(Org.created_at, Org.id)
        )
        return [
            OrgSummary(id=id_, slug=slug, name=name, members=int(n), created_at=created)
            for id_, slug, name, n, created in result.all()
        ]
