"""Upload sources (a path, bytes, or a file object) read piece by piece, and the streamed
bodies made of them: a byte range (tus chunks, presigned PUT) and multipart/form-data."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import io
import mimetypes
import os
import uuid
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from mediakeep.client._core import Body

UploadInput = str | os.PathLike[str] | bytes | bytearray | memoryview | IO[bytes]
Progress = Callable[[int, int | None], None]


class Source:
    """The bytes of one upload. A path is reopened for every pass (so retries and tus resumes
    read it again), bytes are sliced, a seekable file object is sought back to where it was
    handed over; a non-seekable one can be read once (its size is unknown: multipart only)."""

    def __init__(self, file: UploadInput, filename: str | None, chunk_size: int) -> None:
        self.chunk_size = chunk_size
        self._path: Path | None = None
        self._data: memoryview | None = None
        self._file: IO[bytes] | None = None
        self._start = 0
        self._passes = 0
        self.replayable = True
        self.mtime: float | None = None
        if isinstance(file, (str, os.PathLike)):
            self._path = Path(file)
            stat = self._path.stat()
            if not self._path.is_file():
                raise IsADirectoryError(f"{self._path} is not a file")
            self.size: int | None = stat.st_size
            self.mtime = stat.st_mtime
            name = filename or self._path.name
        elif isinstance(file, (bytes, bytearray, memoryview)):
            self._data = memoryview(file).cast("B")
            self.size = self._data.nbytes
            name = filename or "upload"
        elif hasattr(file, "read"):
            self._file = file
            seekable = False
            with contextlib.suppress(AttributeError, OSError, ValueError):
                seekable = bool(file.seekable())
            if seekable:
                self._start = file.tell()
                self.size = file.seek(0, io.SEEK_END) - self._start
                file.seek(self._start)
            else:
                self.size = None
                self.replayable = False
            given = getattr(file, "name", None)
            from_name = os.path.basename(given) if isinstance(given, str) else ""
            name = filename or from_name or "upload"
        else:
            raise TypeError(
                f"upload() takes a path, bytes or a binary file object, not {type(file).__name__}"
            )
        self.filename = name
        self.path = self._path

    def guess_mime(self) -> str:
        guessed, _ = mimetypes.guess_type(self.filename, strict=False)
        return guessed or "application/octet-stream"

    def fingerprint(self, base_url: str) -> str | None:
        """Identifies this upload across processes (tus resume): only for files on disk."""
        if self._path is None:
            return None
        return f"{base_url}|{self._path.resolve()}|{self.size}|{self.mtime}"

    # -- reading

    @contextlib.contextmanager
    def _open(self, offset: int) -> Iterator[IO[bytes]]:
        if self._path is not None:
            with self._path.open("rb") as handle:
                handle.seek(offset)
                yield handle
            return
        if self._data is not None:
            yield io.BytesIO(self._data[offset:])  # a view: nothing is copied
            return
        assert self._file is not None
        if self.replayable:
            self._file.seek(self._start + offset)
        elif self._passes > 0 or offset:
            raise ValueError("this file object cannot be read twice (it is not seekable)")
        self._passes += 1
        yield self._file

    def read_range(
        self, offset: int = 0, length: int | None = None
    ) -> Generator[bytes, None, None]:
        """The bytes from `offset`, `length` of them (None: to the end), in chunk_size pieces."""
        with self._open(offset) as handle:
            left = length
            while left is None or left > 0:
                want = self.chunk_size if left is None else min(self.chunk_size, left)
                chunk = handle.read(want)
                if isinstance(chunk, str):
                    raise TypeError("open the file in binary mode ('rb') to upload it")
                if not chunk:
                    break
                if left is not None:
                    left -= len(chunk)
                yield chunk

    async def aread_range(self, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        """`read_range` whose reads run in a thread, so the event loop is never blocked."""
        pieces = self.read_range(offset, length)  # a generator: closing it closes the file
        done = object()
        try:
            while True:
                chunk = await asyncio.to_thread(next, pieces, done)
                if chunk is done:
                    return
                assert isinstance(chunk, bytes)
                yield chunk
        finally:
            await asyncio.to_thread(pieces.close)

    def _sha256(self, offset: int = 0, length: int | None = None) -> bytes:
        digest = hashlib.sha256()
        for chunk in self.read_range(offset, length):
            digest.update(chunk)
        return digest.digest()

    def sha256_hex(self) -> str:
        """The SHA-256 of the whole source (one more pass over it)."""
        return self._sha256().hex()

    def sha256_b64(self, offset: int, length: int) -> str:
        """The SHA-256 of a range, base64 (tus `Upload-Checksum`)."""
        return base64.b64encode(self._sha256(offset, length)).decode()


def as_source(file: UploadInput | Source, filename: str | None, chunk_size: int) -> Source:
    if isinstance(file, Source):
        if filename:
            file.filename = filename
        return file
    return Source(file, filename, chunk_size)


class RangeBody(Body):
    """`length` bytes of a source from `offset`, as they are; `progress(sent)` after each."""

    def __init__(
        self,
        source: Source,
        offset: int,
        length: int,
        content_type: str | None,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.source = source
        self.offset = offset
        self.length = length
        self.content_type = content_type
        self.progress = progress
        self.replayable = source.replayable

    def chunks(self) -> Iterator[bytes]:
        sent = 0
        for chunk in self.source.read_range(self.offset, self.length):
            yield chunk
            sent += len(chunk)  # asked for the next piece: this one went out
            if self.progress:
                self.progress(sent)

    async def achunks(self) -> AsyncIterator[bytes]:
        sent = 0
        async for chunk in self.source.aread_range(self.offset, self.length):
            yield chunk
            sent += len(chunk)
            if self.progress:
                self.progress(sent)


def _quoted(value: str) -> str:
    # As browsers encode form-data names and filenames (WHATWG): quote, CR and LF escaped.
    return value.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


class MultipartBody(Body):
    """multipart/form-data: the text `fields`, then the file part streamed from `source`
    (the order S3's POST policy needs too). The length is known when the source's size is."""

    def __init__(
        self,
        fields: Mapping[str, str],
        source: Source,
        *,
        file_field: str = "file",
        mime: str | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.source = source
        self.progress = progress
        self.boundary = "mediakeep-" + uuid.uuid4().hex
        self.content_type = f"multipart/form-data; boundary={self.boundary}"
        parts = bytearray()
        for name, value in fields.items():
            parts += (
                f"--{self.boundary}\r\n"
                f'Content-Disposition: form-data; name="{_quoted(name)}"\r\n\r\n'
            ).encode()
            parts += value.encode() + b"\r\n"
        parts += (
            f"--{self.boundary}\r\n"
            f'Content-Disposition: form-data; name="{_quoted(file_field)}"; '
            f'filename="{_quoted(source.filename)}"\r\n'
            f"Content-Type: {mime or source.guess_mime()}\r\n\r\n"
        ).encode()
        self.head = bytes(parts)
        self.tail = f"\r\n--{self.boundary}--\r\n".encode()
        self.length = (
            None if source.size is None else len(self.head) + source.size + len(self.tail)
        )
        self.replayable = source.replayable

    def chunks(self) -> Iterator[bytes]:
        yield self.head
        sent = 0
        for chunk in self.source.read_range():
            yield chunk
            sent += len(chunk)
            if self.progress:
                self.progress(sent)
        yield self.tail

    async def achunks(self) -> AsyncIterator[bytes]:
        yield self.head
        sent = 0
        async for chunk in self.source.aread_range():
            yield chunk
            sent += len(chunk)
            if self.progress:
                self.progress(sent)
        yield self.tail


def form_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def tus_metadata(values: Mapping[str, str]) -> str:
    """`Upload-Metadata`: comma-separated `key base64(value)` pairs."""
    return ",".join(
        f"{key} {base64.b64encode(value.encode()).decode()}" for key, value in values.items()
    )
