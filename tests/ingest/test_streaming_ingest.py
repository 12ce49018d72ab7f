"""The streamed ingest at its heavy end: the spool's batches (pieces kept by reference, hashed
and written in threads while the next batch arrives), a multipart upload of many batches
through the real app, and the probe that reads only a WAV's header."""

import hashlib
import random
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from mediakeep.config import Settings
from mediakeep.errors import MediaError
from mediakeep.ingest.spool import BLOCK, Spool
from mediakeep.processing.probe import probe_av
from tests import mediagen
from tests.factories import TestUser
from tests.media.support import MEDIA, assert_error


def _settings(tmp_path: Path, **overrides: object) -> Settings:
    return Settings(data_dir=tmp_path / "data", auth_secret_key="k" * 48, **overrides)


def _pieces(data: bytes, seed: int) -> list[memoryview]:
    """`data` cut at random places (1 byte to 300 KiB), as read-only views."""
    rng = random.Random(seed)
    view = memoryview(data)
    out, at = [], 0
    while at < len(data):
        step = rng.randint(1, 300 * 1024)
        out.append(view[at : at + step])
        at += step
    return out


async def test_a_spool_of_many_batches_keeps_every_byte_in_order_and_hashes_them(
    tmp_path: Path,
) -> None:
    data = mediagen.wav() + random.Random(7).randbytes(3 * BLOCK + 12345)
    async with Spool(_settings(tmp_path), tmp_path / "spool.bin") as spool:
        for piece in _pieces(data, seed=1):
            await spool.write(piece)
        spooled = await spool.finish()

    assert spooled.size == len(data)
    assert spooled.sha256 == hashlib.sha256(data).hexdigest()
    assert spooled.path.read_bytes() == data
    assert spooled.mime == "audio/x-wav" or spooled.mime.startswith("audio/")


async def test_a_buffer_the_caller_reuses_is_stored_as_it_was_when_written(
    tmp_path: Path,
) -> None:
    """Pieces are kept by reference until their batch is stored: a mutable one is copied."""
    head = mediagen.wav()
    buffer = bytearray(64 * 1024)
    expected = bytearray(head)
    async with Spool(_settings(tmp_path), tmp_path / "spool.bin") as spool:
        await spool.write(head)
        for fill in range(40):  # 2.5 MiB: within one batch, so nothing is stored meanwhile
            buffer[:] = bytes([fill]) * len(buffer)
            await spool.write(buffer)
            expected += buffer
        spooled = await spool.finish()

    assert spooled.path.read_bytes() == bytes(expected)
    assert spooled.sha256 == hashlib.sha256(expected).hexdigest()


async def test_an_oversize_stream_is_refused_and_leaves_no_file_behind(tmp_path: Path) -> None:
    settings = _settings(tmp_path, max_bytes=BLOCK + 1000, max_bytes_video=BLOCK + 1000)
    path = tmp_path / "spool.bin"
    data = mediagen.wav() + bytes(2 * BLOCK)

    async def stream() -> None:
        async with Spool(settings, path) as spool:
            for piece in _pieces(data, seed=2):
                await spool.write(piece)

    with pytest.raises(MediaError) as refused:
        await stream()
    assert refused.value.status == 413
    assert not path.exists()


def _long_wav(size: int, rate: int = 8000, channels: int = 1) -> bytes:
    """A valid 16-bit PCM WAV of `size` bytes: a real header, then samples."""
    samples = random.Random(3).randbytes(size - 44)
    fmt = b"\x01\x00" + channels.to_bytes(2, "little") + rate.to_bytes(4, "little")
    fmt += (rate * channels * 2).to_bytes(4, "little") + (channels * 2).to_bytes(2, "little")
    return (
        b"RIFF"
        + (len(samples) + 36).to_bytes(4, "little")
        + b"WAVEfmt "
        + (16).to_bytes(4, "little")
        + fmt
        + b"\x10\x00"
        + b"data"
        + len(samples).to_bytes(4, "little")
        + samples
    )


async def test_a_large_multipart_upload_streamed_in_odd_slices_hashes_right_and_dedups(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    data = _long_wav(3 * BLOCK + 777)
    boundary = "test-boundary-7c1f"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="generate_variants"\r\n\r\n'
        f'false\r\n--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="long.wav"\r\nContent-Type: audio/wav\r\n\r\n'
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    body = head + data + tail

    async def slices() -> AsyncIterator[bytes]:
        for piece in _pieces(body, seed=4):  # boundaries land anywhere, even split in two
            yield bytes(piece)

    async def send() -> httpx.Response:
        return await client.post(
            f"{MEDIA}/upload",
            content=slices(),
            headers=user.headers
            | {
                "Content-Type": f"multipart/form-data; boundary={boundary}",
                "Content-Length": str(len(body)),
            },
        )

    first = await send()
    assert first.status_code == 201, first.text
    media = first.json()
    assert media["sha256"] == hashlib.sha256(data).hexdigest()
    assert media["size_bytes"] == len(data)
    assert media["kind"] == "audio"
    assert media["duration_seconds"] == pytest.approx((len(data) - 44) / 16000, abs=0.01)

    again = await send()
    assert again.status_code == 200, again.text
    assert again.json()["id"] == media["id"]
    assert again.json()["deduped"] is True


async def test_a_multipart_body_cut_off_mid_file_is_refused(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    boundary = "test-boundary-cut"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
        "Content-Type: audio/wav\r\n\r\n"
    ).encode() + _long_wav(BLOCK + 5000)  # no closing boundary
    response = await client.post(
        f"{MEDIA}/upload",
        content=body,
        headers=user.headers | {"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert_error(response, 400, "validation.invalid")


def _bytes_read_by_this_process() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


def test_probing_a_wav_reads_its_header_not_megabytes(tmp_path: Path) -> None:
    if not Path("/proc/self/io").exists():
        pytest.skip("no /proc/self/io here to count the bytes read")
    path = tmp_path / "long.wav"
    data = _long_wav(24 * 1024 * 1024, rate=48000, channels=2)  # CD-like: FFmpeg reads ~1 MB
    path.write_bytes(data)

    before = _bytes_read_by_this_process()
    facts = probe_av(path, "audio")
    read = _bytes_read_by_this_process() - before

    assert facts.duration_seconds == pytest.approx((len(data) - 44) / 192000, abs=0.01)
    assert (facts.metadata["sample_rate"], facts.metadata["channels"]) == (48000, 2)
    assert read < 256 * 1024, f"the probe read {read} bytes"
