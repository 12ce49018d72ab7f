"""The job object of API.md and the bodies of the job routes."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_serializer

from mediakeep.kit.time import rfc3339
from mediakeep.media.schemas import MediaOut

JobStatus = Literal["pending", "active", "completed", "failed", "canceled"]


class JobOut(BaseModel):
    id: str
    type: str
    status: JobStatus
    progress: int = Field(ge=0, le=100)
    media_id: str | None
    params: dict[str, Any]
    result: dict[str, Any] | None = Field(
        description="On completion: `media_id`, `media_ids` and/or `url` of what the job made"
    )
    failed_reason: str | None = Field(
        description="Why the job failed (or why its last try did, while it waits to retry)"
    )
    attempts: int
    max_attempts: int
    cancel_requested: bool = Field(
        description="A cancel was asked while the job ran; its worker is stopping it"
    )
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @field_serializer("created_at", "started_at", "finished_at")
    def _times(self, value: datetime | None) -> str | None:
        return rfc3339(value) if value else None


class JobList(BaseModel):
    data: list[JobOut]
    next_cursor: str | None
    total: int | None = Field(default=None, exclude_if=lambda v: v is None)


class AsyncUploadOut(BaseModel):
    """202 answer of an upload with `async=true`: the media (`processing`) and its job."""

    media: MediaOut
    job: JobOut
