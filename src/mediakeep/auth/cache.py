"""The principal cache: who a credential is, without a database round trip on every request.

A cached principal is only as good as the facts it was derived from (the user, their membership
and role, the API key). Every committed write to those tables bumps one *auth epoch*; each entry
remembers the epoch it was read under and is ignored once the epoch moved. So removing a member,
changing a role, revoking a key or deleting a user takes effect on the very next request, on
every process that shares the epoch:

- embedded mode (one machine, possibly several `serve --workers` processes and the CLI): an
  8-byte counter in a memory-mapped file in the data directory, read without a system call;
- distributed mode (`REDIS_URL` set): a Redis key, read once per cache lookup (one Redis round
  trip instead of the database's) and incremented after the commit that changed access.

An entry read under epoch `e` while a bump to `e + 1` was committing is stored as `e` and so is
never served after the bump: the epoch is read *before* the database, never after.
"""

import contextlib
import fcntl
import mmap
import os
import struct
import time
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import structlog
from redis import asyncio as aioredis
from redis.exceptions import RedisError
from sqlalchemy import Delete, Update, event
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from mediakeep.auth.principal import Principal
from mediakeep.config import Settings
from mediakeep.db import Database, after_commit
from mediakeep.models.base import utcnow
from mediakeep.models.identity import ApiKey, Membership, Org, User
from mediakeep.models.signing_key import SigningKey

log = structlog.get_logger(__name__)

# Tables whose rows decide who a credential is and what it may do.
# Refresh tokens count for their revocations (a login session ending ends its access tokens);
# inserts and rotations are not access changes (rotation is marked auth-neutral).
# Link-signing keys count too: the keyring (linkkeys/keyring.py) is cached under this epoch.
AUTH_TABLES = frozenset(
    {"users", "orgs", "memberships", "api_keys", "refresh_tokens", "signing_keys"}
)
_AUTH_MODELS = (User, Org, Membership, ApiKey, SigningKey)
# Execution option for writes to those tables that change nothing about access (last-used times).
AUTH_NEUTRAL = "auth_neutral"
_EPOCH = struct.Struct("<Q")


class AuthEpoch(Protocol):
    """A counter shared by every process serving the same data; bumped when access changes."""

    async def current(self) -> int | None:
        """The epoch now, or None when it cannot be read (then nothing may be served cached)."""

    async def bump(self) -> None: ...

    async def close(self) -> None: ...


class FileEpoch:
    """The epoch in a memory-mapped 8-byte file: shared by every process on this machine."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        if os.fstat(self._fd).st_size < _EPOCH.size:
            os.ftruncate(self._fd, _EPOCH.size)
        self._map = mmap.mmap(self._fd, _EPOCH.size)

    async def current(self) -> int:
        value: int = _EPOCH.unpack_from(self._map)[0]
        return value

    async def bump(self) -> None:
        # The lock makes read-increment-write atomic across processes.
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            _EPOCH.pack_into(self._map, 0, _EPOCH.unpack_from(self._map)[0] + 1)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    async def close(self) -> None:
        self._map.close()
        os.close(self._fd)


class RedisEpoch:
    """The epoch in Redis: shared by every replica. Unreadable Redis means no cached answers."""

    KEY = "mediakeep:auth-epoch"

    def __init__(self, url: str) -> None:
        self._redis = aioredis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)

    async def current(self) -> int | None:
        try:
            value = await self._redis.get(self.KEY)
        except (RedisError, OSError):
            return None
        return int(value or 0)

    async def bump(self) -> None:
        try:
            await self._redis.incr(self.KEY)
        except (RedisError, OSError) as exc:
            # Other replicas keep their entries until the TTL ends; say so loudly.
            log.error("could not publish an access change to Redis", error=str(exc))

    async def close(self) -> None:
        await self._redis.aclose()


def create_auth_epoch(settings: Settings) -> AuthEpoch:
    if settings.redis_url:
        return RedisEpoch(settings.redis_url)
    return FileEpoch(settings.data_dir / "auth.epoch")


@dataclass(frozen=True)
class _Entry:
    principal: Principal
    epoch: int
    stored_at: float
    valid_until: datetime | None  # an API key's own expiry


class PrincipalCache:
    """Principals by credential, valid while the auth epoch stands still (and `ttl` seconds at
    most, a bound for changes made behind the service's back, e.g. by hand in SQL)."""

    def __init__(self, epoch: AuthEpoch, *, ttl: float = 30.0, max_entries: int = 10_000) -> None:
        self.epoch = epoch
        self._ttl = ttl
        self._max = max_entries
        self._entries: dict[Hashable, _Entry] = {}
        self._key_used: dict[str, datetime] = {}  # API key id -> last recorded use

    async def lookup(self, key: Hashable) -> tuple[Principal | None, int | None]:
        """(the cached principal or None, the epoch to store a freshly read one under)."""
        epoch = await self.epoch.current()
        entry = self._entries.get(key)
        if entry is None or epoch is None:
            return None, epoch
        if (
            entry.epoch != epoch
            or time.monotonic() - entry.stored_at > self._ttl
            or (entry.valid_until is not None and entry.valid_until <= utcnow())
        ):
            self._entries.pop(key, None)
            return None, epoch
        return entry.principal, epoch

    def store(
        self,
        key: Hashable,
        principal: Principal,
        epoch: int | None,
        valid_until: datetime | None = None,
    ) -> None:
        if epoch is None:
            return
        if len(self._entries) >= self._max:
            self._entries.clear()  # crude, bounded, and refilled in one round trip per key
        self._entries[key] = _Entry(principal, epoch, time.monotonic(), valid_until)


    def key_used(self, key_id: str, when: datetime | None) -> None:
        if when is not None:
            if len(self._key_used) >= self._max:
                self._key_used.clear()
            self._key_used[key_id] = when

    def key_touch_due(self, key_id: str, now: datetime, resolution: timedelta) -> bool:
        """Whether the key's last-used time (as last seen here) is older than `resolution`."""
        last = self._key_used.get(key_id)
        return last is None or now - last >= resolution


def _touches_access(session: Session) -> bool:
    return any(
        isinstance(instance, _AUTH_MODELS)
        for instance in (*session.new, *session.dirty, *session.deleted)
    )


def _mark_changed(session: Session, epoch: AuthEpoch) -> None:
    # Once per unit of work: the pending after-commit actions already hold the bump.
    if epoch.bump not in session.info.get("after_commit", ()):
        after_commit(session, epoch.bump)


def watch_access_changes(db: Database, epoch: AuthEpoch) -> None:
    """Bump the epoch after every commit of `db`'s write sessions that changed access, whichever
    service made the change: by construction, not by remembering to call something."""

    def after_flush(session: Session, _context: UOWTransaction) -> None:
        if _touches_access(session):
            _mark_changed(session, epoch)

    def do_orm_execute(state: ORMExecuteState) -> None:
        statement = state.statement
        if not isinstance(statement, Update | Delete):
            return
        if state.execution_options.get(AUTH_NEUTRAL):
            return
        table: Any = statement.table
        if getattr(table, "name", None) in AUTH_TABLES:
            _mark_changed(state.session, epoch)

    event.listen(db.write_session_class, "after_flush", after_flush)
    event.listen(db.write_session_class, "do_orm_execute", do_orm_execute)


async def close_quietly(epoch: AuthEpoch) -> None:
    with contextlib.suppress(Exception):
        await epoch.close()
