"""The storage protocols, one per capability; nothing outside storage/ branches on the backend."""

from collections.abc import AsyncIterator, Collection
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol


class StorageUnavailable(Exception):
    """The backing store did not answer; callers turn this into 503 `storage.unavailable`."""


class ObjectChanged(Exception):
    """The object is not (or no longer) the version the caller named with `if_match`."""


class ObjectTooLarge(Exception):
    """A direct upload sent more bytes than its signed size."""


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    modified: datetime
    etag: str | None = None


Disposition = Literal["inline", "attachment"]


@dataclass(frozen=True)
class UploadTarget:
    """Where a client sends one object's bytes itself: an S3 presigned POST (a form whose policy
    pins key, type and size) or the local backend's signed PUT URL."""

    url: str
    method: Literal["PUT", "POST"]
    fields: dict[str, str]
    headers: dict[str, str]


@dataclass(frozen=True)
class Staging:
    """Where a resumable (tus) upload's bytes are kept besides this node's spool file.

    The bytes always land in `spool_path(key)` first, at their own offsets. The S3 backend also
    stages them as parts of a multipart upload, so they outlive the node that received them;
    the local backend's spool file already is the store, so it stages nothing. The caller keeps
    this in its database (`tus_uploads.s3_upload_id` / `.s3_parts`) and passes it back.
    """

    upload_id: str | None = None  # the S3 multipart upload, while one is open
    parts: tuple[tuple[int, str, int], ...] = ()  # (number, etag, end offset), numbers 1..n
    min_part: int = 0  # the smallest part but the last (S3: 5 MiB, more for huge uploads)
    holder: str | None = None  # the spool holding the unstaged bytes [staged, offset)
    local_from: int = 0  # that spool holds the upload's bytes from here on
    completed: bool = False  # the staged parts were assembled into the object at the key

    @property
    def staged(self) -> int:
        """Bytes [0, staged) are kept by the store whatever happens to this node."""
        return self.parts[-1][2] if self.parts else 0

    def to_json(self) -> dict[str, Any] | None:
        if self.upload_id is None and not self.parts and not self.completed:
            return None
        return {
            "parts": [list(part) for part in self.parts],
            "min_part": self.min_part,
            "holder": self.holder,
            "local_from": self.local_from,
            "completed": self.completed,
        }

    @classmethod
    def from_json(cls, upload_id: str | None, data: dict[str, Any] | None) -> "Staging":
        if not data:
            return cls(upload_id=upload_id)
        return cls(
            upload_id=upload_id,
            parts=tuple((int(n), str(etag), int(end)) for n, etag, end in data.get("parts", [])),
            min_part=int(data.get("min_part", 0)),
            holder=data.get("holder"),
            local_from=int(data.get("local_from", 0)),
            completed=bool(data.get("completed", False)),
        )


VerifyResult = Literal["ok", "expired", "bad"]


class ObjectReader(Protocol):
    """Reads stored objects: all that serving bytes needs."""

    async def stat(self, key: str) -> ObjectInfo | None: ...

    def read(
        self, key: str, start: int = 0, end: int | None = None, *, if_match: str | None = None
    ) -> AsyncIterator[bytes]:
        """Stream bytes `start..end` (inclusive; `end=None` = to the end) in ~1 MiB chunks.

        With `if_match` (an `ObjectInfo.etag`), raise ObjectChanged unless the object is that
        version.
        """
        ...


class ObjectStore(ObjectReader, Protocol):
    """Whole objects at keys, and links to them: what every backend does."""

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

    async def promote(
        self,
        src_key: str,
        dst_key: str,
        content_type: str,
        *,
        if_match: str | None = None,
        keep_source: bool = False,
    ) -> None:
        """Move the stored object `src_key` to `dst_key` without the bytes leaving the store.

        Local = durable rename, S3 = server-side copy then delete of `src_key`. With `if_match`
        (an `ObjectInfo.etag`), raise ObjectChanged unless `src_key` still is that version;
        a missing `src_key` raises FileNotFoundError. With `keep_source`, `src_key` stays
        (local: a second name; S3: no delete) for a caller that removes it once it is safe to.
        """
        ...

    def presigned_upload(
        self, key: str, content_type: str, max_size: int, expires_in: int
    ) -> UploadTarget:
        """Let a client store up to `max_size` bytes of `content_type` at exactly `key` for
        `expires_in` seconds, without passing through this service's API."""
        ...

    def local_file(self, key: str) -> AbstractAsyncContextManager[Path]:
        """A local path holding the object's bytes for the duration of the block (read only)."""
        ...

    async def delete(self, key: str) -> None:
        """Remove `key`; a missing key is not an error."""
        ...

    async def delete_prefix(self, prefix: str) -> int: ...

    def list_objects(self, prefix: str) -> AsyncIterator[ObjectInfo]: ...

    async def ping(self) -> None:
        """Raise StorageUnavailable when the store does not answer."""
        ...

    async def sweep_incomplete(
        self, older_than: datetime, *, keep: Collection[str] = frozenset()
    ) -> int:
        """Abort unfinished multipart uploads / remove stale spool files and `*/incoming/*`
        objects, except the incoming keys in `keep` (live direct uploads); return how many."""
        ...


class ResumableStaging(Protocol):
    """Resumable (tus) uploads: bytes at their offsets in spool_path(key), staged as they come."""

    def spool_path(self, key: str) -> Path:
        """The node-local file that takes the upload's bytes at their offsets."""
        ...

    async def stage_begin(self, key: str, length: int) -> Staging:
        """Start a resumable upload of `length` bytes bound for the incoming `key`."""
        ...

    async def stage_resume(self, key: str, staging: Staging, offset: int) -> tuple[int, Staging]:
        """Get `spool_path(key)` ready to take bytes at `offset` (what lies after it is dropped)
        and return the offset this node really continues from with the new staging: `offset`,
        or less when bytes before it are not here (S3: another node holds the unstaged tail,
        so the upload goes on from the last staged part)."""
        ...

    async def stage_parts(
        self, key: str, staging: Staging, available: int, *, end: bool
    ) -> Staging:
        """Stage what `spool_path(key)` holds below `available` (fsynced by the caller): whole
        parts, and with `end` (the request is over) also a tail that is big enough to be one."""
        ...

    async def stage_collect(self, key: str, staging: Staging, length: int) -> tuple[Staging, bool]:
        """Make `spool_path(key)` hold all `length` bytes; True when some had to be fetched back
        from the store (the spool held only a tail)."""
        ...

    async def stage_commit(
        self, key: str, staging: Staging, length: int, final_key: str, content_type: str
    ) -> Staging:
        """Durably place the upload's `length` bytes at `final_key` (readers never see a partial
        object); the spool file stays until `stage_discard`. Safe to call again."""
        ...

    async def stage_discard(self, key: str, staging: Staging) -> None:
        """Remove what the upload left: its spool file, staged parts or assembled object."""
        ...


class SelfServedLinks(Protocol):
    """A backend whose links point at this service itself, which then serves them:
    `GET /files/{key}` downloads (signed with the org's key, storage/links.py) and
    `PUT /uploads/local/{key}` direct uploads (the local backend). S3 presigns links that S3
    serves, so it has no such capability."""

    def verify_upload(self, key: str, exp: str, size: str, type: str, sig: str) -> VerifyResult:
        """Check a signed PUT URL's query: "ok", "expired" or "bad"."""
        ...

    async def receive(self, key: str, chunks: AsyncIterator[bytes], max_size: int) -> ObjectInfo:
        """Store a direct upload's body at `key` (ObjectTooLarge past `max_size`, ValueError
        when empty), never visible half-written."""
        ...


class PresignedLinks(Protocol):
    """A backend that serves download links it signs itself (S3's presigned URLs). The local
    backend has none: its bytes are served by this service through `/files` links signed with
    the org's key (storage/links.py), which the org's key rotation can revoke."""

    def signed_url(
        self,
        key: str,
        expires_in: int,
        *,
        issued: int | None = None,
        filename: str | None = None,
        content_type: str | None = None,
        disposition: Disposition = "inline",
    ) -> str:
        """A download URL of `key` valid for `expires_in` seconds from `issued` (epoch seconds,
        a window's start from `signing.issued_at`; by default now): at most that long."""
        ...


class Storage(ObjectStore, Protocol):
    """A whole backend as `storage/factory.py` builds it: an object store, plus each further
    capability as a narrower view, chosen once by the backend itself. Callers use the view
    they need, so nothing outside storage/ asks which backend this is."""

    @property
    def staging(self) -> ResumableStaging:
        """Where resumable uploads keep their bytes."""
        ...

    @property
    def self_served(self) -> SelfServedLinks | None:
        """This backend's own link checking and direct-upload receiving, or None when its
        signed links are served elsewhere (S3)."""
        ...

    @property
    def presigned(self) -> PresignedLinks | None:
        """Download links the store serves itself, or None when this service serves its
        bytes (`self_served`). Exactly one of the two is None."""
        ...
