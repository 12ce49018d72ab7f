"""Claiming an Idempotency-Key, finishing it with the answer, and replaying that answer.

A key is claimed by INSERTing its row (`in_progress`): the unique constraint on
(principal hash, org, key hash) lets exactly one request win on any number of replicas. The
winner renews its claim while it runs (`locked_until`), so a claim whose process died is
taken over a minute later instead of blocking the key for a day. The answer is stored when
it is 2xx or 4xx (5xx and 408/429 may be retried, so their claim is dropped instead).

Every function works in the session it is given. The idempotency middleware is their scope:
it opens a short write unit of work of its own for each step (claim, renew, finish,
release), apart from the request's, because the claim must be committed before the request
runs and the bookkeeping must commit even when the request fails.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mediakeep.idempotency.repository import IdempotencyRepository
from mediakeep.idempotency.sealing import SealBroken, seal, sealing_key, unseal
from mediakeep.kit.time import now
from mediakeep.models.idempotency import IdempotencyKey

log = structlog.get_logger(__name__)

MAX_KEY_LENGTH = 255
MAX_STORED_BODY = 1 << 20  # larger answers are not kept; their claim is dropped
LEASE = timedelta(seconds=60)
RENEW_EVERY = LEASE / 3
RETRYABLE = frozenset({408, 429})
_ORG_REF_MAX = 80


@dataclass(frozen=True)
class Fingerprint:
    """What a replay must match: the caller (credential hash), the org asked for, the key."""

    key_hash: str
    principal_hash: str
    org_ref: str
    method: str
    path: str
    sealing_key: bytes

    @property
    def bound_to(self) -> bytes:
        return f"{self.principal_hash}:{self.org_ref}:{self.key_hash}".encode()


def fingerprint(
    *,
    secret_key: str,
    caller_material: str,
    org_ref: str | None,
    key: str,
    method: str,
    path: str,
) -> Fingerprint:
    """`caller_material` is the presented credential, or `ip:<address>` for an anonymous one."""
    org = org_ref or ""
    if len(org) > _ORG_REF_MAX:
        org = "sha256:" + hashlib.sha256(org.encode()).hexdigest()
    return Fingerprint(
        key_hash=hashlib.sha256(key.encode()).hexdigest(),
        principal_hash=hashlib.sha256(caller_material.encode()).hexdigest(),
        org_ref=org,
        method=method,
        path=path,
        sealing_key=sealing_key(secret_key, caller_material, key),
    )


@dataclass(frozen=True)
class Claimed:
    row_id: int
    owner: str


@dataclass(frozen=True)
class Replay:
    status: int
    content_type: str | None
    body: bytes


@dataclass(frozen=True)
class Busy:
    """Another request with this key is still running."""


@dataclass(frozen=True)
class Mismatch:
    method: str
    path: str


@dataclass(frozen=True)
class Unreadable:
    """The stored answer cannot be opened (AUTH_SECRET_KEY changed since)."""


Outcome = Claimed | Replay | Busy | Mismatch | Unreadable


def storable(status: int) -> bool:
    return (200 <= status < 300 or 400 <= status < 500) and status not in RETRYABLE


async def claim(session: AsyncSession, fp: Fingerprint, ttl: timedelta) -> Outcome:
    """Claim the key in the caller's write session, which must be committed at once.

    Each attempt's INSERT runs in a savepoint, so losing the race undoes only that step.
    """
    repo = IdempotencyRepository(session)
    for _ in range(3):
        owner = secrets.token_hex(16)
        started = now()
        row = IdempotencyKey(
            key_hash=fp.key_hash,
            principal_hash=fp.principal_hash,
            org_ref=fp.org_ref,
            method=fp.method,
            path=fp.path,
            state="in_progress",
            owner=owner,
            locked_until=started + LEASE,
            created_at=started,
            expires_at=started + ttl,
        )
        try:
            async with session.begin_nested():
                await repo.insert(row)
            return Claimed(row.id, owner)
        except IntegrityError:
            pass  # the savepoint's rollback also drops the new row from the session
        # A write session, never a replica: the row that beat us was committed just now (a
        # read-committed statement after the failed INSERT sees it; SQLite's writer lock
        # means it was committed before our transaction began).
        existing = await repo.find(fp.principal_hash, fp.org_ref, fp.key_hash)
        if existing is None:
            continue  # expired and purged in between: claim again
        current = now()
        if existing.expires_at <= current:
            await repo.delete_expired_row(existing.id, current)
            continue
        if (existing.method, existing.path) != (fp.method, fp.path):
            return Mismatch(existing.method, existing.path)
        if existing.state == "done":
            return _replay(fp, existing)
        if existing.locked_until < current and await repo.take_over(
            existing.id, owner, current, current + LEASE
        ):
            log.info("idempotency claim taken over from a holder that stopped")
            return Claimed(existing.id, owner)
        return Busy()
    return Busy()


def _replay(fp: Fingerprint, row: IdempotencyKey) -> Replay | Unreadable:
    assert row.status is not None
    try:
        body = unseal(fp.sealing_key, row.body or b"", fp.bound_to)
    except SealBroken:
        return Unreadable()
    return Replay(row.status, row.content_type, body)


async def finish(
    session: AsyncSession,
    fp: Fingerprint,
    claimed: Claimed,
    status: int,
    content_type: str | None,
    body: bytes | None,
) -> None:
    """Keep the answer (2xx/4xx of at most MAX_STORED_BODY bytes), else drop the claim."""
    repo = IdempotencyRepository(session)
    if body is not None and storable(status):
        sealed = seal(fp.sealing_key, body, fp.bound_to)
        if not await repo.complete(
            claimed.row_id, claimed.owner, status, (content_type or None), sealed
        ):
            log.warning("idempotency claim lost before the answer was stored")
    else:
        await repo.release(claimed.row_id, claimed.owner)


async def release(session: AsyncSession, claimed: Claimed) -> None:
    await IdempotencyRepository(session).release(claimed.row_id, claimed.owner)


async def renew(session: AsyncSession, claimed: Claimed) -> bool:
    """Extend the claim's lease; False once the claim is no longer ours."""
    return await IdempotencyRepository(session).renew(claimed.row_id, claimed.owner, now() + LEASE)


async def purge_expired(session: AsyncSession) -> int:
    """Delete keys past their 24 h (MEDIA_IDEMPOTENCY_TTL); the sweeper calls this."""
    removed = await IdempotencyRepository(session).purge_expired(now())
    if removed:
        log.info("purged expired idempotency keys", count=removed)
    return removed
