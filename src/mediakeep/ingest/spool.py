"""Streaming bytes into a spool file while hashing, sizing and sniffing them."""

import asyncio
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from mediakeep.config import Settings
from mediakeep.errors import MediaError
from mediakeep.ingest.sniff import SNIFF_BYTES, sniff_mime

# ASGI bodies arrive in 64-256 KiB messages; handing each to a thread costs more than it
# saves, so the pieces are gathered (by reference, not copied) into 4 MiB batches, each hashed
# and written in two threads while the event loop receives the next batch. At most one batch
# is in flight and one gathering: memory stays bounded at about two batches.
BLOCK = 4 << 20
# A batch goes to os.writev in slices of at most this many buffers (Linux IOV_MAX is 1024).
_IOV_MAX = 512

# Immutable bytes the spool may keep by reference until its batch is stored.
Piece = bytes | memoryview


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
        self._pending: list[Piece] = []
        self._pending_size = 0
        self._inflight: asyncio.Future[tuple[None, None]] | None = None
        self._head = bytearray()
        self._mime: str | None = None
        self._limit = settings.max_bytes_for(None)
        self._file: BinaryIO | None = None

    async def __aenter__(self) -> "Spool":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Unbuffered: the batches go to the descriptor by writev, nothing to flush in Python.
        self._file = await asyncio.to_thread(open, self.path, "wb", buffering=0)
        return self

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        if self._inflight is not None:  # its threads still use the file: let them end first
            await asyncio.wait([self._inflight])
            if not self._inflight.cancelled():
                self._inflight.exception()  # retrieved: the error that ended the upload is raised
        if self._file is not None and not self._file.closed:
            await asyncio.to_thread(self._file.close)
        if exc_type is not None:
            await self.discard()

    async def discard(self) -> None:
        await asyncio.to_thread(self.path.unlink, missing_ok=True)

    @property
    def size(self) -> int:
        return self._size

    async def write(self, chunk: bytes | bytearray | memoryview) -> None:
        """Take `chunk` (kept by reference when immutable: bytes, or a read-only view)."""
        if not chunk:
            return
        if not isinstance(chunk, bytes) and not (isinstance(chunk, memoryview) and chunk.readonly):
            chunk = bytes(chunk)  # the caller may reuse a mutable buffer: keep a copy
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
        """Hand the gathered pieces to the threads, once the previous batch is stored (which
        keeps the hash in order and the memory bounded); does not wait for this batch."""
        if self._inflight is not None:
            inflight, self._inflight = self._inflight, None
            await inflight  # its error (disk full, ...) is this write's error
        if not self._pending:
            return
        pieces = self._pending
        self._pending = []
        self._pending_size = 0
        assert self._file is not None
        # hashlib (on buffers over 2 KiB) and writev both release the GIL: hashing, writing
        # and the event loop's receiving overlap.
        self._inflight = asyncio.ensure_future(
            asyncio.gather(
                asyncio.to_thread(_hash_pieces, self._hash, pieces),
                asyncio.to_thread(_write_pieces, self._file.fileno(), pieces),
            )
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
        await self._flush()  # the second waits for the last batch
        assert self._file is not None
        assert self._mime is not None
        handle = self._file
        await asyncio.to_thread(_flush_and_sync, handle)
        return SpooledFile(self.path, self._hash.hexdigest(), self._size, self._mime)


def _hash_pieces(digest: "hashlib._Hash", pieces: Sequence[Piece]) -> None:
    for piece in pieces:
        digest.update(piece)


def _write_pieces(fd: int, pieces: Sequence[Piece]) -> None:
    """Write the pieces in order with few syscalls and no joined copy (short writes resumed)."""
    for start in range(0, len(pieces), _IOV_MAX):
        views = [memoryview(piece) for piece in pieces[start : start + _IOV_MAX]]
        while views:
            written = os.writev(fd, views)
            while views and written >= len(views[0]):
                written -= len(views[0])
                views.pop(0)
            if views and written:
                views[0] = views[0][written:]


def _flush_and_sync(handle: BinaryIO) -> None:
    handle.flush()
    os.fsync(handle.fileno())
    handle.close()
