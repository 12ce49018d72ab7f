"""Request and response bodies of the webhook routes."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_serializer

from mediakeep.kit.numbers import JsonBool
from mediakeep.kit.text import NAME, TEXT
from mediakeep.kit.time import rfc3339

EventName = Literal[
    "*",
    "media.uploaded",
    "media.ready",
    "media.updated",
    "media.deleted",
    "media.quarantined",
    "job.completed",
    "job.failed",
    "collection.created",
    "collection.updated",
    "collection.deleted",
    "user.registered",
]
Url = Annotated[str, StringConstraints(min_length=1, max_length=2000), NAME]
Description = Annotated[str, StringConstraints(max_length=1000), TEXT]


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Url
    events: list[EventName] = Field(min_length=1, max_length=20, description='"*" = all')
    description: Description | None = None


class WebhookPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Url | None = None
    events: list[EventName] | None = Field(default=None, min_length=1, max_length=20)
    description: Description | None = None
    enabled: JsonBool | None = Field(default=None, description="true re-enables a disabled webhook")


class WebhookOut(BaseModel):
    id: str
    url: str
    events: list[str]
    description: str | None
    enabled: bool
    disabled_reason: str | None
    created_at: datetime
    updated_at: datetime

    @field_serializer("created_at", "updated_at")
    def _times(self, value: datetime) -> str:
        return rfc3339(value)


class WebhookCreated(WebhookOut):
    secret: str = Field(description="whsec_… signing secret; shown only in this response")


class WebhookList(BaseModel):
    data: list[WebhookOut]


class AttemptOut(BaseModel):
    at: str
    status_code: int | None
    latency_ms: int
    response: str | None = Field(description="the first 1 KB of the receiver's answer")
    error: str | None


class DeliveryOut(BaseModel):
    id: str
    webhook_id: str
    event_id: str
    event_type: str
    status: Literal["pending", "succeeded", "failed"]
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    attempt_log: list[AttemptOut]
    created_at: datetime

    @field_serializer("created_at", "next_attempt_at")
    def _times(self, value: datetime | None) -> str | None:
        return rfc3339(value) if value is not None else None


class DeliveryList(BaseModel):
    data: list[DeliveryOut]
