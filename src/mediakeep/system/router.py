"""Liveness, readiness and metrics."""

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from mediakeep.deps import ServicesDep
from mediakeep.jobs.dispatch import QueueUnavailable
from mediakeep.storage.base import StorageUnavailable
from mediakeep.system import repository

router = APIRouter(tags=["system"])


@router.get("/healthz", operation_id="system_healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers; touches no backing service."""
    return {"status": "ok"}


@router.get("/readyz", operation_id="system_readyz", responses={503: {"description": "not ready"}})
async def readyz(services: ServicesDep) -> JSONResponse:
    """Readiness: the database, storage and job queue (broker or local workers) answer."""
    checks: dict[str, str] = {}
    try:
        async with services.db.read_session() as session:
            await repository.ping(session)
        checks["database"] = "ok"
    except Exception as exc:  # any driver error means "not ready"
        checks["database"] = f"unavailable: {type(exc).__name__}"
    try:
        await services.storage.ping()
        checks["storage"] = "ok"
    except StorageUnavailable as exc:
        checks["storage"] = f"unavailable: {exc}"
    checks["queue"] = "ok"
    if services.dispatcher is not None:
        try:
            # A unit of its own, like the database check's: a failed statement there leaves
            # this one unaffected. A Celery queue's check sends no statement.
            async with services.db.read_session() as session:
                await services.dispatcher.check(session)
        except QueueUnavailable as exc:
            checks["queue"] = f"unavailable: {exc}"
    failing = [name for name, state in checks.items() if state != "ok"]
    body = {"status": "ok" if not failing else "unavailable", "checks": checks, "failing": failing}
    return JSONResponse(body, status_code=503 if failing else 200)


@router.get("/metrics", operation_id="system_metrics", response_class=Response)
async def metrics() -> Response:
    """Prometheus metrics."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
