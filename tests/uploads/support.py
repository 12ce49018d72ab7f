"""Helpers for direct-upload tests: ask for an upload URL, send the bytes the way a browser
would (a form POST to the real S3 server, or a PUT to the service's own signed URL), look at
what the storage really holds, and edit rows where a test needs a past expiry."""

import base64
import json
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
from fastapi import FastAPI
from sqlalchemy import update

from mediakeep.models import Media
from mediakeep.storage.base import Storage
from tests.factories import TestUser
from tests.media.support import MEDIA, s3_client, settings_of

UPLOAD_URL = f"{MEDIA}/upload-url"


def finalize_path(media_id: str) -> str:
    return f"{MEDIA}/{media_id}/finalize"


async def ask_upload(
    client: httpx.AsyncClient,
    user: TestUser,
    size: int,
    *,
    mime: str = "image/png",
    filename: str = "photo.png",
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> httpx.Response:
    body = {"filename": filename, "mime": mime, "size_bytes": size, **extra}
    return await client.post(UPLOAD_URL, json=body, headers=headers or user.headers)


async def ask_upload_ok(
    client: httpx.AsyncClient,
    user: TestUser,
    data: bytes,
    *,
    mime: str = "image/png",
    filename: str = "photo.png",
    **extra: Any,
) -> dict[str, Any]:
    response = await ask_upload(client, user, len(data), mime=mime, filename=filename, **extra)
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


def is_s3(app: FastAPI) -> bool:
    return settings_of(app).storage_backend == "s3"


async def send(
    app: FastAPI,
    client: httpx.AsyncClient,
    answer: dict[str, Any],
    data: bytes,
    *,
    content_type: str | None = None,
    fields: dict[str, str] | None = None,
    url: str | None = None,
) -> httpx.Response:
    """Send `data` to an upload-url answer as a browser would.

    POST: a multipart form with the answer's fields (`fields` replaces some) and then the file,
    to the S3 server over the network. PUT: the body with the answer's headers (`content_type`
    replaces Content-Type) to `url` (default: the answer's), through the app's own client.
    """
    target = url or answer["upload_url"]
    if answer["upload_method"] == "POST":
        form = {**answer["upload_fields"], **(fields or {})}
        if content_type is not None:
            form["Content-Type"] = content_type
        async with httpx.AsyncClient(trust_env=False, timeout=30) as real:
            return await real.post(target, data=form, files={"file": ("blob", data)})
    headers = dict(answer["upload_headers"])
    if content_type is not None:
        headers["Content-Type"] = content_type
    public = settings_of(app).public_url
    assert target.startswith(public + "/"), target
    return await client.put(target[len(public) :], content=data, headers=headers)


def upload_key(answer: dict[str, Any]) -> str:
    """The storage key an upload-url answer is bound to."""
    if answer["upload_method"] == "POST":
        return str(answer["upload_fields"]["key"])
    path = urlsplit(answer["upload_url"]).path
    return path.removeprefix("/uploads/local/")


def policy_of(answer: dict[str, Any]) -> dict[str, Any]:
    policy: dict[str, Any] = json.loads(base64.b64decode(answer["upload_fields"]["policy"]))
    return policy


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query)) | changes
    return parts._replace(query=urlencode(query)).geturl()


def with_path(url: str, path: str) -> str:
    return urlsplit(url)._replace(path=path).geturl()


def storage_of(app: FastAPI) -> Storage:
    storage: Storage = app.state.services.storage
    return storage


def incoming_objects(app: FastAPI, org_id: str) -> list[str]:
    """Keys below `{org}/incoming/`, read from the backend itself (temp files included)."""
    settings = settings_of(app)
    if settings.storage_backend == "local":
        root = Path(settings.local_storage_path)
        folder = root / org_id / "incoming"
        if not folder.is_dir():
            return []
        return sorted(str(p.relative_to(root)) for p in folder.rglob("*") if p.is_file())
    listing = s3_client(settings).list_objects_v2(
        Bucket=settings.s3_bucket, Prefix=f"{org_id}/incoming/"
    )
    return sorted(item["Key"] for item in listing.get("Contents", []))


def org_objects(app: FastAPI, org_id: str) -> list[str]:
    """Every stored key of the org (originals, incoming, anything), from the backend itself."""
    settings = settings_of(app)
    if settings.storage_backend == "local":
        root = Path(settings.local_storage_path)
        folder = root / org_id
        if not folder.is_dir():
            return []
        return sorted(str(p.relative_to(root)) for p in folder.rglob("*") if p.is_file())
    listing = s3_client(settings).list_objects_v2(Bucket=settings.s3_bucket, Prefix=f"{org_id}/")
    return sorted(item["Key"] for item in listing.get("Contents", []))


async def set_upload_expiry(app: FastAPI, org_id: str, media_id: str, when: datetime) -> None:
    """Move a pending upload's URL expiry (a test stand-in for waiting)."""
    async with app.state.services.db.write_session() as session:
        await session.execute(
            update(Media)
            .where(Media.org_id == org_id, Media.id == media_id)
            .values(upload_expires_at=when)
        )


async def media_row(app: FastAPI, org_id: str, media_id: str) -> Media | None:
    async with app.state.services.db.write_session() as session:
        row = await session.get(Media, media_id)
        return row if row is not None and row.org_id == org_id else None
