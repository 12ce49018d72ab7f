"""The process's one decode gate (issue 17, M1): a concurrency cap with a bounded queue and a
decoded-bytes budget (MEDIA_MAX_DECODE_BYTES), shared by uploads, variants and transforms.

The memory it saves on a real server is measured in tests/live/test_image_bombs.py."""

import asyncio
from pathlib import Path

import pytest
import pyvips

from mediakeep.budget import DecodeGate
from mediakeep.config import Settings
from mediakeep.errors import MediaError
from mediakeep.processing.image import footprint
from tests.factories import new_user
from tests.media.support import MEDIA, asgi_client, assert_error, extra_app, upload, upload_ok
from tests.mediagen import jpeg
from tests.reliability.hostile_corpus import webp_lossless_bomb
from tests.transforms.support import mint_path

MiB = 1024 * 1024


async def _until_waiting(gate: DecodeGate, count: int) -> None:
    """Let the loop run until `count` works wait in the gate's queue (no clock involved)."""
    while len(gate._waiting) < count:
        await asyncio.sleep(0)


async def test_work_that_does_not_fit_the_budget_waits_for_it_in_order() -> None:
    gate = DecodeGate(slots=4, queue=4, budget=100)
    order: list[str] = []

    async def work(name: str, estimate: int, release: asyncio.Event) -> None:
        async with gate.hold(estimate):
            order.append(name)
            await release.wait()

    first_done, second_done, third_done = asyncio.Event(), asyncio.Event(), asyncio.Event()
    first = asyncio.create_task(work("first", 80, first_done))
    await asyncio.sleep(0)
    second = asyncio.create_task(work("second", 50, second_done))
    await _until_waiting(gate, 1)
    # A small one behind it waits too (first in, first out: the large one is not starved).
    third = asyncio.create_task(work("third", 10, third_done))
    await _until_waiting(gate, 2)
    assert order == ["first"]
    assert gate.held == 80
    first_done.set()
    await first
    await _until_waiting(gate, 0)
    while len(order) < 3:
        await asyncio.sleep(0)
    assert order == ["first", "second", "third"]
    assert gate.held == 60
    second_done.set()
    third_done.set()
    await asyncio.gather(second, third)
    assert (gate.held, gate.running) == (0, 0)


async def test_the_slots_cap_concurrency_and_a_full_queue_is_busy() -> None:
    gate = DecodeGate(slots=1, queue=1, budget=100)
    release = asyncio.Event()

    async def work() -> None:
        async with gate.hold(1):
            await release.wait()

    running = asyncio.create_task(work())
    await asyncio.sleep(0)
    queued = asyncio.create_task(work())
    await _until_waiting(gate, 1)
    with pytest.raises(MediaError) as refused:
        async with gate.hold(1):
            pass
    assert (refused.value.code, refused.value.status) == ("server.busy", 503)
    assert refused.value.headers is not None
    assert refused.value.headers["Retry-After"].isdigit()
    release.set()
    await asyncio.gather(running, queued)
    assert (gate.held, gate.running) == (0, 0)


async def test_work_larger_than_the_whole_budget_is_refused_at_once() -> None:
    gate = DecodeGate(slots=1, queue=1, budget=100)
    with pytest.raises(MediaError) as refused:
        async with gate.hold(101):
            pass
    assert (refused.value.code, refused.value.status) == ("media.unprocessable", 422)
    assert "MEDIA_MAX_DECODE_BYTES" in refused.value.message


async def test_a_waiter_that_gives_up_leaves_the_queue() -> None:
    gate = DecodeGate(slots=1, queue=1, budget=100)
    release = asyncio.Event()

    async def work() -> None:
        async with gate.hold(1):
            await release.wait()

    running = asyncio.create_task(work())
    await asyncio.sleep(0)
    waiting = asyncio.create_task(work())
    await _until_waiting(gate, 1)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert len(gate._waiting) == 0
    release.set()
    await running
    assert (gate.held, gate.running) == (0, 0)


async def test_uploads_and_transforms_share_one_cap_and_answer_503_when_it_is_full(
    request: pytest.FixtureRequest, backend: str, service_root: Path
) -> None:
    async with (
        extra_app(
            request, backend, service_root, "decode-busy", decode_concurrency=1, decode_queue=0
        ) as app,
        asgi_client(app) as client,
    ):
        user = await new_user(client)
        media = await upload_ok(client, user, jpeg(320, 240))
        path = await mint_path(app, client, user, media["id"], width=100)
        gate: DecodeGate = app.state.services.decode_gate
        async with gate.hold(0):  # the one slot is busy, as with a long decode
            refused = await upload(client, user, jpeg(330, 240))
            assert_error(refused, 503, "server.busy")
            assert refused.headers["retry-after"].isdigit()
            busy_transform = await client.get(path)
            assert_error(busy_transform, 503, "server.busy")
            assert busy_transform.headers["retry-after"].isdigit()
        # Free again: both work, and nothing of the refused upload was kept.
        assert (await client.get(path)).status_code == 200
        await upload_ok(client, user, jpeg(330, 240))
        listed = await client.get(MEDIA, headers=user.headers)
        assert len(listed.json()["data"]) == 2


def _black_png(width: int, height: int) -> bytes:
    image = pyvips.Image.black(width, height, bands=4).copy(interpretation="srgb")
    return bytes(image.pngsave_buffer(compression=9))


async def test_an_image_over_the_budget_is_refused_and_an_oversized_variant_skipped(
    request: pytest.FixtureRequest, backend: str, service_root: Path
) -> None:
    # 2000x2000 RGBA PNG: its streamed probe and the presets up to `large` need < 60 MiB; the
    # full-size `original_webp` (libwebp holds the whole picture, 4 copies) needs ~70 MiB.
    async with (
        extra_app(
            request, backend, service_root, "decode-budget", max_decode_bytes=60 * MiB
        ) as app,
        asgi_client(app) as client,
    ):
        user = await new_user(client)
        media = await upload_ok(
            client, user, _black_png(2000, 2000), part_name="big.png", declared="image/png"
        )
        names = {v["name"] for v in media["variants"]}
        assert {"thumbnail", "small", "medium", "large"} <= names
        assert "original_webp" not in names
        # Asked for by name, the preset that can never fit is a 422 naming the setting.
        again = await client.post(
            f"{MEDIA}/{media['id']}/variants",
            json={"names": ["original_webp"]},
            headers=user.headers,
        )
        error = assert_error(again, 422, "media.unprocessable")
        assert "MEDIA_MAX_DECODE_BYTES" in error["message"]
        # An image whose decoder alone holds more (libwebp decodes whole frames) is refused.
        webp = pyvips.Image.black(4000, 4000, bands=3).webpsave_buffer(lossless=True)
        refused = await upload(client, user, bytes(webp), part_name="w.webp", declared="image/webp")
        error = assert_error(refused, 422, "media.unprocessable")
        assert "MEDIA_MAX_DECODE_BYTES" in error["message"]


def test_the_header_estimate_tells_streamed_from_whole_frame_decodes(tmp_path: Path) -> None:
    """What the gate admits by, read from headers only: a sequential PNG holds a window of
    lines, a lossless WebP its whole frame twice, a full-size WebP output four copies."""
    big_png = tmp_path / "big.png"
    big_png.write_bytes(_black_png(9990, 9990))
    size = footprint(big_png, max_pixels=100_000_000)
    assert (size.width, size.height, size.format) == (9990, 9990, "png")
    assert size.probe_bytes < 64 * MiB
    specs = {spec.name: spec for spec in Settings().variant_specs}
    assert size.variant_bytes(specs["large"]) < 128 * MiB
    assert size.variant_bytes(specs["original_webp"]) >= 9990 * 9990 * 4 * 4
    bomb = tmp_path / "bomb.webp"
    bomb.write_bytes(webp_lossless_bomb(9000, 9000))
    assert footprint(bomb, max_pixels=100_000_000).probe_bytes >= 9000 * 9000 * 4 * 2
