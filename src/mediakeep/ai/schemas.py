from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mediakeep.jobs.schemas import JobOut
from mediakeep.kit.numbers import JsonBool
from mediakeep.kit.text import Line, Text

SIZES = ("256x256", "512x512", "1024x1024", "1536x1024", "1024x1536", "1792x1024", "1024x1792")
ASPECTS = {"1:1": "1024x1024", "3:2": "1536x1024", "2:3": "1024x1536",
           "16:9": "1792x1024", "9:16": "1024x1792"}  # fmt: skip


class ImageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: Text = Field(min_length=1, max_length=4000)
    size: Literal[SIZES] | None = None  # type: ignore[valid-type]
    style: Line | None = Field(default=None, max_length=40)
    aspect_ratio: Literal["1:1", "3:2", "2:3", "16:9", "9:16"] | None = None
    model: Line | None = Field(default=None, max_length=200)


class AudioIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Text = Field(min_length=1, max_length=4096)
    voice: Line | None = Field(default=None, max_length=100)
    language: Line | None = Field(default=None, max_length=35)
    format: Literal["mp3", "wav", "opus"] = "mp3"


class GenerateCaptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    media_id: Line = Field(max_length=40)
    language: Line | None = Field(default=None, max_length=35)
    review_required: JsonBool = False


class AiJobOut(BaseModel):
    job: JobOut
    deduped: bool | None = None


class ProviderOut(BaseModel):
    kind: Literal["image", "tts", "asr"]
    provider: str
    model: str | None
    available: bool
    detail: str


class ProviderList(BaseModel):
    data: list[ProviderOut]

    @classmethod
    def of(cls, rows: list[dict[str, Any]]) -> "ProviderList":
        return cls(data=[ProviderOut(**row) for row in rows])
