"""The keyring: each org's link-signing keys in process memory, so that signing a link and
checking one costs no SQL once warm.

An org's keys are read in one statement and kept while the auth epoch (auth/cache.py) stands
still, for `ttl` seconds at most. Writes to `signing_keys` bump that epoch like membership
writes do (a rotation is an access change), so a rotation is seen at once by every process
that shares the epoch. A retired key's end of grace is checked against the clock at each use,
so it needs no bump.
"""

import time
from dataclasses import dataclass, field

from mediakeep.auth.cache import AuthEpoch
from mediakeep.db import Database, ReadUnit
from mediakeep.kit.signing import LEGACY_KID, LinkKey, link_key
from mediakeep.linkkeys.repository import SigningKeyRepository
from mediakeep.models.base import utcnow

_MAX_ORGS = 10_000


@dataclass(frozen=True)
class OrgKeys:
    """One org's keys: the one new links are signed with, and retired ones in their grace."""

    current: LinkKey
    retiring: dict[str, tuple[LinkKey, float]] = field(default_factory=dict)  # kid -> (key, end)

    def get(self, kid: str) -> LinkKey | None:
        """The key a link names, while it still opens links; None makes the link invalid."""
        if kid == self.current.kid:
            return self.current
        found = self.retiring.get(kid)
        if found is None or found[1] <= time.time():
            return None
        return found[0]


@dataclass(frozen=True)
class _Entry:
    keys: OrgKeys
    epoch: int | None
    stored_at: float


class KeysNotLoaded(RuntimeError):
    """A link was to be signed for an org whose keys this process never loaded (a bug: the
    async entry points load them before presenting)."""


class LinkKeyring:
    def __init__(
        self,
        secret: str,
        db: Database,
        epoch: AuthEpoch,
        *,
        ttl: float = 30.0,
    ) -> None:
        self._secret = secret
        # Read from the primary: a replica's lag would keep a revoked key alive a while longer.
        self._read_session: ReadUnit = db.write_session if db.has_replica else db.read_session
        self.epoch = epoch
        self._ttl = ttl
        self._entries: dict[str, _Entry] = {}

    async def load(self, org_id: str) -> OrgKeys:
        """The org's keys, from memory while nothing changed, else read in one statement."""
        epoch = await self.epoch.current()
        entry = self._entries.get(org_id)
        if (
            entry is not None
            and epoch is not None
            and entry.epoch == epoch
            and time.monotonic() - entry.stored_at <= self._ttl
        ):
            return entry.keys
        async with self._read_session() as session:
            rows = await SigningKeyRepository(session).live(org_id, utcnow())
        current: LinkKey | None = None
        retiring: dict[str, tuple[LinkKey, float]] = {}
        for row in rows:
            key = link_key(self._secret, org_id, row.id, row.seed)
            if row.valid_until is None:
                current = key  # rows come oldest first: the newest current one wins
            else:
                retiring[row.id] = (key, row.valid_until.timestamp())
        if current is None:
            # Never rotated: the keys links were signed with before per-org keys existed.
            # (A rotation always leaves a current key, so this never revives a retired one.)
            current = link_key(self._secret, org_id, LEGACY_KID, None)
        keys = OrgKeys(current, retiring)
        if len(self._entries) >= _MAX_ORGS:
            self._entries.clear()
        # Stored even when the epoch is unreadable (then the next load reads again), so that
        # this request's links can be signed.
        self._entries[org_id] = _Entry(keys, epoch, time.monotonic())
        return keys

    def loaded(self, org_id: str) -> OrgKeys:
        """The org's keys as last loaded by this process (this request's `load` made sure)."""
        entry = self._entries.get(org_id)
        if entry is None:
            raise KeysNotLoaded(f"the link keys of {org_id} were not loaded")
        return entry.keys
