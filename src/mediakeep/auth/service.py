"""Identity logic: registration, tokens, API keys and turning a request into a Principal."""

import asyncio
import base64
import binascii
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import cast

import jwt
import structlog
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from mediakeep.auth import security
from mediakeep.auth.jwks import ExternalVerifier, JwksUnavailable
from mediakeep.auth.principal import ROLE_RANK, Principal, Role
from mediakeep.auth.repository import (
    ApiKeyRepository,
    MembershipRepository,
    OrgRepository,
    OrgRole,
    RefreshTokenRepository,
    UserRepository,
)
from mediakeep.auth.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyList,
    ApiKeyOut,
    OrgMembershipOut,
    RegisterRequest,
    TokenPair,
    UpdateMeRequest,
    UserOut,
)
from mediakeep.config import Settings
from mediakeep.db import ReadOnlySession, SideUnits, savepoint
from mediakeep.errors import MediaError, conflict, forbidden, invalid, unauthorized
from mediakeep.events.publish import publish_after_commit
from mediakeep.ids import new_id
from mediakeep.models.base import utcnow
from mediakeep.models.identity import ApiKey, Org, RefreshToken, User
from mediakeep.services import Services

log = structlog.get_logger(__name__)

LOCAL_ADMIN_EMAIL = "admin@localhost"
LOCAL_ORG_SLUG = "local"
# Slugs no registration may take: the local admin's org and names that read like routes.
RESERVED_SLUGS = frozenset({LOCAL_ORG_SLUG, "admin", "api", "me", "new", "system", "www"})
REFRESH_TOKEN_PREFIX = "mkr_"  # noqa: S105 - a marker for secret scanners, not a secret
API_KEY_DISPLAY_CHARS = 10
LAST_USED_RESOLUTION = timedelta(minutes=1)
BAD_CREDENTIALS = "Invalid email or password"
GUEST_EMAIL_DOMAIN = "guest.invalid"
EXTERNAL_EMAIL_DOMAIN = "external.invalid"
EXTERNAL_SUBJECT_MAX = 300  # users.external_subject

_SLUG_JUNK = re.compile(r"[^a-z0-9]+")
_BEARER = re.compile(r"^\s*bearer\s+(\S+)\s*$", re.IGNORECASE)
_EMAIL_LOCAL_JUNK = re.compile(r"[^a-z0-9._+-]+")
_PLAUSIBLE_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


# ---------------------------------------------------------------- helpers


def normalize_email(email: str) -> str:
    return email.strip().lower()


def as_role(value: str) -> Role:
    if value not in ROLE_RANK:
        raise ValueError(f"unknown role {value!r}")
    return cast(Role, value)


def _min_role(a: Role, b: Role) -> Role:
    return a if ROLE_RANK[a] <= ROLE_RANK[b] else b


@cache
def _dummy_hash() -> str:
    """A real Argon2 hash to verify against when the email is unknown (same cost either way)."""
    return security.hash_password(security.new_secret_token())


async def _hash_password(password: str) -> str:
    # Argon2 is deliberately slow; keep it off the event loop.
    return await asyncio.to_thread(security.hash_password, password)


async def _verify_password(password_hash: str | None, password: str) -> bool:
    if password_hash is None:
        await asyncio.to_thread(security.verify_password, _dummy_hash(), password)
        return False
    return await asyncio.to_thread(security.verify_password, password_hash, password)


def slug_base(email: str) -> str:
    """A slug stem from the email's local part: lowercase, `[a-z0-9-]`, 2..40 characters."""
    local = email.partition("@")[0].lower()
    stem = _SLUG_JUNK.sub("-", local).strip("-")[:40].strip("-")
    return stem if len(stem) >= 2 else f"user-{stem}".strip("-")


def pick_slug(base: str, taken: set[str]) -> str:
    if base not in taken and base not in RESERVED_SLUGS:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


# ---------------------------------------------------------------- users


async def _user_out(session: ReadOnlySession, user: User) -> UserOut:
    orgs = await MembershipRepository(session).orgs_of(user.id)
    default_org_id = user.personal_org_id or (orgs[0].org_id if orgs else None)
    return UserOut(
        id=user.id,
        email=user.email,
        name=user.name,
        created_at=user.created_at,
        default_org_id=default_org_id,
        orgs=[
            OrgMembershipOut(id=o.org_id, slug=o.slug, name=o.name, role=as_role(o.role))
            for o in orgs
        ],
    )


async def _create_user_with_org(
    session: AsyncSession,
    *,
    email: str,
    name: str | None,
    password_hash: str | None,
    slug: str,
    org_name: str,
    is_guest: bool = False,
    external_subject: str | None = None,
) -> tuple[User, str]:
    """A user, their personal org and their owner membership; (user, org_id)."""
    user_id, org_id = new_id("usr"), new_id("org")
    await OrgRepository(session).add(Org(id=org_id, slug=slug, name=org_name, is_personal=True))
    user = User(
        id=user_id,
        email=email,
        name=name,
        password_hash=password_hash,
        personal_org_id=org_id,
        is_guest=is_guest,
        external_subject=external_subject,
    )
    await UserRepository(session).add(user)
    await MembershipRepository(session).add(org_id, user_id, "owner")
    return user, org_id


async def register(session: AsyncSession, body: RegisterRequest) -> UserOut:
    email = normalize_email(body.email)
    users = UserRepository(session)
    if await users.get_by_email(email) is not None:
        raise conflict("That email is already registered")
    password_hash = await _hash_password(body.password)
    base = slug_base(email)
    slug = pick_slug(base, await OrgRepository(session).slugs_like(base))
    name = body.name.strip() if body.name and body.name.strip() else None
    try:
        user, org_id = await _create_user_with_org(
            session,
            email=email,
            name=name,
            password_hash=password_hash,
            slug=slug,
            org_name=name or email.partition("@")[0],
        )
    except IntegrityError as exc:
        # A concurrent registration took the email (or, rarely, the slug) between check and insert.
        raise conflict("That email (or its organisation slug) was just taken; try again") from exc
    log.info("user registered", user_id=user.id, org_id=org_id)
    out = await _user_out(session, user)

    await publish_after_commit(
        session,
        "user.registered",
        org_id,
        {"id": user.id, "email": user.email, "name": user.name, "org_id": org_id},
    )
    return out


async def get_me(session: ReadOnlySession, principal: Principal) -> UserOut:
    user = await UserRepository(session).get(principal.user_id)
    if user is None:
        raise unauthorized("This user no longer exists")
    return await _user_out(session, user)


async def update_me(session: AsyncSession, principal: Principal, body: UpdateMeRequest) -> UserOut:
    if principal.via == "api_key" and not principal.can("member"):
        raise forbidden("A viewer API key may only read; the profile needs the member role")
    user = await UserRepository(session).get(principal.user_id)
    if user is None:
        raise unauthorized("This user no longer exists")
    if "name" in body.model_fields_set:
        user.name = body.name.strip() if body.name and body.name.strip() else None
    if body.password is not None:
        if principal.via == "api_key":
            raise forbidden("An API key may not change the password; sign in as the user")
        if user.password_hash is not None and not await _verify_password(
            user.password_hash, body.current_password or ""
        ):
            raise forbidden("current_password is missing or wrong")
        user.password_hash = await _hash_password(body.password)
        # Every other login session ends, and with it its access tokens, at once.
        await RefreshTokenRepository(session).revoke_all_of_user(
            user.id, utcnow(), keep_family=principal.session_id
        )
    await session.flush()
    return await _user_out(session, user)


# ---------------------------------------------------------------- tokens


async def _issue_pair(
    session: AsyncSession, settings: Settings, user_id: str, family_id: str | None = None
) -> TokenPair:
    refresh = security.new_secret_token(REFRESH_TOKEN_PREFIX)
    family = family_id or new_id("rff")
    await RefreshTokenRepository(session).add(
        RefreshToken(
            id=new_id("rft"),
            user_id=user_id,
            family_id=family,
            token_hash=security.sha256_hex(refresh),
            expires_at=utcnow() + settings.refresh_token_ttl,
        )
    )
    access = security.create_access_token(
        settings.secret_key, user_id, settings.access_token_ttl, session_id=family
    )
    return TokenPair(
        access_token=access,
        refresh_token=refresh,
        expires_in=int(settings.access_token_ttl.total_seconds()),
    )


async def login(session: AsyncSession, settings: Settings, email: str, password: str) -> TokenPair:
    user = await UserRepository(session).get_by_email(normalize_email(email))
    ok = await _verify_password(user.password_hash if user else None, password)
    if user is None or not ok:
        raise unauthorized(BAD_CREDENTIALS)
    return await _issue_pair(session, settings, user.id)


async def guest_login(session: AsyncSession, settings: Settings) -> TokenPair:
    """Tokens of a new guest user with their own personal org (only with AUTH_GUEST_ENABLED)."""
    if not settings.auth_guest_enabled:
        raise MediaError("not_found", 404, "Guest login is not enabled on this server")
    tag = security.new_secret_token()[:12].lower()
    email = f"guest-{tag}@{GUEST_EMAIL_DOMAIN}"
    base = slug_base(email)
    slug = pick_slug(base, await OrgRepository(session).slugs_like(base))
    try:
        user, org_id = await _create_user_with_org(
            session,
            email=email,
            name="Guest",
            password_hash=None,
            slug=slug,
            org_name="Guest",
            is_guest=True,
        )
    except IntegrityError as exc:  # a random 12-character tag clashing: astronomically rare
        raise conflict("Could not create a guest user; try again") from exc
    log.info("guest user created", user_id=user.id, org_id=org_id)
    return await _issue_pair(session, settings, user.id)


async def refresh(session: AsyncSession, settings: Settings, presented: str) -> TokenPair | None:
    """Rotate a refresh token; None when it is invalid, expired or revoked. A spent one
    presented again revokes its whole family, so the caller must commit even then: it answers
    401 without raising (see the router)."""
    now = utcnow()
    tokens = RefreshTokenRepository(session)
    token = await tokens.get_by_hash(security.sha256_hex(presented))
    if token is None or token.revoked_at is not None or token.expires_at <= now:
        return None
    if token.spent_at is not None or not await tokens.spend(token.id, now):
        # Reuse (or a concurrent rotation that lost the race): the token may be stolen.
        await tokens.revoke_family(token.family_id, now)
        log.warning("refresh token reuse; family revoked", family_id=token.family_id)
        return None
    if await UserRepository(session).get(token.user_id) is None:
        return None
    return await _issue_pair(session, settings, token.user_id, token.family_id)


INVALID_REFRESH = "Invalid, expired or revoked refresh token"


async def logout(session: AsyncSession, presented: str) -> None:
    """Revoke the family of the presented refresh token; unknown tokens are ignored. The
    family's access tokens end with it."""
    tokens = RefreshTokenRepository(session)
    token = await tokens.get_by_hash(security.sha256_hex(presented))
    if token is not None:
        await tokens.revoke_family(token.family_id, utcnow())


async def logout_all(session: AsyncSession, principal: Principal) -> None:
    """End every login session of the user, and every access token, at once."""
    if principal.via == "api_key":
        raise forbidden("An API key may not end the user's sessions; sign in as the user")
    await RefreshTokenRepository(session).revoke_all_of_user(principal.user_id, utcnow())


# ---------------------------------------------------------------- API keys


def _key_out(key: ApiKey) -> ApiKeyOut:
    return ApiKeyOut(
        id=key.id,
        name=key.name,
        prefix=key.prefix,
        role=as_role(key.role),
        org_id=key.org_id,
        created_at=key.created_at,
        expires_at=key.expires_at,
        last_used_at=key.last_used_at,
    )


async def create_api_key(
    session: AsyncSession, principal: Principal, body: ApiKeyCreate
) -> ApiKeyCreated:
    if not principal.can(body.role):
        raise forbidden(f"You are {principal.role}; a key cannot have a higher role ({body.role})")
    if body.expires_at is not None and body.expires_at <= utcnow():
        raise invalid("expires_at must be in the future", "expires_at")
    secret = security.new_secret_token(security.API_KEY_PREFIX)
    key = ApiKey(
        id=new_id("key"),
        org_id=principal.org_id,
        user_id=principal.user_id,
        name=body.name,
        prefix=secret[:API_KEY_DISPLAY_CHARS],
        key_hash=security.sha256_hex(secret),
        role=body.role,
        expires_at=body.expires_at,
    )
    await ApiKeyRepository(session).add(key)
    return ApiKeyCreated(**_key_out(key).model_dump(), key=secret)


def _encode_cursor(key_id: str) -> str:
    return base64.urlsafe_b64encode(key_id.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        value = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise invalid("Malformed cursor", "cursor") from exc
    if not value.startswith("key_"):
        raise invalid("Malformed cursor", "cursor")
    return value


async def list_api_keys(
    session: ReadOnlySession, principal: Principal, *, limit: int, cursor: str | None
) -> ApiKeyList:
    before = _decode_cursor(cursor) if cursor else None
    keys = await ApiKeyRepository(session).list_active(
        principal.org_id, limit=limit + 1, before_id=before
    )
    page = keys[:limit]
    next_cursor = _encode_cursor(page[-1].id) if len(keys) > limit else None
    return ApiKeyList(data=[_key_out(k) for k in page], next_cursor=next_cursor)


async def revoke_api_key(session: AsyncSession, principal: Principal, key_id: str) -> None:
    keys = ApiKeyRepository(session)
    if await keys.get(principal.org_id, key_id) is None:
        raise MediaError("not_found", 404, "No such API key in this organisation")
    await keys.revoke(principal.org_id, key_id, utcnow())


# ---------------------------------------------------------------- request authentication


@dataclass(frozen=True)
class Credentials:
    """What a request presents to prove who it is: read from HTTP by the router layer (deps),
    so this module knows nothing of requests."""

    api_key: str | None = None
    authorization: str | None = None  # the Authorization header as sent
    org_ref: str | None = None  # X-Org or ?org=: the org's id or slug


def _org_not_found(ref: str) -> MediaError:
    return MediaError("not_found", 404, f"No organisation '{ref}' that you belong to")


async def _principal_from_api_key(
    credentials: Credentials,
    services: Services,
    session: ReadOnlySession,
    side: SideUnits,
    presented: str,
) -> Principal:
    if not presented.startswith(security.API_KEY_PREFIX):
        raise unauthorized("Invalid API key")
    key_hash = security.sha256_hex(presented)
    ref = credentials.org_ref
    cache = services.principal_cache
    cache_key = ("api_key", key_hash, ref)
    epoch = None
    if cache is not None:
        cached, epoch = await cache.lookup(cache_key)
        if cached is not None:
            await _touch_if_due(services, side, cached, utcnow())
            return cached
    now = utcnow()
    grant = await ApiKeyRepository(session).grant_for_hash(key_hash)
    if grant is None:
        raise unauthorized("Invalid API key")
    key = grant.key
    if key.revoked_at is not None:
        raise unauthorized("This API key was revoked")
    if key.expires_at is not None and key.expires_at <= now:
        raise unauthorized("This API key has expired")
    if grant.member_role is None:
        raise unauthorized("The owner of this API key is no longer a member of its organisation")
    if ref is not None and ref not in (key.org_id, grant.org_slug):
        raise _org_not_found(ref)
    principal = Principal(
        user_id=key.user_id,
        org_id=key.org_id,
        org_slug=grant.org_slug,
        # A key never acts above its owner's current role (the owner may have been demoted).
        role=_min_role(as_role(key.role), as_role(grant.member_role)),
        via="api_key",
        api_key_id=key.id,
        valid_until=key.expires_at,
    )
    if cache is not None:
        cache.store(cache_key, principal, epoch, valid_until=key.expires_at)
        cache.key_used(key.id, key.last_used_at)
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        await _touch_api_key(services, side, key.org_id, key.id, now)
    return principal


async def _touch_if_due(
    services: Services,
    side: SideUnits,
    principal: Principal,
    now: datetime,
) -> None:
    cache = services.principal_cache
    if principal.api_key_id is None or cache is None:
        return
    if cache.key_touch_due(principal.api_key_id, now, LAST_USED_RESOLUTION):
        await _touch_api_key(services, side, principal.org_id, principal.api_key_id, now)


async def _touch_api_key(
    services: Services,
    side: SideUnits,
    org_id: str,
    key_id: str,
    now: datetime,
) -> None:
    # Bookkeeping, at most once a minute per key, in the scope's side unit of work: it commits
    # even when the request fails, and the request's own session is a read session (or a
    # replica's).
    if services.principal_cache is not None:
        services.principal_cache.key_used(key_id, now)
    try:
        async with side.bookkeeping() as own:
            await ApiKeyRepository(own).touch(
                org_id, key_id, now, stale_before=now - LAST_USED_RESOLUTION
            )
    except SQLAlchemyError as exc:  # bookkeeping only; never fail the request for it
        log.warning("could not record API key use", key_id=key_id, error=str(exc))


async def _user_membership(
    session: ReadOnlySession, user_id: str, ref: str | None, session_id: str | None = None
) -> OrgRole:
    """The user's role in the requested (or their default) org, while their login session
    lives: one statement when it all holds. Deleting a user deletes their memberships, so only
    a miss asks why."""
    memberships = MembershipRepository(session)
    found = await (
        memberships.role_in(user_id, ref, session_id)
        if ref
        else memberships.default_role(user_id, session_id)
    )
    if found is not None:
        return found
    if await UserRepository(session).get(user_id) is None:
        raise unauthorized("This user no longer exists")
    if session_id is not None and not await RefreshTokenRepository(session).session_lives(
        user_id, session_id
    ):
        raise unauthorized("This session has ended (signed out or password changed)")
    if ref:
        raise _org_not_found(ref)
    raise MediaError("not_found", 404, "You belong to no organisation")


async def _principal_of_user(
    credentials: Credentials,
    session: ReadOnlySession,
    side: SideUnits,
    user_id: str,
    session_id: str | None = None,
) -> Principal:
    """The user's principal in the requested (or else their default) org."""
    ref = credentials.org_ref
    try:
        found = await _user_membership(session, user_id, ref, session_id)
    except MediaError:
        if side.primary is None:
            raise
        # A read replica may lag behind a user (guest, external, just registered) or a
        # membership made moments ago: the primary (a unit the scope provides) has the last
        # word.
        async with side.primary() as primary:
            found = await _user_membership(primary, user_id, ref, session_id)
    return Principal(
        user_id=user_id,
        org_id=found.org_id,
        org_slug=found.slug,
        role=as_role(found.role),
        via="token",
        session_id=session_id,
    )


async def _principal_from_bearer(
    credentials: Credentials,
    services: Services,
    session: ReadOnlySession,
    side: SideUnits,
    token: str,
) -> tuple[Principal, datetime]:
    decoded = security.decode_access_claims(services.settings.secret_key, token)
    if decoded is None:
        raise unauthorized("Invalid or expired access token")
    principal = await _principal_of_user(
        credentials, session, side, decoded.user_id, decoded.session_id
    )
    return principal, decoded.expires_at


# ---------------------------------------------------------------- external identity


def _claim_text(claims: dict[str, object], *names: str, limit: int) -> str | None:
    for name in names:
        value = claims.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()[:limit]
    return None


async def _external_email(users: UserRepository, claims: dict[str, object], subject: str) -> str:
    """The `email` claim when it is plausible, verified (or not said otherwise) and free; else
    `{sub}@external.invalid`. An external identity never takes over an existing account."""
    claimed = claims.get("email")
    if (
        isinstance(claimed, str)
        and len(claimed) <= 320
        and _PLAUSIBLE_EMAIL.match(claimed.strip())
        and claims.get("email_verified") not in (False, "false")  # some IdPs send a string
    ):
        email = normalize_email(claimed)
        if await users.get_by_email(email) is None:
            return email
    sub = str(claims["sub"])
    local = _EMAIL_LOCAL_JUNK.sub("-", sub.lower()).strip(".-")[:64] or "user"
    email = f"{local}@{EXTERNAL_EMAIL_DOMAIN}"
    if local == sub.lower() and await users.get_by_email(email) is None:
        return email
    # The sub needed cleaning (or another issuer has the same sub): make it unique.
    return f"{local[:55]}-{security.sha256_hex(subject)[:8]}@{EXTERNAL_EMAIL_DOMAIN}"


async def _create_external_user(
    session: AsyncSession, subject: str, claims: dict[str, object]
) -> str:
    """Create the user (personal org, owner membership) of a first-seen external subject."""
    users = UserRepository(session)
    existing = await users.get_by_external_subject(subject)
    if existing is not None:
        return existing.id
    email = await _external_email(users, claims, subject)
    name = _claim_text(claims, "name", "preferred_username", limit=200)
    base = slug_base(_claim_text(claims, "preferred_username", limit=64) or email)
    slug = pick_slug(base, await OrgRepository(session).slugs_like(base))
    user, org_id = await _create_user_with_org(
        session,
        email=email,
        name=name,
        password_hash=None,
        slug=slug,
        org_name=name or email.partition("@")[0],
        external_subject=subject,
    )
    log.info("external user created", user_id=user.id, org_id=org_id, subject=subject)
    return user.id


async def _external_principal(
    credentials: Credentials,
    session: ReadOnlySession,
    side: SideUnits,
    issuer: str,
    claims: dict[str, object],
) -> Principal:
    """The principal of a verified external token; its user is created on first sight."""
    subject = f"{issuer}|{claims['sub']}"
    if len(subject) > EXTERNAL_SUBJECT_MAX:
        raise unauthorized("The token's issuer and subject are too long to map to a user")
    async with side.lookup() as reader:
        user = await UserRepository(reader).get_by_external_subject(subject)
    if user is not None:
        return await _principal_of_user(credentials, session, side, user.id)
    for _attempt in range(3):
        try:
            # The user must exist whatever the request then does: the scope's side unit.
            async with side.bookkeeping() as own:
                user_id = await _create_external_user(own, subject, claims)
        except IntegrityError:
            # A concurrent first request created the same subject (the next attempt finds it),
            # or took the email or slug we picked (the next attempt picks again).
            continue
        return await _principal_of_user(credentials, session, side, user_id)
    raise unauthorized("Could not set up a user for this identity; try again")


async def _principal_from_external(
    credentials: Credentials,
    session: ReadOnlySession,
    side: SideUnits,
    verifier: ExternalVerifier,
    token: str,
) -> tuple[Principal, datetime | None]:
    try:
        claims = await verifier.verify(token)
    except JwksUnavailable as exc:
        log.warning("external token refused: the issuer's keys are unavailable", error=str(exc))
        raise unauthorized(
            "The identity provider's signing keys (JWKS) could not be fetched; try again later"
        ) from None
    except jwt.PyJWTError as exc:
        log.info("external token refused", issuer=verifier.issuer, reason=str(exc))
        raise unauthorized("Invalid or expired access token") from None
    expiry = claims.get("exp")
    expires_at = datetime.fromtimestamp(expiry, UTC) if isinstance(expiry, int) else None
    principal = await _external_principal(credentials, session, side, verifier.issuer, claims)
    return principal, expires_at


async def _local_principal(
    credentials: Credentials, services: Services, session: ReadOnlySession
) -> Principal:
    if services.local_admin is None:
        raise RuntimeError("auth is disabled but the local admin was not set up")
    user_id, org_id = services.local_admin
    ref = credentials.org_ref
    if ref is None or ref in (org_id, LOCAL_ORG_SLUG):
        return Principal(
            user_id=user_id, org_id=org_id, org_slug=LOCAL_ORG_SLUG, role="owner", via="local"
        )
    found = await _user_membership(session, user_id, ref)
    return Principal(
        user_id=user_id,
        org_id=found.org_id,
        org_slug=found.slug,
        role=as_role(found.role),
        via="local",
    )


async def authenticate_request(
    credentials: Credentials, services: Services, session: ReadOnlySession, side: SideUnits
) -> Principal:
    """The acting principal: local admin (auth off), an API key, or a bearer access token
    (ours, HS256; or, with AUTH_ISSUER and AUTH_JWKS_URL, the issuer's RS256/ES256).

    Warm, it costs no database statement (the principal cache); cold, one statement in the
    request's own session. `side` is what the request's scope provides beside it (see
    `SideUnits`)."""
    if not services.settings.auth_enabled:
        return await _local_principal(credentials, services, session)
    if credentials.api_key:
        return await _principal_from_api_key(
            credentials, services, session, side, credentials.api_key.strip()
        )
    authorization = credentials.authorization
    if not authorization:
        raise unauthorized()
    match = _BEARER.match(authorization)
    if match is None:
        raise unauthorized("Authorization must be 'Bearer <token>'")
    token = match.group(1)
    if token.startswith(security.API_KEY_PREFIX):  # many SDKs send API keys as bearer tokens
        return await _principal_from_api_key(credentials, services, session, side, token)
    cache = services.principal_cache
    # The token itself is the key: a hit skips the signature check, which the entry already
    # passed, and ends with the token's own expiry.
    cache_key = ("bearer", token, credentials.org_ref)
    epoch = None
    if cache is not None:
        cached, epoch = await cache.lookup(cache_key)
        if cached is not None:
            return cached
    verifier = services.external_identity
    # Routing looks at the unverified alg and iss; each path then verifies with its own
    # fixed algorithms and keys, so a forged header only chooses which check fails.
    if verifier is not None and verifier.claims_route_here(
        *security.unverified_alg_and_issuer(token)
    ):
        principal, expires_at = await _principal_from_external(
            credentials, session, side, verifier, token
        )
    else:
        principal, expires_at = await _principal_from_bearer(
            credentials, services, session, side, token
        )
    principal = replace(principal, valid_until=expires_at)
    if cache is not None and expires_at is not None:
        cache.store(cache_key, principal, epoch, valid_until=expires_at)
    return principal


# ---------------------------------------------------------------- local admin


async def _find_local_admin(session: ReadOnlySession) -> tuple[str, str] | None:
    user = await UserRepository(session).get_by_email(LOCAL_ADMIN_EMAIL)
    if user is None or user.personal_org_id is None:
        return None
    return user.id, user.personal_org_id


async def ensure_local_admin(session: AsyncSession) -> tuple[str, str]:
    """Create (or find) the built-in admin that acts when AUTH_ENABLED=false: (user_id, org_id).

    `session` is a write unit of work of the start-up (bootstrap)."""
    found = await _find_local_admin(session)
    if found is not None:
        return found
    try:
        async with savepoint(session):
            user, org_id = await _create_user_with_org(
                session,
                email=LOCAL_ADMIN_EMAIL,
                name="Local admin",
                password_hash=None,
                slug=LOCAL_ORG_SLUG,
                org_name="Local",
            )
            created = (user.id, org_id)
    except IntegrityError:
        # Another process created it first (committed, so this write session sees it).
        found = await _find_local_admin(session)
        if found is None:
            raise RuntimeError(
                f"cannot create the local admin: the org slug '{LOCAL_ORG_SLUG}' or the email "
                f"'{LOCAL_ADMIN_EMAIL}' is taken by someone else"
            ) from None
        return found
    log.info("local admin created", user_id=created[0], org_id=created[1])
    return created


async def still_member(
    services: Services, session: ReadOnlySession, user_id: str, org_id: str
) -> bool:
    """Whether the user is (still) a member of the org: from the principal cache while the
    auth epoch stands still (no SQL), else one statement. Links bound to a principal (stream
    tokens) die with the membership they were minted under."""
    cache = services.principal_cache
    cache_key = ("member", user_id, org_id)
    epoch = None
    if cache is not None:
        cached, epoch = await cache.lookup(cache_key)
        if cached is not None:
            return True
    found = await MembershipRepository(session).role_in(user_id, org_id)
    if found is None or found.org_id != org_id:
        return False
    if cache is not None:
        member = Principal(user_id, found.org_id, found.slug, as_role(found.role), via="token")
        cache.store(cache_key, member, epoch)
    return True
