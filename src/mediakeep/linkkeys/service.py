"""Rotating an org's link-signing key."""

import secrets
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from mediakeep.kit.signing import LEGACY_KID
from mediakeep.linkkeys.repository import SigningKeyRepository
from mediakeep.linkkeys.schemas import RotateOut
from mediakeep.models import SigningKey
from mediakeep.models.base import utcnow

SEED_BYTES = 32


def new_kid() -> str:
    return secrets.token_hex(6)


async def rotate(session: AsyncSession, org_id: str, grace_seconds: int) -> RotateOut:
    """A new current key for the org; every older one stops opening links at now + grace
    (sooner if it was already retired to end sooner). The write bumps the auth epoch, so
    every process's keyring reads the org's keys again."""
    now = utcnow()
    until = now + timedelta(seconds=grace_seconds)
    repo = SigningKeyRepository(session)
    if await repo.count(org_id) == 0:
        # The key the org signed with until now has no row yet: give it its end of grace.
        repo.add(SigningKey(org_id=org_id, id=LEGACY_KID, seed=None, valid_until=until))
        await session.flush()
    else:
        await repo.retire(org_id, until)
    key = repo.add(SigningKey(org_id=org_id, id=new_kid(), seed=secrets.token_bytes(SEED_BYTES)))
    await session.flush()
    return RotateOut(key_id=key.id, previous_valid_until=until)
