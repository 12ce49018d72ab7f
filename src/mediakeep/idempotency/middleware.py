"""`Idempotency-Key` on every POST under `/api/v1`, as pure ASGI middleware.

A replay (same key, same credential, same `X-Org`) within MEDIA_IDEMPOTENCY_TTL gets the
first answer (status, body, content type, plus `Idempotent-Replayed: true`) without its
request body being read, so a multipart upload is neither buffered nor run twice. A
duplicate that arrives while the first is still running gets 409 `conflict` with
`Retry-After: 1` at once (like Stripe; holding it open would tie up a connection and a
worker for as long as an upload takes), and so does a key reused on another path.

The answer is written to the table before its last body chunk is passed on, so a client
that has read a whole answer always gets that answer back on a retry.
"""

import asyncio
import contextlib
from datetime import timedelta
from urllib.parse import parse_qs

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mediakeep.db import Database
from mediakeep.errors import MediaError, conflict, error_response
from mediakeep.idempotency import service
from mediakeep.ratelimit.identity import client_ip, header, identify
from mediakeep.services import Services

log = structlog.get_logger(__name__)

API_PREFIX = "/api/v1/"
HEADER = b"idempotency-key"


def _org_ref(scope: Scope) -> str | None:
    value = (header(scope, b"x-org") or "").strip()
    if value:
        return value
    query = bytes(scope.get("query_string") or b"").decode("latin-1")
    found = parse_qs(query).get("org")
    return found[0].strip() if found and found[0].strip() else None


def _bad_key(message: str) -> MediaError:
    return MediaError(
        "validation.invalid", 400, message, [{"field": "Idempotency-Key", "message": message}]
    )


# The middleware is the idempotency key's scope. Each step is a short write unit of work of its
# own, apart from the request's: the claim must be committed before the request runs, and the
# answer (or the release of the claim) must be stored even when the request's work failed.


async def claim(db: Database, fp: service.Fingerprint, ttl: timedelta) -> service.Outcome:
    async with db.write_session() as session:
        return await service.claim(session, fp, ttl)


async def finish(
    db: Database,
    fp: service.Fingerprint,
    claimed: service.Claimed,
    status: int,
    content_type: str | None,
    body: bytes | None,
) -> None:
    async with db.write_session() as session:
        await service.finish(session, fp, claimed, status, content_type, body)


async def release(db: Database, claimed: service.Claimed) -> None:
    async with db.write_session() as session:
        await service.release(session, claimed)


async def keep_claimed(db: Database, claimed: service.Claimed) -> None:
    """Renew the claim until cancelled (run as a task beside the request)."""
    while True:
        await asyncio.sleep(service.RENEW_EVERY.total_seconds())
        try:
            async with db.write_session() as session:
                renewed = await service.renew(session, claimed)
        except Exception:  # the next tick tries again; the lease outlives two misses
            log.exception("could not renew an idempotency claim")
            continue
        if not renewed:
            return


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or not scope["path"].startswith(API_PREFIX)
        ):
            await self.app(scope, receive, send)
            return
        key = header(scope, HEADER)
        services = getattr(getattr(scope.get("app"), "state", None), "services", None)
        if key is None or not isinstance(services, Services):
            await self.app(scope, receive, send)
            return
        key = key.strip()
        if not key:
            await error_response(_bad_key("Idempotency-Key must not be empty"))(
                scope, receive, send
            )
            return
        if len(key) > service.MAX_KEY_LENGTH:
            message = f"Idempotency-Key is {len(key)} characters; at most 255 are allowed"
            await error_response(_bad_key(message))(scope, receive, send)
            return

        caller = identify(scope)
        fp = service.fingerprint(
            secret_key=services.settings.secret_key,
            caller_material=caller.credential or f"ip:{client_ip(scope)}",
            org_ref=_org_ref(scope),
            key=key,
            method=scope["method"],
            path=scope["path"],
        )
        outcome = await claim(services.db, fp, services.settings.idempotency_ttl)
        if isinstance(outcome, service.Claimed):
            await self._run(services, fp, outcome, scope, receive, send)
        elif isinstance(outcome, service.Replay):
            await _send_replay(outcome, send)
        elif isinstance(outcome, service.Busy):
            busy = conflict("A request with this Idempotency-Key is still in progress; retry")
            busy.headers["Retry-After"] = "1"
            await error_response(busy)(scope, receive, send)
        elif isinstance(outcome, service.Mismatch):
            message = (
                f"This Idempotency-Key was first used for {outcome.method} {outcome.path}, "
                f"not {fp.method} {fp.path}; use a new key for a different request"
            )
            await error_response(conflict(message))(scope, receive, send)
        else:
            message = "The first answer for this Idempotency-Key can no longer be read"
            await error_response(conflict(message))(scope, receive, send)

    async def _run(
        self,
        services: Services,
        fp: service.Fingerprint,
        claimed: service.Claimed,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        status = 0
        content_type: str | None = None
        chunks: list[bytes] = []
        size = 0
        finished = False
        disconnected = False
        renewing = asyncio.create_task(keep_claimed(services.db, claimed))

        async def watch() -> Message:
            nonlocal disconnected
            message = await receive()
            if message["type"] == "http.disconnect":
                disconnected = True
            return message

        async def record(message: Message) -> None:
            nonlocal status, content_type, size, finished
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", []):
                    if name.lower() == b"content-type":
                        content_type = bytes(value).decode("latin-1")[:255]
            elif message["type"] == "http.response.body" and not finished:
                body = message.get("body", b"")
                if size <= service.MAX_STORED_BODY:
                    chunks.append(body)
                size += len(body)
                if not message.get("more_body", False):
                    finished = True
                    renewing.cancel()
                    kept = b"".join(chunks) if size <= service.MAX_STORED_BODY else None
                    if disconnected and not 200 <= status < 300:
                        # A client that went away mid-request earns its 4xx by leaving; its
                        # retry must run, not be told so again. (A 2xx means it was done.)
                        kept = None
                    try:
                        await finish(services.db, fp, claimed, status, content_type, kept)
                    except Exception:  # the answer still goes out; the claim lapses
                        log.exception("could not store an idempotent answer")
            await send(message)

        try:
            await self.app(scope, watch, record)
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing
            if not finished:
                # The request failed before its answer ended: let a retry run it again.
                try:
                    await release(services.db, claimed)
                except Exception:
                    log.exception("could not release an idempotency claim")


async def _send_replay(replay: service.Replay, send: Send) -> None:
    headers = [
        (b"content-length", str(len(replay.body)).encode()),
        (b"idempotent-replayed", b"true"),
    ]
    if replay.content_type:
        headers.append((b"content-type", replay.content_type.encode("latin-1")))
    await send({"type": "http.response.start", "status": replay.status, "headers": headers})
    await send({"type": "http.response.body", "body": replay.body, "more_body": False})
