"""What an image upload learns about the picture: format, size as displayed, orientation,
frames, colour, a safe EXIF subset, and placeholders (issue 6)."""

import base64
import io
import re

import httpx
import pillow_heif
from PIL import Image as PILImage

from tests.factories import TestUser
from tests.images.support import (
    animated_gif,
    exif_block,
    halves,
    scene,
    scene_jpeg,
    with_exif,
)
from tests.media.support import upload_ok
from tests.mediagen import png

BLURHASH = re.compile(r"^[0-9A-Za-z#$%*+,\-.:;=?@\[\]^_{|}~]{6,}$")
HEX_COLOUR = re.compile(r"^#[0-9a-f]{6}$")


async def test_jpeg_facts_keep_camera_exif_and_drop_gps_and_serials(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    data = with_exif(scene_jpeg(120, 80), exif_block(orientation=1))
    media = await upload_ok(client, user, data)
    meta = media["metadata"]
    assert meta["format"] == "jpeg"
    assert (media["width"], media["height"]) == (120, 80)
    assert meta["orientation"] == 1
    assert meta["animated"] is False
    assert meta["color_space"] == "srgb"
    exif = meta["exif"]
    assert exif["Make"] == "Canon"
    assert exif["Model"] == "EOS R5"
    assert exif["Software"] == "Firmware 1.8"
    assert exif["DateTimeOriginal"] == "2024:05:06 07:08:09"
    assert exif["ExposureTime"] == 0.004
    assert exif["FNumber"] == 2.8
    assert exif["ISO"] == 400
    assert exif["FocalLength"] == 50
    assert exif["LensModel"] == "RF 50mm F1.8"
    text = str(media)
    for private in ("GPS", "Serial", "SN-", "UID-DEAD", "ImageUnique", "48.8"):
        assert private not in text, private


async def test_size_is_as_displayed_after_exif_orientation(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    stored: bytes = halves(90, 60).write_to_buffer(".jpg", Q=90)
    media = await upload_ok(client, user, with_exif(stored, exif_block(orientation=6)))
    assert (media["width"], media["height"]) == (60, 90)
    assert media["metadata"]["orientation"] == 6
    assert media["metadata"]["exif"]["Orientation"] == 6


async def test_placeholder_has_blurhash_thumbhash_and_dominant_colour(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    data = scene(64, 48).write_to_buffer(".png")
    media = await upload_ok(client, user, data, part_name="s.png", declared="image/png")
    placeholder = media["placeholder"]
    assert set(placeholder) == {"blurhash", "thumbhash", "dominant_color"}
    assert BLURHASH.match(placeholder["blurhash"])
    assert 5 <= len(base64.b64decode(placeholder["thumbhash"])) <= 40
    assert HEX_COLOUR.match(placeholder["dominant_color"])


async def test_dominant_colour_of_a_plain_picture_is_its_colour(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    solid = PILImage.new("RGB", (64, 48), (200, 16, 24))
    media = await upload_ok(client, user, _png(solid), part_name="red.png", declared="image/png")
    assert media["placeholder"]["dominant_color"] == "#c81018"


def _png(picture: PILImage.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


async def test_transparent_png_gets_a_placeholder_and_alpha_facts(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    picture = PILImage.new("RGBA", (40, 30), (0, 0, 0, 0))
    picture.paste((10, 200, 30, 255), (10, 5, 30, 25))
    media = await upload_ok(client, user, _png(picture), part_name="a.png", declared="image/png")
    assert media["metadata"]["has_alpha"] is True
    assert media["placeholder"]["dominant_color"] == "#0ac81e"
    header = base64.b64decode(media["placeholder"]["thumbhash"])
    assert header[2] & 0x80  # ThumbHash's has-alpha bit


async def test_animated_gif_reports_its_frames(client: httpx.AsyncClient, user: TestUser) -> None:
    media = await upload_ok(client, user, animated_gif(5), part_name="a.gif", declared="image/gif")
    meta = media["metadata"]
    assert meta["format"] == "gif"
    assert meta["animated"] is True
    assert meta["frames"] == 5
    assert (media["width"], media["height"]) == (60, 40)


async def test_heic_upload_is_decoded_through_pillow_heif(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    picture = PILImage.frombytes("RGB", (48, 32), scene(48, 32).write_to_memory())
    buffer = io.BytesIO()
    pillow_heif.from_pillow(picture).save(buffer, quality=80)
    media = await upload_ok(
        client, user, buffer.getvalue(), part_name="p.heic", declared="image/heic"
    )
    assert media["mime"] == "image/heic"
    assert media["metadata"]["format"] == "heic"
    assert (media["width"], media["height"]) == (48, 32)
    assert media["placeholder"] is not None
    assert {v["name"] for v in media["variants"]} == {"thumbnail", "original_webp"}


async def test_bmp_upload_is_read_with_the_bmp_decoder_only(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    buffer = io.BytesIO()
    PILImage.new("RGB", (30, 20), (1, 2, 3)).save(buffer, format="BMP")
    data = buffer.getvalue()
    media = await upload_ok(client, user, data, part_name="b.bmp", declared="image/bmp")
    assert media["mime"] == "image/bmp"
    assert media["metadata"]["format"] == "bmp"
    assert (media["width"], media["height"]) == (30, 20)


async def test_every_upload_of_a_small_png_still_has_facts(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    media = await upload_ok(client, user, png(), part_name="n.png", declared="image/png")
    assert media["metadata"]["format"] == "png"
    assert media["metadata"]["pages"] == 1
