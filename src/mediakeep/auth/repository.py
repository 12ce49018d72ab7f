"""SQL for users, orgs, memberships, API keys and refresh tokens; nothing else lives here."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic

from sqlalchemy import ColumnElement, CursorResult, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mediakeep.auth.cache import AUTH_NEUTRAL
from mediakeep.db import SessionT
from mediakeep.models.identity import ApiKey, Membership, Org, RefreshToken, User


@dataclass(frozen=True)
class OrgRole:
    """One org a user belongs to, with the user's role in it."""

    org_id: str
    slug: str
    name: str
    role: str


@dataclass(frozen=True)
class KeyGrant:
    """An API key, its org's slug and its owner's current role there (None: not a member)."""

    key: ApiKey
    org_slug: str
    member_role: str | None


def _rowcount(result: object) -> int:
    return result.rowcount if isinstance(result, CursorResult) else 0


class UserRepository(Generic[SessionT]):
    def __init__(self, session: SessionT) -> None:
        self.session = session

    async def get(self, user_id: str) -> User | None:
        return await self.session.get(User, user_id)

    async def get_by_email(self, email: str) -> User | None:
        result = await self.session.execute(select(User).where(User.email == email))
        return result.scalar_one_or_none()

    async def add(self: "UserRepository[AsyncSession]", user: User) -> None:
        self.session.add(user)
        await self.session.flush()

    async def get_by_external_subject(self, external_subject: str) -> User | None:
        """The user an external identity provider knows as `issuer|sub`."""
        result = await self.session.execute(
            select(User).where(User.external_subject == external_subject)
        )
        return result.scalar_one_or_none()


class OrgRepository(Generic[SessionT]):
    def __init__(self, session: SessionT) -> None:
        self.session = session

    async def slugs_like(self, base: str) -> set[str]:
        """`base` itself and every `base-...` slug already taken."""
        result = await self.session.execute(
            select(Org.slug).where(or_(Org.slug == base, Org.slug.like(f"{base}-%")))
        )
        return set(result.scalars())

    async def add(self: "OrgRepository[AsyncSession]", org: Org) -> None:
        self.session.add(org)
        await self.session.flush()


def _session_lives(user_id: str, session_id: str | None) -> list[ColumnElement[bool]]:
    """The condition that a login session (refresh-token family) of the user is not revoked:
    folded into the principal's one statement."""
    if session_id is None:
        return []
    return [
        exists().where(
            RefreshToken.user_id == user_id,
            RefreshToken.family_id == session_id,
            RefreshToken.revoked_at.is_(None),
        )
    ]


class MembershipRepository(Generic[SessionT]):
    def __init__(self, session: SessionT) -> None:
        self.session = session

    async def add(
        self: "MembershipRepository[AsyncSession]", org_id: str, user_id: str, role: str
    ) -> None:
        self.session.add(Membership(org_id=org_id, user_id=user_id, role=role))
        await self.session.flush()

    async def role_in(
        self, user_id: str, org_ref: str, session_id: str | None = None
    ) -> OrgRole | None:
        """The user's membership in the org whose id or slug is `org_ref` (and, with
        `session_id`, only while that login session lives)."""
        result = await self.session.execute(
            select(Org.id, Org.slug, Org.name, Membership.role)
            .join(Membership, Membership.org_id == Org.id)
            .where(
                Membership.user_id == user_id,
                or_(Org.id == org_ref, Org.slug == org_ref),
                *_session_lives(user_id, session_id),
            )
            .limit(1)
        )
        row = result.first()
        return OrgRole(*row) if row else None

    async def default_role(self, user_id: str, session_id: str | None = None) -> OrgRole | None:
        """The user's membership in their personal org, else in the org they joined first (and,
        with `session_id`, only while that login session lives)."""
        result = await self.session.execute(
            select(Org.id, Org.slug, Org.name, Membership.role)
            .join(Membership, Membership.org_id == Org.id)
            .join(User, User.id == Membership.user_id)
            .where(Membership.user_id == user_id, *_session_lives(user_id, session_id))
            .order_by((Org.id == User.personal_org_id).desc(), Membership.id)
            .limit(1)
        )
        row = result.first()
        return OrgRole(*row) if row else None

    async def orgs_of(self, user_id: str) -> list[OrgRole]:
        result = await self.session.execute(
            select(Org.id, Org.slug, Org.name, Membership.role)
            .join(Membership, Membership.org_id == Org.id)
            .where(Membership.user_id == user_id)
            .order_by(Membership.id)
        )
        return [OrgRole(*row) for row in result.all()]


class ApiKeyRepository(Generic[SessionT]):
    def __init__(self, session: SessionT) -> None:
        self.session = session

    async def add(self: "ApiKeyRepository[AsyncSession]", key: ApiKey) -> None:
        self.session.add(key)
        await self.session.flush()

    async def get(self, org_id: str, key_id: str) -> ApiKey | None:
        result = await self.session.execute(
            select(ApiKey).where(ApiKey.org_id == org_id, ApiKey.id == key_id)
        )
        return result.scalar_one_or_none()

    async def list_active(
        self, org_id: str, *, limit: int, before_id: str | None = None
    ) -> Sequence[ApiKey]:
        """Unrevoked keys of the org, newest first (ids are ULIDs, so id order is time order)."""
        query = select(ApiKey).where(ApiKey.org_id == org_id, ApiKey.revoked_at.is_(None))
        if before_id is not None:
            query = query.where(ApiKey.id < before_id)
        result = await self.session.execute(query.order_by(ApiKey.id.desc()).limit(limit))
        return result.scalars().all()

    async def grant_for_hash(self, key_hash: str) -> KeyGrant | None:
        """The key with this hash, wherever it belongs: the key itself names its org.

        This is the one api_keys query without an org_id filter, because authentication is
        what establishes the org.
        """
        result = await self.session.execute(
            select(ApiKey, Org.slug, Membership.role)
            .join(Org, Org.id == ApiKey.org_id)
            .outerjoin(
                Membership,
                (Membership.org_id == ApiKey.org_id) & (Membership.user_id == ApiKey.user_id),
            )
            .where(ApiKey.key_hash == key_hash)
        )
        row = result.first()
        return KeyGrant(row[0], row[1], row[2]) if row else None

    async def revoke(
        self: "ApiKeyRepository[AsyncSession]", org_id: str, key_id: str, when: datetime
    ) -> None:
        await self.session.execute(
            update(ApiKey)
            .where(ApiKey.org_id == org_id, ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
            .values(revoked_at=when)
        )

    async def touch(
        self: "ApiKeyRepository[AsyncSession]",
        org_id: str,
        key_id: str,
        when: datetime,
        stale_before: datetime,
    ) -> None:
        """Set last_used_at unless another request already did so after `stale_before`."""
        await self.session.execute(
            update(ApiKey)
            .where(
                ApiKey.org_id == org_id,
                ApiKey.id == key_id,
                or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < stale_before),
            )
            .values(last_used_at=when),
            # Bookkeeping: who the key is and what it may do did not change.
            execution_options={AUTH_NEUTRAL: True},
        )

    async def revoke_all_of_user(
        self: "ApiKeyRepository[AsyncSession]", org_id: str, user_id: str, when: datetime
    ) -> None:
        """Revoke every key the user holds in the org (when they leave it)."""
        await self.session.execute(
            update(ApiKey)
            .where(
                ApiKey.org_id == org_id, ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None)
            )
            .values(revoked_at=when)
        )


class RefreshTokenRepository(Generic[SessionT]):
    def __init__(self, session: SessionT) -> None:
        self.session = session

    async def add(self: "RefreshTokenRepository[AsyncSession]", token: RefreshToken) -> None:
        self.session.add(token)
        await self.session.flush()

    async def get_by_hash(self, token_hash: str) -> RefreshToken | None:
        result = await self.session.execute(
            select(RefreshToken).where(RefreshToken.token_hash == token_hash)
        )
        return result.scalar_one_or_none()

    async def spend(
        self: "RefreshTokenRepository[AsyncSession]", token_id: str, when: datetime
    ) -> bool:
        """Mark the token spent; False when it was already spent or revoked (a lost race)."""
        result = await self.session.execute(
            update(RefreshToken)
            .where(
                RefreshToken.id == token_id,
                RefreshToken.spent_at.is_(None),
                RefreshToken.revoked_at.is_(None),
            )
            .values(spent_at=when),
            # Rotation: the login session goes on, nobody's access changed.
            execution_options={AUTH_NEUTRAL: True},
        )
        return _rowcount(result) == 1

    async def revoke_family(
        self: "RefreshTokenRepository[AsyncSession]", family_id: str, when: datetime
    ) -> None:
        await self.session.execute(
            update(RefreshToken)
            .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=when)
        )

    async def revoke_all_of_user(
        self: "RefreshTokenRepository[AsyncSession]",
        user_id: str,
        when: datetime,
        *,
        keep_family: str | None = None,
    ) -> None:
        """End every login session of the user (but `keep_family`, the caller's own)."""
        statement = update(RefreshToken).where(
            RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None)
        )
        if keep_family is not None:
            statement = statement.where(RefreshToken.family_id != keep_family)
        await self.session.execute(statement.values(revoked_at=when))

    async def session_lives(self, user_id: str, family_id: str) -> bool:
        result = await self.session.execute(
            select(*_session_lives(user_id, family_id))
        )
        return bool(result.scalar())
