"""Bodies of the signing-key routes."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from mediakeep.kit.numbers import JsonInt

MAX_GRACE_SECONDS = 7 * 24 * 3600


class RotateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grace_seconds: JsonInt = Field(
        0,
        ge=0,
        le=MAX_GRACE_SECONDS,
        description="how long links signed with older keys keep working (at most 7 days)",
    )


class RotateOut(BaseModel):
    key_id: str
    previous_valid_until: datetime
