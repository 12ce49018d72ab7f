"""MEDIA_VARIANTS: the named presets every image gets, and which of them fit a given source.

Pure and free of libvips, so that Settings can check MEDIA_VARIANTS when it loads.
"""

from dataclasses import dataclass
from typing import Literal

VIPS_MAX_COORD = 10_000_000
MAX_SIDE = 65_500  # libvips, WebP and JPEG all stop near here
VARIANT_FORMATS = ("webp", "jpeg", "png", "avif", "gif")


@dataclass(frozen=True)
class VariantSpec:
    """One preset of MEDIA_VARIANTS. width and height None = the original size."""

    name: str
    width: int | None
    height: int | None
    fit: Literal["inside", "cover"]
    format: str
    quality: int | None


DEFAULT_VARIANTS = (
    "thumbnail:150x150:cover:webp,small:320:webp,medium:800:webp,large:1600:webp,"
    "original_webp:original:webp"
)


def parse_variant_specs(text: str) -> tuple[VariantSpec, ...]:
    """MEDIA_VARIANTS: comma-separated `name:size[:fit][:format][:qN]`.

    size is `W` (that wide), `xH` (that high), `WxH` (fit in the box) or `original`; fit is
    `inside` (default) or `cover` (fill the box, centre-crop; needs `WxH`); format is one of
    VARIANT_FORMATS (default webp); `q1`..`q100` sets the quality. Raises ValueError.
    """
    specs: list[VariantSpec] = []
    for entry in (item.strip() for item in text.split(",")):
        if not entry:
            continue
        name, _, rest = entry.partition(":")
        if not (0 < len(name) <= 40 and all(c.isdigit() or c.islower() or c == "_" for c in name)):
            raise ValueError(f"variant name {name!r}: use 1-40 of a-z, 0-9 and _")
        if not name.isascii():
            raise ValueError(f"variant name {name!r}: use 1-40 of a-z, 0-9 and _")
        tokens = rest.split(":") if rest else []
        if not tokens:
            raise ValueError(f"variant {name}: a size is needed (W, xH, WxH or original)")
        width, height = _parse_size(name, tokens[0])
        fit: Literal["inside", "cover"] = "inside"
        fmt = "webp"
        quality: int | None = None
        for option in tokens[1:]:
            if option in ("inside", "cover"):
                fit = "cover" if option == "cover" else "inside"
            elif option in VARIANT_FORMATS:
                fmt = option
            elif option.startswith("q") and option[1:].isdigit() and 1 <= int(option[1:]) <= 100:
                quality = int(option[1:])
            else:
                raise ValueError(f"variant {name}: unknown option {option!r}")
        if fit == "cover" and (width is None or height is None):
            raise ValueError(f"variant {name}: cover needs a WxH box")
        if any(spec.name == name for spec in specs):
            raise ValueError(f"variant {name} is defined twice")
        specs.append(VariantSpec(name, width, height, fit, fmt, quality))
    return tuple(specs)


def _parse_size(name: str, size: str) -> tuple[int | None, int | None]:
    if size == "original":
        return None, None
    wide, sep, high = size.partition("x")
    try:
        width = int(wide) if wide else None
        height = int(high) if sep and high else None
    except ValueError as exc:
        raise ValueError(f"variant {name}: bad size {size!r}") from exc
    if (width is None and height is None) or any(
        v is not None and not 1 <= v <= MAX_SIDE for v in (width, height)
    ):
        raise ValueError(f"variant {name}: bad size {size!r}")
    return width, height


def variant_box(spec: VariantSpec, width: int, height: int) -> tuple[int, int, bool] | None:
    """(box width, box height, crop) for a source of width×height as displayed; None = skip.

    Nothing is upscaled: a preset larger than the source is skipped, except `cover` presets,
    whose box shrinks (keeping its shape) to fit inside the source.
    """
    if spec.width is None and spec.height is None:
        return width, height, False
    if spec.fit == "cover":
        assert spec.width is not None
        assert spec.height is not None
        scale = min(1.0, width / spec.width, height / spec.height)
        return max(1, round(spec.width * scale)), max(1, round(spec.height * scale)), True
    if spec.width is not None and spec.height is not None:
        if width < spec.width and height < spec.height:
            return None
        return spec.width, spec.height, False
    if spec.width is not None:
        return (spec.width, VIPS_MAX_COORD, False) if width >= spec.width else None
    assert spec.height is not None
    return (VIPS_MAX_COORD, spec.height, False) if height >= spec.height else None
