"""The storage protocol; nothing outside storage/ branches on the backend."""

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal, Protocol


class StorageUnavailable(Exception):
    """The backing store did not answer; callers turn this into 503 `storage.unavailable`."""


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    modified: datetime
    etag: str | None = None


Disposition = Literal["inline", "attachment"]


class Storage(Protocol):
    name: str

    def spool_path(self, key: str) -> Path:
        """Local path where bytes bound for `key` are written before `commit_file`.

        On the local backend this lies inside the store (so commit is a rename); on S3 it is
        a scratch file in the data dir. Parents exist when this returns.
        """
        ...

    async def commit_file(self, path: Path, key: str, content_type: str) -> None:
        """Durably place the local file `path` at `key`; `path` is consumed (moved or deleted).

        Readers never see a partial object: local = fsync + rename, S3 = one PUT or a completed
        multipart upload.
        """
        ...

    async def stat(self, key: str) -> ObjectInfo | None: ...

    def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Stream bytes `start..end` (inclusive; `end=None` = to the end) in ~1 MiB chunks."""
        ...

    def local_file(self, key: str) -> AbstractAsyncContextManager[Path]:
        """A local path holding the object's bytes for the duration of the block (read only)."""
        ...

    async def delete(self, key: str) -> None:
        """Remove `key`; a missing key is not an error."""
        ...

    async def delete_prefix(self, prefix: str) -> int: ...

    def list_objects(self, prefix: str) -> AsyncIterator[ObjectInfo]: ...

    def signed_url(
        self,
        key: str,
        expires_in: int,
        *,
        filename: str | None = None,
        content_type: str | None = None,
        disposition: Disposition = "inline",
    ) -> str:
        """A download URL valid for `expires_in` seconds."""
        ...

    async def ping(self) -> None:
        """Raise StorageUnavailable when the store does not answer."""
        ...

    async def sweep_incomplete(self, older_than: datetime) -> int:
        """Abort unfinished multipart uploads / remove stale spool files; return how many."""
        ...
