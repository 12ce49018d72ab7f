"""What rendering made before it is recorded: below both the variants service and the video
extras (poster, storyboard, waveform), which render into it and are recorded by the service."""

from dataclasses import dataclass, field

from mediakeep.processing.image import Output
from mediakeep.processing.presets import VariantSpec


@dataclass
class RenderedVariants:
    """Variant files stored for one version of a media, not yet recorded."""

    media_id: str
    version: int
    specs: tuple[VariantSpec, ...]  # every preset that was considered
    made: list[tuple[VariantSpec, str, Output]] = field(default_factory=list)  # (spec, key, out)
    complete: bool = True  # every preset was considered (names=None)
