"""Streaming bytes into a spool file while hashing, sizing and sniffing them."""

import asyncio
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from mediakeep.config import Settings
from mediakeep.errors import MediaError
from mediakeep.ingest.sniff import SNIFF_BYTES, sniff_mime

# ASGI bodies arrive in ~64 KiB messages; handing each to a thread costs more than it saves,
# so bytes are gathered into 1 MiB blocks, then hashed and written at once in two threads.
BLOCK = 1 << 20


def size_error(size: int, limit: int) -> MediaError:
    return MediaError(
        "validation.size.exceeds_limit",
        413,
        f"File is larger than the limit of {limit} bytes",
        [{"field": "file", "message": f"more than {limit} bytes (at least {size} received)"}],
    )


def unsupported_type(mime: str) -> MediaError:
    return MediaError(
        "validation.mime.unsupported",
        415,
        f"Content type {mime} is not allowed",
        [{"field": "file", "message": f"the bytes are {mime}"}],
    )


def quota_error(quota: int) -> MediaError:
    return MediaError(
        "quota.exceeded",
        413,
        f"This upload would take the organisation over its storage quota of {quota} bytes",
        [{"field": "file", "message": "storage quota exceeded"}],
    )


@dataclass(frozen=True)
class SpooledFile:
    path: Path
    sha256: str
    size: int
    mime: str


class Spool:
    """One file being received. `write` refuses the first byte over the limit (413) and a
    disallowed type as soon as it is sniffed (415); `finish` fsyncs and returns the facts."""

    def __init__(self, settings: Settings, path: Path, quota_left: int | None = None) -> None:
        self._settings = settings
        self._quota_left = quota_left
        self.path = path
        self._hash = hashlib.sha256()
        self._size = 0
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._head = bytearray()
        self._mime: str | None = None
        self._limit = settings.max_bytes_for(None)
        self._file: BinaryIO | None = None

    async def __aenter__(self) -> "Spool":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = await asyncio.to_thread(open, self.path, "wb")
        return self

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        if self._file is not None and not self._file.closed:
            await asyncio.to_thread(self._file.close)
        if exc_type is not None:
            await self.discard()

    async def discard(self) -> None:
        await asyncio.to_thread(self.path.unlink, missing_ok=True)

    @property
    def size(self) -> int:
        return self._size

    async def write(self, chunk: bytes) -> None:
        if not chunk:
            return
        self._size += len(chunk)
        if self._size > self._limit:
            raise size_error(self._size, self._limit)
        if self._quota_left is not None and self._size > self._quota_left:
            raise quota_error(self._settings.org_quota_bytes)
        if self._mime is None and len(self._head) < SNIFF_BYTES:
            self._head += chunk[: SNIFF_BYTES - len(self._head)]
            if len(self._head) >= SNIFF_BYTES:
                self._decide_type()
        self._pending.append(chunk)
        self._pending_size += len(chunk)
        if self._pending_size >= BLOCK:
            await self._flush()

    def _decide_type(self) -> None:
        mime = sniff_mime(bytes(self._head))
        if not self._settings.mime_allowed(mime):
            raise unsupported_type(mime)
        self._mime = mime
        self._limit = self._settings.max_bytes_for(mime)
        if self._size > self._limit:
            raise size_error(self._size, self._limit)

    async def _flush(self) -> None:
        if not self._pending:
            return
        block = b"".join(self._pending)
        self._pending.clear()
        self._pending_size = 0
        assert self._file is not None
        # hashlib and file writes both release the GIL: the two overlap on two cores.
        await asyncio.gather(
            asyncio.to_thread(self._hash.update, block),
            asyncio.to_thread(self._file.write, block),
        )

    async def finish(self) -> SpooledFile:
        if self._size == 0:
            raise MediaError(
                "validation.invalid",
                400,
                "The file is empty",
                [{"field": "file", "message": "empty"}],
            )
        if self._mime is None:
            self._decide_type()
        await self._flush()
        assert self._file is not None
        assert self._mime is not None
        handle = self._file
        await asyncio.to_thread(_flush_and_sync, handle)
        return SpooledFile(self.path, self._hash.hexdigest(), self._size, self._mime)


def _flush_and_sync(handle: BinaryIO) -> None:
    handle.flush()
    os.fsync(handle.fileno())
    handle.close()
