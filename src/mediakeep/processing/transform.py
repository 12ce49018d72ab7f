"""Signed-transform rendering: one image file in, one resized/encoded file out. Pure: no web,
database or storage; the caller picks the paths and maps errors to HTTP."""

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

os.environ.setdefault("VIPS_BLOCK_UNTRUSTED", "1")  # before pyvips loads: no ImageMagick & co.

import pyvips  # noqa: E402

from mediakeep.processing.encoding import encode  # noqa: E402

Fit = Literal["cover", "contain", "fill", "inside", "outside"]
Gravity = Literal["center", "smart", "entropy"]
OutputFormat = Literal["jpeg", "png", "webp", "avif"]

MIME_OF: dict[str, str] = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "avif": "image/avif",
}
EXTENSION_OF: dict[str, str] = {"jpeg": "jpg", "png": "png", "webp": "webp", "avif": "avif"}
_CROP = {"center": "centre", "smart": "attention", "entropy": "entropy"}
_UNBOUNDED = 10_000_000  # a box side that never constrains (VIPS_MAX_COORD)
_WHITE = [255.0, 255.0, 255.0]


class TransformError(Exception):
    """The source does not decode or cannot be rendered; the message is safe to show a user."""


@dataclass(frozen=True)
class TransformSpec:
    """What to render; every field already validated and defaulted by the caller."""

    format: OutputFormat
    width: int | None = None
    height: int | None = None
    fit: Fit = "inside"
    gravity: Gravity = "center"
    quality: int | None = None
    blur: float | None = None


@dataclass(frozen=True)
class TransformResult:
    width: int
    height: int
    size_bytes: int
    mime: str


def configure_engine() -> None:
    """Process-wide libvips settings for serving: no operation cache. Every request renders a
    different thing, so the cache would only hold decoded pixels and grow the RSS."""
    pyvips.cache_set_max(0)
    pyvips.cache_set_max_mem(0)


def render(
    source: Path,
    spec: TransformSpec,
    output: Path,
    *,
    max_pixels: int,
    upright: tuple[int, int] | None = None,
) -> TransformResult:
    """Render `spec` of the image at `source` into `output` (written whole, then closed).

    `upright`: the source's width and height after EXIF rotation, when the caller has read
    its header already and checked it against `max_pixels` (`processing.image.footprint`);
    the header is not read again then. Pixels are decoded once, in one pipeline."""
    try:
        image = _resized(source, spec, max_pixels, upright)
        if spec.blur:
            image = image.gaussblur(spec.blur)
        image = _to_srgb(image)
        if spec.format == "jpeg":
            image = _flatten(image)
        encode(image, output, spec.format, quality=spec.quality)
        width, height = image.width, image.height
    except pyvips.Error as exc:
        raise TransformError("the image does not decode") from exc
    return TransformResult(
        width=width,
        height=height,
        size_bytes=output.stat().st_size,
        mime=MIME_OF[spec.format],
    )


def _oriented_size(header: Any) -> tuple[int, int]:
    orientation = header.get("orientation") if header.get_typeof("orientation") else 1
    if orientation in (5, 6, 7, 8):
        return header.height, header.width
    return header.width, header.height


def _resized(
    source: Path, spec: TransformSpec, max_pixels: int, upright: tuple[int, int] | None
) -> Any:
    if upright is None:
        header = pyvips.Image.new_from_file(str(source), access="sequential")
        pages = header.get("n-pages") if header.get_typeof("n-pages") else 1
        if header.width * header.height * pages > max_pixels:
            raise TransformError(f"the image is over the limit of {max_pixels} pixels")
        upright = _oriented_size(header)
    width, height = upright
    path = str(source)
    # thumbnail: shrink-on-load (JPEG DCT scaling, WebP/AVIF/TIFF pyramids), auto-rotate by EXIF,
    # and only the first page of an animation.
    if spec.width is None and spec.height is None:
        return pyvips.Image.thumbnail(path, width, height=height, size="down")
    box_w = spec.width or _UNBOUNDED
    box_h = spec.height or _UNBOUNDED
    one_side = spec.width is None or spec.height is None
    if spec.fit == "fill" and not one_side:
        return pyvips.Image.thumbnail(path, box_w, height=box_h, size="force")
    if spec.fit == "cover" and not one_side:
        return pyvips.Image.thumbnail(
            path, box_w, height=box_h, size="down", crop=_CROP[spec.gravity]
        )
    if spec.fit == "outside" and not one_side:
        scale = min(1.0, max(box_w / width, box_h / height))
        box_w, box_h = max(1, round(width * scale)), max(1, round(height * scale))
    image = pyvips.Image.thumbnail(path, box_w, height=box_h, size="down")
    if spec.fit == "contain" and not one_side and (image.width, image.height) != (box_w, box_h):
        image = _pad(image, box_w, box_h, opaque=spec.format == "jpeg")
    return image


def _pad(image: Any, width: int, height: int, *, opaque: bool) -> Any:
    """Letterbox to exactly width × height: transparent where the format allows, else white."""
    image = _to_srgb(image)
    if image.bands < 3:
        image = image.colourspace("srgb")
    if opaque:
        image = _flatten(image)
        background = _WHITE
    else:
        if not image.hasalpha():
            image = image.bandjoin(255)
        background = [0.0, 0.0, 0.0, 0.0]
    return image.gravity("centre", width, height, extend="background", background=background)


def _flatten(image: Any) -> Any:
    if not image.hasalpha():
        return image
    return image.flatten(background=[255.0] * (image.bands - 1))


def _to_srgb(image: Any) -> Any:
    if image.interpretation not in ("srgb", "b-w"):
        image = image.colourspace("srgb")
    if image.format != "uchar":
        image = image.cast("uchar")
    return image
