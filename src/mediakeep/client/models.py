"""Typed answers of the API. Attributes are named as the JSON fields of API.md.

Every model accepts fields it does not know (a newer server may add some; they are kept as
attributes too), and keeps the JSON it was read from: `model.raw` is exactly what the API
answered (the CLI's `--json` prints it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, PrivateAttr

M = TypeVar("M", bound="Model")
T = TypeVar("T")


class Model(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, protected_namespaces=())

    _raw: Any = PrivateAttr(default=None)

    @property
    def raw(self) -> Any:
        """The JSON this object was read from (or its own JSON when it was built in code)."""
        if self._raw is not None:
            return self._raw
        return self.model_dump(mode="json", exclude_none=False)

    @classmethod
    def from_json(cls: type[M], data: Any) -> M:
        obj = cls.model_validate(data)
        obj._raw = data
        return obj

    @classmethod
    def from_response(cls: type[M], response: httpx.Response) -> M:
        return cls.from_json(response.json())


# ---------------------------------------------------------------- media


class Variant(Model):
    name: str
    mime: str | None = None
    width: int | None = None
    height: int | None = None
    size_bytes: int | None = None
    url: str | None = None


class DerivedFrom(Model):
    media_id: str
    operation: str | None = None


class Placeholder(Model):
    blurhash: str | None = None
    dominant_color: str | None = None


class Caption(Model):
    language: str
    source: str | None = None
    approved: bool | None = None
    url_vtt: str | None = None
    url_srt: str | None = None


class Transcript(Model):
    language: str | None = None
    url: str | None = None


class Stream(Model):
    status: str | None = None
    formats: list[str] | None = None
    renditions: list[int | str] | None = None
    hls_url: str | None = None
    dash_url: str | None = None
    storyboard_url: str | None = None
    """A WebVTT thumbnails track for scrubbing (tiles of `storyboard.jpg` beside it)."""
    expires_at: datetime | None = None
    failed_reason: str | None = None


class JobResult(Model):
    media_id: str | None = None
    media_ids: list[str] | None = None
    url: str | None = None


class Job(Model):
    """`GET /api/v1/jobs/{id}`. `status`: pending | active | completed | failed | canceled."""

    id: str
    type: str | None = None
    status: str
    progress: float = 0
    media_id: str | None = None
    params: dict[str, Any] | None = None
    result: JobResult | None = None
    failed_reason: str | None = None
    attempts: int | None = None
    max_attempts: int | None = None
    cancel_requested: bool | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None

    TERMINAL: ClassVar[frozenset[str]] = frozenset({"completed", "failed", "canceled"})

    @property
    def done(self) -> bool:
        """The job has reached a final status (completed, failed or canceled)."""
        return self.status in self.TERMINAL


class Media(Model):
    """The media object. `deduped` is set on create calls; `job` when an upload ran async."""

    id: str
    org_id: str | None = None
    kind: str | None = None
    source: str | None = None
    status: str | None = None
    filename: str | None = None
    mime: str | None = None
    size_bytes: int | None = None
    sha256: str | None = None
    width: int | None = None
    height: int | None = None
    duration_seconds: float | None = None
    alt: str | None = None
    caption: str | None = None
    description: str | None = None
    is_private: bool | None = None
    metadata: dict[str, Any] | None = None
    placeholder: Placeholder | None = None
    derived_from: DerivedFrom | None = None
    url: str | None = None
    expires_at: datetime | None = None
    variants: list[Variant] = []
    captions: list[Caption] = []
    transcript: Transcript | None = None
    stream: Stream | None = None
    version: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    deduped: bool | None = None
    job: Job | None = None

    @classmethod
    def from_json(cls, data: Any) -> Media:
        # An async upload answers 202 {"media": {...}, "job": {...}}: the media, with its job.
        if isinstance(data, dict) and isinstance(data.get("media"), dict) and "id" not in data:
            media = super().from_json(data["media"])
            if isinstance(data.get("job"), dict):
                media.job = Job.from_json(data["job"])
            media._raw = data
            return media
        return super().from_json(data)


class BatchResult(Model):
    """`POST /media/batch`: the media found and the ids that are not in this org."""

    data: list[Media]
    missing: list[str] = []


class ResolvedUrl(Model):
    id: str
    url: str
    expires_at: datetime | None = None


class ResolveResult(Model):
    media: list[ResolvedUrl]
    missing: list[str] = []


class PresignedUrl(Model):
    id: str
    url: str
    expires_at: datetime | None = None
    expires_in: int | None = None


class UploadTicket(Model):
    """`POST /media/upload-url`: where to send the bytes (or `deduped` and no upload)."""

    media_id: str
    upload_url: str | None = None
    upload_method: str | None = None
    upload_fields: dict[str, str] = {}
    upload_headers: dict[str, str] = {}
    expires_at: datetime | None = None
    deduped: bool | None = None


class TransformUrl(Model):
    url: str
    expires_at: datetime | None = None


# ---------------------------------------------------------------- identity and tenancy


class TokenPair(Model):
    access_token: str
    refresh_token: str | None = None
    token_type: str = "Bearer"  # noqa: S105 - a scheme name
    expires_in: int | None = None


class OrgMembership(Model):
    id: str
    slug: str
    name: str | None = None
    role: str


class User(Model):
    id: str
    email: str | None = None
    name: str | None = None
    created_at: datetime | None = None
    default_org_id: str | None = None
    orgs: list[OrgMembership] = []


class ApiKey(Model):
    id: str
    name: str
    prefix: str | None = None
    role: str | None = None
    org_id: str | None = None
    created_at: datetime | None = None
    expires_at: datetime | None = None
    last_used_at: datetime | None = None


class ApiKeyCreated(ApiKey):
    """The answer of creating a key: `key` is the secret, shown only this once."""

    key: str


class Org(Model):
    id: str
    slug: str
    name: str | None = None
    role: str | None = None
    created_at: datetime | None = None


class SigningKeyRotation(Model):
    key_id: str
    previous_valid_until: datetime


class Member(Model):
    user_id: str
    email: str | None = None
    name: str | None = None
    role: str
    created_at: datetime | None = None


class Collection(Model):
    id: str
    name: str
    description: str | None = None
    media_count: int | None = None
    created_by: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class CollectionAdded(Model):
    """`POST /collections/{id}/media`: the ids now in the collection, and those of no media."""

    added: list[str] = []
    missing: list[str] = []


class KindUsage(Model):
    count: int
    bytes: int


class Usage(Model):
    media_count: int
    bytes_stored: int
    by_kind: dict[str, KindUsage] = {}
    jobs_by_status: dict[str, int] = {}
    ai_requests_today: int = 0
    quota_bytes: int | None = None


class Readiness(Model):
    status: str
    checks: dict[str, str] = {}
    failing: list[str] = []


class TusInfo(Model):
    """What the server's tus endpoint advertised in answer to OPTIONS."""

    available: bool
    version: str | None = None
    extensions: list[str] = []
    max_size: int | None = None
    checksum_algorithms: list[str] = []


class TusStatus(Model):
    """What a tus server has of an upload: `offset` bytes of `length`; `media_id` when done."""

    offset: int
    length: int | None = None
    media_id: str | None = None


# ---------------------------------------------------------------- lists


class Page(Model, Generic[T]):
    """One page of a list: `data`, the `next_cursor` (None on the last page), and `total`
    when asked for with `include_total=True`."""

    data: list[T]
    next_cursor: str | None = None
    total: int | None = None

    @property
    def has_more(self) -> bool:
        return bool(self.next_cursor)
