"""Bodies and answers of the streaming routes."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer

from mediakeep.jobs.schemas import JobOut
from mediakeep.kit.numbers import JsonInt
from mediakeep.kit.time import rfc3339

StreamFormat = Literal["hls", "dash"]
StreamStatus = Literal["processing", "ready", "failed"]
ALL_FORMATS: tuple[StreamFormat, ...] = ("hls", "dash")
Height = Annotated[JsonInt, Field(ge=2, le=4320)]


class StreamIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    formats: list[StreamFormat] = Field(
        default_factory=lambda: list(ALL_FORMATS), min_length=1, max_length=2
    )
    renditions: list[Height] | None = Field(
        default=None,
        min_length=1,
        max_length=8,
        description="heights of the video ladder (default 1080/720/480/360); "
        "none above the source is made, the source height when all are",
    )


class StreamJobOut(BaseModel):
    job: JobOut


class StreamOut(BaseModel):
    status: StreamStatus
    formats: list[StreamFormat]
    renditions: list[int | str] = Field(
        description="heights made (`audio` for an audio-only rendition)"
    )
    hls_url: str | None
    dash_url: str | None
    storyboard_url: str | None = Field(
        default=None,
        description="the storyboard's WebVTT thumbnails track (cues point at tiles of "
        "`storyboard.jpg` next to it); null when the media has none",
    )
    expires_at: datetime | None
    failed_reason: str | None = None

    @field_serializer("expires_at")
    def _time(self, value: datetime | None) -> str | None:
        return rfc3339(value) if value else None
