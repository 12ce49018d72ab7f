"""Issue 17, L2: media `metadata` is bounded (depth 10, 256 keys, 16 KiB as JSON by default):
over a bound is 422 `validation.metadata_too_large`, never a 500, on both backends."""

import json
from typing import Any

import httpx
import pytest

from mediakeep.kit.jsonlimits import json_size
from tests.factories import TestUser
from tests.media.support import assert_error, upload_ok
from tests.mediagen import png

MEDIA = "/api/v1/media"
DEPTH, KEYS, SIZE = 10, 256, 16 * 1024


@pytest.fixture
async def media(client: httpx.AsyncClient, user: TestUser) -> dict[str, Any]:
    return await upload_ok(client, user, png(), part_name="a.png", declared="image/png")


def nested(depth: int) -> dict[str, Any]:
    """An object `depth` levels deep: {"l": {"l": ... {"l": 1}}}."""
    value: Any = 1
    for _ in range(depth):
        value = {"l": value}
    result: dict[str, Any] = value
    return result


async def patch(
    client: httpx.AsyncClient, user: TestUser, media_id: str, metadata: Any
) -> httpx.Response:
    # Sent as text: the client's own JSON encoder would stop at a deep document.
    body = '{"metadata": ' + _dumps(metadata) + "}"
    return await client.patch(
        f"{MEDIA}/{media_id}",
        content=body,
        headers=user.headers | {"Content-Type": "application/json"},
    )


def _dumps(value: Any) -> str:
    if isinstance(value, dict) and len(value) == 1 and "l" in value:
        # Iteratively, for documents deeper than json's recursion allows.
        depth = 0
        while isinstance(value, dict) and set(value) == {"l"}:
            value = value["l"]
            depth += 1
        return '{"l":' * depth + json.dumps(value) + "}" * depth
    return json.dumps(value)


def assert_too_large(response: httpx.Response, what: str) -> None:
    error = assert_error(response, 422, "validation.metadata_too_large")
    assert what in error["message"], error
    assert error["details"][0]["field"] == "metadata"


@pytest.mark.parametrize("depth", [DEPTH + 1, 260])
async def test_too_deep_is_422(
    client: httpx.AsyncClient, user: TestUser, media: dict[str, Any], depth: int
) -> None:
    assert_too_large(await patch(client, user, media["id"], nested(depth)), "deeper")
    # Nothing was stored, and the media still reads (its events and lists serialise).
    read = await client.get(f"{MEDIA}/{media['id']}", headers=user.headers)
    assert read.status_code == 200
    assert "l" not in read.json()["metadata"]


async def test_deeper_than_json_parsing_goes_is_400_not_500(
    client: httpx.AsyncClient, user: TestUser, media: dict[str, Any]
) -> None:
    # Past Python's recursion limit the body does not parse at all: a malformed body.
    assert_error(await patch(client, user, media["id"], nested(5000)), 400, "validation.invalid")


async def test_too_many_keys_is_422(
    client: httpx.AsyncClient, user: TestUser, media: dict[str, Any]
) -> None:
    flat = {f"k{n}": n for n in range(KEYS + 1)}
    assert_too_large(await patch(client, user, media["id"], flat), "keys")
    # Keys count at every level, not just the top one.
    spread = {f"g{g}": {f"k{n}": n for n in range(30)} for g in range(9)}  # 9 + 270
    assert_too_large(await patch(client, user, media["id"], spread), "keys")


async def test_too_big_is_422(
    client: httpx.AsyncClient, user: TestUser, media: dict[str, Any]
) -> None:
    big = {"text": "x" * (17 * 1024)}
    assert_too_large(await patch(client, user, media["id"], big), "bytes")


async def test_patches_cannot_grow_it_past_the_limits(
    client: httpx.AsyncClient, user: TestUser, media: dict[str, Any]
) -> None:
    # Each patch merges into what is stored: the bound is on the result.
    for batch in range(2):
        half = {f"b{batch}-{n}": n for n in range(KEYS // 2)}
        answer = await patch(client, user, media["id"], half)
        if batch == 0:
            assert answer.status_code == 200, answer.text
        else:
            assert_too_large(answer, "keys")


async def test_exactly_at_the_limits_is_accepted(
    client: httpx.AsyncClient, user: TestUser, media: dict[str, Any]
) -> None:
    stored: dict[str, Any] = media["metadata"]  # the facts recorded at upload count too
    deep = nested(DEPTH - 1)  # one level is the metadata object itself
    answer = await patch(client, user, media["id"], {"deep": deep})
    assert answer.status_code == 200, answer.text
    stored = answer.json()["metadata"]
    used = _keys(stored)
    fill = {f"f{n:03d}": "" for n in range(KEYS - used)}
    merged = stored | fill
    assert _keys(merged) == KEYS
    # Pad the last value until the whole document is exactly SIZE bytes.
    last = f"f{KEYS - used - 1:03d}"
    fill[last] = "y" * (SIZE - json_size(merged))
    assert json_size(stored | fill) == SIZE
    answer = await patch(client, user, media["id"], fill)
    assert answer.status_code == 200, answer.text
    assert json_size(answer.json()["metadata"]) == SIZE
    # One byte more is over.
    fill[last] += "y"
    assert_too_large(await patch(client, user, media["id"], fill), "bytes")


async def test_create_routes_take_no_metadata(client: httpx.AsyncClient, user: TestUser) -> None:
    # Only PATCH sets metadata (API.md): the create routes refuse the field outright.
    body = {"source": {"type": "remote_url", "url": "https://example.com/a.png"}, "metadata": {}}
    created = await client.post(MEDIA, json=body, headers=user.headers)
    assert_error(created, 400, "validation.invalid")
    uploaded = await client.post(
        f"{MEDIA}/upload",
        files={"file": ("a.png", png(), "image/png")},
        data={"metadata": "{}"},
        headers=user.headers,
    )
    assert_error(uploaded, 400, "validation.invalid")


def _keys(value: Any) -> int:
    if isinstance(value, dict):
        return len(value) + sum(_keys(child) for child in value.values())
    if isinstance(value, list):
        return sum(_keys(child) for child in value)
    return 0
