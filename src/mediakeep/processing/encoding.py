"""The one table of image encoders: format → saver, default quality and fixed options.

Variants, conversions, resizes and crops (processing/image.py) and signed transforms
(processing/transform.py) all write through `encode`, so a format comes out the same whichever
path made it. The default qualities are the ones signed transforms always used (their cache
keys hash the resolved quality, so cached renditions stay valid); docs/api.md lists them.
"""

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

os.environ.setdefault("VIPS_BLOCK_UNTRUSTED", "1")  # before pyvips loads: no ImageMagick & co.

import pillow_heif  # noqa: E402
import pyvips  # noqa: E402
from PIL import Image as PILImage  # noqa: E402

PILLOW = "pillow"  # the saver where the bundled libvips has no encoder (HEVC) or none we use


@dataclass(frozen=True)
class Encoder:
    saver: str  # the `pyvips.Image` save method, or PILLOW
    default_quality: int | None  # None: the format has no quality setting
    options: Mapping[str, Any] = field(default_factory=dict)  # given to the saver as they are
    lossless: bool = False  # the saver takes `lossless`


ENCODERS: Mapping[str, Encoder] = MappingProxyType(
    {
        "jpeg": Encoder("jpegsave", 80, {"optimize_coding": True}),
        "png": Encoder("pngsave", None, {"compression": 6}),
        "webp": Encoder("webpsave", 80, {"effort": 4}, lossless=True),
        "gif": Encoder("gifsave", None),
        "tiff": Encoder("tiffsave", None, {"compression": "deflate", "predictor": "horizontal"}),
        # libvips effort 1 = aom speed 8: about 25x faster than the default, fit for a request.
        "avif": Encoder("heifsave", 55, {"compression": "av1", "effort": 1}, lossless=True),
        "heic": Encoder(PILLOW, 80, lossless=True),
        "bmp": Encoder(PILLOW, None),
    }
)


def default_quality(fmt: str) -> int | None:
    """The quality `fmt` is written at when the caller names none."""
    return ENCODERS[fmt].default_quality


def encode(
    image: pyvips.Image,
    out: Path,
    fmt: str,
    *,
    quality: int | None = None,
    lossless: bool = False,
) -> None:
    """Write `image` (8-bit sRGB; alpha only where `fmt` keeps it) to `out` as `fmt`, with no
    EXIF, XMP, IPTC or ICC. Raises pyvips.Error when libvips cannot write it."""
    encoder = ENCODERS[fmt]
    q = quality or encoder.default_quality
    if encoder.saver == PILLOW:
        _save_with_pillow(image, out, fmt, -1 if lossless and encoder.lossless else q)
        return
    options: dict[str, Any] = {**encoder.options, "keep": "none"}
    if encoder.default_quality is not None:
        options["Q"] = q
    if encoder.lossless:
        options["lossless"] = lossless
    getattr(image, encoder.saver)(str(out), **options)


def _save_with_pillow(image: pyvips.Image, out: Path, fmt: str, quality: int | None) -> None:
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[image.bands]
    picture = PILImage.frombytes(mode, (image.width, image.height), image.write_to_memory())
    if fmt == "bmp":
        picture.save(out, format="BMP")
        return
    if mode in ("L", "LA"):
        picture = picture.convert("RGBA" if mode == "LA" else "RGB")
    pillow_heif.from_pillow(picture).save(str(out), quality=quality)
