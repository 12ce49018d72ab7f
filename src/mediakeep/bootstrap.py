"""Building the long-lived `Services` of a process from Settings (composition layer), and
wiring the domains that follow events to the publisher.

The API process builds them with `build_services` (its lifespan then swaps in a dispatcher that
owns the local workers); a worker process with `build_worker_services`, handed to the worker
loops by the CLI. Both call `wire`, so every process that publishes events also writes their
webhook deliveries.
"""

from mediakeep.auth.cache import PrincipalCache, create_auth_epoch, watch_access_changes
from mediakeep.auth.jwks import external_verifier
from mediakeep.auth.security import configure_password_hashing
from mediakeep.auth.service import ensure_local_admin
from mediakeep.config import Settings
from mediakeep.datadir import prepare_data_dir
from mediakeep.db import Database
from mediakeep.events import bus
from mediakeep.events.publish import subscribe_in_transaction
from mediakeep.jobs.dispatch import create_dispatcher
from mediakeep.linkkeys.keyring import LinkKeyring
from mediakeep.ratelimit.limiter import create_rate_limiter
from mediakeep.services import Services
from mediakeep.storage.factory import create_storage
from mediakeep.webhooks.service import enqueue_deliveries


def wire() -> None:
    """Subscribe the domains that act on events, in the transaction that records them
    (idempotent). Webhooks add their deliveries there (an outbox: both commit or neither);
    realtime subscribers read the bus after the commit (events/router.py)."""
    subscribe_in_transaction(enqueue_deliveries)


async def build_services(settings: Settings) -> Services:
    wire()
    configure_password_hashing(settings.argon2_time_cost, settings.argon2_memory_kib)
    prepare_data_dir(settings)
    db = Database(settings)
    services = Services(settings=settings, db=db, storage=create_storage(settings))
    services.rate_limiter = create_rate_limiter(settings)
    epoch = create_auth_epoch(settings)
    watch_access_changes(db, epoch)
    services.principal_cache = PrincipalCache(epoch)
    services.link_keys = LinkKeyring(settings.secret_key, db, epoch)
    services.external_identity = external_verifier(settings)
    # Owns no workers: enough to enqueue. The app's lifespan swaps in one that runs them.
    services.dispatcher = create_dispatcher(settings)
    if not settings.auth_enabled:
        async with db.write_session() as session:  # the start-up's unit of work
            services.local_admin = await ensure_local_admin(session)
    return services


async def build_worker_services(settings: Settings) -> Services:
    """A worker process's own database engines, storage and dispatcher (never the API's)."""
    wire()
    prepare_data_dir(settings)
    services = Services(settings=settings, db=Database(settings), storage=create_storage(settings))
    # A task that changes access tables bumps the auth epoch, as a request would.
    epoch = create_auth_epoch(settings)
    watch_access_changes(services.db, epoch)
    services.link_keys = LinkKeyring(settings.secret_key, services.db, epoch)
    services.dispatcher = create_dispatcher(settings)
    if settings.redis_url and bus.bus_of(services.db) is None:
        # Distributed mode: a worker announces its events on Redis itself. In embedded mode
        # the API process tails the events table, so a worker needs no bus.
        bus.install(services.db, bus.create_event_bus(settings, services.db, listen=False))
    return services
