"""Bodies of the upload-URL and finalize routes."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_serializer

from mediakeep.kit.numbers import JsonBool, JsonInt
from mediakeep.kit.text import LINE
from mediakeep.kit.time import rfc3339
from mediakeep.media.schemas import Filename, ShortText

Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-fA-F]{64}$")]


class UploadUrlIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    filename: Filename
    mime: Annotated[str, StringConstraints(min_length=3, max_length=100), LINE] = Field(
        description="The content type the client will send; the stored bytes are sniffed again"
    )
    size_bytes: JsonInt = Field(ge=1, description="Exact size of the file in bytes")
    sha256: Sha256Hex | None = Field(
        default=None, description="When the org already has these bytes, no upload is needed"
    )
    kind: Literal["image", "video", "audio", "document"] | None = None
    alt: ShortText | None = None
    caption: ShortText | None = None
    description: ShortText | None = None
    is_private: JsonBool = False


class UploadUrlOut(BaseModel):
    media_id: str
    upload_url: str
    upload_method: Literal["PUT", "POST"]
    upload_fields: dict[str, str] = Field(
        description="POST: the form fields to send before the `file` field, unchanged"
    )
    upload_headers: dict[str, str] = Field(description="PUT: the headers to send, unchanged")
    expires_at: datetime

    @field_serializer("expires_at")
    def _time(self, value: datetime) -> str:
        return rfc3339(value)


class UploadDedupedOut(BaseModel):
    media_id: str
    deduped: bool = True


class FinalizeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    etag: Annotated[str, StringConstraints(max_length=200), LINE] | None = Field(
        default=None, description="The ETag the storage answered the upload with, if known"
    )
    sha256: Sha256Hex | None = Field(
        default=None, description="Checked against the hash of the stored bytes"
    )
