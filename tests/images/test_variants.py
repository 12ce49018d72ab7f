"""Image variants: made at upload, never upscaled, upright, sRGB, without private metadata;
listed, fetched and made again (issue 6)."""

from pathlib import Path

import httpx
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
    loader,
    mean_colour,
    near,
    private_exif_in,
    reference_resize,
    scene_jpeg,
    ssim,
    variant_bytes,
    with_exif,
)
from tests.media.support import (
    asgi_client,
    assert_error,
    extra_app,
    s3_client,
    settings_of,
    upload_ok,
)
from tests.mediagen import data_url, mp4


def by_name(media: dict[str, object]) -> dict[str, dict[str, object]]:
    variants = media["variants"]
    assert isinstance(variants, list)
    return {v["name"]: v for v in variants}


async def test_upload_makes_every_preset_that_fits_as_webp(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    source = scene_jpeg(2000, 1500)
    media = await upload_ok(client, user, source)
    variants = by_name(media)
    assert set(variants) == {"thumbnail", "small", "medium", "large", "original_webp"}
    expected = {
        "thumbnail": (150, 150),
        "small": (320, 240),
        "medium": (800, 600),
        "large": (1600, 1200),
        "original_webp": (2000, 1500),
    }
    for name, (width, height) in expected.items():
        variant = variants[name]
        assert variant["mime"] == "image/webp"
        assert (variant["width"], variant["height"]) == (width, height)
        data = await variant_bytes(app, client, media, name)
        assert variant["size_bytes"] == len(data)
        assert loader(data).startswith("webpload")
        picture = decode(data)
        assert (picture.width, picture.height) == (width, height)
        assert picture.interpretation == "srgb"
        assert picture.get_typeof("exif-data") == 0
        assert picture.get_typeof("icc-profile-data") == 0


async def test_variant_pixels_match_an_independent_resize(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    source = scene_jpeg(1200, 900)
    media = await upload_ok(client, user, source)
    data = await variant_bytes(app, client, media, "small")
    assert ssim(grey(decode(data)), reference_resize(source, 320, 240)) > 0.9


async def test_no_preset_is_upscaled_and_the_thumbnail_is_capped_at_the_source(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    media = await upload_ok(client, user, scene_jpeg(400, 100))
    variants = by_name(media)
    assert set(variants) == {"thumbnail", "small", "original_webp"}
    assert (variants["thumbnail"]["width"], variants["thumbnail"]["height"]) == (100, 100)
    assert (variants["small"]["width"], variants["small"]["height"]) == (320, 80)
    small = await upload_ok(client, user, scene_jpeg(90, 60))
    assert set(by_name(small)) == {"thumbnail", "original_webp"}
    assert by_name(small)["thumbnail"]["width"] == 60


async def test_variants_are_rotated_upright_by_exif_orientation(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    # Stored: left half red, right half blue. Orientation 6 = turn 90° clockwise to display,
    # so the displayed picture is red on top and blue below.
    stored: bytes = halves(600, 400).write_to_buffer(".jpg", Q=95)
    media = await upload_ok(client, user, with_exif(stored, exif_block(orientation=6)))
    assert (media["width"], media["height"]) == (400, 600)
    variant = by_name(media)["small"]
    assert (variant["width"], variant["height"]) == (320, 480)
    for name in ("small", "original_webp", "thumbnail"):
        picture = decode(await variant_bytes(app, client, media, name))
        assert picture.height >= picture.width
        top = mean_colour(picture, 0, 0, picture.width, picture.height // 4)
        quarter = picture.height // 4
        bottom = mean_colour(picture, 0, picture.height - quarter, picture.width, quarter)
        assert near(top, RED), (name, top)
        assert near(bottom, BLUE), (name, bottom)
        assert picture.get_typeof("orientation") == 0 or picture.get("orientation") == 1


async def test_variants_carry_no_gps_serials_or_exif(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    source = with_exif(scene_jpeg(500, 400), exif_block(orientation=1))
    assert private_exif_in(source)  # the upload itself does hold them
    media = await upload_ok(client, user, source)
    for variant in media["variants"]:
        data = await variant_bytes(app, client, media, variant["name"])
        assert private_exif_in(data) == [], variant["name"]
        assert b"Canon" not in data


async def test_animated_gif_variants_stay_animated(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    media = await upload_ok(client, user, animated_gif(4), part_name="a.gif", declared="image/gif")
    data = await variant_bytes(app, client, media, "thumbnail")
    assert frames_of(data) == 4
    assert by_name(media)["thumbnail"]["height"] == 40


async def test_generate_variants_false_makes_none(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    media = await upload_ok(client, user, scene_jpeg(400, 300), generate_variants="false")
    assert media["variants"] == []
    listed = await client.get(f"{API}/{media['id']}/variants", headers=user.headers)
    assert listed.json() == {"data": []}


async def test_data_url_uploads_get_variants_too(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    source = data_url(scene_jpeg(200, 100), "image/jpeg")
    body = {"source": {"type": "data_url", "data_url": source}}
    response = await client.post(API, json=body, headers=user.headers)
    assert response.status_code == 201, response.text
    assert {v["name"] for v in response.json()["variants"]} == {"thumbnail", "original_webp"}


async def test_variant_routes_list_and_redirect_to_each_variant(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    media = await upload_ok(client, user, scene_jpeg(400, 300))
    listed = await client.get(f"{API}/{media['id']}/variants", headers=user.headers)
    assert listed.status_code == 200
    assert {v["name"] for v in listed.json()["data"]} == {"thumbnail", "small", "original_webp"}
    redirect = await client.get(f"{API}/{media['id']}/variants/small", headers=user.headers)
    assert redirect.status_code == 302
    fetched = await download(app, client, redirect.headers["location"])
    assert decode(fetched.content).width == 320
    content = await client.get(
        f"{API}/{media['id']}/content", params={"variant": "thumbnail"}, headers=user.headers
    )
    assert content.status_code == 200
    assert content.headers["content-type"] == "image/webp"


async def test_regenerate_makes_them_again_answering_201_with_the_list(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    media = await upload_ok(client, user, scene_jpeg(900, 600), generate_variants="false")
    made = await client.post(f"{API}/{media['id']}/variants", headers=user.headers)
    assert made.status_code == 201, made.text
    assert {v["name"] for v in made.json()["data"]} == {
        "thumbnail",
        "small",
        "medium",
        "original_webp",
    }
    again = await client.post(
        f"{API}/{media['id']}/variants", json={"names": ["small"]}, headers=user.headers
    )
    assert again.status_code == 201, again.text
    assert len(again.json()["data"]) == 4  # the others are kept
    fetched = await client.get(f"{API}/{media['id']}", headers=user.headers)
    assert len(fetched.json()["variants"]) == 4


async def test_regenerate_refuses_unknown_names_non_images_viewers_and_other_orgs(
    client: httpx.AsyncClient, user: TestUser, other_user: TestUser
) -> None:
    media = await upload_ok(client, user, scene_jpeg(300, 200))
    unknown = await client.post(
        f"{API}/{media['id']}/variants", json={"names": ["huge"]}, headers=user.headers
    )
    assert_error(unknown, 400, "validation.invalid")
    video = await upload_ok(client, user, mp4(), part_name="v.mp4", declared="video/mp4")
    not_a_video_variant = await client.post(
        f"{API}/{video['id']}/variants", json={"names": ["thumbnail"]}, headers=user.headers
    )
    assert_error(not_a_video_variant, 400, "validation.invalid")
    foreign = await client.post(f"{API}/{media['id']}/variants", headers=other_user.headers)
    assert_error(foreign, 404, "not_found")
    viewer = await new_user(client)
    added = await client.post(
        f"/api/v1/orgs/{user.org_slug}/members",
        json={"email": viewer.email, "role": "viewer"},
        headers=user.headers,
    )
    assert added.status_code == 201, added.text
    as_viewer = await client.post(
        f"{API}/{media['id']}/variants", headers=viewer.headers | {"X-Org": user.org_slug}
    )
    assert_error(as_viewer, 403, "auth.forbidden")


async def test_deleting_the_media_removes_its_variant_objects(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    media = await upload_ok(client, user, scene_jpeg(400, 300))
    assert _variant_objects(app, user.org_id, media["id"])
    deleted = await client.delete(f"{API}/{media['id']}", headers=user.headers)
    assert deleted.status_code == 204
    assert _variant_objects(app, user.org_id, media["id"]) == []


def _variant_objects(app: FastAPI, org_id: str, media_id: str) -> list[str]:
    settings = settings_of(app)
    prefix = f"{org_id}/variants/{media_id}/"
    if settings.storage_backend == "local":
        root = settings.local_storage_path / prefix
        return sorted(str(p) for p in root.rglob("*") if p.is_file()) if root.exists() else []
    listing = s3_client(settings).list_objects_v2(Bucket=settings.s3_bucket, Prefix=prefix)
    return sorted(item["Key"] for item in listing.get("Contents", []))


async def test_media_variants_setting_chooses_the_presets(
    request: pytest.FixtureRequest, backend: str, service_root: Path
) -> None:
    presets = "tiny:64x64:cover:jpeg:q70,tall:x100:png,box:120x120:avif"
    async with (
        extra_app(request, backend, service_root, "variants-setting", variants=presets) as custom,
        asgi_client(custom) as client,
    ):
        owner = await new_user(client)
        media = await upload_ok(client, owner, scene_jpeg(300, 200))
        variants = by_name(media)
        assert set(variants) == {"tiny", "tall", "box"}
        assert (variants["tiny"]["mime"], variants["tiny"]["width"]) == ("image/jpeg", 64)
        assert variants["tall"]["mime"] == "image/png"
        assert (variants["tall"]["width"], variants["tall"]["height"]) == (150, 100)
        assert variants["box"]["mime"] == "image/avif"
        assert (variants["box"]["width"], variants["box"]["height"]) == (120, 80)
        for name, expected in (("tiny", "jpegload"), ("tall", "pngload"), ("box", "heifload")):
            assert loader(await variant_bytes(custom, client, media, name)).startswith(expected)
