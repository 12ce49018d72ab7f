"""The long-lived objects of one running service, built from Settings by the app's lifespan."""

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mediakeep.auth.cache import (
    PrincipalCache,
    create_auth_epoch,
    watch_access_changes,
)
from mediakeep.auth.jwks import ExternalVerifier, external_verifier
from mediakeep.config import Settings
from mediakeep.db import Database
from mediakeep.kit.budget import DecodeGate
from mediakeep.ratelimit.limiter import RateLimiter, create_rate_limiter
from mediakeep.storage.base import Storage

if TYPE_CHECKING:
    from mediakeep.jobs.dispatch import Dispatcher


@dataclass
class Services:
    settings: Settings
    db: Database
    storage: Storage
    local_admin: tuple[str, str] | None = field(default=None)  # (user_id, org_id) when auth is off
    rate_limiter: RateLimiter | None = field(default=None)  # None when limits are off
    external_identity: ExternalVerifier | None = field(default=None)  # AUTH_ISSUER's tokens
    dispatcher: "Dispatcher | None" = field(default=None)  # told about jobs after commit
    principal_cache: PrincipalCache | None = field(default=None)  # who each credential is
    # The one cap and decoded-bytes budget of every image decode in this process.
    decode_gate: DecodeGate = field(init=False)

    def __post_init__(self) -> None:
        settings = self.settings
        self.decode_gate = DecodeGate(
            settings.decode_concurrency, settings.decode_queue, settings.max_decode_bytes
        )


async def build_services(settings: Settings) -> Services:
    from mediakeep.auth.security import configure_password_hashing
    from mediakeep.auth.service import ensure_local_admin
    from mediakeep.jobs.dispatch import create_dispatcher
    from mediakeep.storage.factory import create_storage

    configure_password_hashing(settings.argon2_time_cost, settings.argon2_memory_kib)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings)
    services = Services(settings=settings, db=db, storage=create_storage(settings))
    services.rate_limiter = create_rate_limiter(settings)
    epoch = create_auth_epoch(settings)
    watch_access_changes(db, epoch)
    services.principal_cache = PrincipalCache(epoch)
    services.external_identity = external_verifier(settings)
    # Owns no workers: enough to enqueue. The app's lifespan swaps in one that runs them.
    services.dispatcher = create_dispatcher(settings)
    if not settings.auth_enabled:
        services.local_admin = await ensure_local_admin(db)
    return services
