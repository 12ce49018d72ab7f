"""Request and response bodies of the organisation routes."""

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints, field_serializer

from mediakeep.auth.principal import Role
from mediakeep.kit.text import NAME
from mediakeep.kit.time import rfc3339

SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}$"

Slug = Annotated[str, StringConstraints(pattern=SLUG_PATTERN)]
OrgName = Annotated[str, StringConstraints(min_length=1, max_length=200), NAME]


class OrgCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slug: Slug = Field(description="2..63 of a-z, 0-9 and '-', not starting with '-'")
    name: OrgName


class OrgOut(BaseModel):
    id: str
    slug: str
    name: str
    role: Role = Field(description="The caller's role in the organisation")
    created_at: datetime

    @field_serializer("created_at")
    def _time(self, value: datetime) -> str:
        return rfc3339(value)


class OrgList(BaseModel):
    data: list[OrgOut]
    next_cursor: str | None
    total: int | None = Field(default=None, exclude_if=lambda v: v is None)


class MemberAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    role: Role = "member"


class MemberOut(BaseModel):
    user_id: str
    email: str
    name: str | None
    role: Role
    created_at: datetime = Field(description="When the user joined the organisation")

    @field_serializer("created_at")
    def _time(self, value: datetime) -> str:
        return rfc3339(value)


class MemberList(BaseModel):
    data: list[MemberOut]
    next_cursor: str | None
    total: int | None = Field(default=None, exclude_if=lambda v: v is None)
