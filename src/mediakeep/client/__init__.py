"""The mediakeep Python SDK (and the client commands of the `mediakeep` CLI).

    from mediakeep.client import Client, MediakeepError

    with Client("http://127.0.0.1:8285", api_key="mk_...") as client:
        media = client.upload("cat.jpg", alt="a cat")   # -> Media
        print(media.id, media.sha256, media.url)

`AsyncClient` has the same methods, awaited. See docs/sdk.md.
"""

from mediakeep.client._async import AsyncClient
from mediakeep.client._core import Call
from mediakeep.client._flows import UploadMethod
from mediakeep.client._routes import NOT_GIVEN, MediaFilters, NotGiven
from mediakeep.client._sync import Client
from mediakeep.client.errors import MediakeepConnectionError, MediakeepError
from mediakeep.client.models import (
    ApiKey,
    ApiKeyCreated,
    BatchResult,
    Caption,
    Collection,
    CollectionAdded,
    DerivedFrom,
    Job,
    JobResult,
    KindUsage,
    Media,
    Member,
    Model,
    Org,
    OrgMembership,
    Page,
    Placeholder,
    PresignedUrl,
    Readiness,
    ResolvedUrl,
    ResolveResult,
    SigningKeyRotation,
    Stream,
    TokenPair,
    Transcript,
    TransformUrl,
    TusInfo,
    TusStatus,
    UploadTicket,
    Usage,
    User,
    Variant,
)

__all__ = [
    "NOT_GIVEN",
    "ApiKey",
    "ApiKeyCreated",
    "AsyncClient",
    "BatchResult",
    "Call",
    "Caption",
    "Client",
    "Collection",
    "CollectionAdded",
    "DerivedFrom",
    "Job",
    "JobResult",
    "KindUsage",
    "Media",
    "MediaFilters",
    "MediakeepConnectionError",
    "MediakeepError",
    "Member",
    "Model",
    "NotGiven",
    "Org",
    "OrgMembership",
    "Page",
    "Placeholder",
    "PresignedUrl",
    "Readiness",
    "ResolveResult",
    "SigningKeyRotation",
    "ResolvedUrl",
    "Stream",
    "TokenPair",
    "Transcript",
    "TransformUrl",
    "TusInfo",
    "TusStatus",
    "UploadMethod",
    "UploadTicket",
    "Usage",
    "User",
    "Variant",
]
