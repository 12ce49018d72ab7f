"""Convert, resize and crop: derived media through the normal ingest, or a new version (crop
`replace`); outputs decoded and compared with references (issue 6)."""

import hashlib
from typing import Any

import httpx
import magic
import numpy as np
import pytest
from fastapi import FastAPI

from tests.factories import TestUser, new_user
from tests.images.support import (
    API,
    BLUE,
    RED,
    animated_gif,
    decode,
    download,
    exif_block,
    frames_of,
    grey,
    halves,
    mean_colour,
    near,
    pillow_grey,
    pixels,
    private_exif_in,
    reference_resize,
    scene_jpeg,
    scene_png,
    ssim,
    with_exif,
)
from tests.media.support import assert_error, fetch_url, original_exists, upload_ok
from tests.mediagen import mp4

MAGIC = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "bmp": "image/bmp",
    "tiff": "image/tiff",
    "webp": "image/webp",
    "avif": "image/avif",
    "heic": "image/heic",
}


async def _post(
    client: httpx.AsyncClient, user: TestUser, media_id: str, op: str, body: dict[str, Any]
) -> httpx.Response:
    return await client.post(f"{API}/{media_id}/{op}", json=body, headers=user.headers)


async def _ok(
    client: httpx.AsyncClient, user: TestUser, media_id: str, op: str, body: dict[str, Any]
) -> dict[str, Any]:
    response = await _post(client, user, media_id, op, body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def _bytes(app: FastAPI, client: httpx.AsyncClient, media: dict[str, Any]) -> bytes:
    return (await download(app, client, media["url"])).content


@pytest.mark.parametrize("fmt", list(MAGIC))
async def test_convert_makes_a_derived_media_in_each_format(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser, fmt: str
) -> None:
    source = with_exif(scene_jpeg(160, 120), exif_block())
    original = await upload_ok(client, user, source)
    derived = await _ok(client, user, original["id"], "convert", {"format": fmt})
    assert derived["id"] != original["id"]
    assert derived["source"] == "derived"
    assert derived["derived_from"] == {"media_id": original["id"], "operation": "image.convert"}
    assert derived["deduped"] is False
    assert derived["mime"] == MAGIC[fmt]
    assert (derived["width"], derived["height"]) == (160, 120)
    assert derived["filename"].endswith("." + {"jpeg": "jpg"}.get(fmt, fmt))
    data = await _bytes(app, client, derived)
    assert magic.from_buffer(data[:4096], mime=True).replace("x-ms-bmp", "bmp") == MAGIC[fmt]
    assert len(data) == derived["size_bytes"]
    picture = decode(data)
    assert (picture.width, picture.height) == (160, 120)
    assert ssim(grey(picture), pillow_grey(source)) > 0.8
    if fmt not in ("heic", "bmp", "gif"):
        assert private_exif_in(data) == []
    assert b"SN-BODY" not in data
    assert b"Canon" not in data
    assert derived["variants"], "a derived image gets its variants too"


async def test_convert_to_the_same_bytes_twice_answers_the_first_derived_media(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    original = await upload_ok(client, user, scene_jpeg(80, 60))
    first = await _ok(client, user, original["id"], "convert", {"format": "png"})
    again = await _post(client, user, original["id"], "convert", {"format": "png"})
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first["id"]
    assert again.json()["deduped"] is True


async def test_convert_lossless_webp_keeps_every_pixel(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    source = scene_png(90, 70)
    original = await upload_ok(client, user, source, part_name="s.png", declared="image/png")
    body = {"format": "webp", "lossless": True}
    derived = await _ok(client, user, original["id"], "convert", body)
    out = decode(await _bytes(app, client, derived))
    assert np.array_equal(pixels(out), pixels(decode(source)))


async def test_convert_quality_changes_the_size(client: httpx.AsyncClient, user: TestUser) -> None:
    original = await upload_ok(client, user, scene_jpeg(300, 200))
    low = await _ok(client, user, original["id"], "convert", {"format": "jpeg", "quality": 20})
    high = await _ok(client, user, original["id"], "convert", {"format": "jpeg", "quality": 95})
    assert low["size_bytes"] < high["size_bytes"]


@pytest.mark.parametrize("fmt", ["webp", "gif"])
async def test_animated_gif_stays_animated(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser, fmt: str
) -> None:
    gif = animated_gif(4)
    original = await upload_ok(client, user, gif, part_name="a.gif", declared="image/gif")
    response = await _post(client, user, original["id"], "convert", {"format": fmt})
    # gif → gif may give back the very bytes uploaded: then the answer is that media (deduped).
    assert response.status_code in (200, 201), response.text
    derived = response.json()
    assert frames_of(await _bytes(app, client, derived)) == 4
    assert derived["metadata"]["frames"] == 4
    still = await _ok(client, user, original["id"], "convert", {"format": "png"})
    assert frames_of(await _bytes(app, client, still)) == 1


async def test_convert_applies_exif_orientation(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    stored: bytes = halves(120, 80).write_to_buffer(".jpg", Q=95)
    original = await upload_ok(client, user, with_exif(stored, exif_block(orientation=6)))
    derived = await _ok(client, user, original["id"], "convert", {"format": "png"})
    picture = decode(await _bytes(app, client, derived))
    assert (picture.width, picture.height) == (80, 120)
    assert near(mean_colour(picture, 0, 0, 80, 30), RED)
    assert near(mean_colour(picture, 0, 90, 80, 30), BLUE)


@pytest.mark.parametrize(
    ("body", "size"),
    [
        ({"width": 200}, (200, 150)),
        ({"height": 60}, (80, 60)),
        ({"width": 200, "height": 200, "fit": "inside"}, (200, 150)),
        ({"width": 200, "height": 200, "fit": "cover"}, (200, 200)),
        ({"width": 200, "height": 200, "fit": "contain"}, (200, 200)),
        ({"width": 200, "height": 100, "fit": "fill"}, (200, 100)),
        ({"width": 200, "height": 200, "fit": "outside"}, (267, 200)),
        ({"width": 800}, (800, 600)),
    ],
)
async def test_resize_fits(
    app: FastAPI,
    client: httpx.AsyncClient,
    user: TestUser,
    body: dict[str, Any],
    size: tuple[int, int],
) -> None:
    source = scene_jpeg(400, 300)
    original = await upload_ok(client, user, source)
    derived = await _ok(client, user, original["id"], "resize", body)
    assert derived["derived_from"]["operation"] == "image.resize"
    assert derived["mime"] == "image/jpeg"  # the original's format when none is asked
    assert (derived["width"], derived["height"]) == size
    picture = decode(await _bytes(app, client, derived))
    assert (picture.width, picture.height) == size
    fit = body.get("fit", "cover")
    if fit in ("fill", "inside", "outside") or len(body) == 1:
        assert ssim(grey(picture), reference_resize(source, *size)) > 0.85


async def test_resize_cover_matches_a_centre_crop_of_the_reference(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    source = scene_jpeg(400, 200)
    original = await upload_ok(client, user, source)
    derived = await _ok(
        client, user, original["id"], "resize", {"width": 100, "height": 100, "format": "png"}
    )
    assert derived["mime"] == "image/png"
    reference = reference_resize(source, 200, 100)[:, 50:150]
    assert ssim(grey(decode(await _bytes(app, client, derived))), reference) > 0.85


async def test_resize_contain_pads_with_transparency_in_png(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    original = await upload_ok(client, user, scene_jpeg(200, 100))
    derived = await _ok(
        client,
        user,
        original["id"],
        "resize",
        {"width": 100, "height": 100, "fit": "contain", "format": "png"},
    )
    picture = decode(await _bytes(app, client, derived))
    assert picture.hasalpha()
    assert picture[3].crop(0, 0, 100, 20).max() == 0  # the band above the picture
    assert picture[3].crop(0, 30, 100, 40).min() == 255


async def test_crop_copy_cuts_the_rectangle_turns_it_and_scales_it(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    source = scene_png(300, 200)
    original = await upload_ok(client, user, source, part_name="s.png", declared="image/png")
    body = {"x": 50, "y": 40, "width": 120, "height": 80, "mode": "copy"}
    derived = await _ok(client, user, original["id"], "crop", body)
    assert derived["derived_from"] == {"media_id": original["id"], "operation": "image.crop"}
    assert (derived["width"], derived["height"]) == (120, 80)
    picture = grey(decode(await _bytes(app, client, derived)))
    reference = pillow_grey(source)[40:120, 50:170]
    assert ssim(picture, reference) > 0.99

    turned = await _ok(client, user, original["id"], "crop", body | {"rotate": 90})
    assert (turned["width"], turned["height"]) == (80, 120)
    picture = grey(decode(await _bytes(app, client, turned)))
    assert ssim(picture, np.rot90(reference, k=-1)) > 0.99  # clockwise

    half = await _ok(client, user, original["id"], "crop", body | {"scale": 0.5, "format": "webp"})
    assert (half["width"], half["height"]) == (60, 40)
    assert half["mime"] == "image/webp"


async def test_crop_works_on_the_upright_image(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    stored: bytes = halves(120, 80).write_to_buffer(".jpg", Q=95)
    original = await upload_ok(client, user, with_exif(stored, exif_block(orientation=6)))
    body = {"x": 0, "y": 70, "width": 80, "height": 50, "mode": "copy", "format": "png"}
    derived = await _ok(client, user, original["id"], "crop", body)
    picture = decode(await _bytes(app, client, derived))
    assert near(mean_colour(picture, 0, 20, 80, 30), BLUE)


async def test_crop_replace_makes_the_next_version_of_the_same_media(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    source = scene_jpeg(800, 600)
    original = await upload_ok(client, user, source)
    old_variant_urls = {v["name"]: v["url"] for v in original["variants"]}
    body = {"x": 100, "y": 100, "width": 400, "height": 300, "mode": "replace"}
    replaced = await _ok(client, user, original["id"], "crop", body)
    assert replaced["id"] == original["id"]
    assert replaced["version"] == 2
    assert replaced["source"] == "upload"
    assert replaced["derived_from"] is None
    assert replaced["sha256"] != original["sha256"]
    assert (replaced["width"], replaced["height"]) == (400, 300)
    data = await _bytes(app, client, replaced)
    assert len(data) == replaced["size_bytes"]
    assert hashlib.sha256(data).hexdigest() == replaced["sha256"]
    assert ssim(grey(decode(data)), pillow_grey(source)[100:400, 100:500]) > 0.9
    assert not original_exists(app, user.org_id, original["sha256"])
    assert original_exists(app, user.org_id, replaced["sha256"])
    variants = {v["name"]: v for v in replaced["variants"]}
    assert set(variants) == {"thumbnail", "small", "original_webp"}  # medium no longer fits
    assert all("/v2/" in v["url"] for v in variants.values())
    assert (variants["original_webp"]["width"], variants["original_webp"]["height"]) == (400, 300)
    gone = await fetch_url(app, client, old_variant_urls["medium"])
    assert gone.status_code in (403, 404)
    fetched = await client.get(f"{API}/{original['id']}", headers=user.headers)
    assert fetched.json()["version"] == 2


async def test_crop_replace_without_regenerating_leaves_no_variants(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    original = await upload_ok(client, user, scene_jpeg(400, 300))
    body = {"x": 0, "y": 0, "width": 200, "height": 200, "mode": "replace"}
    body |= {"regenerate_variants": False}
    replaced = await _ok(client, user, original["id"], "crop", body)
    assert replaced["variants"] == []
    assert replaced["version"] == 2


@pytest.mark.parametrize(
    ("op", "body"),
    [
        ("resize", {"fit": "cover"}),
        ("resize", {"width": 0}),
        ("convert", {"format": "svg"}),
        ("convert", {"format": "png", "quality": 101}),
        ("crop", {"x": 0, "y": 0, "width": 10, "height": 10}),
        ("crop", {"x": 0, "y": 0, "width": 10, "height": 10, "mode": "copy", "rotate": 45}),
        ("crop", {"x": 150, "y": 0, "width": 100, "height": 10, "mode": "copy"}),
        ("resize", {"width": 16000, "height": 16000, "fit": "fill"}),
        ("convert", {"format": "png", "extra": 1}),
        ("resize", {"width": True}),  # JSON's true is not a number
        ("convert", {"format": "png", "quality": True}),
    ],
)
async def test_bad_operation_bodies_are_400(
    client: httpx.AsyncClient, user: TestUser, op: str, body: dict[str, Any]
) -> None:
    original = await upload_ok(client, user, scene_jpeg(200, 100))
    assert_error(await _post(client, user, original["id"], op, body), 400, "validation.invalid")


async def test_operations_refuse_non_images_other_orgs_and_viewers(
    client: httpx.AsyncClient, user: TestUser, other_user: TestUser
) -> None:
    image = await upload_ok(client, user, scene_jpeg(100, 80))
    video = await upload_ok(client, user, mp4(), part_name="v.mp4", declared="video/mp4")
    viewer = await new_user(client)
    added = await client.post(
        f"/api/v1/orgs/{user.org_slug}/members",
        json={"email": viewer.email, "role": "viewer"},
        headers=user.headers,
    )
    assert added.status_code == 201, added.text
    bodies = {
        "convert": {"format": "png"},
        "resize": {"width": 10},
        "crop": {"x": 0, "y": 0, "width": 5, "height": 5, "mode": "copy"},
    }
    for op, body in bodies.items():
        refused = await _post(client, user, video["id"], op, body)
        error = assert_error(refused, 422, "media.unprocessable")
        assert "video" in error["message"]
        assert_error(await _post(client, other_user, image["id"], op, body), 404, "not_found")
        as_viewer = await client.post(
            f"{API}/{image['id']}/{op}",
            json=body,
            headers=viewer.headers | {"X-Org": user.org_slug},
        )
        assert_error(as_viewer, 403, "auth.forbidden")
    listed = await client.get(API, headers=other_user.headers)
    assert listed.json()["data"] == []
