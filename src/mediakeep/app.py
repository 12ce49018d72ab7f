"""create_app(settings): the lifespan owns the engine, storage and background sweeper."""

import asyncio
import contextlib
import gc
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import Gauge
from starlette.middleware.cors import CORSMiddleware
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

import mediakeep.tasks  # noqa: F401 - every task registered before the first enqueue
from mediakeep import __version__
from mediakeep.ai.router import router as ai_router
from mediakeep.apidocs import mount_api_docs
from mediakeep.auth.cache import close_quietly
from mediakeep.auth.router import router as auth_router
from mediakeep.bootstrap import build_services
from mediakeep.captions.router import router as captions_router
from mediakeep.collections.router import router as collections_router
from mediakeep.config import Settings
from mediakeep.edge import EdgeGuardMiddleware
from mediakeep.errors import install_error_handlers
from mediakeep.events import bus as event_bus
from mediakeep.events.router import realtime
from mediakeep.events.router import router as events_router
from mediakeep.files.router import router as files_router
from mediakeep.idempotency.middleware import IdempotencyMiddleware
from mediakeep.imageops.router import router as imageops_router
from mediakeep.ingest.sweeper import run_sweeper
from mediakeep.jobs.dispatch import create_dispatcher
from mediakeep.jobs.router import router as jobs_router
from mediakeep.logging import configure_logging
from mediakeep.media.router import router as media_router
from mediakeep.middleware import RequestContextMiddleware
from mediakeep.openapi import install_openapi, operation_id
from mediakeep.orgs.router import router as orgs_router
from mediakeep.ratelimit.middleware import RateLimitMiddleware
from mediakeep.streaming.router import public_router as stream_public_router
from mediakeep.streaming.router import router as stream_router
from mediakeep.system.router import router as system_router
from mediakeep.transforms.router import public_router as transforms_public_router
from mediakeep.transforms.router import router as transforms_router
from mediakeep.tus.router import router as tus_router
from mediakeep.uploads.router import local_router as local_uploads_router
from mediakeep.uploads.router import router as uploads_router
from mediakeep.usage.router import router as usage_router
from mediakeep.variants.router import router as variants_router
from mediakeep.videoops.router import router as videoops_router
from mediakeep.web.router import mount_web
from mediakeep.webhooks.router import router as webhooks_router
from mediakeep.webhooks.sender import run_webhook_sender

# Set by `serve --workers N` for its worker processes: "0" under --no-worker.
SERVE_BACKGROUND_ENV = "MEDIAKEEP_SERVE_BACKGROUND"

FROZEN_OBJECTS = Gauge(
    "mediakeep_gc_frozen_objects", "Objects kept out of the garbage collector's full passes"
)
FROZEN_OBJECTS.set_function(gc.get_freeze_count)


def freeze_startup_heap() -> None:
    """Move everything alive once the app has started (modules, routes, schemas, the ORM's
    mappers: some 200k objects) out of the cycle collector's reach. Python's full collection
    walks every tracked object; over that heap each one paused all requests for 90-250 ms,
    every few seconds under load, which set the hot reads' p99. What requests allocate is
    still collected as before."""
    gc.collect()
    gc.freeze()


def create_app_from_environment() -> FastAPI:
    """The app of one `serve --workers N` process, from the environment `serve` prepared. Jobs
    run in the pool `serve` started, so this process owns no job workers."""
    return create_app(
        Settings(),
        run_background=os.environ.get(SERVE_BACKGROUND_ENV) != "0",
        workers=False,
        freeze_heap=True,
    )


def create_app(
    settings: Settings | None = None,
    *,
    run_background: bool = True,
    workers: bool | None = None,
    freeze_heap: bool = False,
) -> FastAPI:
    """The app; `run_background` runs the orphan sweeper, `workers` (default: the same) the
    local dispatcher's worker processes (MEDIA_QUEUE_BACKEND=local only). `freeze_heap` is
    for a process that serves this one app until it exits (`serve`), not for tests that
    build many: see `freeze_startup_heap`."""
    settings = settings or Settings()
    configure_logging(settings.log_level)
    own_workers = run_background if workers is None else workers

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = await build_services(settings)
        db = services.db
        app.state.services = services
        services.dispatcher = create_dispatcher(settings, workers=own_workers)
        await services.dispatcher.start()
        bus = event_bus.create_event_bus(settings, db)
        await bus.start()
        event_bus.install(db, bus)
        sweeper = asyncio.create_task(run_sweeper(services)) if run_background else None
        # The webhook sender runs beside the sweeper (every API replica may run one: deliveries
        # are leased, so each is sent by one sender at a time).
        sender = asyncio.create_task(run_webhook_sender(services)) if run_background else None
        if freeze_heap:
            freeze_startup_heap()
        try:
            yield
        finally:
            if sender:
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sender
            event_bus.install(db, None)
            await bus.stop()
            await services.dispatcher.stop()
            if sweeper:
                sweeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sweeper
            if services.rate_limiter is not None:
                await services.rate_limiter.close()
            if services.principal_cache is not None:
                await close_quietly(services.principal_cache.epoch)
            await db.dispose()

    app = FastAPI(
        title="mediakeep",
        version=__version__,
        summary="Self-hosted media service",
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
        openapi_url="/openapi.json",
        docs_url=None,  # /docs and /redoc: mount_api_docs, from local files instead of a CDN
        redoc_url=None,
    )
    install_error_handlers(app)
    install_openapi(app)
    # Routes are matched in order, each try costing FastAPI some microseconds (a route at the
    # end of the list cost 0.25 ms more per request than one at the start), so the hottest
    # come first: cached transforms, the media reads, downloads. No two operations match the
    # same request (tests/system/test_routing.py), so the order changes only the cost.
    app.include_router(transforms_public_router)
    app.include_router(media_router, prefix="/api/v1")
    app.include_router(files_router)
    app.include_router(system_router)
    app.include_router(auth_router, prefix="/api/v1")
    app.include_router(uploads_router, prefix="/api/v1")
    app.include_router(tus_router, prefix="/api/v1")
    app.include_router(captions_router, prefix="/api/v1")
    app.include_router(ai_router, prefix="/api/v1")
    app.include_router(variants_router, prefix="/api/v1")
    app.include_router(imageops_router, prefix="/api/v1")
    app.include_router(videoops_router, prefix="/api/v1")
    app.include_router(collections_router, prefix="/api/v1")
    app.include_router(orgs_router, prefix="/api/v1")
    app.include_router(usage_router, prefix="/api/v1")
    app.include_router(jobs_router, prefix="/api/v1")
    app.include_router(webhooks_router, prefix="/api/v1")
    app.include_router(events_router, prefix="/api/v1")
    app.add_api_websocket_route("/api/v1/realtime", realtime, name="realtime")
    app.include_router(local_uploads_router)
    app.include_router(transforms_router, prefix="/api/v1")
    app.include_router(stream_router, prefix="/api/v1")
    app.include_router(stream_public_router)
    mount_api_docs(app)
    mount_web(app)  # the browser app at `/` and `/static`, outside the OpenAPI document

    # Innermost first: idempotency sees only requests the rate limit let through, and both sit
    # inside CORS (so a browser can read a 429) and the request context (request ids).
    app.add_middleware(IdempotencyMiddleware)
    app.add_middleware(EdgeGuardMiddleware)  # body size and URL text, before anything reads them
    app.add_middleware(RateLimitMiddleware)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_credentials=False,
        allow_methods=["GET", "POST", "PATCH", "DELETE", "HEAD", "OPTIONS", "PUT"],
        allow_headers=["*"],
        expose_headers=[
            "X-Request-Id",
            "ETag",
            "Content-Range",
            "Content-Length",
            "Location",
            "X-RateLimit-Limit",
            "X-RateLimit-Remaining",
            "X-RateLimit-Reset",
            "Retry-After",
            "Idempotent-Replayed",
            # tus: a browser client (tus-js-client, Uppy) must read these.
            "Upload-Offset",
            "Upload-Length",
            "Upload-Expires",
            "Upload-Metadata",
            "Tus-Version",
            "Tus-Resumable",
            "Tus-Extension",
            "Tus-Max-Size",
            "Tus-Checksum-Algorithm",
            "Media-Id",
        ],
        max_age=600,
    )
    app.add_middleware(RequestContextMiddleware)
    if settings.trusted_proxies:
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    return app
