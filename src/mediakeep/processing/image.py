"""Images: facts at ingest, variants, conversions. Pure: paths in, files out.

libvips does the work (shrink-on-load `thumbnail`, streaming). Where the bundled libvips has no
codec, a narrow fallback decodes: pillow-heif for HEVC-coded HEIC/HEIF (libvips here lacks
HEVC) and Pillow, pinned to its BMP plugin, for BMP. Every size is checked against the pixel
limit from the header before anything is decoded. Outputs are upright (EXIF orientation
applied) and carry no EXIF, XMP or IPTC: GPS, serial numbers and maker notes never leave.
"""

import contextlib
import ctypes
import ctypes.util
import math
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

os.environ.setdefault("VIPS_BLOCK_UNTRUSTED", "1")  # before pyvips loads: no ImageMagick & co.

import pillow_heif  # noqa: E402
import pyvips  # noqa: E402
from PIL import Image as PILImage  # noqa: E402
from PIL import ImageOps  # noqa: E402

from mediakeep.processing.encoding import encode  # noqa: E402
from mediakeep.processing.placeholders import placeholder_of  # noqa: E402
from mediakeep.processing.presets import (  # noqa: E402
    MAX_SIDE,
    VariantSpec,
    variant_box,
)

# No operation cache (as imgproxy): every input is a new file, and a cached load of a path
# whose bytes were rewritten in place would answer the old image.
pyvips.cache_set_max(0)

MAX_FRAMES = 5_000  # an animation with more frames is refused whatever its frame size
PLACEHOLDER_SIDE = 32

# libvips loaders an upload may reach; with VIPS_BLOCK_UNTRUSTED the rest are blocked anyway.
_VIPS_LOADERS = {
    "jpegload": "jpeg",
    "pngload": "png",
    "gifload": "gif",
    "webpload": "webp",
    "heifload": "heif",
    "tiffload": "tiff",
}
_ANIMATED_LOADERS = ("gif", "webp")

Fit = Literal["cover", "contain", "fill", "inside", "outside"]


class ImageError(Exception):
    """The bytes claim to be an image but cannot be used; the message is safe to show a user."""


class OutputTooLarge(ImageError):
    """The requested result would be over the pixel limit (a bad request, not bad bytes)."""


@dataclass(frozen=True)
class OutputFormat:
    """What a format keeps; how it is encoded (saver, quality) is processing/encoding.py's."""

    name: str
    mime: str
    ext: str
    animated: bool  # keeps every frame of an animation
    alpha: bool


OUTPUT_FORMATS: dict[str, OutputFormat] = {
    f.name: f
    for f in (
        OutputFormat("jpeg", "image/jpeg", "jpg", False, False),
        OutputFormat("png", "image/png", "png", False, True),
        OutputFormat("webp", "image/webp", "webp", True, True),
        OutputFormat("gif", "image/gif", "gif", True, True),
        OutputFormat("avif", "image/avif", "avif", False, True),
        OutputFormat("heic", "image/heic", "heic", False, True),
        OutputFormat("tiff", "image/tiff", "tiff", False, True),
        OutputFormat("bmp", "image/bmp", "bmp", False, False),
    )
}

# The output format that keeps an original's own format (`format` omitted on resize/crop).
_SAME_FORMAT = {
    "jpeg": "jpeg",
    "png": "png",
    "gif": "gif",
    "webp": "webp",
    "tiff": "tiff",
    "bmp": "bmp",
    "avif": "avif",
    "heic": "heic",
}


@dataclass
class ImageFacts:
    width: int
    height: int
    metadata: dict[str, Any]
    placeholder: dict[str, Any] | None


@dataclass(frozen=True)
class Output:
    path: Path
    format: OutputFormat
    width: int
    height: int  # of one frame
    size_bytes: int


# ----------------------------------------------------------------------------- sources


@dataclass
class _Source:
    path: Path
    format: str  # jpeg, png, gif, webp, heic, avif, tiff, bmp
    width: int  # as stored
    height: int  # of one frame, as stored
    pages: int
    orientation: int
    header: pyvips.Image | None  # None when libvips cannot read the format at all
    vips_decodes: bool
    # An embedded ICC profile or CMYK: pixels go through a colour transform to sRGB. Untagged
    # RGB is sRGB already, and an identity transform would double the cost of a variant set.
    colour_managed: bool = False
    _decoded: pyvips.Image | None = field(default=None, repr=False)

    @property
    def display_size(self) -> tuple[int, int]:
        if self.orientation in (5, 6, 7, 8):
            return self.height, self.width
        return self.width, self.height

    @property
    def animated(self) -> bool:
        return self.pages > 1 and self.format in _ANIMATED_LOADERS


def _get(image: pyvips.Image, name: str) -> Any:
    try:
        if image.get_typeof(name) == 0:
            return None
        return image.get(name)
    except pyvips.Error:
        return None


def _is_bmp(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(2) == b"BM"


def _open(path: Path, max_pixels: int | None) -> _Source:
    """The image's header only; refuses pixel bombs before a single pixel is decoded."""
    try:
        header = pyvips.Image.new_from_file(str(path))
    except pyvips.Error:
        header = None
    if header is None:
        if not _is_bmp(path):
            raise ImageError("the image does not decode")
        try:
            with PILImage.open(path, formats=["BMP"]) as bmp:
                width, height = bmp.size
        except (OSError, ValueError, PILImage.DecompressionBombError) as exc:
            raise ImageError("the image does not decode") from exc
        source = _Source(path, "bmp", width, height, 1, 1, None, False)
    else:
        loader = _VIPS_LOADERS.get(str(_get(header, "vips-loader") or ""))
        if loader is None:
            raise ImageError("this image format is not supported")
        pages = int(_get(header, "n-pages") or 1)
        page_height = int(_get(header, "page-height") or header.height)
        fmt, vips_decodes = loader, True
        if loader == "heif":
            compression = _get(header, "heif-compression")
            fmt = "avif" if compression == "av1" else "heic"
            vips_decodes = compression == "av1"
        orientation = int(_get(header, "orientation") or 1)
        if not 1 <= orientation <= 8:
            orientation = 1
        height = page_height if pages > 1 and loader in _ANIMATED_LOADERS else header.height
        source = _Source(path, fmt, header.width, height, pages, orientation, header, vips_decodes)
        source.colour_managed = (
            _get(header, "icc-profile-data") is not None or header.interpretation == "cmyk"
        )
    _guard(source.width, source.height, source.pages, max_pixels)
    return source


def _guard(width: int, height: int, pages: int, max_pixels: int | None) -> None:
    if width <= 0 or height <= 0:
        raise ImageError("the image has no pixels")
    if pages > MAX_FRAMES:
        raise ImageError(f"the image declares {pages} frames, over the limit of {MAX_FRAMES}")
    if max_pixels is not None and width * height * pages > max_pixels:
        raise ImageError(
            f"the image declares {width}x{height}"
            + (f"x{pages} frames" if pages > 1 else "")
            + f" pixels, over the limit of {max_pixels}"
        )


def _foreign_decode(source: _Source) -> pyvips.Image:
    """Formats libvips here cannot decode, whole and upright, as an in-memory libvips image."""
    if source._decoded is not None:
        return source._decoded
    icc: bytes | None = None
    try:
        if source.format == "bmp":
            with PILImage.open(source.path, formats=["BMP"]) as opened:
                picture = ImageOps.exif_transpose(opened)
                picture.load()
        else:
            heif = pillow_heif.open_heif(str(source.path), convert_hdr_to_8bit=True)
            picture = heif.to_pillow()  # libheif applies the container's rotation and mirror
            icc = heif.info.get("icc_profile") or None
    except (OSError, ValueError, RuntimeError, SyntaxError) as exc:
        raise ImageError("the image is truncated or corrupt") from exc
    if picture.mode not in ("L", "LA", "RGB", "RGBA"):
        picture = picture.convert("RGBA" if "A" in picture.getbands() else "RGB")
    _guard(picture.width, picture.height, 1, None)
    bands = len(picture.getbands())
    image = pyvips.Image.new_from_memory(
        picture.tobytes(), picture.width, picture.height, bands, "uchar"
    )
    image = image.copy(interpretation="b-w" if bands <= 2 else "srgb")
    if icc:
        image.set_type(pyvips.GValue.blob_type, "icc-profile-data", icc)
    source._decoded = image
    return image


def _thumb(
    source: _Source,
    width: int,
    height: int,
    *,
    crop: str | None = None,
    size: str = "down",
    all_frames: bool = False,
) -> pyvips.Image:
    """libvips `thumbnail` (shrink-on-load, auto-rotate, sRGB out) to fit width×height."""
    options: dict[str, Any] = {"height": height, "size": size}
    if crop:
        options["crop"] = crop
    if not source.vips_decodes:
        decoded = _foreign_decode(source)
        if _get(decoded, "icc-profile-data") is not None:
            options["output_profile"] = "srgb"
        return decoded.thumbnail_image(width, **options)
    if source.colour_managed:
        options["output_profile"] = "srgb"
    name = str(source.path)
    if all_frames and source.animated:
        name += "[n=-1]"
        if crop:
            # libvips crops an animation as one tall strip: scale to cover, then crop each frame.
            return _cover_frames(name, source, width, height, options)
    try:
        return pyvips.Image.thumbnail(name, width, **options)
    except pyvips.Error as exc:
        raise ImageError("the image does not decode") from exc


def _cover_frames(
    name: str, source: _Source, width: int, height: int, options: dict[str, Any]
) -> pyvips.Image:
    sw, sh = source.display_size
    scale = max(width / sw, height / sh)
    cover_width, cover_height = max(width, round(sw * scale)), max(height, round(sh * scale))
    options = {k: v for k, v in options.items() if k != "crop"}
    options.update(height=cover_height, size="force")
    try:
        scaled = pyvips.Image.thumbnail(name, cover_width, **options)
    except pyvips.Error as exc:
        raise ImageError("the image does not decode") from exc
    return _per_frame(
        scaled,
        lambda frame: frame.crop(
            (frame.width - width) // 2, (frame.height - height) // 2, width, height
        ),
    )


def _srgb8(image: pyvips.Image) -> pyvips.Image:
    """8-bit sRGB (or 8-bit grey), keeping alpha."""
    if image.interpretation in ("b-w", "grey16"):
        target = "b-w"
    else:
        target = "srgb"
    if image.interpretation != target or image.format != "uchar":
        image = image.colourspace(target)
    if image.format != "uchar":
        image = image.cast("uchar")
    return image


# ----------------------------------------------------------------------------- facts


def inspect(path: Path, *, max_pixels: int) -> ImageFacts:
    """Format, size (as displayed), orientation, frames, colour, EXIF subset and placeholder.

    The whole image is decoded once (sequentially, in constant memory on libvips' side), so
    truncated or corrupt data is refused here rather than when a variant is made.
    """
    source = _open(path, max_pixels)
    try:
        if source.vips_decodes:
            every_frame = {"n": -1} if source.animated else {}
            decoded = pyvips.Image.new_from_file(
                str(path), access="sequential", fail_on="truncated", **every_frame
            )
            decoded.avg()
        else:
            _foreign_decode(source)
    except pyvips.Error as exc:
        raise ImageError("the image is truncated or corrupt") from exc
    width, height = source.display_size
    header = source.header
    metadata: dict[str, Any] = {
        "format": source.format,
        "orientation": source.orientation,
        "pages": source.pages,
        "animated": source.animated,
    }
    if source.animated:
        metadata["frames"] = source.pages
    exif_blob: bytes | None = None
    if header is not None:
        metadata["bands"] = header.bands
        metadata["has_alpha"] = bool(header.hasalpha())
        metadata["color_space"] = str(header.interpretation)
        metadata["icc_profile"] = _get(header, "icc-profile-data") is not None
        exif_blob = _get(header, "exif-data")
    else:
        decoded_bmp = _foreign_decode(source)
        metadata["bands"] = decoded_bmp.bands
        metadata["has_alpha"] = bool(decoded_bmp.hasalpha())
        metadata["color_space"] = str(decoded_bmp.interpretation)
        metadata["icc_profile"] = False
    if not exif_blob and source.format == "heic":
        with contextlib.suppress(OSError, ValueError, RuntimeError):
            exif_blob = pillow_heif.open_heif(str(path)).info.get("exif")
    exif = exif_subset(exif_blob) if exif_blob else {}
    if exif:
        metadata["exif"] = exif
    return ImageFacts(width, height, metadata, _placeholder(source))


def _placeholder(source: _Source) -> dict[str, Any] | None:
    try:
        tiny = _srgb8(_thumb(source, PLACEHOLDER_SIDE, PLACEHOLDER_SIDE))
        if tiny.bands in (1, 2):
            tiny = tiny.colourspace("srgb")
        if tiny.bands > 4:
            tiny = tiny.extract_band(0, n=4)
        pixels = bytes(tiny.write_to_memory())
        return placeholder_of(tiny.width, tiny.height, tiny.bands, pixels)
    except (pyvips.Error, ImageError, ValueError):
        return None  # a placeholder is a nicety; its absence never fails an upload


# EXIF tags kept in `metadata.exif` (an allow-list: anything else, GPS and serial numbers
# included, is never copied), by IFD, with the name they are shown under.
_IFD0_TAGS = {
    0x010F: "Make",
    0x0110: "Model",
    0x0112: "Orientation",
    0x0131: "Software",
    0x0132: "DateTime",
    0x8298: "Copyright",
}
_EXIF_TAGS = {
    0x829A: "ExposureTime",
    0x829D: "FNumber",
    0x8822: "ExposureProgram",
    0x8827: "ISO",
    0x9003: "DateTimeOriginal",
    0x9004: "DateTimeDigitized",
    0x9011: "OffsetTimeOriginal",
    0x9201: "ShutterSpeedValue",
    0x9202: "ApertureValue",
    0x9204: "ExposureBiasValue",
    0x9207: "MeteringMode",
    0x9209: "Flash",
    0x920A: "FocalLength",
    0xA002: "PixelXDimension",
    0xA003: "PixelYDimension",
    0xA402: "ExposureMode",
    0xA403: "WhiteBalance",
    0xA405: "FocalLengthIn35mmFilm",
    0xA406: "SceneCaptureType",
    0xA433: "LensMake",
    0xA434: "LensModel",
}
_EXIF_IFD = 0x8769
_GPS_IFD = 0x8825
# Removed from a stored original by MEDIA_STRIP_EXIF_ORIGINAL (a deny-list: the original keeps
# everything else): who and where, and the serials that tie photos to one camera.
_PRIVATE_IFD0 = {0x013B, 0xC62F, _GPS_IFD}  # Artist, CameraSerialNumber, GPS IFD
_PRIVATE_EXIF = {0x927C, 0x9286, 0xA420, 0xA430, 0xA431, 0xA435}
# MakerNote, UserComment, ImageUniqueID, CameraOwnerName, BodySerialNumber, LensSerialNumber


def exif_subset(blob: bytes) -> dict[str, Any]:
    """The harmless, JSON-ready part of an EXIF block; {} when it does not parse."""
    try:
        exif = PILImage.Exif()
        exif.load(blob)
        found: dict[str, Any] = {}
        for tag, name in _IFD0_TAGS.items():
            if tag in exif:
                found[name] = exif[tag]
        sub = exif.get_ifd(_EXIF_IFD)
        for tag, name in _EXIF_TAGS.items():
            if tag in sub:
                found[name] = sub[tag]
    except Exception:  # noqa: BLE001 - hostile EXIF must never fail an upload
        return {}
    cleaned = {name: _json_value(value) for name, value in found.items()}
    return {name: value for name, value in cleaned.items() if value is not None}


def _json_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return None
    if isinstance(value, str):
        text = value.replace("\x00", "").strip()
        return text[:200] if text else None
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, tuple | list):
        items = [_json_value(v) for v in value[:8]]
        return items[0] if len(items) == 1 else items
    try:
        number = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if number != number or number in (float("inf"), float("-inf")):
        return None
    return round(number, 6)


# ----------------------------------------------------------------------------- variants


def make_variants(
    path: Path,
    specs: tuple[VariantSpec, ...],
    out_path: Callable[[VariantSpec], Path],
    *,
    max_pixels: int | None = None,
) -> list[tuple[VariantSpec, Output]]:
    """Each preset that fits the source, each from its own shrink-on-load `thumbnail` call.

    Presets whose box is larger than the source are skipped (see `variant_box`).
    """
    source = _open(path, max_pixels)
    width, height = source.display_size
    made: list[tuple[VariantSpec, Output]] = []
    for spec in specs:
        box = variant_box(spec, width, height)
        if box is None:
            continue
        box_width, box_height, crop = box
        image = _thumb(
            source,
            box_width,
            box_height,
            crop="centre" if crop else None,
            all_frames=OUTPUT_FORMATS[spec.format].animated,
        )
        output = OUTPUT_FORMATS[spec.format]
        saved = _save(image, out_path(spec), output, quality=spec.quality)
        made.append((spec, saved))
        del image
        if width * height * 4 > RELEASE_ABOVE_BYTES:
            release_memory()  # each preset's pipeline starts from what the last one freed
    return made


# ----------------------------------------------------------------------------- operations


def convert(
    path: Path,
    out: Path,
    fmt: str,
    *,
    quality: int | None = None,
    lossless: bool = False,
    max_pixels: int | None = None,
) -> Output:
    """The whole image, upright, in another format; animations stay animated where they can."""
    source = _open(path, max_pixels)
    output = OUTPUT_FORMATS[fmt]
    width, height = source.display_size
    image = _thumb(source, width, height, all_frames=output.animated)
    return _save(image, out, output, quality=quality, lossless=lossless)


def resize(
    path: Path,
    out: Path,
    *,
    width: int | None,
    height: int | None,
    fit: Fit,
    fmt: str | None = None,
    quality: int | None = None,
    max_pixels: int | None = None,
) -> Output:
    """Resize like sharp: cover (fill, crop), contain (fit, pad), fill (stretch), inside (fit),
    outside (cover without the crop). One of width/height alone keeps the aspect ratio."""
    if width is None and height is None:
        raise OutputTooLarge("give width, height or both")
    source = _open(path, max_pixels)
    output = OUTPUT_FORMATS[fmt or _SAME_FORMAT[source.format]]
    sw, sh = source.display_size
    frames = source.pages if source.animated and output.animated else 1
    if width is None or height is None:
        scale = (width / sw) if width is not None else (height or 1) / sh
        target = (max(1, round(sw * scale)), max(1, round(sh * scale)))
        _check_output(*target, frames, max_pixels)
        image = _thumb(source, *target, size="force", all_frames=frames > 1)
    elif fit == "outside":
        scale = max(width / sw, height / sh)
        target = (max(1, round(sw * scale)), max(1, round(sh * scale)))
        _check_output(*target, frames, max_pixels)
        image = _thumb(source, *target, size="force", all_frames=frames > 1)
    else:
        _check_output(width, height, frames, max_pixels)
        if fit == "cover":
            image = _thumb(source, width, height, crop="centre", size="both", all_frames=frames > 1)
        elif fit == "fill":
            image = _thumb(source, width, height, size="force", all_frames=frames > 1)
        else:
            image = _thumb(source, width, height, size="both", all_frames=frames > 1)
            if fit == "contain":
                image = _per_frame(image, lambda f: _pad(f, width, height, output))
    return _save(image, out, output, quality=quality)


def crop(
    path: Path,
    out: Path,
    *,
    x: int,
    y: int,
    width: int,
    height: int,
    rotate: int = 0,
    scale: float | None = None,
    fmt: str | None = None,
    quality: int | None = None,
    max_pixels: int | None = None,
) -> Output:
    """A rectangle of the upright image, then turned clockwise by `rotate`, then scaled."""
    source = _open(path, max_pixels)
    output = OUTPUT_FORMATS[fmt or _SAME_FORMAT[source.format]]
    sw, sh = source.display_size
    if x < 0 or y < 0 or width < 1 or height < 1 or x + width > sw or y + height > sh:
        raise OutputTooLarge(
            f"the rectangle {width}x{height} at ({x}, {y}) is not inside the {sw}x{sh} image"
        )
    frames = source.pages if source.animated and output.animated else 1
    factor = scale if scale is not None else 1.0
    _check_output(max(1, round(width * factor)), max(1, round(height * factor)), frames, max_pixels)
    image = _thumb(source, sw, sh, all_frames=frames > 1)
    angle = {0: None, 90: "d90", 180: "d180", 270: "d270"}[rotate]

    def edit(frame: pyvips.Image) -> pyvips.Image:
        frame = frame.crop(x, y, width, height)
        if angle:
            frame = frame.rot(angle)
        if factor != 1.0:
            frame = frame.resize(factor, kernel="lanczos3")
        return frame

    return _save(_per_frame(image, edit), out, output, quality=quality)


def _check_output(width: int, height: int, frames: int, max_pixels: int | None) -> None:
    if width > MAX_SIDE or height > MAX_SIDE:
        raise OutputTooLarge(f"the result would be {width}x{height}; the most is {MAX_SIDE}")
    if max_pixels is not None and width * height * frames > max_pixels:
        raise OutputTooLarge(
            f"the result would be {width}x{height}"
            + (f"x{frames} frames" if frames > 1 else "")
            + f" pixels, over the limit of {max_pixels}"
        )


def _frames(image: pyvips.Image) -> Iterator[pyvips.Image]:
    page_height = int(_get(image, "page-height") or image.height)
    if page_height <= 0 or image.height % page_height:
        page_height = image.height
    for top in range(0, image.height, page_height):
        yield image.crop(0, top, image.width, page_height)


def _frame_height(image: pyvips.Image) -> int:
    page_height = int(_get(image, "page-height") or image.height)
    if page_height <= 0 or image.height % page_height:
        return int(image.height)
    return page_height


def _per_frame(image: pyvips.Image, edit: Callable[[pyvips.Image], pyvips.Image]) -> pyvips.Image:
    frames = [edit(frame) for frame in _frames(image)]
    if len(frames) == 1:
        return frames[0]
    joined = pyvips.Image.arrayjoin(frames, across=1).copy()
    joined.set_type(pyvips.GValue.gint_type, "page-height", frames[0].height)
    joined.set_type(pyvips.GValue.gint_type, "n-pages", len(frames))
    return joined


def _pad(frame: pyvips.Image, width: int, height: int, output: OutputFormat) -> pyvips.Image:
    if output.alpha:
        if not frame.hasalpha():
            frame = frame.bandjoin(255)
        background = [0] * frame.bands
    else:
        background = [255] * frame.bands
    return frame.gravity("centre", width, height, extend="background", background=background)


# ----------------------------------------------------------------------------- saving


def _save(
    image: pyvips.Image,
    out: Path,
    output: OutputFormat,
    *,
    quality: int | None,
    lossless: bool = False,
) -> Output:
    """Write `image` (sRGB already) as `output` to `out` with no EXIF, XMP, IPTC or ICC."""
    frame_height = _frame_height(image)
    if frame_height != image.height and not output.animated:
        image = image.crop(0, 0, image.width, frame_height)
    image = _srgb8(image)
    if image.hasalpha() and not output.alpha:
        image = image.flatten(background=[255] * (image.bands - 1))
    try:
        encode(image, out, output.name, quality=quality, lossless=lossless)
    except pyvips.Error as exc:
        raise ImageError(f"the image could not be written as {output.name}") from exc
    return Output(out, output, image.width, frame_height, out.stat().st_size)


# ----------------------------------------------------------------------------- originals


def strip_private_metadata(path: Path, *, max_pixels: int | None = None) -> bool:
    """Remove GPS, serial numbers, maker notes, XMP and IPTC from an original, in place.

    JPEG, PNG and WebP are rewritten losslessly (their metadata segments/chunks only; the rest of
    EXIF, orientation included, stays). TIFF, HEIC and AVIF holding EXIF or XMP are re-encoded
    upright in sRGB without any metadata (TIFF losslessly, HEIC/AVIF at quality 90). GIF and BMP
    carry none. Returns whether the file changed.
    """
    data = path.read_bytes()
    if data[:3] == b"\xff\xd8\xff":
        rewritten = _strip_jpeg(data)
    elif data[:8] == b"\x89PNG\r\n\x1a\n":
        rewritten = _strip_png(data)
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        rewritten = _strip_webp(data)
    else:
        return _reencode_without_metadata(path, max_pixels)
    if rewritten is None or rewritten == data:
        return False
    temp = path.with_name(path.name + ".strip")
    temp.write_bytes(rewritten)
    os.replace(temp, path)
    return True


def _clean_exif(blob: bytes) -> bytes | None:
    """The EXIF block without its private tags (None = drop EXIF altogether)."""
    try:
        exif = PILImage.Exif()
        exif.load(blob)
        for tag in _PRIVATE_IFD0:
            exif.pop(tag, None)
        sub = exif.get_ifd(_EXIF_IFD)
        for tag in _PRIVATE_EXIF:
            sub.pop(tag, None)
        return exif.tobytes()
    except Exception:  # noqa: BLE001 - unparseable EXIF: keep only what the picture needs
        orientation = _orientation_of(blob)
        if orientation in (None, 1):
            return None
        minimal = PILImage.Exif()
        minimal[0x0112] = orientation
        return minimal.tobytes()


def _orientation_of(blob: bytes) -> int | None:
    try:
        exif = PILImage.Exif()
        exif.load(blob)
        value = exif.get(0x0112)
        return int(value) if value else None
    except Exception:  # noqa: BLE001
        return None


def _strip_jpeg(data: bytes) -> bytes | None:
    out = bytearray(data[:2])
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None  # not a marker where one must be: leave the file alone
        marker = data[pos + 1]
        if marker == 0xFF:
            out.append(0xFF)
            pos += 1
            continue
        if marker == 0xDA or marker == 0xD9:  # start of scan / end: copy the rest verbatim
            out += data[pos:]
            return bytes(out)
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            out += data[pos : pos + 2]
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        end = pos + 2 + length
        if length < 2 or end > len(data):
            return None
        payload = data[pos + 4 : end]
        if marker == 0xE1 and payload.startswith(b"Exif\x00\x00"):
            cleaned = _clean_exif(payload)
            if cleaned is not None and len(cleaned) + 2 <= 0xFFFF:
                out += b"\xff\xe1" + struct.pack(">H", len(cleaned) + 2) + cleaned
        elif marker == 0xE1 or marker == 0xED or marker == 0xFE:
            pass  # XMP (and extended XMP), Photoshop IRB/IPTC, comments: dropped
        else:
            out += data[pos:end]
        pos = end
    return None


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _strip_png(data: bytes) -> bytes | None:
    out = bytearray(data[:8])
    pos = 8
    while pos + 12 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > len(data):
            return None
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"eXIf":
            cleaned = _clean_exif(b"Exif\x00\x00" + body)
            if cleaned is not None:
                out += _png_chunk(b"eXIf", cleaned.removeprefix(b"Exif\x00\x00"))
        elif kind in (b"tEXt", b"zTXt", b"iTXt"):
            pass  # XMP, comments, author names: dropped
        else:
            out += data[pos:end]
        pos = end
        if kind == b"IEND":
            return bytes(out)
    return None


def _strip_webp(data: bytes) -> bytes | None:
    chunks: list[tuple[bytes, bytes]] = []
    pos = 12
    while pos + 8 <= len(data):
        kind = data[pos : pos + 4]
        (length,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if len(body) != length:
            return None
        pos += 8 + length + (length & 1)
        if kind == b"EXIF":
            cleaned = _clean_exif(
                body if body.startswith(b"Exif\x00\x00") else b"Exif\x00\x00" + body
            )
            if cleaned is not None:
                chunks.append((kind, cleaned.removeprefix(b"Exif\x00\x00")))
        elif kind != b"XMP ":
            chunks.append((kind, body))
    has_exif = any(kind == b"EXIF" for kind, _ in chunks)
    out = bytearray()
    for kind, body in chunks:
        if kind == b"VP8X" and len(body) >= 1:
            flags = body[0] & ~0x04  # no XMP
            flags = flags | 0x08 if has_exif else flags & ~0x08
            body = bytes([flags]) + body[1:]
        out += kind + struct.pack("<I", len(body)) + body + (b"\x00" if len(body) & 1 else b"")
    return b"RIFF" + struct.pack("<I", len(out) + 4) + b"WEBP" + bytes(out)


def _reencode_without_metadata(path: Path, max_pixels: int | None) -> bool:
    try:
        source = _open(path, max_pixels)
    except ImageError:
        return False  # left for the probe to refuse
    header = source.header
    has_metadata = header is not None and any(
        _get(header, name) is not None for name in ("exif-data", "xmp-data", "iptc-data")
    )
    if source.format == "heic" and not has_metadata:
        with contextlib.suppress(OSError, ValueError, RuntimeError):
            info = pillow_heif.open_heif(str(path)).info
            has_metadata = bool(info.get("exif") or info.get("xmp"))
    if not has_metadata or source.format not in ("tiff", "heic", "avif"):
        return False
    width, height = source.display_size
    temp = path.with_name(path.name + ".strip")
    try:
        _save(_thumb(source, width, height), temp, OUTPUT_FORMATS[source.format], quality=90)
    except ImageError:
        temp.unlink(missing_ok=True)
        return False  # undecodable: the probe refuses it next
    os.replace(temp, path)
    return True


# ----------------------------------------------------------------------------- memory

# What a decode holds, estimated from the header alone (budget.py's gate admits work by
# it). Streaming loaders (sequential PNG, baseline JPEG, TIFF, GIF frames) hold a window of
# lines per libvips thread; these decoders hold whole frames, and a copy while libvips takes
# them: libwebp and libheif (2 copies), Pillow for BMP and HEIC (3: its image, tobytes, libvips).
_WHOLE_FRAME_COPIES = {"webp": 2, "avif": 2, "heic": 3, "bmp": 3}
# Encoders that take the whole output at once, with their own working copies (measured: a
# 9990x9990 WebP from a streamed PNG peaked at 3.6x the RGBA output); the others stream lines.
_WHOLE_OUTPUT_COPIES = {"webp": 4, "avif": 4, "heic": 4, "gif": 3, "bmp": 3}
_WINDOW_LINES = 1024  # lines a streaming pipeline holds across its threads, generously
# Above this, freed pixel memory is handed back to the OS after the work (see release_memory).
RELEASE_ABOVE_BYTES = 32 * 1024 * 1024
_LIBC = ctypes.CDLL(ctypes.util.find_library("c") or None)
_BAND_BYTES = {"uchar": 1, "char": 1, "ushort": 2, "short": 2, "uint": 4, "int": 4}


@dataclass(frozen=True)
class Footprint:
    """An image's size as displayed and what decoding it holds, from its header only."""

    width: int
    height: int
    pages: int
    format: str
    pixel_bytes: int  # bands × bytes per band as decoded
    input_bytes: int  # held by the decoder whatever the output

    def output_bytes(self, width: int, height: int, fmt: str, frames: int = 1) -> int:
        """What writing a `width`×`height` (×`frames`) result as `fmt` adds."""
        copies = _WHOLE_OUTPUT_COPIES.get(fmt)
        if copies is None:
            return width * 4 * _WINDOW_LINES
        return width * height * frames * 4 * copies

    def fitted(self, width: int | None, height: int | None, crop: bool = False) -> tuple[int, int]:
        """The size of a result fitted into `width`×`height` (None: free), never upscaled."""
        if crop and width and height:
            return min(width, self.width), min(height, self.height)
        scale = min(
            1.0,
            width / self.width if width else 1.0,
            height / self.height if height else 1.0,
        )
        return max(1, math.ceil(self.width * scale)), max(1, math.ceil(self.height * scale))

    def bytes_for(self, width: int, height: int, fmt: str, frames: int = 1) -> int:
        return self.input_bytes + self.output_bytes(width, height, fmt, frames)

    def variant_bytes(self, spec: VariantSpec) -> int:
        """What making one preset holds (0 when the preset does not apply to this size)."""
        box = variant_box(spec, self.width, self.height)
        if box is None:
            return 0
        width, height = self.fitted(box[0], box[1], box[2])
        animated = self.pages > 1 and self.format in _ANIMATED_LOADERS
        frames = self.pages if animated and OUTPUT_FORMATS[spec.format].animated else 1
        return self.bytes_for(width, height, spec.format, frames)

    @property
    def probe_bytes(self) -> int:
        """The upload probe: a full sequential decode and a 32-pixel placeholder."""
        return self.input_bytes

    @property
    def strip_bytes(self) -> int:
        """MEDIA_STRIP_EXIF_ORIGINAL: a re-encode at full size for TIFF, HEIC and AVIF."""
        if self.format not in ("tiff", "heic", "avif"):
            return 0
        return self.bytes_for(self.width, self.height, self.format)


def release_memory() -> None:
    """Give freed heap memory back to the OS (glibc `malloc_trim`; nothing elsewhere).

    libvips frees a pipeline's buffers when it ends, but glibc keeps them in the arena of the
    thread that used them: after a large decode, the next one on another thread would add its
    own on top, and RSS would climb past what MEDIA_MAX_DECODE_BYTES admits."""
    trim = getattr(_LIBC, "malloc_trim", None)
    if trim is not None:
        trim(0)


def footprint(path: Path, *, max_pixels: int | None) -> Footprint:
    """The `Footprint` of the image at `path` (header only; ImageError as `_open` raises)."""
    source = _open(path, max_pixels)
    header = source.header
    if header is not None:
        bands = int(header.bands)
        pixel_bytes = bands * _BAND_BYTES.get(str(header.format), 8)
    else:
        pixel_bytes = 4  # BMP through Pillow: at most RGBA
    frame = source.width * source.height * pixel_bytes
    copies = _WHOLE_FRAME_COPIES.get(source.format)
    if copies is None and header is not None:
        # Interlaced PNG and progressive JPEG decode the whole frame before the first line.
        if _get(header, "interlaced") or _get(header, "jpeg-multiscan"):
            copies = 1
    held = frame * copies if copies else source.width * pixel_bytes * _WINDOW_LINES
    width, height = source.display_size
    return Footprint(width, height, source.pages, source.format, pixel_bytes, held)
