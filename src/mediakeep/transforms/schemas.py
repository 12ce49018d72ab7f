"""Bodies of the transform routes."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from mediakeep.kit.numbers import JsonFloat, JsonInt
from mediakeep.transforms.options import MAX_BLUR, MAX_SIDE

TEN_YEARS = 10 * 366 * 24 * 3600


class TransformUrlIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    width: JsonInt | None = Field(None, ge=1, le=MAX_SIDE)
    height: JsonInt | None = Field(None, ge=1, le=MAX_SIDE)
    fit: Literal["cover", "contain", "fill", "inside", "outside"] | None = Field(
        None, description="with width and height; default cover"
    )
    format: Literal["jpeg", "png", "webp", "avif", "auto"] | None = Field(
        None,
        description="auto = AVIF, WebP or JPEG by the client's Accept header; "
        "default: the original's format (JPEG for non-web formats, PNG for GIF)",
    )
    quality: JsonInt | None = Field(None, ge=1, le=100)
    blur: JsonFloat | None = Field(
        None, gt=0, le=MAX_BLUR, description="Gaussian sigma, steps of 0.1"
    )
    gravity: Literal["center", "smart", "entropy"] | None = Field(
        None, description="where fit cover crops; smart = libvips attention"
    )
    expires_in: JsonInt | None = Field(
        None, ge=1, le=TEN_YEARS, description="seconds; default: the URL never expires"
    )


class TransformUrlOut(BaseModel):
    url: str
    expires_at: str | None
