"""Helpers for the tus tests: requests with the protocol's headers, payloads, leftovers."""

import base64
import hashlib
import os
from collections.abc import AsyncIterator, Iterable
from typing import Any
from urllib.parse import urlsplit

import httpx
from fastapi import FastAPI
from sqlalchemy import select, update

from mediakeep.models import TusUpload
from tests.factories import TestUser
from tests.live import wav_header
from tests.media.support import leftover_spool_files, s3_client, settings_of

TUS = "/api/v1/uploads/tus"
V1 = {"Tus-Resumable": "1.0.0"}
OFFSET_STREAM = "application/offset+octet-stream"
MiB = 1024 * 1024


def wav(size: int) -> bytes:
    """A valid PCM WAV of `size` bytes (noise samples): sniffs as audio/wav and probes."""
    return wav_header(size) + os.urandom(size - 44)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def checksum(data: bytes) -> str:
    return "sha256 " + base64.b64encode(hashlib.sha256(data).digest()).decode()


def metadata(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


def path_of(location: str) -> str:
    """The path of a Location header (absolute or not), for the ASGI client."""
    return urlsplit(location).path


def auth(user: TestUser | None) -> dict[str, str]:
    return dict(user.headers) if user else {}


async def create(
    client: httpx.AsyncClient,
    user: TestUser | None,
    length: int,
    *,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> httpx.Response:
    sent = V1 | auth(user) | {"Upload-Length": str(length)} | (headers or {})
    if body is not None:
        sent.setdefault("Content-Type", OFFSET_STREAM)
    return await client.post(TUS, headers=sent, content=body)


async def create_ok(client: httpx.AsyncClient, user: TestUser, length: int, **kwargs: Any) -> str:
    """A new upload's path."""
    response = await create(client, user, length, **kwargs)
    assert response.status_code == 201, response.text
    assert response.headers["tus-resumable"] == "1.0.0"
    return path_of(response.headers["location"])


async def patch(
    client: httpx.AsyncClient,
    user: TestUser | None,
    url: str,
    offset: int,
    body: bytes | AsyncIterator[bytes] | Iterable[bytes],
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    sent = V1 | auth(user) | {"Upload-Offset": str(offset), "Content-Type": OFFSET_STREAM}
    return await client.patch(url, headers=sent | (headers or {}), content=body)


async def head(client: httpx.AsyncClient, user: TestUser | None, url: str) -> httpx.Response:
    return await client.head(url, headers=V1 | auth(user))


async def offset_of(client: httpx.AsyncClient, user: TestUser, url: str) -> int:
    response = await head(client, user, url)
    assert response.status_code == 200, response.text
    return int(response.headers["upload-offset"])


async def send_all(
    client: httpx.AsyncClient,
    user: TestUser,
    url: str,
    data: bytes,
    *,
    start: int = 0,
    chunk: int = MiB,
    with_checksum: bool = True,
) -> httpx.Response:
    """PATCH `data[start:]` in chunks; returns the last answer (with Media-Id)."""
    offset = start
    response: httpx.Response | None = None
    while offset < len(data):
        piece = data[offset : offset + chunk]
        extra = {"Upload-Checksum": checksum(piece)} if with_checksum else {}
        response = await patch(client, user, url, offset, piece, extra)
        assert response.status_code == 204, response.text
        offset = int(response.headers["upload-offset"])
    assert response is not None
    return response


async def upload_rows(app: FastAPI, org_id: str) -> list[TusUpload]:
    async with app.state.services.db.read_session() as session:
        rows = await session.execute(select(TusUpload).where(TusUpload.org_id == org_id))
        return list(rows.scalars())


def multipart_uploads(app: FastAPI, org_id: str) -> list[str]:
    """Keys of the org's unfinished S3 multipart uploads (none on the local backend)."""
    settings = settings_of(app)
    if settings.storage_backend != "s3":
        return []
    listing = s3_client(settings).list_multipart_uploads(
        Bucket=settings.s3_bucket, Prefix=f"{org_id}/"
    )
    return [upload["Key"] for upload in listing.get("Uploads", [])]


def incoming_objects(app: FastAPI, org_id: str) -> list[str]:
    settings = settings_of(app)
    if settings.storage_backend != "s3":
        return []
    listing = s3_client(settings).list_objects_v2(
        Bucket=settings.s3_bucket, Prefix=f"{org_id}/incoming/"
    )
    return [item["Key"] for item in listing.get("Contents", [])]


async def leftovers(app: FastAPI, org_id: str) -> dict[str, list[Any]]:
    """Everything an org's tus uploads may leave behind; all lists empty = nothing left."""
    return {
        "rows": [row.id for row in await upload_rows(app, org_id)],
        "spool_files": leftover_spool_files(app, org_id),
        "multipart_uploads": multipart_uploads(app, org_id),
        "incoming_objects": incoming_objects(app, org_id),
    }


NOTHING_LEFT = {"rows": [], "spool_files": [], "multipart_uploads": [], "incoming_objects": []}


async def set_upload(app: FastAPI, org_id: str, upload_id: str, **values: Any) -> None:
    """Set columns of an upload's row directly, as another node or a crash would leave it."""
    async with app.state.services.db.write_session() as session:
        await session.execute(
            update(TusUpload)
            .where(TusUpload.org_id == org_id, TusUpload.id == upload_id)
            .values(**values)
        )
