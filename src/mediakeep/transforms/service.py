"""Signed transform URLs: signing them, resolving one to a cached output, rendering it once.

A URL is `/t/{kid}.{signature}/{options}/{media_id}`; the signature is an HMAC-SHA256 over
`{options}/{media_id}` with the transform key of the org's link key `kid` (linkkeys/), so
rotating the org's key ends its URLs. A signature without `kid.` is from before per-org keys:
the org's legacy key "0", `derive_key(secret, "transform:" + org_id)`. The URL carries no
org: the media names it, so a signature made with org B's key never opens org A's media.
A private media's URL must carry an expiry at most MEDIA_PRIVATE_URL_TTL away, and is
answered `Cache-Control: private`; a public one's may live forever and be cached publicly.
The output of (media, version, resolved options, format) is rendered once and
kept in storage under `keys.transform(...)`; a row in `transform_cache` counts it against the
org's cap. Both are written after the answer, by one recorder task per process that writes
the rows of many outputs in one transaction and then their objects (see `_write_outputs`);
until then the output is answered from memory. Identical concurrent requests in one process
wait on one lock and render once; two processes may both render, and both write the same
object and row (idempotent).
"""

import asyncio
import contextlib
import functools
import hmac
import re
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import structlog
from anyio import to_thread
from prometheus_client import Counter, Histogram
from sqlalchemy.exc import IntegrityError

from mediakeep.budget import DecodeGate
from mediakeep.config import Settings
from mediakeep.db import ReadOnlySession, ReadUnit, UnitOfWork
from mediakeep.errors import MediaError, forbidden, invalid, not_found
from mediakeep.ids import new_id
from mediakeep.kit import signing
from mediakeep.kit.time import now, rfc3339
from mediakeep.linkkeys.keyring import KeysNotLoaded, LinkKeyring
from mediakeep.media import service as media_service
from mediakeep.processing.image import (
    RELEASE_ABOVE_BYTES,
    Footprint,
    ImageError,
    footprint,
    release_memory,
)
from mediakeep.processing.transform import (
    EXTENSION_OF,
    MIME_OF,
    TransformError,
    TransformSpec,
    configure_engine,
    render,
)
from mediakeep.services import Services
from mediakeep.storage import keys
from mediakeep.storage.base import ObjectInfo, ObjectReader, StorageUnavailable
from mediakeep.transforms.options import OptionError, TransformOptions, options_hash, parse
from mediakeep.transforms.recorder import BatchWriter, WriterClosed
from mediakeep.transforms.repository import OutputRow, TransformRepository, TransformSource
from mediakeep.transforms.schemas import TransformUrlIn, TransformUrlOut

log = structlog.get_logger(__name__)

RENDERS = Counter(
    "mediakeep_transform_renders_total",
    "Signed-transform outputs rendered (cache misses that ran the engine)",
    ["format"],
)
ANSWERS = Counter(
    "mediakeep_transform_answers_total",
    "Signed-transform requests answered with an image, by where it came from",
    ["outcome"],
)
RENDER_SECONDS = Histogram(
    "mediakeep_transform_render_seconds",
    "Engine time of one signed-transform render",
    ["format"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

CACHE_CONTROL = "public, max-age=31536000, immutable"
SIGNING_PURPOSE = "transform:"
# Outputs up to this size are answered from memory right after rendering (no read-back).
IN_MEMORY_BYTES = 4 * 1024 * 1024
_MEDIA_ID = re.compile(r"^[a-z]{2,8}_[0-9a-z]{26}$")
_SOURCE_CACHE_SIZE = 100_000
_RECENT_RENDERS = 4096
_FOOTPRINTS = 4096
MEMORY_ITEM_BYTES = 1024 * 1024
# The recorder writes the rows of the outputs rendered within RECORD_LINGER seconds (at most
# RECORD_BATCH) in one transaction. Held outputs (answered, not stored yet) over HELD_BYTES
# make the next renders wait for their store.
RECORD_LINGER = 0.05
RECORD_BATCH = 256
HELD_BYTES = 64 * 1024 * 1024


def org_signing_key(secret: str, org_id: str) -> bytes:
    return signing.derive_key(secret, SIGNING_PURPOSE + org_id)


def url_signature(key: bytes, segment: str, media_id: str) -> str:
    return signing.sign(key, f"{segment}/{media_id}")


def signed_segment(link: signing.LinkKey, segment: str, media_id: str) -> str:
    """The URL's first segment: the key id and the signature (the signature alone under the
    org's key from before its first rotation, as such URLs always were)."""
    signature = url_signature(link.transform, segment, media_id)
    return signature if link.kid == signing.LEGACY_KID else f"{link.kid}.{signature}"


def private_cache_control(expires: int, ttl: int) -> str:
    return f"private, max-age={max(0, min(ttl, expires - int(time.time())))}"


class ClientGone(Exception):
    """The client hung up while its render waited for a slot: the render is skipped."""


StillWanted = Callable[[], Awaitable[bool]]


class OutputCache:
    """Small outputs asked for more than once, in memory, least recently used out first.

    A storage key names immutable bytes (version and options are in it), so entries never go
    stale; a deleted or replaced media stops reaching its entries through the source cache.
    Outputs enter on their second request (the first read from storage), so one-off sizes
    never crowd out the hot ones.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.size = 0
        self._items: OrderedDict[str, tuple[bytes, datetime]] = OrderedDict()

    def get(self, key: str) -> tuple[bytes, datetime] | None:
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
        return item

    def admits(self, size: int) -> bool:
        return size <= min(MEMORY_ITEM_BYTES, self.capacity)

    def put(self, key: str, body: bytes, modified: datetime) -> None:
        if not self.admits(len(body)) or key in self._items:
            return
        self._items[key] = (body, modified)
        self.size += len(body)
        while self.size > self.capacity:
            _, (evicted, _) = self._items.popitem(last=False)
            self.size -= len(evicted)


@dataclass(frozen=True)
class TransformUnits:
    """The units of work the public transform route's scope (transforms/router.py) provides.

    The route has no request session on purpose: most answers come from memory without any
    statement. The database is read only on a cache miss (`lookup`, a short read unit that
    is not held while the output renders), and outputs' rows are written by the recorder
    after the response (`record`, a write unit per batch of outputs).
    """

    lookup: ReadUnit
    record: UnitOfWork


class TransformRuntime:
    """Per-process state: render threads (as many as the decode gate has slots), one lock per
    output being rendered, the derived org keys, recently read media and hot outputs."""

    def __init__(
        self, settings: Settings, units: TransformUnits, gate: DecodeGate | None = None
    ) -> None:
        self.units = units
        self.secret = settings.secret_key
        # Renders share the process's one decode gate (budget.py) with uploads and
        # variants: its slots and its MEDIA_MAX_DECODE_BYTES; a runtime of its own otherwise.
        self.gate = gate or DecodeGate(
            settings.decode_concurrency, settings.decode_queue, settings.max_decode_bytes
        )
        self.concurrency = self.gate.slots
        self.executor = ThreadPoolExecutor(self.concurrency, thread_name_prefix="transform")
        self.source_ttl = settings.transform_source_cache_ttl.total_seconds()
        self.private_ttl = settings.private_url_ttl.total_seconds()
        self.outputs = OutputCache(settings.transform_memory_cache_bytes)
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}
        self._sources: dict[str, tuple[float, TransformSource]] = {}
        self._output_counts: dict[str, tuple[float, int]] = {}
        self._rendered: OrderedDict[str, None] = OrderedDict()
        self._footprints: OrderedDict[tuple[str, int], Footprint] = OrderedDict()
        # Rendered outputs on their way to storage: served from here meanwhile.
        self._held: dict[str, tuple[bytes, datetime]] = {}
        self.held_bytes = 0
        # Rendered outputs whose row is not committed yet, by org (the cap counts them).
        self._uncounted: dict[str, str] = {}
        self._uncounted_per_org: dict[str, int] = {}
        self._recorded_per_org: dict[str, int] = {}
        # Rows first, then objects, many outputs per transaction: see _write_outputs.
        self.recorder: BatchWriter[Pending] = BatchWriter(
            functools.partial(_write_outputs, self), linger=RECORD_LINGER, max_batch=RECORD_BATCH
        )
        configure_engine()

    def held(self, storage_key: str) -> tuple[bytes, datetime] | None:
        return self._held.get(storage_key)

    def held_for(self, org_id: str) -> int:
        """The org's rendered outputs not counted in the table yet."""
        return self._uncounted_per_org.get(org_id, 0)

    def hold(self, storage_key: str, org_id: str, body: bytes | None, modified: datetime) -> None:
        """A rendered output until it is stored: its body (None: too large to keep, it is
        answered from storage) and its place under the org's cap until its row is written."""
        if body is not None and storage_key not in self._held:
            self._held[storage_key] = (body, modified)
            self.held_bytes += len(body)
        if storage_key not in self._uncounted:
            self._uncounted[storage_key] = org_id
            self._uncounted_per_org[org_id] = self._uncounted_per_org.get(org_id, 0) + 1

    def uncount(self, storage_key: str) -> None:
        org_id = self._uncounted.pop(storage_key, None)
        if org_id is None:
            return
        left = self._uncounted_per_org[org_id] - 1
        if left:
            self._uncounted_per_org[org_id] = left
        else:
            del self._uncounted_per_org[org_id]

    def release(self, storage_key: str) -> None:
        """The output is in storage, or will not be: no longer served from memory."""
        found = self._held.pop(storage_key, None)
        if found is not None:
            self.held_bytes -= len(found[0])
        self.uncount(storage_key)

    async def settled(self) -> None:
        """Until every output rendered so far is counted and stored (tests, shutdown)."""
        await self.recorder.drained()

    async def close(self) -> None:
        """Write the rows and objects of the outputs rendered so far, then stop (shutdown)."""
        await self.recorder.close()

    def note_rendered(self, storage_key: str) -> None:
        self._rendered[storage_key] = None
        if len(self._rendered) > _RECENT_RENDERS:
            self._rendered.popitem(last=False)

    def rendered_lately(self, storage_key: str) -> bool:
        return storage_key in self._rendered

    def recent_source(self, media_id: str) -> TransformSource | None:
        found = self._sources.get(media_id)
        if found is None:
            return None
        if found[0] < time.monotonic():
            del self._sources[media_id]
            return None
        return found[1]

    def recent_output_count(self, org_id: str) -> int | None:
        """The org's stored outputs as last counted plus those recorded since, while fresh."""
        found = self._output_counts.get(org_id)
        if found is None or found[0] < time.monotonic():
            return None
        return found[1]

    def remember_output_count(self, org_id: str, count: int) -> None:
        if self.source_ttl <= 0:
            return
        if len(self._output_counts) >= _SOURCE_CACHE_SIZE:
            self._output_counts.clear()
        self._output_counts[org_id] = (time.monotonic() + self.source_ttl, count)

    def recorded(self, storage_key: str, org_id: str) -> None:
        """The output's row is committed: it counts from the table now, not as held."""
        found = self._output_counts.get(org_id)
        if found is not None:
            self._output_counts[org_id] = (found[0], found[1] + 1)
        self._recorded_per_org[org_id] = self._recorded_per_org.get(org_id, 0) + 1
        self.uncount(storage_key)

    def stored(self, storage_key: str) -> None:
        """The output's object is committed: answered from storage from now on."""
        self.note_rendered(storage_key)
        self.release(storage_key)

    def recorded_so_far(self, org_id: str) -> int:
        return self._recorded_per_org.get(org_id, 0)

    def remember_source(self, source: TransformSource) -> None:
        if self.source_ttl <= 0:
            return
        if len(self._sources) >= _SOURCE_CACHE_SIZE:
            self._sources.clear()
        self._sources[source.id] = (time.monotonic() + self.source_ttl, source)

    @contextlib.asynccontextmanager
    async def output_lock(self, storage_key: str) -> AsyncIterator[bool]:
        """Hold the output's lock; yields whether another request held it first."""
        lock, users = self._locks.get(storage_key, (asyncio.Lock(), 0))
        self._locks[storage_key] = (lock, users + 1)
        try:
            waited = lock.locked()
            async with lock:
                yield waited
        finally:
            lock, users = self._locks[storage_key]
            if users == 1:
                del self._locks[storage_key]
            else:
                self._locks[storage_key] = (lock, users - 1)

    async def footprint(self, source: Path, source_key: str | None, max_pixels: int) -> Footprint:
        """The source's header facts; remembered by storage key (an original's key names its
        bytes: `originals/{sha256}`), so a source's next renders do not read it again."""
        key = (source_key or "", max_pixels)
        cached = self._footprints.get(key) if source_key else None
        if cached is not None:
            self._footprints.move_to_end(key)
            return cached
        loop = asyncio.get_running_loop()
        try:
            size = await loop.run_in_executor(
                self.executor, functools.partial(footprint, source, max_pixels=max_pixels)
            )
        except ImageError as exc:
            raise TransformError(str(exc)) from exc
        if source_key:
            self._footprints[key] = size
            if len(self._footprints) > _FOOTPRINTS:
                self._footprints.popitem(last=False)
        return size

    async def run(
        self,
        spec: TransformSpec,
        source: Path,
        output: Path,
        max_pixels: int,
        still_wanted: StillWanted | None = None,
        source_key: str | None = None,
    ) -> None:
        loop = asyncio.get_running_loop()
        size = await self.footprint(source, source_key, max_pixels)
        if spec.width and spec.height and spec.fit in ("cover", "fill", "contain"):
            width, height = spec.width, spec.height  # exactly the box
        elif spec.fit == "outside":
            width, height = size.width, size.height  # at most the source
        else:
            width, height = size.fitted(spec.width, spec.height)
        needed = size.bytes_for(width, height, spec.format)
        async with self.gate.hold(needed):
            # Under overload clients give up; a render nobody waits for would only delay the
            # ones somebody does.
            if still_wanted is not None and not await still_wanted():
                raise ClientGone
            started = time.perf_counter()
            try:
                await loop.run_in_executor(
                    self.executor,
                    functools.partial(
                        render,
                        source,
                        spec,
                        output,
                        max_pixels=max_pixels,
                        upright=(size.width, size.height),
                    ),
                )
            finally:
                if needed > RELEASE_ABOVE_BYTES:
                    await loop.run_in_executor(self.executor, release_memory)
            RENDER_SECONDS.labels(spec.format).observe(time.perf_counter() - started)


@dataclass(frozen=True)
class Target:
    """One output a URL names, before any storage I/O."""

    source: TransformSource
    spec: TransformSpec
    storage_key: str
    options_hash: str
    etag: str
    mime: str
    vary_accept: bool
    cache_control: str = CACHE_CONTROL


@dataclass(frozen=True)
class Rendition:
    """The output to send: in storage (`info`), and in memory too when just rendered."""

    target: Target
    info: ObjectInfo
    body: bytes | None = None


def check_transformable(kind: str, status: str, storage_key: str | None) -> None:
    if status == "quarantined":
        raise MediaError("media.quarantined", 451, "The media was quarantined")
    if status == "pending" or not storage_key:
        raise MediaError("media.transcoding", 409, "The media's upload is not finished yet")
    if kind != "image":
        raise MediaError(
            "media.unprocessable", 422, f"Only images can be transformed; this media is {kind}"
        )
    if status == "failed":
        raise MediaError("media.unprocessable", 422, "The media failed processing")


async def create_url(
    services: Services,
    session: ReadOnlySession,
    runtime: TransformRuntime,  # noqa: ARG001 - the route's signature; keys are the keyring's
    org_id: str,
    media_id: str,
    body: TransformUrlIn,
) -> TransformUrlOut:
    media = await media_service.get_media(session, org_id, media_id)
    check_transformable(media.kind, media.status, media.storage_key)
    seconds = body.expires_in
    if media.is_private:
        # A private media's URL always expires, within MEDIA_PRIVATE_URL_TTL (clamped).
        longest = int(services.settings.private_url_ttl.total_seconds())
        seconds = min(seconds or longest, longest)
    expires = signing.expiry_in(seconds) if seconds else None
    try:
        options = TransformOptions(
            width=body.width,
            height=body.height,
            fit=body.fit,
            gravity=body.gravity,
            blur=body.blur,
            quality=body.quality,
            format=body.format,
            expires=expires,
        ).checked()
    except OptionError as exc:
        raise invalid(exc.message, exc.field) from exc
    segment = options.segment()
    if services.link_keys is None:
        raise KeysNotLoaded("this process has no keyring")
    signature = signed_segment(services.link_keys.loaded(org_id).current, segment, media.id)
    return TransformUrlOut(
        url=f"{services.settings.public_url}/t/{signature}/{segment}/{media.id}",
        expires_at=rfc3339(datetime.fromtimestamp(expires, UTC)) if expires else None,
    )


async def resolve(
    runtime: TransformRuntime,
    keyring: LinkKeyring,
    signature: str,
    segment: str,
    media_id: str,
    accept: str | None,
) -> Target:
    """Check a URL (options 400, signature 403, expiry 410, media state) and name its output."""
    try:
        options = parse(segment)
    except OptionError as exc:
        raise invalid(exc.message, exc.field) from exc
    if not _MEDIA_ID.match(media_id):
        raise not_found("media")
    source = runtime.recent_source(media_id)
    if source is None:
        async with runtime.units.lookup() as session:
            source = await TransformRepository(session).source_by_signed_id(media_id)
        if source is None:
            raise not_found("media")
        runtime.remember_source(source)
    kid, dot, signed = signature.rpartition(".")
    link = (await keyring.load(source.org_id)).get(kid if dot else signing.LEGACY_KID)
    expected = url_signature(link.transform, segment, media_id) if link is not None else ""
    if not (link is not None and signed.isascii() and hmac.compare_digest(expected, signed)):
        raise forbidden("The transform URL's signature does not match")
    cache_control = CACHE_CONTROL
    if source.is_private:
        ttl = int(runtime.private_ttl)
        if options.expires is None or options.expires - int(time.time()) > ttl:
            raise forbidden(
                "A private media's transform URL must expire within MEDIA_PRIVATE_URL_TTL; "
                "ask for a new one"
            )
        cache_control = private_cache_control(options.expires, ttl)
    if options.expires is not None and signing.expired(options.expires):
        raise MediaError(
            "transform.expired",
            410,
            "This transform URL expired at "
            + rfc3339(datetime.fromtimestamp(options.expires, UTC)),
        )
    check_transformable(source.kind, source.status, source.storage_key)
    output = options.output_format(source.mime, accept)
    spec = options.spec(output)
    digest = options_hash(spec)
    return Target(
        source=source,
        spec=spec,
        storage_key=keys.transform(
            source.org_id, source.id, source.version, digest, EXTENSION_OF[output]
        ),
        options_hash=digest,
        etag=f'"{digest}-v{source.version}"',
        mime=MIME_OF[output],
        vary_accept=options.format == "auto",
        cache_control=cache_control,
    )


async def obtain(
    services: Services,
    runtime: TransformRuntime,
    target: Target,
    still_wanted: StillWanted | None = None,
) -> Rendition:
    """The output: from memory, from storage, or rendered (and stored) if nobody has yet."""
    key = target.storage_key
    hot = runtime.outputs.get(key) or runtime.held(key)
    if hot is not None:
        return _from_memory(target, hot)
    storage = services.storage
    info = await _stat(storage, key)
    if info is None:
        async with runtime.output_lock(key) as waited:
            # Whoever held the lock before us (or rendered it while our first look was on the
            # way) has it in memory or in storage; otherwise that look stands.
            if waited or runtime.rendered_lately(key):
                hot = runtime.held(key)
                if hot is not None:
                    return _from_memory(target, hot)
                info = await _stat(storage, key)
            if info is None:
                rendition = await _render(services, runtime, target, still_wanted)
                ANSWERS.labels("rendered").inc()
                return rendition
    ANSWERS.labels("stored").inc()
    if runtime.outputs.admits(info.size):
        whole = await _read_all(storage, key)
        if whole is not None:
            runtime.outputs.put(key, whole, info.modified)
            return Rendition(target, info, whole)
    return Rendition(target, info)


def _from_memory(target: Target, hot: tuple[bytes, datetime]) -> Rendition:
    body, modified = hot
    ANSWERS.labels("memory").inc()
    return Rendition(target, ObjectInfo(target.storage_key, len(body), modified), body)


async def _read_all(storage: ObjectReader, key: str) -> bytes | None:
    """The whole (small) object, or None when it vanished since it was seen."""
    chunks: list[bytes] = []
    try:
        async for chunk in storage.read(key):
            chunks.append(chunk)
    except FileNotFoundError:
        return None
    except StorageUnavailable as exc:
        raise storage_unavailable(exc) from exc
    return b"".join(chunks)


async def _stat(storage: ObjectReader, key: str) -> ObjectInfo | None:
    try:
        return await storage.stat(key)
    except StorageUnavailable as exc:
        raise storage_unavailable(exc) from exc


def storage_unavailable(exc: Exception) -> MediaError:
    return MediaError("storage.unavailable", 503, f"Storage is unavailable: {exc}")


async def _check_cap(services: Services, runtime: TransformRuntime, org_id: str) -> None:
    cap = services.settings.transform_max_derivatives_per_org
    if not cap:
        return
    # Counted at most once per MEDIA_TRANSFORM_SOURCE_CACHE_TTL per org and process, plus this
    # process's outputs recorded since and those still being stored (held). An output whose
    # row lands while the table is counted was held when we looked: it is taken off once.
    held = runtime.held_for(org_id)
    stored = runtime.recent_output_count(org_id)
    if stored is None:
        before = runtime.recorded_so_far(org_id)
        async with runtime.units.lookup() as session:
            stored = await TransformRepository(session).count_outputs(org_id)
        runtime.remember_output_count(org_id, stored)
        held -= runtime.recorded_so_far(org_id) - before
    if stored + max(held, 0) >= cap:
        # Other processes' renders, or deletes within a count's lifetime, may let an org pass
        # the cap or stop it short by a little: it bounds cost, it is not billing.
        raise MediaError(
            "rate.limited",
            429,
            f"The organisation has reached its limit of {cap} distinct transform outputs "
            "(MEDIA_TRANSFORM_MAX_DERIVATIVES_PER_ORG); URLs already rendered keep working",
            headers={"Retry-After": "3600"},
        )


async def _render(
    services: Services,
    runtime: TransformRuntime,
    target: Target,
    still_wanted: StillWanted | None,
) -> Rendition:
    """Render into a spool file; answer small outputs from memory at once (their row and
    object are written afterwards, by the recorder, in batches), large ones once stored."""
    source = target.source
    assert source.storage_key is not None  # check_transformable refused the others
    await _check_cap(services, runtime, source.org_id)
    storage = services.storage
    spool = storage.spool_path(keys.incoming(source.org_id, new_id("tfm")))
    try:
        try:
            async with storage.local_file(source.storage_key) as original:
                await runtime.run(
                    target.spec,
                    original,
                    spool,
                    services.settings.max_pixels,
                    still_wanted,
                    source.storage_key,
                )
        except FileNotFoundError as exc:
            raise not_found("media content") from exc
        except TransformError as exc:
            raise MediaError(
                "media.unprocessable", 422, f"The image cannot be transformed: {exc}"
            ) from exc
        except StorageUnavailable as exc:
            raise storage_unavailable(exc) from exc
        RENDERS.labels(target.spec.format).inc()
        size, body = await to_thread.run_sync(_size_and_small_body, spool)
    except BaseException:
        await _discard(spool)
        raise
    modified = now()
    info = ObjectInfo(target.storage_key, size, modified)
    runtime.hold(target.storage_key, source.org_id, body, modified)
    # Large outputs are streamed from storage, so they wait for it; so does everyone while
    # the held outputs are many (storage or the database is slow): memory stays bounded.
    wait = body is None or runtime.held_bytes > HELD_BYTES
    done: asyncio.Future[None] | None = None
    if wait:
        done = asyncio.get_running_loop().create_future()
        done.add_done_callback(_retrieved)  # its waiter may be gone (client hung up)
    try:
        runtime.recorder.submit(Pending(services, target, spool, size, done))
    except WriterClosed:
        runtime.release(target.storage_key)
        await _discard(spool)
        raise MediaError(
            "server.busy",
            503,
            "The server is shutting down; try again shortly",
            headers={"Retry-After": "1"},
        ) from None
    if done is not None:
        await asyncio.shield(done)  # a client hanging up must not cancel another's store
    return Rendition(target, info, body)


def _size_and_small_body(spool: Path) -> tuple[int, bytes | None]:
    """The output's size, and its bytes when it is answered from memory (one thread hop)."""
    size = spool.stat().st_size
    return size, spool.read_bytes() if size <= IN_MEMORY_BYTES else None


def _retrieved(done: asyncio.Future[None]) -> None:
    if not done.cancelled():
        done.exception()


async def _discard(spool: Path) -> None:
    await to_thread.run_sync(functools.partial(spool.unlink, missing_ok=True))


@dataclass(frozen=True)
class Pending:
    """A rendered output in its spool file, to be counted (row) and stored (object)."""

    services: Services
    target: Target
    spool: Path
    size: int
    done: asyncio.Future[None] | None  # a request waiting for the object to be stored


async def _write_outputs(runtime: TransformRuntime, batch: list[Pending]) -> None:
    """The recorder's flush: the batch's rows in one unit of work, then their objects.

    Rows first: a crash between the two leaves rows without objects, which only count
    against the cap until the media's next version or deletion drops them (a request finds
    no object and renders it again; its row is there already). Objects first would leave
    objects no row counts or drops. Nobody reads an object before it is whole (storage
    commits by rename, or S3's atomic PUT), and outputs are served from memory meanwhile.
    """
    batch = await _superseded_dropped(runtime, batch)
    if not batch:
        return
    recorded: list[Pending] = []
    stale: list[str] = []
    try:
        async with runtime.units.record() as session:
            stale = await _record_rows(TransformRepository(session), batch)
        recorded = list(batch)
    except IntegrityError:
        # A media was deleted while its output rendered: one unit per output finds which.
        for pending in batch:
            try:
                async with runtime.units.record() as session:
                    stale += await _record_rows(TransformRepository(session), [pending])
                recorded.append(pending)
            except IntegrityError:
                await _drop(runtime, pending, not_found("media"))
            except Exception as exc:
                await _drop(runtime, pending, exc)
    except Exception as exc:
        await _drop_all(runtime, batch, exc)
    for pending in recorded:
        runtime.recorded(pending.target.storage_key, pending.target.source.org_id)
    await asyncio.gather(*(_store(runtime, pending) for pending in recorded))
    storage = batch[0].services.storage
    for key in stale:
        try:
            await storage.delete(key)
        except StorageUnavailable:
            log.warning("could not delete an old transform output", key=key)


async def _superseded_dropped(runtime: TransformRuntime, batch: list[Pending]) -> list[Pending]:
    """The batch without the outputs of a version older than another in it: the newer one's
    row drops theirs anyway. One a request still waits for (to stream it) is kept."""
    newest: dict[str, int] = {}
    for pending in batch:
        source = pending.target.source
        newest[source.id] = max(newest.get(source.id, 0), source.version)
    kept: list[Pending] = []
    for pending in batch:
        source = pending.target.source
        if source.version < newest[source.id] and pending.done is None:
            _settle(runtime, pending, None)
            await _discard(pending.spool)
        else:
            kept.append(pending)
    return kept


async def _record_rows(repo: TransformRepository, batch: list[Pending]) -> list[str]:
    """Forget older versions' outputs of the media a newer version was rendered of, then
    count the batch's outputs; returns the forgotten outputs' storage keys. Dropping first
    never drops a row of this batch (an old version's late render counts until the next)."""
    newest: dict[tuple[str, str], int] = {}
    for pending in batch:
        source = pending.target.source
        if source.version > 1:
            media = (source.org_id, source.id)
            newest[media] = max(newest.get(media, 0), source.version)
    stale: list[str] = []
    for (org_id, media_id), version in newest.items():
        stale += await repo.drop_older_versions(org_id, media_id, version)
    await repo.record_outputs(
        [
            OutputRow(
                org_id=p.target.source.org_id,
                media_id=p.target.source.id,
                version=p.target.source.version,
                options_hash=p.target.options_hash,
                storage_key=p.target.storage_key,
                mime=p.target.mime,
                size_bytes=p.size,
            )
            for p in batch
        ]
    )
    return stale


async def _store(runtime: TransformRuntime, pending: Pending) -> None:
    """Commit one counted output's spool file to storage; a failure is logged (the next
    request renders it again) or told to the request waiting for it."""
    target = pending.target
    try:
        await pending.services.storage.commit_file(pending.spool, target.storage_key, target.mime)
    except Exception as exc:
        log.warning("could not store a transform output", key=target.storage_key, exc_info=True)
        failure = storage_unavailable(exc) if isinstance(exc, StorageUnavailable) else exc
        _settle(runtime, pending, failure)
        await _discard(pending.spool)
    else:  # the commit took the spool file (renamed or uploaded, then removed)
        runtime.stored(target.storage_key)
        _settle(runtime, pending, None)


async def _drop(runtime: TransformRuntime, pending: Pending, failure: BaseException) -> None:
    """No row, no object: the next request renders the output again."""
    if not isinstance(failure, MediaError):
        log.warning(
            "could not record a transform output",
            key=pending.target.storage_key,
            exc_info=failure,
        )
    _settle(runtime, pending, failure)
    await _discard(pending.spool)


async def _drop_all(runtime: TransformRuntime, batch: list[Pending], failure: Exception) -> None:
    log.warning("could not record transform outputs", count=len(batch), exc_info=failure)
    for pending in batch:
        _settle(runtime, pending, failure)
        await _discard(pending.spool)


def _settle(runtime: TransformRuntime, pending: Pending, failure: BaseException | None) -> None:
    runtime.release(pending.target.storage_key)
    done = pending.done
    if done is None or done.done():
        return
    if failure is None:
        done.set_result(None)
    else:
        done.set_exception(failure)
