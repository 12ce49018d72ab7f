"""One table of image encoders (processing/encoding.py, issue 15): a variant, a conversion and a
signed transform of the same picture, with no quality named, are the same bytes, written at the
table's default quality (docs/api.md lists the defaults)."""

import io
from pathlib import Path

import pytest
from PIL import Image as PILImage

from mediakeep.processing import image, transform
from mediakeep.processing.encoding import ENCODERS, default_quality
from mediakeep.processing.presets import VariantSpec
from mediakeep.transforms.options import TransformOptions
from tests.images.support import scene

FORMATS = ["jpeg", "webp", "avif"]  # every lossy format a signed transform can write


def _three_paths(tmp_path: Path, fmt: str) -> tuple[bytes, bytes, bytes]:
    """(variant, conversion, transform) of one PNG, each as its own code path writes it."""
    source = tmp_path / "source.png"
    scene(120, 80).pngsave(str(source))
    full_size = VariantSpec("whole", None, None, "inside", fmt, None)
    made = image.make_variants(source, (full_size,), lambda spec: tmp_path / f"{spec.name}.{fmt}")
    assert [spec for spec, _ in made] == [full_size]
    image.convert(source, tmp_path / f"converted.{fmt}", fmt)
    # As a signed URL without `q_` resolves it: the options fill in the default quality.
    spec = TransformOptions().spec(fmt)
    transform.render(source, spec, tmp_path / f"transformed.{fmt}", max_pixels=10**7)
    return (
        (tmp_path / f"whole.{fmt}").read_bytes(),
        (tmp_path / f"converted.{fmt}").read_bytes(),
        (tmp_path / f"transformed.{fmt}").read_bytes(),
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_variants_conversions_and_transforms_encode_alike(tmp_path: Path, fmt: str) -> None:
    variant, converted, transformed = _three_paths(tmp_path, fmt)
    assert variant == converted == transformed


def _quantization(data: bytes) -> dict[int, list[int]]:
    with PILImage.open(io.BytesIO(data)) as picture:
        tables: dict[int, list[int]] = picture.quantization  # type: ignore[attr-defined]
        return tables


def test_jpeg_is_written_at_the_tables_default_quality(tmp_path: Path) -> None:
    variant, _, _ = _three_paths(tmp_path, "jpeg")
    quality = default_quality("jpeg")
    assert quality is not None
    pixels = scene(120, 80)
    at_default = pixels.jpegsave_buffer(Q=quality, optimize_coding=True, keep="none")
    one_off = pixels.jpegsave_buffer(Q=quality + 5, optimize_coding=True, keep="none")
    # libjpeg scales its quantization tables by the quality, so they name the quality used.
    assert _quantization(variant) == _quantization(at_default)
    assert _quantization(variant) != _quantization(one_off)


def test_every_output_format_has_one_encoder() -> None:
    assert set(ENCODERS) == set(image.OUTPUT_FORMATS)
    assert set(transform.MIME_OF) <= set(ENCODERS)
