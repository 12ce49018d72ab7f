"""Every table of the service; Alembic's metadata comes from here."""

from mediakeep.models.base import Base
from mediakeep.models.idempotency import IdempotencyKey
from mediakeep.models.identity import ApiKey, Membership, Org, RefreshToken, User
from mediakeep.models.job import Job, TusUpload
from mediakeep.models.media import Media, Variant

__all__ = [
    "ApiKey",
    "Base",
    "IdempotencyKey",
    "Job",
    "Media",
    "Membership",
    "Org",
    "RefreshToken",
    "TusUpload",
    "User",
    "Variant",
]
