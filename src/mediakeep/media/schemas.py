"""The media object of API.md and the bodies of the media routes."""

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AnyUrl,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_serializer,
)

from mediakeep.kit.numbers import JsonBool
from mediakeep.kit.text import LINE, TEXT, JsonDocument, Line
from mediakeep.kit.time import rfc3339

ShortText = Annotated[str, StringConstraints(max_length=10_000), TEXT]
Filename = Annotated[str, StringConstraints(min_length=1, max_length=255), LINE]
_TIME_SHAPE = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def _rfc3339_shaped(value: Any) -> Any:
    # pydantic would also take a bare number as a Unix time; API.md's times are RFC 3339.
    if isinstance(value, str) and not _TIME_SHAPE.match(value):
        raise ValueError("expected an RFC 3339 time such as 2026-01-01T00:00:00Z")
    return value


TimeFilter = Annotated[datetime, BeforeValidator(_rfc3339_shaped)]


class Schema(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VariantOut(BaseModel):
    name: str
    mime: str
    width: int | None
    height: int | None
    size_bytes: int
    url: str


class DerivedFrom(BaseModel):
    media_id: str
    operation: str


class MediaOut(BaseModel):
    # One answer can serve many requests (`media.service.present_rows` reuses it): never
    # changed once made.
    model_config = ConfigDict(frozen=True)

    id: str
    org_id: str
    kind: Literal["image", "video", "audio", "document"]
    source: str
    status: str
    filename: str
    mime: str
    size_bytes: int
    sha256: str | None
    width: int | None
    height: int | None
    duration_seconds: float | None
    alt: str | None
    caption: str | None
    description: str | None
    is_private: bool
    metadata: dict[str, Any]
    placeholder: dict[str, Any] | None
    derived_from: DerivedFrom | None
    url: str | None
    expires_at: datetime | None
    variants: list[VariantOut]
    captions: list[dict[str, Any]]
    transcript: dict[str, Any] | None
    stream: dict[str, Any] | None
    version: int
    created_at: datetime
    updated_at: datetime
    deduped: bool | None = Field(
        default=None, description="Only on create calls", exclude_if=lambda v: v is None
    )

    @field_serializer("created_at", "updated_at", "expires_at")
    def _times(self, value: datetime | None) -> str | None:
        return rfc3339(value) if value else None


class RemoteUrlSource(Schema):
    type: Literal["remote_url"]
    url: AnyUrl


class DataUrlSource(Schema):
    type: Literal["data_url"]
    data_url: Line


class MediaFieldsIn(Schema):
    filename: Filename | None = None
    alt: ShortText | None = None
    caption: ShortText | None = None
    description: ShortText | None = None
    is_private: JsonBool = False
    collection_id: Annotated[str, StringConstraints(max_length=64), LINE] | None = None
    generate_variants: JsonBool = True
    async_: JsonBool = Field(default=False, alias="async")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class CreateMediaIn(MediaFieldsIn):
    source: Annotated[RemoteUrlSource | DataUrlSource, Field(discriminator="type")]


class UpdateMediaIn(Schema):
    filename: Filename | None = None
    alt: ShortText | None = None
    caption: ShortText | None = None
    description: ShortText | None = None
    is_private: JsonBool | None = None
    metadata: JsonDocument | None = None


class IdsIn(Schema):
    ids: Annotated[
        list[Annotated[str, StringConstraints(max_length=64), LINE]],
        Field(min_length=1, max_length=100),
    ]


class MediaList(BaseModel):
    data: list[MediaOut]
    next_cursor: str | None
    total: int | None = Field(default=None, exclude_if=lambda v: v is None)


class BatchOut(BaseModel):
    data: list[MediaOut]
    missing: list[str]


class ResolvedUrl(BaseModel):
    id: str
    url: str
    expires_at: str


class ResolveOut(BaseModel):
    media: list[ResolvedUrl]
    missing: list[str]


class PresignOut(BaseModel):
    id: str
    url: str
    expires_at: str
    expires_in: int


class VariantList(BaseModel):
    data: list[VariantOut]
