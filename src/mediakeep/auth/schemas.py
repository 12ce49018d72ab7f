"""Request and response bodies of the auth, users and API key routes."""

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, EmailStr, Field, field_validator

from mediakeep.auth.principal import Role
from mediakeep.kit.text import Line

PASSWORD_MIN = 8
PASSWORD_MAX = 1024  # Argon2 takes any length; this only bounds the work one request can ask for


class RegisterRequest(BaseModel):
    email: EmailStr
    password: str = Field(min_length=PASSWORD_MIN, max_length=PASSWORD_MAX)
    name: Line | None = Field(None, max_length=200)


class LoginRequest(BaseModel):
    email: Line = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=PASSWORD_MAX)


class RefreshRequest(BaseModel):
    refresh_token: Line = Field(min_length=1, max_length=200)


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - a scheme name, not a secret
    expires_in: int = Field(description="Seconds until the access token expires")


class OrgMembershipOut(BaseModel):
    id: str
    slug: str
    name: str
    role: Role


class UserOut(BaseModel):
    id: str
    email: str
    name: str | None
    created_at: datetime
    default_org_id: str | None
    orgs: list[OrgMembershipOut]


class UpdateMeRequest(BaseModel):
    name: Line | None = Field(None, max_length=200)
    password: str | None = Field(None, min_length=PASSWORD_MIN, max_length=PASSWORD_MAX)
    # Needed with `password`: a stolen access token alone must not take the account over.
    current_password: str | None = Field(None, max_length=PASSWORD_MAX)


def _as_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class ApiKeyCreate(BaseModel):
    name: Line = Field(min_length=1, max_length=200)
    role: Role = "member"
    expires_at: datetime | None = Field(None, description="RFC 3339; a time without zone is UTC")

    @field_validator("expires_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return _as_utc(value)


class ApiKeyOut(BaseModel):
    id: str
    name: str
    prefix: str = Field(description="The key's first characters, to recognise it by")
    role: Role
    org_id: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The secret key; shown only in this answer")


class ApiKeyList(BaseModel):
    data: list[ApiKeyOut]
    next_cursor: str | None = None
