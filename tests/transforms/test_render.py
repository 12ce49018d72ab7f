"""The pure render function: files in, files out, checked by decoding the output."""

from pathlib import Path

import pytest
import pyvips

from mediakeep.processing.transform import TransformError, TransformSpec, render
from tests.mediagen import _noise

MAX_PIXELS = 100_000_000


def _write(image: pyvips.Image, path: Path, **options: object) -> Path:
    image.write_to_file(str(path), **options)
    return path


def test_output_is_auto_rotated_by_exif_orientation(tmp_path: Path) -> None:
    image = _noise(64, 48).copy()
    image.set_type(pyvips.GValue.gint_type, "orientation", 6)
    source = _write(image, tmp_path / "rotated.jpg")
    result = render(source, TransformSpec(format="png"), tmp_path / "out", max_pixels=MAX_PIXELS)
    out = pyvips.Image.new_from_file(str(tmp_path / "out"))
    assert (result.width, result.height) == (out.width, out.height) == (48, 64)


def test_metadata_is_stripped(tmp_path: Path) -> None:
    image = _noise(64, 48).copy()
    image.set_type(pyvips.GValue.gint_type, "orientation", 1)
    image.set_type(pyvips.GValue.gstr_type, "exif-ifd0-Artist", "Someone Private")
    source = _write(image, tmp_path / "exif.jpg")
    assert "exif-data" in pyvips.Image.new_from_file(str(source)).get_fields()
    for fmt in ("jpeg", "webp", "png"):
        output = tmp_path / f"out-{fmt}"
        render(source, TransformSpec(format=fmt, width=32), output, max_pixels=MAX_PIXELS)
        fields = pyvips.Image.new_from_file(str(output)).get_fields()
        assert not {"exif-data", "xmp-data", "iptc-data"} & set(fields), (fmt, fields)


def test_cmyk_and_16_bit_sources_come_out_as_8_bit_srgb(tmp_path: Path) -> None:
    cmyk = _write(_noise(64, 48).colourspace("cmyk"), tmp_path / "cmyk.jpg")
    deep = _write(_noise(64, 48).colourspace("rgb16"), tmp_path / "deep.png")
    for source in (cmyk, deep):
        output = tmp_path / f"{source.stem}.out"
        render(source, TransformSpec(format="jpeg", width=32), output, max_pixels=MAX_PIXELS)
        out = pyvips.Image.new_from_file(str(output))
        assert (out.bands, out.format, out.interpretation) == (3, "uchar", "srgb")


def test_pixel_bombs_and_garbage_raise_transform_error(tmp_path: Path) -> None:
    source = _write(_noise(200, 200), tmp_path / "big.png")
    with pytest.raises(TransformError):
        render(source, TransformSpec(format="jpeg", width=10), tmp_path / "o", max_pixels=1000)
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(TransformError):
        render(
            garbage, TransformSpec(format="jpeg", width=10), tmp_path / "o", max_pixels=MAX_PIXELS
        )


def test_a_caller_given_upright_size_renders_as_the_header_would(tmp_path: Path) -> None:
    """The service passes the size it read once (footprint) instead of a second header read:
    the output is the same as with the header read here."""
    image = _noise(64, 48).copy()
    image.set_type(pyvips.GValue.gint_type, "orientation", 6)
    source = _write(image, tmp_path / "rotated.jpg")
    spec = TransformSpec(format="png", width=40, height=40, fit="contain")
    read = render(source, spec, tmp_path / "read", max_pixels=MAX_PIXELS)
    given = render(source, spec, tmp_path / "given", max_pixels=MAX_PIXELS, upright=(48, 64))
    assert (read.width, read.height) == (given.width, given.height) == (40, 40)
    assert (tmp_path / "read").read_bytes() == (tmp_path / "given").read_bytes()
