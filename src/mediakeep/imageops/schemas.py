"""Bodies of the image operation routes."""

from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mediakeep.jobs.schemas import JobOut
from mediakeep.kit.numbers import NOT_BOOL, JsonBool, JsonFloat, JsonInt
from mediakeep.kit.text import Line

ImageFormat = Literal["png", "jpeg", "gif", "bmp", "tiff", "webp", "avif", "heic"]
Quality = Annotated[
    JsonInt, Field(ge=1, le=100, description="1-100; the format's default if omitted")
]
Side = Annotated[JsonInt, Field(ge=1, le=16_384)]


class Schema(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ConvertIn(Schema):
    format: ImageFormat
    quality: Quality | None = None
    lossless: JsonBool = Field(default=False, description="webp, avif and heic only")


class ResizeIn(Schema):
    width: Side | None = None
    height: Side | None = None
    fit: Literal["cover", "contain", "fill", "inside", "outside"] = Field(
        default="cover",
        description="with both sides: cover = fill the box and crop, contain = fit and pad, "
        "fill = stretch, inside = fit, outside = cover without cropping",
    )
    format: ImageFormat | None = Field(default=None, description="default: the original's")
    quality: Quality | None = None

    @model_validator(mode="after")
    def _a_side(self) -> Self:
        if self.width is None and self.height is None:
            raise ValueError("give width, height or both")
        return self


class CropIn(Schema):
    x: Annotated[JsonInt, Field(ge=0, le=1_000_000)]
    y: Annotated[JsonInt, Field(ge=0, le=1_000_000)]
    width: Side
    height: Side
    rotate: Annotated[Literal[0, 90, 180, 270], NOT_BOOL] = Field(
        default=0, description="clockwise, after cropping"
    )
    scale: Annotated[JsonFloat, Field(gt=0, le=8)] | None = Field(
        default=None, description="factor applied last (0.5 = half size)"
    )
    quality: Quality | None = None
    format: ImageFormat | None = Field(default=None, description="default: the original's")
    mode: Literal["replace", "copy"] = Field(
        description="replace = the media's next version (same id); copy = a new derived media"
    )
    regenerate_variants: JsonBool = Field(
        default=True, description="replace only: make the variants again from the new version"
    )


class BatchConvertIn(Schema):
    ids: Annotated[list[Annotated[Line, Field(max_length=64)]], Field(min_length=1, max_length=20)]
    format: ImageFormat
    quality: Quality | None = None
    lossless: JsonBool = False


class BatchConvertOut(BaseModel):
    jobs: list[JobOut]
    missing: list[str]
