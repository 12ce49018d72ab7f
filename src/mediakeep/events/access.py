"""Open event streams stay authorised: a stream (SSE or WebSocket) outlives the request that
opened it, so its principal is checked again before every event it sends.

The check is cheap when nothing changed: the auth epoch (see auth/cache.py) moves on every
committed change of access anywhere, so an unchanged epoch and a recent check mean the principal
still stands. When the epoch moved, or at least every `RECHECK_SECONDS`, the stream's own
credentials are authenticated again, as a new request would be. A stream also ends when its
credential expires (an access token's `exp`, an API key's expiry); clients reconnect with
`Last-Event-ID`.
"""

import time
from datetime import datetime
from typing import Literal

from mediakeep.auth.principal import Principal
from mediakeep.auth.service import Credentials, authenticate_request
from mediakeep.errors import MediaError
from mediakeep.models.base import utcnow
from mediakeep.services import Services

RECHECK_SECONDS = 60.0

CloseReason = Literal["access_changed", "credential_expired"]
EXPIRY_TOLERANCE_SECONDS = 2.0


class StreamAccess:
    def __init__(self, services: Services, credentials: Credentials, principal: Principal) -> None:
        self._services = services
        self._credentials = credentials
        self._principal = principal
        # Unknown: the first check authenticates again (from the principal cache when nothing
        # changed), which catches a change racing the stream's own authentication.
        self._epoch: int | None = None
        self._checked = time.monotonic()

    def seconds_left(self) -> float | None:
        """Seconds until the credential expires (None: it does not)."""
        until: datetime | None = self._principal.valid_until
        if until is None:
            return None
        return max(0.0, (until - utcnow()).total_seconds())

    async def check(self) -> CloseReason | None:
        """None while the stream may go on; else why it must close now."""
        left = self.seconds_left()
        if left is not None and left <= 0:
            return "credential_expired"
        cache = self._services.principal_cache
        epoch = await cache.epoch.current() if cache is not None else None
        fresh = time.monotonic() - self._checked < RECHECK_SECONDS
        if fresh and epoch is not None and epoch == self._epoch:
            return None
        try:
            db = self._services.db
            async with db.read_session() as session:
                side = db.side_units()
                now = await authenticate_request(self._credentials, self._services, session, side)
        except MediaError:
            # Refused at the edge of the credential's own expiry: that is the expiry (the token
            # library rounds the clock to whole seconds, our check above does not).
            left = self.seconds_left()
            if left is not None and left < EXPIRY_TOLERANCE_SECONDS:
                return "credential_expired"
            return "access_changed"
        if now.org_id != self._principal.org_id or not now.can("viewer"):
            return "access_changed"
        self._epoch = epoch
        self._checked = time.monotonic()
        return None
