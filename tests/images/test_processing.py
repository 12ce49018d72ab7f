"""The pure parts: MEDIA_VARIANTS parsing, which presets fit, the pixel and frame guards, EXIF
subset and cleaning, placeholders (issue 6)."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from mediakeep.config import Settings
from mediakeep.processing import image
from mediakeep.processing.placeholders import placeholder_of, thumbhash
from mediakeep.processing.presets import (
    DEFAULT_VARIANTS,
    VIPS_MAX_COORD,
    VariantSpec,
    parse_variant_specs,
    variant_box,
)
from tests.images.support import exif_block, gif_with_frames, png_bomb, scene_jpeg, with_exif


def test_default_presets_are_those_of_the_spec() -> None:
    specs = {spec.name: spec for spec in parse_variant_specs(DEFAULT_VARIANTS)}
    assert specs["thumbnail"] == VariantSpec("thumbnail", 150, 150, "cover", "webp", None)
    assert (specs["small"].width, specs["small"].height) == (320, None)
    assert specs["medium"].width == 800
    assert specs["large"].width == 1600
    assert (specs["original_webp"].width, specs["original_webp"].height) == (None, None)
    assert Settings().variant_specs == tuple(specs.values())


def test_variant_syntax_reads_size_fit_format_and_quality() -> None:
    (spec,) = parse_variant_specs("card:400x300:cover:avif:q55")
    assert spec == VariantSpec("card", 400, 300, "cover", "avif", 55)
    (tall,) = parse_variant_specs(" tall:x200:png ")
    assert (tall.width, tall.height, tall.fit, tall.format) == (None, 200, "inside", "png")


@pytest.mark.parametrize(
    "text",
    [
        "Thumb:100",
        "a:",
        "a:0",
        "a:100:cover",
        "a:100:bmp",
        "a:100:q0",
        "a:100,a:200",
        "a:99999999",
        "a/b:100",
    ],
)
def test_bad_variant_settings_are_refused_at_start(text: str) -> None:
    with pytest.raises(ValueError, match="variant"):
        parse_variant_specs(text)
    with pytest.raises(ValidationError):
        Settings(variants=text)


def test_presets_never_upscale_and_cover_boxes_shrink_to_the_source() -> None:
    small = VariantSpec("small", 320, None, "inside", "webp", None)
    thumb = VariantSpec("thumbnail", 150, 150, "cover", "webp", None)
    box = VariantSpec("box", 200, 200, "inside", "webp", None)
    assert variant_box(small, 300, 1000) is None
    assert variant_box(small, 320, 10) == (320, VIPS_MAX_COORD, False)
    assert variant_box(thumb, 100, 60) == (60, 60, True)
    assert variant_box(thumb, 1000, 900) == (150, 150, True)
    assert variant_box(box, 150, 150) is None
    assert variant_box(box, 150, 300) == (200, 200, False)


def test_frames_count_against_the_pixel_limit(tmp_path: Path) -> None:
    path = tmp_path / "f.gif"
    path.write_bytes(gif_with_frames(40, 64, 64))
    with pytest.raises(image.ImageError, match="64x64x40 frames"):
        image.inspect(path, max_pixels=100_000)
    assert image.inspect(path, max_pixels=200_000).metadata["frames"] == 40


def test_pixel_bomb_is_refused_by_every_entry_point(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(png_bomb())
    specs = parse_variant_specs(DEFAULT_VARIANTS)
    out = tmp_path / "out"
    for attempt in (
        lambda: image.inspect(path, max_pixels=10**8),
        lambda: image.make_variants(path, specs, lambda _: out, max_pixels=10**8),
        lambda: image.convert(path, out, "png", max_pixels=10**8),
        lambda: image.resize(path, out, width=10, height=None, fit="inside", max_pixels=10**8),
    ):
        with pytest.raises(image.ImageError, match="50000x50000"):
            attempt()
    assert not out.exists()


def test_exif_subset_is_an_allow_list() -> None:
    exif = image.exif_subset(exif_block(orientation=3))
    assert exif["Make"] == "Canon"
    assert exif["Orientation"] == 3
    assert not any("GPS" in key or "Serial" in key or "Unique" in key for key in exif)
    assert image.exif_subset(b"Exif\x00\x00garbage") == {}


def test_private_metadata_is_cut_from_a_jpeg_without_touching_the_scan(tmp_path: Path) -> None:
    plain = scene_jpeg(64, 48)
    path = tmp_path / "p.jpg"
    path.write_bytes(with_exif(plain, exif_block()))
    assert image.strip_private_metadata(path)
    stripped = path.read_bytes()
    scan = plain[plain.index(b"\xff\xda") :]
    assert stripped.endswith(scan)
    assert b"SN-BODY" not in stripped
    assert not image.strip_private_metadata(path)  # nothing left to remove


def test_placeholders_of_plain_and_transparent_pixels() -> None:
    red = bytes([200, 16, 24]) * 12
    out = placeholder_of(4, 3, 3, red)
    assert out["dominant_color"] == "#c81018"
    assert len(out["blurhash"]) == 28  # 4×3 components
    clear = bytes([0, 0, 0, 0]) * 6 + bytes([0, 0, 255, 255]) * 6
    hashed = thumbhash(4, 3, clear)
    assert hashed[2] & 0x80  # has alpha
    assert placeholder_of(4, 3, 4, clear)["dominant_color"] == "#0000ff"
    with pytest.raises(ValueError, match="100x100"):
        placeholder_of(101, 1, 3, bytes(303))
