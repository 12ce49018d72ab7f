"""tus 1.0 uploads: creation, appending under a lease, the ingest end, termination, the sweep.

An upload's bytes go straight to their offsets in the spool file of its incoming key (the
local backend's own incoming file; on S3 a local copy whose whole parts are also staged as a
multipart upload while they arrive), and are fsynced before the new offset is acknowledged.
A request appends only while it holds the upload's lease (see repository.py), so concurrent
PATCHes are refused with 423 on any replica. The last byte runs the one ingest pipeline
(sniff, hash, dedup, probe, media row), in the transaction that marks the upload finished.
"""

import asyncio
import contextlib
import hashlib
import os
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import ClientDisconnect

from mediakeep.auth.principal import Principal
from mediakeep.db import ReadOnlySession, ReadUnit, UnitOfWork, after_commit
from mediakeep.errors import MediaError, conflict, not_found
from mediakeep.ids import new_id
from mediakeep.ingest.pipeline import IngestFields, ingest_spooled, storage_unavailable
from mediakeep.ingest.sniff import SNIFF_BYTES, sniff_mime
from mediakeep.ingest.spool import SpooledFile, quota_error, unsupported_type
from mediakeep.kit.time import now
from mediakeep.media.repository import MediaRepository
from mediakeep.models import TusUpload
from mediakeep.services import Services
from mediakeep.storage import keys
from mediakeep.storage.base import Staging, StorageUnavailable
from mediakeep.tus.repository import TusRepository, durable_offset, locked_value
from mediakeep.tus.schemas import Checksum, UploadState, encode_metadata, media_fields

log = structlog.get_logger(__name__)

# An unfinished upload lives this long after its last PATCH (each PATCH renews it).
UPLOAD_TTL = timedelta(hours=24)
# A lease not renewed for this long belongs to a request (or process) that died: anyone may
# take it over. Short enough for tus-js-client's default retries (0, 1, 3, 5 s) to ride out a
# crashed server, long enough that a live holder (renewing every HEARTBEAT) never loses it.
LEASE = timedelta(seconds=8)
HEARTBEAT = 2.0
BLOCK = 1 << 20  # bytes are written and hashed in blocks of this size, two threads at once
_REFUSING = frozenset({413, 415, 422})  # the bytes can never become a media: drop the upload


@dataclass(frozen=True)
class TusUnits:
    """The units of work the tus routes' scope (tus/router.py) hands the flows that stream a
    body: several short units a request instead of the request's own session, which would
    hold a write transaction (SQLite's write lock) while the body streams. Each unit commits
    when its block ends normally and rolls back otherwise.

    - `write`: the lease's claim, its renewals (by the heartbeat, while the body streams), its
      release or drop, a new upload's row, and the finishing unit (the ingest pipeline's
      writes with the release that marks the upload finished, committed under the lease).
    - `read`: the quota and an upload's state, and the ingest pipeline's sha256 lookup.
    """

    write: UnitOfWork
    read: ReadUnit


def max_upload_bytes(services: Services) -> int:
    """`Tus-Max-Size`: the largest upload of any allowed type (video/audio)."""
    return max(services.settings.max_bytes, services.settings.max_bytes_video)


# --------------------------------------------------------------------------- errors


def _gone() -> MediaError:
    return MediaError("tus.expired", 410, "This upload has expired")


def _locked() -> MediaError:
    return MediaError(
        "tus.locked",
        423,
        "Another request is appending to this upload; retry when it is done",
        headers={"Retry-After": "1"},
    )


def _offset_mismatch(current: int) -> MediaError:
    error = conflict(f"Upload-Offset does not match the upload's offset, which is {current}")
    error.headers["Upload-Offset"] = str(current)
    return error


def _too_large(message: str, limit: int) -> MediaError:
    return MediaError(
        "validation.size.exceeds_limit",
        413,
        message,
        [{"field": "Upload-Length", "message": f"more than {limit} bytes"}],
    )


def _checksum_mismatch() -> MediaError:
    return MediaError(
        "tus.checksum_mismatch",
        460,
        "Checksum Mismatch: the chunk does not match Upload-Checksum and was discarded",
        [{"field": "Upload-Checksum", "message": "does not match the body"}],
    )


def _client_gone() -> MediaError:
    return MediaError("validation.invalid", 400, "The client went away mid-chunk")


class _LeaseLost(Exception):
    """The lease was taken over before the finishing unit released it: that unit must not
    commit (raised inside it, so it rolls back)."""


class _Refused(Exception):
    """The bytes can never be accepted (type or size): the upload is removed."""

    def __init__(self, error: MediaError) -> None:
        super().__init__(error.message)
        self.error = error


# --------------------------------------------------------------------------- process state


class _Stamps:
    """Lease stamps: strictly increasing in this process, so each names one lease state."""

    def __init__(self) -> None:
        self._last = datetime.min.replace(tzinfo=UTC)

    def next(self) -> datetime:
        value = now()
        if value <= self._last:
            value = self._last + timedelta(microseconds=1)
        self._last = value
        return value


class _Hashes:
    """The running SHA-256 of uploads this process appended to, by (upload id, offset).

    Only an optimisation: when the next PATCH (or the finish) is served elsewhere or after a
    restart, the finish hashes the spool file instead.
    """

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._items: OrderedDict[str, tuple[int, Any]] = OrderedDict()

    def take(self, upload_id: str, offset: int) -> Any | None:
        item = self._items.pop(upload_id, None)
        if offset == 0:
            return hashlib.sha256()
        return item[1] if item is not None and item[0] == offset else None

    def put(self, upload_id: str, offset: int, hasher: Any) -> None:
        self._items[upload_id] = (offset, hasher)
        while len(self._items) > self._size:
            self._items.popitem(last=False)

    def drop(self, upload_id: str) -> None:
        self._items.pop(upload_id, None)


_STAMPS = _Stamps()
_HASHES = _Hashes()


# --------------------------------------------------------------------------- the lease


@dataclass
class _Lease:
    """This request's hold on one upload: renewed every HEARTBEAT until it is let go."""

    unit: UnitOfWork
    org_id: str
    upload_id: str
    locked: int
    stamp: datetime
    lost: bool = False
    closed: bool = False
    _guard: asyncio.Lock = field(default_factory=asyncio.Lock)
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._beat())

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT)
            try:
                renewed = await self._renew()
            except Exception:  # the database hiccuped: try again on the next beat
                log.warning("tus lease renewal failed", upload_id=self.upload_id, exc_info=True)
                continue
            if renewed is None:  # let go meanwhile
                return
            if not renewed:
                self.lost = True
                return

    async def _renew(self) -> bool | None:
        """One renewal: whether it renewed, None when the lease was let go meanwhile."""
        stamp = _STAMPS.next()
        async with contextlib.AsyncExitStack() as held:
            async with self.unit() as session:
                await _take_guard(session, self, held)
                if self.closed:
                    return None
                renewed = await TusRepository(session).restamp(
                    self.org_id, self.upload_id, locked=self.locked, seen=self.stamp, stamp=stamp
                )
            if renewed:  # committed, and still under the guard
                self.stamp = stamp
            return renewed

    @contextlib.asynccontextmanager
    async def _guarded_unit(self) -> AsyncIterator[AsyncSession]:
        """A unit of work under the lease's guard, held until the unit has ended (see
        `_take_guard`)."""
        async with contextlib.AsyncExitStack() as held:
            async with self.unit() as session:
                await _take_guard(session, self, held)
                yield session

    async def _stop(self) -> None:
        self.closed = True
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def release(self, **values: Any) -> bool:
        """Unlock with the upload's new state; False if the lease was lost meanwhile."""
        async with self._guarded_unit() as session:
            self.closed = True
            released = await self._release_in(session, values)
        await self._stop()
        return released

    @contextlib.asynccontextmanager
    async def finishing(self) -> AsyncIterator["_Finishing"]:
        """Around the finishing unit of work (`async with lease.finishing() as finishing:`,
        then the unit inside): the unit's last step, `finishing.release(session, ...)`, takes
        the lease's guard, which is held until the unit has ended, so its commit happens under
        the lease and no renewal slips in between. Until then the heartbeat renews as usual
        (the ingest pipeline probes and stores the bytes before that)."""
        try:
            async with contextlib.AsyncExitStack() as held:
                yield _Finishing(self, held)
        finally:
            if self.closed:  # the unit released the lease (or found it lost): the beat ends
                await self._stop()

    async def _release_in(self, session: AsyncSession, values: dict[str, Any]) -> bool:
        return await TusRepository(session).release(
            self.org_id,
            self.upload_id,
            locked=self.locked,
            stamp=self.stamp,
            updated_at=_STAMPS.next(),
            **values,
        )

    async def drop(self) -> bool:
        """Delete the upload's row, if the lease is still ours."""
        async with self._guarded_unit() as session:
            self.closed = True
            dropped = await TusRepository(session).delete_seen(
                self.org_id, self.upload_id, offset=self.locked, updated_at=self.stamp
            )
        await self._stop()
        return dropped


@dataclass
class _Finishing:
    """The finishing unit's hold on the lease (`_Lease.finishing`)."""

    lease: _Lease
    held: contextlib.AsyncExitStack

    async def release(self, session: AsyncSession, **values: Any) -> None:
        """Unlock inside the finishing unit, under the guard (held until the unit has ended);
        _LeaseLost, which must roll the unit back, if the lease was lost meanwhile."""
        await _take_guard(session, self.lease, self.held)
        self.lease.closed = True
        if not await self.lease._release_in(session, values):
            raise _LeaseLost


async def _take_guard(
    session: AsyncSession, lease: _Lease, held: contextlib.AsyncExitStack
) -> None:
    """Take the lease's guard inside a unit of work, until `held` ends (after the unit).

    The unit's transaction begins first (on SQLite that takes the write lock), then the guard:
    every holder (renewal, release, drop, the finishing unit) takes the two in that order.
    A renewal that held the guard while it waited for the write lock, held by a finishing unit
    waiting for the guard, stalled both until SQLite's busy timeout (30 s)."""
    await session.connection()
    await held.enter_async_context(lease._guard)


async def _claim(
    units: TusUnits, org_id: str, upload_id: str, offset: int
) -> tuple[_Lease | None, TusUpload]:
    """Take the upload's lease to append from `offset`; (None, row) for a finished upload.

    404 unknown (or another org's), 410 expired, 423 held by a live request, 409 when
    `offset` is not the upload's offset (whose value the error's Upload-Offset header names).
    """
    current = now()
    stamp = _STAMPS.next()
    async with units.write() as session:
        repo = TusRepository(session)
        claimed = await repo.claim(org_id, upload_id, offset=offset, stamp=stamp, now=current)
        row = await repo.get(org_id, upload_id)
        if row is None:
            raise not_found("upload")
        if not claimed:
            durable = durable_offset(row.offset)
            if row.expires_at <= current:
                raise _gone()
            if row.media_id is not None:
                if offset != durable:
                    raise _offset_mismatch(durable)
                return None, row
            if row.offset >= 0:
                raise _offset_mismatch(durable)
            if row.updated_at > current - LEASE:
                raise _locked()
            if durable != offset:
                raise _offset_mismatch(durable)
            # The holder stopped renewing (its process died): take the upload over.
            if not await repo.restamp(
                org_id, upload_id, locked=row.offset, seen=row.updated_at, stamp=stamp
            ):
                raise _locked()
    lease = _Lease(units.write, org_id, upload_id, locked_value(offset), stamp)
    lease.start()
    return lease, row


# --------------------------------------------------------------------------- receiving


class _Receiver:
    """Writes one request's bytes at their offsets, hashing them (the upload's SHA-256 when it
    is known so far, and the chunk's Upload-Checksum) while staging whole parts behind them."""

    def __init__(
        self,
        services: Services,
        lease: _Lease,
        row: TusUpload,
        staging: Staging,
        offset: int,
        hasher: Any | None,
        checksum: Checksum | None,
    ) -> None:
        self.services = services
        self.lease = lease
        self.key = row.storage_key
        self.length = int(row.length or 0)
        self.staging = staging
        self.position = offset  # bytes [0, position) are in the spool file
        self.received = offset
        self.hasher = hasher
        self.check = checksum.hasher() if checksum else None
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._sniff_at = min(SNIFF_BYTES, self.length)
        self._sniffed = offset >= self._sniff_at
        self._staging_task: asyncio.Task[Staging] | None = None
        self._fd = -1

    async def __aenter__(self) -> "_Receiver":
        path = self.services.storage.spool_path(self.key)
        self._fd = await asyncio.to_thread(os.open, path, os.O_RDWR)
        return self

    async def __aexit__(self, *exc: object) -> None:
        task, self._staging_task = self._staging_task, None
        if task is not None:  # a part in flight when the request failed: let it end
            with contextlib.suppress(Exception):
                self.staging = await task
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    async def write(self, chunk: bytes) -> None:
        if not chunk:
            return
        if self.received + len(chunk) > self.length:
            raise _too_large(
                f"The upload is {self.length} bytes; this chunk goes past its end", self.length
            )
        self.received += len(chunk)
        self._pending.append(chunk)
        self._pending_size += len(chunk)
        if self._pending_size >= BLOCK or (not self._sniffed and self.received >= self._sniff_at):
            await self.flush()

    async def flush(self) -> None:
        if self.lease.lost:
            raise _locked()
        if not self._pending:
            return
        block = b"".join(self._pending)
        self._pending.clear()
        self._pending_size = 0
        # hashlib and file writes release the GIL: writing and hashing overlap on two cores.
        jobs = [asyncio.to_thread(_write_at, self._fd, block, self.position)]
        if self.hasher is not None:
            jobs.append(asyncio.to_thread(self.hasher.update, block))
        if self.check is not None:
            jobs.append(asyncio.to_thread(self.check.update, block))
        await asyncio.gather(*jobs)
        self.position += len(block)
        if not self._sniffed and self.position >= self._sniff_at:
            await self._sniff()
        self._stage_behind()

    async def _sniff(self) -> None:
        self._sniffed = True
        head = await asyncio.to_thread(os.pread, self._fd, self._sniff_at, 0)
        _check_type(self.services, sniff_mime(head), self.length)

    def _stage_behind(self) -> None:
        """Stage whole parts in the background while more bytes arrive (one call at a time)."""
        task = self._staging_task
        if task is not None:
            if not task.done():
                return
            self.staging = task.result()
        self._staging_task = asyncio.create_task(
            self.services.storage.staging.stage_parts(
                self.key, self.staging, self.position, end=False
            )
        )

    def checksum_matches(self, checksum: Checksum | None) -> bool:
        if checksum is None:
            return True
        return self.check is not None and self.check.digest() == checksum.digest

    async def sync(self) -> Staging:
        """fsync what was written, then stage what can be staged at the end of a request."""
        await asyncio.to_thread(os.fsync, self._fd)
        task, self._staging_task = self._staging_task, None
        if task is not None:
            self.staging = await task
        self.staging = await self.services.storage.staging.stage_parts(
            self.key, self.staging, self.position, end=True
        )
        return self.staging


def _write_at(fd: int, block: bytes, position: int) -> None:
    view = memoryview(block)
    while view:
        written = os.pwrite(fd, view, position)
        view = view[written:]
        position += written


def _check_type(services: Services, mime: str, length: int) -> None:
    settings = services.settings
    if not settings.mime_allowed(mime):
        raise _Refused(unsupported_type(mime))
    limit = settings.max_bytes_for(mime)
    if length > limit:
        raise _Refused(
            _too_large(f"A {mime} file may be at most {limit} bytes; this one is {length}", limit)
        )


def _kept(staging: Staging, offset: int) -> Staging:
    """The staging to record with `offset`: parts past it may hold bytes never acknowledged."""
    return replace(staging, parts=tuple(part for part in staging.parts if part[2] <= offset))


def _recorded(staging: Staging) -> dict[str, Any]:
    return {"s3_upload_id": staging.upload_id, "s3_parts": staging.to_json()}


def _state(row: TusUpload, *, media_id: str | None = None) -> UploadState:
    return UploadState(
        offset=durable_offset(row.offset),
        length=int(row.length or 0),
        expires_at=row.expires_at,
        media_id=media_id or row.media_id,
        metadata=encode_metadata(row.upload_metadata) or None,
    )


# --------------------------------------------------------------------------- the flows


async def create(
    services: Services,
    units: TusUnits,
    principal: Principal,
    *,
    length: int,
    metadata: dict[str, str],
) -> TusUpload:
    """A new upload of `length` bytes (the creation extension)."""
    settings = services.settings
    media_fields(metadata)  # refuse bad fields now, not after the last byte
    if length == 0:
        raise MediaError(
            "validation.invalid",
            400,
            "The file is empty",
            [{"field": "Upload-Length", "message": "must be at least 1"}],
        )
    limit = max_upload_bytes(services)
    if length > limit:
        raise _too_large(f"Upload-Length {length} is over the limit of {limit} bytes", limit)
    if settings.org_quota_bytes:
        async with units.read() as session:
            used = await MediaRepository(session).bytes_stored(principal.org_id)
        if used + length > settings.org_quota_bytes:
            raise quota_error(settings.org_quota_bytes)
    upload_id = new_id("tus")
    key = keys.incoming(principal.org_id, upload_id)
    try:
        staging = await services.storage.staging.stage_begin(key, length)
    except StorageUnavailable as exc:
        raise storage_unavailable(exc) from exc
    upload = TusUpload(
        id=upload_id,
        org_id=principal.org_id,
        user_id=principal.user_id,
        length=length,
        offset=0,
        upload_metadata=metadata,
        storage_key=key,
        expires_at=now() + UPLOAD_TTL,
        **_recorded(staging),
    )
    async with units.write() as session:
        await TusRepository(session).add(upload)
    return upload


async def status(
    services: Services, units: TusUnits, principal: Principal, upload_id: str
) -> UploadState:
    """HEAD: the offset; an upload whose bytes are all here but whose finish failed (a 503, a
    crash) is finished now, so its Media-Id can be answered."""
    async with units.read() as session:
        row = await TusRepository(session).get(principal.org_id, upload_id)
    if row is None:
        raise not_found("upload")
    if row.expires_at <= now():
        raise _gone()
    if row.media_id is None and row.offset == row.length:
        return await append(
            services,
            units,
            principal,
            upload_id,
            offset=row.offset,
            content_length=0,
            checksum=None,
            chunks=_no_chunks(),
        )
    return _state(row)


async def _no_chunks() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover - makes this an async generator


async def append(
    services: Services,
    units: TusUnits,
    principal: Principal,
    upload_id: str,
    *,
    offset: int,
    content_length: int | None,
    checksum: Checksum | None,
    chunks: AsyncIterator[bytes],
) -> UploadState:
    """PATCH: append the body at `offset`; the last byte makes the media (Media-Id)."""
    lease, row = await _claim(units, principal.org_id, upload_id, offset)
    if lease is None:  # already finished: nothing more may be sent
        if content_length:
            raise _too_large("The upload is complete; no more bytes fit", int(row.length or 0))
        async for chunk in chunks:
            if chunk:
                raise _too_large("The upload is complete; no more bytes fit", int(row.length or 0))
        return _state(row)
    try:
        return await _append_locked(
            services, units, lease, row, offset, content_length, checksum, chunks
        )
    finally:
        await lease._stop()


async def _append_locked(
    services: Services,
    units: TusUnits,
    lease: _Lease,
    row: TusUpload,
    offset: int,
    content_length: int | None,
    checksum: Checksum | None,
    chunks: AsyncIterator[bytes],
) -> UploadState:
    storage = services.storage.staging
    length = int(row.length or 0)
    staging = Staging.from_json(row.s3_upload_id, row.s3_parts)
    release_at = offset  # where the upload stays if this request fails
    try:
        resumed, staging = await storage.stage_resume(row.storage_key, staging, offset)
        if resumed != offset:
            release_at = resumed
            raise _offset_mismatch(resumed)
        if content_length is not None and offset + content_length > length:
            raise _too_large(
                f"The upload is {length} bytes; {content_length} more from {offset} go past it",
                length,
            )
        hasher = _HASHES.take(row.id, offset)
        disconnected = False
        async with _Receiver(services, lease, row, staging, offset, hasher, checksum) as receiver:
            try:
                async for chunk in chunks:
                    await receiver.write(chunk)
            except ClientDisconnect:
                disconnected = True
            await receiver.flush()
            if not receiver.checksum_matches(checksum):
                raise _client_gone() if disconnected else _checksum_mismatch()
            staging = await receiver.sync()
            position = receiver.position
            hasher = receiver.hasher
        if disconnected:  # keep what arrived (tus: store as much as possible)
            release_at = position
            raise _client_gone()
        if position == length:
            return await _finish(services, units, lease, row, staging, hasher)
        expires_at = now() + UPLOAD_TTL
        if not await lease.release(
            offset=position, expires_at=expires_at, **_recorded(_kept(staging, position))
        ):
            raise _locked()
        if hasher is not None:
            _HASHES.put(row.id, position, hasher)
        return UploadState(position, length, expires_at, metadata=None)
    except _Refused as refused:
        await _drop(services, lease, row, staging)
        raise refused.error from None
    except StorageUnavailable as exc:
        await _let_go(lease, release_at, staging)
        raise storage_unavailable(exc) from exc
    except BaseException:
        await _let_go(lease, release_at, staging)
        raise


async def _let_go(lease: _Lease, offset: int, staging: Staging) -> None:
    """Unlock after a failure, the upload at `offset` (shielded: also runs on cancellation)."""
    if lease.closed:
        return
    try:
        await asyncio.shield(lease.release(offset=offset, **_recorded(_kept(staging, offset))))
    except Exception:  # the lease then expires by itself after LEASE
        log.warning("tus lease release failed", upload_id=lease.upload_id, exc_info=True)


async def _drop(services: Services, lease: _Lease, row: TusUpload, staging: Staging) -> None:
    """Remove an upload that can never finish: its row, then its bytes."""
    _HASHES.drop(row.id)
    if await lease.drop():
        with contextlib.suppress(StorageUnavailable):  # else the orphan sweep removes them
            await services.storage.staging.stage_discard(row.storage_key, staging)


async def _finish(
    services: Services,
    units: TusUnits,
    lease: _Lease,
    row: TusUpload,
    staging: Staging,
    hasher: Any | None,
) -> UploadState:
    """All bytes are here: run the ingest pipeline and mark the upload finished, atomically.

    If that fails for a passing reason (storage down, a crash), the bytes stay acknowledged
    and the next HEAD or PATCH finishes the upload; if the bytes can never become a media
    (type, size, corrupt), the upload is removed.
    """
    storage = services.storage.staging
    key = row.storage_key
    length = int(row.length or 0)
    probe_copy: Path | None = None

    async def commit(final_key: str) -> None:
        nonlocal staging
        staging = await storage.stage_commit(key, staging, length, final_key, mime)

    try:
        staging, fetched = await storage.stage_collect(key, staging, length)
        path = storage.spool_path(key)
        sha256, mime = await asyncio.to_thread(
            _digest_and_type, path, length, None if fetched else hasher
        )
        _check_type(services, mime, length)
        # ingest_spooled consumes the file it is given: give it a second name for the same
        # bytes, so the upload keeps them (and may finish again) until its row says it is done.
        probe_copy = storage.spool_path(keys.incoming(row.org_id, new_id("upl")))
        await asyncio.to_thread(os.link, path, probe_copy)
        form = media_fields(row.upload_metadata)
        fields = IngestFields(
            filename=form.filename,
            alt=form.alt,
            caption=form.caption,
            description=form.description,
            is_private=form.is_private,
        )
        try:
            # The ingest pipeline's writes and the release that marks the upload finished are
            # one unit, which commits under the lease (see _Lease.finishing).
            async with lease.finishing() as finishing, units.write() as session:
                result = await ingest_spooled(
                    services,
                    session,
                    org_id=row.org_id,
                    user_id=row.user_id,
                    source="tus",
                    spooled=SpooledFile(probe_copy, sha256, length, mime),
                    fields=fields,
                    lookup=units.read,
                    commit=commit,
                )
                after_commit(session, partial(_discard_quietly, services, key, staging))
                await finishing.release(
                    session,
                    offset=length,
                    media_id=result.media.id,
                    completed_at=now(),
                    **_recorded(staging),
                )
        except _LeaseLost:  # the unit rolled back
            raise _locked() from None
    except _Refused:
        raise
    except MediaError as error:
        if error.status in _REFUSING:
            raise _Refused(error) from error
        await _let_go(lease, length, staging)
        raise
    except BaseException:
        await _let_go(lease, length, staging)
        raise
    finally:
        if probe_copy is not None:
            await asyncio.to_thread(probe_copy.unlink, missing_ok=True)
    _HASHES.drop(row.id)
    return UploadState(length, length, row.expires_at, media_id=result.media.id)


async def _discard_quietly(services: Services, key: str, staging: Staging) -> None:
    try:
        await services.storage.staging.stage_discard(key, staging)
    except StorageUnavailable:  # the orphan sweep removes them later
        log.warning("tus upload leftovers not removed", key=key, exc_info=True)


def _digest_and_type(path: Path, length: int, hasher: Any | None) -> tuple[str, str]:
    """The upload's SHA-256 (from the running hash, else from the file) and sniffed type."""
    with path.open("rb") as source:
        size = os.fstat(source.fileno()).st_size
        if size != length:
            raise RuntimeError(f"{path} holds {size} bytes, not {length}")
        head = source.read(SNIFF_BYTES)
        if hasher is None:
            hasher = hashlib.sha256(head)
            while block := source.read(BLOCK):
                hasher.update(block)
    return hasher.hexdigest(), sniff_mime(head)


async def terminate(
    services: Services, session: AsyncSession, principal: Principal, upload_id: str
) -> None:
    """DELETE (the termination extension): the upload and its bytes go; later requests 404.
    A finished upload's media stays."""
    current = now()
    repo = TusRepository(session)
    row = await repo.get(principal.org_id, upload_id)
    if row is None:
        raise not_found("upload")
    if row.offset < 0 and row.updated_at > current - LEASE:
        raise _locked()
    if not await repo.delete_seen(
        principal.org_id, upload_id, offset=row.offset, updated_at=row.updated_at
    ):
        raise _locked()
    staging = Staging.from_json(row.s3_upload_id, row.s3_parts)
    after_commit(session, partial(_forget, upload_id))
    after_commit(session, partial(_discard_quietly, services, row.storage_key, staging))


async def _forget(upload_id: str) -> None:
    _HASHES.drop(upload_id)


@dataclass(frozen=True)
class Expired:
    """An upload past Upload-Expires, as the sweep saw it."""

    org_id: str
    upload_id: str
    offset: int
    updated_at: datetime
    storage_key: str
    staging: Staging


async def expired_uploads(
    session: ReadOnlySession, *, at: datetime | None = None, batch: int = 1000
) -> list[Expired]:
    """Uploads past Upload-Expires that no request is still appending to (one that is cannot
    claim again once expired)."""
    cutoff = at or now()
    rows = await TusRepository(session).expired_all_orgs(cutoff, batch)
    return [
        Expired(
            row.org_id,
            row.id,
            row.offset,
            row.updated_at,
            row.storage_key,
            Staging.from_json(row.s3_upload_id, row.s3_parts),
        )
        for row in rows
        if not (row.offset < 0 and row.updated_at > now() - LEASE)
    ]


async def remove_expired(services: Services, session: AsyncSession, upload: Expired) -> bool:
    """Delete one expired upload's row, unless it changed since it was seen; its bytes go
    once that has committed."""
    if not await TusRepository(session).delete_seen(
        upload.org_id, upload.upload_id, offset=upload.offset, updated_at=upload.updated_at
    ):
        return False
    after_commit(session, partial(_forget, upload.upload_id))
    after_commit(session, partial(_discard_quietly, services, upload.storage_key, upload.staging))
    return True


async def live_storage_keys(session: ReadOnlySession) -> set[str]:
    """The incoming keys of the uploads that live on (the orphan sweep keeps them)."""
    return await TusRepository(session).storage_keys_all_orgs()
