"""The one place that chooses the storage backend from Settings."""

from mediakeep.config import Settings
from mediakeep.storage.base import Storage
from mediakeep.storage.local import LocalStorage


def create_storage(settings: Settings) -> Storage:
    """The backend Settings name; its capabilities (`staging`, `self_served`) come with it."""
    if settings.storage_backend == "s3":
        from mediakeep.storage.s3 import S3Storage  # boto3 is imported only when it is used

        return S3Storage(settings)

    return LocalStorage(settings)
