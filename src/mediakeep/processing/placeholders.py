"""Placeholders shown while an image loads: BlurHash, ThumbHash and a dominant colour.

Pure: a tiny sRGB picture (at most 100×100, 8-bit RGB or RGBA pixels) in, a dict out. The
caller makes the picture (processing/image.py does, with a shrink-on-load thumbnail).

BlurHash comes from `blurhash-python` (Wolt's C encoder). ThumbHash is Evan Wallace's reference
encoder, ported: the PyPI `thumbhash` 0.1.2 fails on any image with transparency, and
`thumbhash-python` pins Pillow < 11, which pillow-heif cannot use.
"""

import base64
import math
from collections import Counter
from typing import Any

import blurhash
from PIL import Image as PILImage

MAX_SIDE = 100  # ThumbHash's own limit


def placeholder_of(width: int, height: int, bands: int, pixels: bytes) -> dict[str, Any]:
    """{"blurhash", "thumbhash" (base64), "dominant_color" ("#rrggbb")} of RGB/RGBA pixels."""
    if bands not in (3, 4):
        raise ValueError("placeholders need RGB or RGBA pixels")
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise ValueError(f"placeholders need at most {MAX_SIDE}x{MAX_SIDE} pixels")
    if len(pixels) != width * height * bands:
        raise ValueError("pixel buffer does not match the size")
    rgba = pixels if bands == 4 else _add_alpha(pixels)
    rgb = _flatten_on_white(rgba)
    return {
        "blurhash": _blurhash(width, height, rgb),
        "thumbhash": base64.b64encode(thumbhash(width, height, rgba)).decode("ascii"),
        "dominant_color": _dominant(rgba),
    }


def _add_alpha(rgb: bytes) -> bytes:
    out = bytearray(len(rgb) // 3 * 4)
    out[0::4], out[1::4], out[2::4] = rgb[0::3], rgb[1::3], rgb[2::3]
    out[3::4] = b"\xff" * (len(rgb) // 3)
    return bytes(out)


def _flatten_on_white(rgba: bytes) -> bytes:
    out = bytearray(len(rgba) // 4 * 3)
    for i in range(len(rgba) // 4):
        alpha = rgba[i * 4 + 3]
        for c in range(3):
            out[i * 3 + c] = (rgba[i * 4 + c] * alpha + 255 * (255 - alpha)) // 255
    return bytes(out)


def _blurhash(width: int, height: int, rgb: bytes) -> str:
    x, y = (4, 3) if width >= height else (3, 4)
    image = PILImage.frombytes("RGB", (width, height), rgb)
    encoded: str = blurhash.encode(image, x, y)
    return encoded


def _dominant(rgba: bytes) -> str:
    """The mean colour of the most common 4-bit-per-channel bucket of opaque pixels."""
    opaque = [
        (rgba[i], rgba[i + 1], rgba[i + 2]) for i in range(0, len(rgba), 4) if rgba[i + 3] >= 128
    ]
    if not opaque:
        return "#000000"
    buckets = Counter((r >> 4, g >> 4, b >> 4) for r, g, b in opaque)
    best = buckets.most_common(1)[0][0]
    members = [p for p in opaque if (p[0] >> 4, p[1] >> 4, p[2] >> 4) == best]
    mean = [round(sum(p[c] for p in members) / len(members)) for c in range(3)]
    return "#{:02x}{:02x}{:02x}".format(*mean)


def _round(value: float) -> int:
    return math.floor(value + 0.5)  # JavaScript's Math.round, as the reference encoder uses


def thumbhash(width: int, height: int, rgba: bytes) -> bytes:
    """ThumbHash of RGBA pixels (github.com/evanw/thumbhash, rgbaToThumbHash)."""
    w, h = width, height
    count = w * h
    avg_r = avg_g = avg_b = avg_a = 0.0
    for i in range(count):
        alpha = rgba[i * 4 + 3] / 255
        avg_r += alpha / 255 * rgba[i * 4]
        avg_g += alpha / 255 * rgba[i * 4 + 1]
        avg_b += alpha / 255 * rgba[i * 4 + 2]
        avg_a += alpha
    if avg_a:
        avg_r, avg_g, avg_b = avg_r / avg_a, avg_g / avg_a, avg_b / avg_a
    has_alpha = avg_a < count
    l_limit = 5 if has_alpha else 7
    lx = max(1, _round(l_limit * w / max(w, h)))
    ly = max(1, _round(l_limit * h / max(w, h)))
    lum: list[float] = []
    p: list[float] = []
    q: list[float] = []
    a: list[float] = []
    for i in range(count):
        alpha = rgba[i * 4 + 3] / 255
        r = avg_r * (1 - alpha) + alpha / 255 * rgba[i * 4]
        g = avg_g * (1 - alpha) + alpha / 255 * rgba[i * 4 + 1]
        b = avg_b * (1 - alpha) + alpha / 255 * rgba[i * 4 + 2]
        lum.append((r + g + b) / 3)
        p.append((r + g) / 2 - b)
        q.append(r - g)
        a.append(alpha)

    def encode(channel: list[float], nx: int, ny: int) -> tuple[float, list[float], float]:
        dc, scale = 0.0, 0.0
        ac: list[float] = []
        for cy in range(ny):
            cx = 0
            while cx * ny < nx * (ny - cy):
                fx = [math.cos(math.pi / w * cx * (x + 0.5)) for x in range(w)]
                total = 0.0
                for y in range(h):
                    fy = math.cos(math.pi / h * cy * (y + 0.5))
                    row = y * w
                    total += fy * sum(channel[row + x] * fx[x] for x in range(w))
                total /= count
                if cx or cy:
                    ac.append(total)
                    scale = max(scale, abs(total))
                else:
                    dc = total
                cx += 1
        if scale:
            ac = [0.5 + 0.5 / scale * f for f in ac]
        return dc, ac, scale

    l_dc, l_ac, l_scale = encode(lum, max(3, lx), max(3, ly))
    p_dc, p_ac, p_scale = encode(p, 3, 3)
    q_dc, q_ac, q_scale = encode(q, 3, 3)
    landscape = w > h
    header24 = (
        _round(63 * l_dc)
        | (_round(31.5 + 31.5 * p_dc) << 6)
        | (_round(31.5 + 31.5 * q_dc) << 12)
        | (_round(31 * l_scale) << 18)
        | (int(has_alpha) << 23)
    )
    header16 = (
        (ly if landscape else lx)
        | (_round(63 * p_scale) << 3)
        | (_round(63 * q_scale) << 9)
        | (int(landscape) << 15)
    )
    out = [header24 & 255, (header24 >> 8) & 255, header24 >> 16, header16 & 255, header16 >> 8]
    groups = [l_ac, p_ac, q_ac]
    if has_alpha:
        a_dc, a_ac, a_scale = encode(a, 5, 5)
        out.append(_round(15 * a_dc) | (_round(15 * a_scale) << 4))
        groups.append(a_ac)
    start = len(out)
    index = 0
    for group in groups:
        for f in group:
            slot = start + (index >> 1)
            while len(out) <= slot:
                out.append(0)
            out[slot] |= _round(15 * f) << ((index & 1) << 2)
            index += 1
    return bytes(out)
