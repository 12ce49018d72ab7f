"""Every table of the service; Alembic's metadata comes from here."""

from mediakeep.models.base import Base
from mediakeep.models.collection import Collection, CollectionMedia
from mediakeep.models.idempotency import IdempotencyKey
from mediakeep.models.identity import ApiKey, Membership, Org, RefreshToken, User
from mediakeep.models.job import Job, TusUpload
from mediakeep.models.media import Media, Variant
from mediakeep.models.transform import TransformCache

__all__ = [
    "ApiKey",
    "Base",
    "Collection",
    "CollectionMedia",
    "IdempotencyKey",
    "Job",
    "Media",
    "Membership",
    "Org",
    "RefreshToken",
    "TransformCache",
    "TusUpload",
    "User",
    "Variant",
]
