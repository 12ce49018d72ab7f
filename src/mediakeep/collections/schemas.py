"""Request and response bodies of the collection routes."""

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_serializer

from mediakeep.kit.text import LINE, NAME, TEXT
from mediakeep.kit.time import rfc3339

MAX_BULK = 500

Name = Annotated[str, StringConstraints(min_length=1, max_length=200), NAME]
Description = Annotated[str, StringConstraints(max_length=10_000), TEXT]
MediaId = Annotated[str, StringConstraints(max_length=64), LINE]


class CollectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    description: Description | None = None


class CollectionPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    description: Description | None = Field(default=None, description="null clears it")


class CollectionOut(BaseModel):
    id: str
    name: str
    description: str | None
    media_count: int
    created_by: str | None = Field(description="Id of the user who created the collection")
    created_at: datetime
    updated_at: datetime

    @field_serializer("created_at", "updated_at")
    def _times(self, value: datetime) -> str:
        return rfc3339(value)


class CollectionList(BaseModel):
    data: list[CollectionOut]
    next_cursor: str | None
    total: int | None = Field(default=None, exclude_if=lambda v: v is None)


class MediaIdsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    media_ids: Annotated[list[MediaId], Field(min_length=1, max_length=MAX_BULK)]


class AddedOut(BaseModel):
    added: list[str] = Field(
        description="Requested ids now in the collection (also those that already were)"
    )
    missing: list[str] = Field(description="Requested ids that name no media of this org")
