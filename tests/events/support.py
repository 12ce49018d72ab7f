"""Collecting events from the running app's bus."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI

from mediakeep.events import bus as event_bus
from mediakeep.services import Services


class Collected:
    def __init__(self, queue: "asyncio.Queue[dict[str, Any]]") -> None:
        self.queue = queue
        self.events: list[dict[str, Any]] = []

    async def wait_for(self, type: str, timeout: float = 10, **data: Any) -> dict[str, Any]:
        """The first event of `type` (with these data fields) received so far or within
        `timeout` seconds."""

        def match(event: dict[str, Any]) -> bool:
            return event["type"] == type and all(event["data"].get(k) == v for k, v in data.items())

        for event in self.events:
            if match(event):
                return event
        async with asyncio.timeout(timeout):
            while True:
                event = await self.queue.get()
                self.events.append(event)
                if match(event):
                    return event

    async def drain(self, seconds: float = 0.5) -> list[dict[str, Any]]:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                while True:
                    self.events.append(await self.queue.get())
        return self.events


@contextlib.asynccontextmanager
async def collect(app: FastAPI) -> AsyncIterator[Collected]:
    services: Services = app.state.services
    bus = event_bus.bus_of(services.db)
    assert bus is not None, "the app's lifespan installs the event bus"
    async with bus.subscribe() as queue:
        yield Collected(queue)
