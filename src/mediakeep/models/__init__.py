"""Every table of the service; Alembic's metadata comes from here."""

from mediakeep.models.base import Base
from mediakeep.models.caption import AiRequest, Caption
from mediakeep.models.collection import Collection, CollectionMedia
from mediakeep.models.event import EventRecord, Webhook, WebhookDelivery
from mediakeep.models.idempotency import IdempotencyKey
from mediakeep.models.identity import ApiKey, Membership, Org, RefreshToken, User
from mediakeep.models.job import Job, TusUpload
from mediakeep.models.media import Media, Variant
from mediakeep.models.signing_key import SigningKey
from mediakeep.models.transform import TransformCache

__all__ = [
    "AiRequest",
    "ApiKey",
    "Base",
    "Caption",
    "Collection",
    "CollectionMedia",
    "EventRecord",
    "IdempotencyKey",
    "Job",
    "Media",
    "Membership",
    "Org",
    "RefreshToken",
    "SigningKey",
    "TransformCache",
    "TusUpload",
    "User",
    "Variant",
    "Webhook",
    "WebhookDelivery",
]
