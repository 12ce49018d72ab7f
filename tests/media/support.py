"""Helpers shared by the media route tests: uploads, error checks, following download links,
looking at what the storage backend really holds, and tiny loopback HTTP servers."""

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from fastapi import FastAPI

from mediakeep.app import create_app
from mediakeep.config import Settings
from mediakeep.migrate import upgrade_async
from tests.conftest import make_settings
from tests.factories import TestUser

MEDIA = "/api/v1/media"
MEDIA_ID = re.compile(r"^med_[0-9a-hjkmnp-tv-z]{26}$")
RFC3339_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
NOSNIFF = "nosniff"

# Every field of API.md's media object; create calls add "deduped".
MEDIA_FIELDS = {
    "id",
    "org_id",
    "kind",
    "source",
    "status",
    "filename",
    "mime",
    "size_bytes",
    "sha256",
    "width",
    "height",
    "duration_seconds",
    "alt",
    "caption",
    "description",
    "is_private",
    "metadata",
    "placeholder",
    "derived_from",
    "url",
    "expires_at",
    "variants",
    "captions",
    "transcript",
    "stream",
    "version",
    "created_at",
    "updated_at",
}


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is API.md's error body with this status and code; returns the error."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert {"code", "message", "request_id"} <= set(error), error
    assert error["code"] == code, error
    assert isinstance(error["message"], str)
    assert error["message"]
    assert isinstance(error.get("details", []), list)
    assert error["request_id"].startswith("req_")
    assert error["request_id"] == response.headers["x-request-id"]
    assert "Traceback" not in response.text
    return error


async def upload(
    client: httpx.AsyncClient,
    user: TestUser | None,
    data: bytes,
    *,
    part_name: str = "picture.jpg",
    declared: str = "image/jpeg",
    **fields: str,
) -> httpx.Response:
    """POST /media/upload as multipart: the `file` part is named `part_name` with the declared
    content type `declared`; `fields` become the optional form fields."""
    return await client.post(
        f"{MEDIA}/upload",
        files={"file": (part_name, data, declared)},
        data=fields,
        headers=user.headers if user else {},
    )


async def upload_ok(
    client: httpx.AsyncClient,
    user: TestUser,
    data: bytes,
    *,
    part_name: str = "picture.jpg",
    declared: str = "image/jpeg",
    **fields: str,
) -> dict[str, Any]:
    response = await upload(client, user, data, part_name=part_name, declared=declared, **fields)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    assert body["deduped"] is False
    return body


def settings_of(app: FastAPI) -> Settings:
    settings: Settings = app.state.services.settings
    return settings


async def fetch_url(
    app: FastAPI,
    client: httpx.AsyncClient,
    url: str,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """GET a download link the API handed out, as a browser would.

    Links to this service (the local backend's `/files/...`, under MEDIA_PUBLIC_URL) go
    through the same ASGI client; presigned S3 links go to the S3 server over the network.
    """
    public = settings_of(app).public_url
    if url.startswith(public + "/"):
        return await client.get(url[len(public) :], headers=headers)
    async with httpx.AsyncClient(trust_env=False, timeout=10) as real:
        return await real.get(url, headers=headers)


def s3_client(settings: Settings) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint,
        region_name=settings.s3_region,
        aws_access_key_id=settings.s3_access_key_id,
        aws_secret_access_key=settings.s3_secret_access_key,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


def stored_originals(app: FastAPI, org_id: str) -> list[str]:
    """Names of the org's stored originals, read from the backend itself (not via the app)."""
    settings = settings_of(app)
    if settings.storage_backend == "local":
        root = Path(settings.local_storage_path) / org_id / "originals"
        if not root.is_dir():
            return []
        return sorted(path.name for path in root.iterdir() if path.is_file())
    listing = s3_client(settings).list_objects_v2(
        Bucket=settings.s3_bucket, Prefix=f"{org_id}/originals/"
    )
    return sorted(item["Key"].rsplit("/", 1)[-1] for item in listing.get("Contents", []))


def original_exists(app: FastAPI, org_id: str, sha256: str) -> bool:
    settings = settings_of(app)
    key = f"{org_id}/originals/{sha256}"
    if settings.storage_backend == "local":
        return (Path(settings.local_storage_path) / key).is_file()
    try:
        s3_client(settings).head_object(Bucket=settings.s3_bucket, Key=key)
    except ClientError as exc:
        if exc.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
            return False
        raise
    return True


@contextlib.asynccontextmanager
async def extra_app(
    request: pytest.FixtureRequest, backend: str, service_root: Path, name: str, **overrides: Any
) -> AsyncIterator[FastAPI]:
    """A second app on the same backend pair with other settings (own database and store)."""
    settings = make_settings(backend, service_root / f"app-{backend}-{name}", request, **overrides)
    await upgrade_async(settings)
    app = create_app(settings, run_background=False)
    async with app.router.lifespan_context(app):
        yield app


@contextlib.asynccontextmanager
async def asgi_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


# ----------------------------------------------------------------------- loopback HTTP


Responder = Callable[[asyncio.StreamWriter], Awaitable[None]]


@dataclass
class LoopbackServer:
    """A raw HTTP/1.1 server on 127.0.0.1: one request per connection, counts connections.

    `routes` maps a path to a coroutine writing the whole response; with no routes it is a
    canary that only records that someone connected.
    """

    routes: dict[str, Responder] = field(default_factory=dict)
    connections: int = 0
    paths: list[str] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    async def __aenter__(self) -> "LoopbackServer":
        self._server = await asyncio.start_server(self._on_connect, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ", 2)[1].decode("latin-1")
            self.paths.append(path)
            responder = self.routes.get(path, not_found)
            await responder(writer)
        except (ConnectionError, asyncio.IncompleteReadError, IndexError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


def _head(status: str, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in headers.items()), "", ""]
    return "\r\n".join(lines).encode("latin-1")


async def not_found(writer: asyncio.StreamWriter) -> None:
    writer.write(_head("404 Not Found", {"Content-Length": "9", "Connection": "close"}))
    writer.write(b"not found")
    await writer.drain()


def serve_bytes(body: bytes, content_type: str = "image/png") -> Responder:
    async def respond(writer: asyncio.StreamWriter) -> None:
        headers = {
            "Content-Type": content_type,
            "Content-Length": str(len(body)),
            "Connection": "close",
        }
        writer.write(_head("200 OK", headers) + body)
        await writer.drain()

    return respond


def redirect_to(location: str) -> Responder:
    async def respond(writer: asyncio.StreamWriter) -> None:
        headers = {"Location": location, "Content-Length": "0", "Connection": "close"}
        writer.write(_head("302 Found", headers))
        await writer.drain()

    return respond


def drip(body: bytes, every: float) -> Responder:
    """Headers at once, then the body one byte per `every` seconds (a slow-loris upstream)."""

    async def respond(writer: asyncio.StreamWriter) -> None:
        headers = {
            "Content-Type": "image/png",
            "Content-Length": str(len(body)),
            "Connection": "close",
        }
        writer.write(_head("200 OK", headers))
        await writer.drain()
        for index in range(len(body)):
            writer.write(body[index : index + 1])
            await writer.drain()
            await asyncio.sleep(every)

    return respond


def endless(prefix: bytes, total: int, *, declare_length: bool) -> Responder:
    """`total` bytes starting with `prefix`, with or without a Content-Length header."""

    async def respond(writer: asyncio.StreamWriter) -> None:
        headers = {"Content-Type": "image/png", "Connection": "close"}
        if declare_length:
            headers["Content-Length"] = str(total)
        writer.write(_head("200 OK", headers) + prefix)
        sent = len(prefix)
        block = b"\0" * 65536
        while sent < total:
            piece = block[: total - sent]
            writer.write(piece)
            await writer.drain()
            sent += len(piece)

    return respond


def leftover_spool_files(app: FastAPI, org_id: str) -> list[Path]:
    """Bytes of unfinished uploads of the org still on disk (there must be none)."""
    settings = settings_of(app)
    if settings.storage_backend == "local":
        incoming = Path(settings.local_storage_path) / org_id / "incoming"
    else:
        incoming = Path(settings.spool_dir) / org_id / "incoming"
    if not incoming.is_dir():
        return []
    return [path for path in incoming.rglob("*") if path.is_file()]
