"""The long-lived objects of one running service, built from Settings by the app's lifespan."""

from dataclasses import dataclass, field

from mediakeep.config import Settings
from mediakeep.db import Database
from mediakeep.storage.base import Storage


@dataclass
class Services:
    settings: Settings
    db: Database
    storage: Storage
    local_admin: tuple[str, str] | None = field(default=None)  # (user_id, org_id) when auth is off


async def build_services(settings: Settings) -> Services:
    from mediakeep.auth.service import ensure_local_admin
    from mediakeep.storage.factory import create_storage

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings)
    services = Services(settings=settings, db=db, storage=create_storage(settings))
    if not settings.auth_enabled:
        services.local_admin = await ensure_local_admin(db)
    return services
