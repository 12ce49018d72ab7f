"""Bodies of the variant routes."""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from mediakeep.kit.text import LINE

VariantName = Annotated[str, StringConstraints(min_length=1, max_length=40), LINE]


class RegenerateVariantsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    names: Annotated[list[VariantName], Field(min_length=1, max_length=50)] | None = Field(
        default=None, description="Presets to make again; omitted = every MEDIA_VARIANTS preset"
    )
