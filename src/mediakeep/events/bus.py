"""The event bus: one protocol, an in-process implementation that tails the events table, a
Redis pub/sub one, and the single factory choosing between them.

Every event is first written to the `events` table in the transaction of the state change it
describes (see publish.py). In embedded mode the API process tails that table (~200 ms, sooner
when its own commits nudge it), so events written by worker subprocesses reach its subscribers
too; with REDIS_URL every process publishes after its commit and every API replica listens.
"""

import asyncio
import contextlib
import json
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from mediakeep.config import Settings
from mediakeep.db import Database
from mediakeep.events.repository import EventLog
from mediakeep.models.event import EventRecord

log = structlog.get_logger(__name__)

Event = dict[str, Any]
CHANNEL = "mediakeep:events"
POLL_SECONDS = 0.2
QUEUE_LIMIT = 1000
LOOKBACK = 200  # sequence numbers re-read by each poll (late commits)
SENT_MEMORY = 5000


def record_to_event(record: EventRecord) -> Event:
    return {
        "id": record.id,
        "type": record.type,
        "org_id": record.org_id,
        "data": record.data,
        "timestamp": record.created_at.isoformat().replace("+00:00", "Z"),
    }


class EventBus(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def published(self, event: Event) -> None:
        """Called after the commit that wrote `event` to the events table."""

    def subscribe(self) -> "contextlib.AbstractAsyncContextManager[asyncio.Queue[Event]]":
        """A queue receiving every event from now on (all orgs: the caller filters)."""


class _Fanout:
    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[Event]] = set()

    def deliver(self, event: Event) -> None:
        for queue in list(self._queues):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:  # a stuck subscriber loses events, never blocks others
                log.warning("event subscriber queue full; event dropped", event_id=event["id"])

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[Event]]:
        queue: asyncio.Queue[Event] = asyncio.Queue(QUEUE_LIMIT)
        self._queues.add(queue)
        try:
            yield queue
        finally:
            self._queues.discard(queue)


class LocalEventBus:
    """Embedded mode: tails the events table into in-process subscribers."""

    def __init__(self, db: Database, *, tail: bool = True) -> None:
        self._db = db
        self._tail = tail
        self._fanout = _Fanout()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_seq = 0
        self._sent: dict[str, None] = {}  # ids delivered lately, oldest first

    async def start(self) -> None:
        if not self._tail or self._task is not None:
            return
        async with self._db.read_session() as session:
            log_ = EventLog(session)
            self._last_seq = await log_.last_seq()
            self._sent = dict.fromkeys(await log_.ids_after(self._last_seq - LOOKBACK))
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def published(self, event: Event) -> None:  # noqa: ARG002 - the tailer delivers it
        self._wake.set()

    def subscribe(self) -> "contextlib.AbstractAsyncContextManager[asyncio.Queue[Event]]":
        return self._fanout.subscribe()

    async def poll(self) -> None:
        # A sequence number is taken at insert but visible at commit, so on PostgreSQL a lower
        # one can appear after a higher one was read: look back a little, skip what was sent.
        async with self._db.read_session() as session:
            rows = await EventLog(session).after(self._last_seq - LOOKBACK, 500 + LOOKBACK)
        for row in rows:
            if row.id in self._sent:
                continue
            self._sent[row.id] = None
            if len(self._sent) > SENT_MEMORY:
                del self._sent[next(iter(self._sent))]
            self._last_seq = max(self._last_seq, row.seq)
            self._fanout.deliver(record_to_event(row))

    async def _run(self) -> None:
        while True:
            try:
                await self.poll()
            except Exception:
                log.exception("event tail failed")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL_SECONDS):
                    await self._wake.wait()
            self._wake.clear()


class RedisEventBus:
    """Distributed mode: every process publishes after commit; each API replica listens."""

    def __init__(self, url: str, *, listen: bool = True) -> None:
        import redis.asyncio as aioredis

        self._redis = aioredis.from_url(url)
        self._listen = listen
        self._fanout = _Fanout()
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self) -> None:
        if self._listen and self._task is None:
            self._task = asyncio.create_task(self._run())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await self._ready.wait()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._redis.aclose()

    async def published(self, event: Event) -> None:
        await self._redis.publish(CHANNEL, json.dumps(event))

    def subscribe(self) -> "contextlib.AbstractAsyncContextManager[asyncio.Queue[Event]]":
        return self._fanout.subscribe()

    async def _run(self) -> None:
        while True:
            try:
                pubsub = self._redis.pubsub()
                await pubsub.subscribe(CHANNEL)
                self._ready.set()
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self._fanout.deliver(json.loads(message["data"]))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("redis event listener failed; reconnecting")
                await asyncio.sleep(1)


def create_event_bus(settings: Settings, db: Database, *, listen: bool = True) -> EventBus:
    """The one place that picks the backend: Redis pub/sub when REDIS_URL is set."""
    if settings.redis_url:
        return RedisEventBus(settings.redis_url, listen=listen)
    return LocalEventBus(db, tail=listen)


# The bus of each running service, by its write engine: a unit of work finds the bus of the
# database it writes to (several apps may share one process: tests, embedded tools).
_buses: "weakref.WeakKeyDictionary[AsyncEngine, EventBus]" = weakref.WeakKeyDictionary()


def install(db: Database, bus: EventBus | None) -> None:
    """Make `bus` the one announcing commits to `db` (None: forget it)."""
    if bus is None:
        _buses.pop(db.write_engine, None)
    else:
        _buses[db.write_engine] = bus


def bus_of(db: Database) -> EventBus | None:
    return _buses.get(db.write_engine)


def bus_of_session(session: AsyncSession) -> EventBus | None:
    bind = session.bind
    return _buses.get(bind) if isinstance(bind, AsyncEngine) else None
