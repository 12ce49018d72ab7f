"""Bodies of the video and audio operation routes."""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mediakeep.kit.numbers import JsonBool, JsonFloat, JsonInt
from mediakeep.kit.text import Line
from mediakeep.processing.video import parse_timestamp

Timestamp = Annotated[
    JsonFloat | Line,
    Field(description="seconds (12.5) or HH:MM:SS(.mmm) ('00:00:12.500')"),
]


def _seconds(value: float | str) -> float:
    return parse_timestamp(value)


class Schema(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TranscodeIn(Schema):
    format: Literal["mp4", "webm", "mp3", "aac", "opus", "wav", "flac"] = Field(
        description="video: mp4 or webm; audio (from audio, or a video's sound): mp3, aac, "
        "opus, wav, flac"
    )
    codec: Literal["h264", "vp9", "av1"] | None = Field(
        default=None, description="video only; default h264 for mp4, vp9 for webm"
    )
    crf: Annotated[JsonInt, Field(ge=0, le=63)] | None = None
    preset: Annotated[str, Field(pattern=r"^[a-z0-9]{1,12}$")] | None = None
    max_height: Annotated[JsonInt, Field(ge=16, le=4320)] | None = None
    bitrate: Annotated[JsonInt, Field(ge=8, le=512, description="audio, kbit/s")] | None = None
    async_: JsonBool = Field(default=True, alias="async")


class TrimIn(Schema):
    start_time: Timestamp
    end_time: Timestamp
    accurate: JsonBool = Field(
        default=False,
        description="re-encode so the cut is frame-accurate; default: stream copy (cuts at "
        "the keyframe before start_time)",
    )
    async_: JsonBool = Field(default=True, alias="async")

    @field_validator("start_time", "end_time")
    @classmethod
    def _timestamp(cls, value: float | str) -> float:
        return _seconds(value)


class ThumbnailIn(Schema):
    timestamp: Timestamp
    format: Literal["jpeg", "webp", "png"] = "jpeg"
    set_poster: JsonBool = Field(default=False, description="also make it the video's poster")
    async_: JsonBool = Field(default=True, alias="async")

    @field_validator("timestamp")
    @classmethod
    def _timestamp(cls, value: float | str) -> float:
        return _seconds(value)
