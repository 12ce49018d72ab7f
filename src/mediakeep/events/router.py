"""Realtime routes: Server-Sent Events and the WebSocket. Only the caller's org's events."""

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Header, Query, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse
from starlette.requests import Request

from mediakeep.auth.principal import Principal
from mediakeep.auth.service import Credentials, authenticate_request
from mediakeep.deps import ServicesDep, Viewer, credentials_of, get_services
from mediakeep.errors import MediaError, invalid
from mediakeep.events import service
from mediakeep.events.access import CloseReason, StreamAccess
from mediakeep.events.bus import Event, bus_of
from mediakeep.events.publish import EVENT_TYPES

log = structlog.get_logger(__name__)

router = APIRouter(tags=["events"])

HEARTBEAT_SECONDS = 15.0
AUTH_TIMEOUT_SECONDS = 10.0
CHANNELS = {"media": "media.", "jobs": "job.", "collections": "collection."}


def _unavailable() -> MediaError:
    return MediaError("events.unavailable", 503, "The event bus is not running")


def _closed(reason: CloseReason) -> dict[str, str]:
    return {"type": "closed", "reason": reason}


def _sse_closed(reason: CloseReason) -> bytes:
    return f"event: closed\ndata: {json.dumps(_closed(reason))}\n\n".encode()


def _wait_seconds(access: StreamAccess) -> float:
    """Until the next heartbeat, or the credential's expiry if that comes first."""
    left = access.seconds_left()
    return HEARTBEAT_SECONDS if left is None else max(0.01, min(HEARTBEAT_SECONDS, left))


def _sse(event: Event) -> bytes:
    return (
        f"id: {event['id']}\nevent: {event['type']}\n"
        f"data: {json.dumps(event, separators=(',', ':'))}\n\n"
    ).encode()


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "The org's events"},
        400: {"description": "Unknown event type (`validation.invalid`)"},
        401: {"description": "Missing or bad credentials (`auth.unauthorized`)"},
    },
)
async def stream_events(
    request: Request,
    principal: Viewer,
    services: ServicesDep,
    types: Annotated[str | None, Query(max_length=1000)] = None,
    last_event_id: Annotated[str | None, Header(max_length=64)] = None,
    follow: Annotated[
        bool, Query(description="false: send the replay after Last-Event-ID, then close")
    ] = True,
) -> StreamingResponse:
    """Server-Sent Events of the org; `Last-Event-ID` replays the recent events after it."""
    wanted = {t.strip() for t in types.split(",") if t.strip()} if types else set()
    unknown = wanted - set(EVENT_TYPES)
    if unknown:
        raise invalid(f"Unknown event types: {', '.join(sorted(unknown))}", "types")
    bus = bus_of(services.db)
    if bus is None:
        raise _unavailable()
    org_id = principal.org_id

    access = StreamAccess(services, credentials_of(request), principal)

    def matches(event: Event) -> bool:
        return event["org_id"] == org_id and (not wanted or event["type"] in wanted)

    async def body() -> AsyncIterator[bytes]:
        async with bus.subscribe() as queue:
            seen: set[str] = set()
            yield b": connected\n\n"
            if last_event_id:
                async with services.db.read_session() as session:
                    replay = await service.replay_after(session, org_id, last_event_id)
                for event in replay:
                    if matches(event):
                        if reason := await access.check():
                            yield _sse_closed(reason)
                            return
                        seen.add(event["id"])
                        yield _sse(event)
            if not follow:  # catch-up polling: the replay only
                return
            while True:
                try:
                    async with asyncio.timeout(_wait_seconds(access)):
                        event = await queue.get()
                except TimeoutError:
                    if await request.is_disconnected():
                        return
                    if reason := await access.check():
                        yield _sse_closed(reason)
                        return
                    yield b": ping\n\n"
                    continue
                if matches(event) and event["id"] not in seen:
                    # Re-authorised before every event: nothing leaves after access ended.
                    if reason := await access.check():
                        yield _sse_closed(reason)
                        return
                    yield _sse(event)

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _authenticate_ws(websocket: WebSocket) -> tuple[Principal, Credentials] | None:
    """The principal (and the credentials it came from) from the handshake's headers, else
    from a first `auth` message."""
    services = get_services(websocket)  # type: ignore[arg-type]
    headers = websocket.headers
    if "authorization" not in headers and "x-api-key" not in headers:
        try:
            async with asyncio.timeout(AUTH_TIMEOUT_SECONDS):
                message = json.loads(await websocket.receive_text())
        except (TimeoutError, ValueError):
            return None
        if not isinstance(message, dict) or message.get("type") != "auth":
            return None
        if isinstance(message.get("token"), str):
            extra = [(b"authorization", f"Bearer {message['token']}".encode())]
        elif isinstance(message.get("api_key"), str):
            extra = [(b"x-api-key", message["api_key"].encode())]
        else:
            return None
    else:
        extra = []
    scope = dict(websocket.scope)
    scope["type"] = "http"
    scope["method"] = "GET"
    scope["headers"] = [*websocket.scope.get("headers", []), *extra]
    credentials = credentials_of(Request(scope))
    try:
        async with services.db.read_session() as session:
            side = services.db.side_units()
            principal = await authenticate_request(credentials, services, session, side)
    except MediaError:
        return None
    return (principal, credentials) if principal.can("viewer") else None


# Registered by the app itself at /api/v1/realtime (see app.py): FastAPI loses the path of a
# WebSocket route inside an included router when listing routes.
async def realtime(websocket: WebSocket) -> None:
    """WebSocket of the org's events: auth, then subscribe by channel (and resource id)."""
    await websocket.accept()
    authenticated = await _authenticate_ws(websocket)
    if authenticated is None:
        await websocket.send_json({"type": "error", "code": "auth.unauthorized"})
        await websocket.close(code=4401, reason="unauthorized")
        return
    principal, credentials = authenticated
    services = get_services(websocket)  # type: ignore[arg-type]
    access = StreamAccess(services, credentials, principal)
    bus = bus_of(services.db)
    if bus is None:
        await websocket.close(code=1011, reason="event bus not running")
        return
    org_id = principal.org_id
    subscriptions: set[tuple[str, str | None]] = set()
    await websocket.send_json({"type": "ready", "org_id": org_id})

    def wanted(event: Event) -> bool:
        if event["org_id"] != org_id:
            return False
        for channel, resource_id in subscriptions:
            if not event["type"].startswith(CHANNELS[channel]):
                continue
            if resource_id is None or _resource_ids(event) & {resource_id}:
                return True
        return False

    async with bus.subscribe() as queue:

        async def reader() -> None:
            while True:
                message = await websocket.receive_json()
                kind = message.get("type") if isinstance(message, dict) else None
                if kind in ("subscribe", "unsubscribe"):
                    channel = message.get("channel")
                    resource = message.get("resource_id")
                    if channel not in CHANNELS or not (
                        resource is None or isinstance(resource, str)
                    ):
                        await websocket.send_json(
                            {
                                "type": "error",
                                "code": "validation.invalid",
                                "message": "bad channel",
                            }
                        )
                        continue
                    key = (str(channel), resource)
                    if kind == "subscribe":
                        subscriptions.add(key)
                    else:
                        subscriptions.discard(key)
                    await websocket.send_json(
                        {"type": f"{kind}d", "channel": channel, "resource_id": resource}
                    )
                elif kind == "ping":
                    await websocket.send_json({"type": "pong"})
                elif kind == "pong":
                    continue
                else:
                    await websocket.send_json(
                        {"type": "error", "code": "validation.invalid", "message": "unknown type"}
                    )

        async def writer() -> None:
            while True:
                try:
                    async with asyncio.timeout(_wait_seconds(access)):
                        event = await queue.get()
                except TimeoutError:
                    if reason := await access.check():
                        return await _close_ws(websocket, reason)
                    await websocket.send_json({"type": "ping"})
                    continue
                if wanted(event):
                    # Re-authorised before every event: nothing leaves after access ended.
                    if reason := await access.check():
                        return await _close_ws(websocket, reason)
                    await websocket.send_json({"type": "event", "event": event})

        tasks = [asyncio.create_task(reader()), asyncio.create_task(writer())]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                error = task.exception()
                if error is not None and not isinstance(error, WebSocketDisconnect):
                    log.info("realtime connection ended", error=str(error))
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            with contextlib.suppress(Exception):
                await websocket.close(code=1000)


async def _close_ws(websocket: WebSocket, reason: CloseReason) -> None:
    """The final message, then close: 4401 when access changed, 1000 when the credential ran
    out (the client reconnects with a fresh one)."""
    await websocket.send_json(_closed(reason))
    code = 4401 if reason == "access_changed" else 1000
    await websocket.close(code=code, reason=reason)


def _resource_ids(event: Event) -> set[str]:
    data: dict[str, Any] = event.get("data") or {}
    return {str(data[k]) for k in ("id", "media_id") if data.get(k)}
