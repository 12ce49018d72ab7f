"""Helpers of the signed-transform tests: minting URLs through the API, signing them by hand
(the published scheme: HMAC-SHA256 over `{options}/{media_id}` with the org's derived key),
decoding answers and reading the render counter from `/metrics`."""

import base64
import hashlib
import hmac
from typing import Any

import httpx
import pyvips
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from tests.factories import TestUser
from tests.media.support import MEDIA, settings_of, upload_ok
from tests.mediagen import jpeg

RENDERS = "mediakeep_transform_renders_total"


async def mint(
    client: httpx.AsyncClient, user: TestUser, media_id: str, **body: Any
) -> dict[str, Any]:
    """POST /media/{id}/transform-url; returns the answer body."""
    response = await client.post(
        f"{MEDIA}/{media_id}/transform-url", json=body, headers=user.headers
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def path_of(app: FastAPI, url: str) -> str:
    public = settings_of(app).public_url
    assert url.startswith(public + "/t/"), url
    return url[len(public) :]


async def mint_path(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser, media_id: str, **body: Any
) -> str:
    return path_of(app, (await mint(client, user, media_id, **body))["url"])


def signed_path(app: FastAPI, org_id: str, options: str, media_id: str) -> str:
    """A /t/ path signed by hand with `org_id`'s transform key: the published scheme, with the
    standard library (not `kit.signing`, which would agree with any scheme it implements)."""
    secret = settings_of(app).secret_key.encode()
    key = hmac.new(secret, f"transform:{org_id}".encode(), hashlib.sha256).digest()
    digest = hmac.new(key, f"{options}/{media_id}".encode(), hashlib.sha256).digest()
    signature = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    return f"/t/{signature}/{options}/{media_id}"


async def upload_image(
    client: httpx.AsyncClient, user: TestUser, width: int = 640, height: int = 480
) -> dict[str, Any]:
    return await upload_ok(client, user, jpeg(width, height))


def decode(content: bytes) -> pyvips.Image:
    return pyvips.Image.new_from_buffer(content, "")


def loader(image: pyvips.Image) -> str:
    return str(image.get("vips-loader"))


async def renders(client: httpx.AsyncClient) -> float:
    """Renders so far, all formats together, as `/metrics` reports them."""
    response = await client.get("/metrics")
    assert response.status_code == 200
    total = 0.0
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == RENDERS:
                total += sample.value
    return total
