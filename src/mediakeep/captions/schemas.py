from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from mediakeep.kit.numbers import JsonBool
from mediakeep.kit.text import Line, Text


class CaptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    language: Line = Field(min_length=2, max_length=35)
    content: Text = Field(min_length=1, max_length=2_000_000)
    format: Literal["vtt", "srt"] = "vtt"


class CaptionPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approved: JsonBool | None = None
    content: Text | None = Field(default=None, min_length=1, max_length=2_000_000)
    format: Literal["vtt", "srt"] = "vtt"


class CaptionOut(BaseModel):
    language: str
    source: Literal["manual", "asr"]
    approved: bool
    url_vtt: str
    url_srt: str


class CaptionList(BaseModel):
    data: list[CaptionOut]


class Segment(BaseModel):
    start: float
    end: float
    text: str


class TranscriptOut(BaseModel):
    language: str
    text: str
    segments: list[Segment]
