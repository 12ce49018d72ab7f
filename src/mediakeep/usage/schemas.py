"""The body of `GET /usage`."""

from pydantic import BaseModel, Field


class KindUsage(BaseModel):
    count: int
    bytes: int


class UsageOut(BaseModel):
    media_count: int
    bytes_stored: int = Field(description="Bytes of the org's stored originals, each counted once")
    by_kind: dict[str, KindUsage] = Field(
        description="Per kind (image, video, audio, document): media count and original bytes"
    )
    jobs_by_status: dict[str, int]
    ai_requests_today: int
    quota_bytes: int | None = Field(description="MEDIA_ORG_QUOTA_BYTES; null when there is none")
