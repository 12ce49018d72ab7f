"""One error type carrying code and status, and the handlers that render API.md's error body."""

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from mediakeep.kit.request_context import current_request_id

log = structlog.get_logger(__name__)


# SQLSTATE classes meaning "the server is not there right now": connection exceptions (08) and
# operator intervention — shutting down, crash recovery, starting up (57P).
_UNREACHABLE_SQLSTATES = ("08", "57P")


def database_unreachable(exc: BaseException) -> bool:
    """Whether `exc` says the database cannot be reached (down, restarting, connection lost),
    as opposed to a bug or a refused statement: those are worth a 503 and a retry."""
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated or isinstance(exc, sa_exc.InterfaceError):
            return True
        sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        if isinstance(sqlstate, str) and sqlstate.startswith(_UNREACHABLE_SQLSTATES):
            return True
        # SQLite's "database is locked" after busy_timeout: the writer is busy, try again.
        return isinstance(exc, sa_exc.OperationalError) and "locked" in str(exc.orig)
    if isinstance(exc, ConnectionError | TimeoutError):
        # asyncpg raises the socket's own error while (re)connecting, unwrapped.
        traceback = exc.__traceback__
        while traceback is not None:
            filename = traceback.tb_frame.f_code.co_filename
            if "/asyncpg/" in filename or "/sqlalchemy/" in filename:
                return True
            traceback = traceback.tb_next
    return False


class MediaError(Exception):
    def __init__(
        self,
        code: str,
        status: int,
        message: str,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message
        self.details = details or []
        self.headers = headers or {}


def not_found(what: str = "resource") -> MediaError:
    return MediaError("not_found", 404, f"No such {what} in this organisation")


def invalid(message: str, field: str | None = None) -> MediaError:
    details = [{"field": field, "message": message}] if field else []
    return MediaError("validation.invalid", 400, message, details)


def unauthorized(message: str = "Missing or invalid credentials") -> MediaError:
    return MediaError("auth.unauthorized", 401, message, headers={"WWW-Authenticate": "Bearer"})


def forbidden(message: str = "Your role may not do this") -> MediaError:
    return MediaError("auth.forbidden", 403, message)


def conflict(message: str) -> MediaError:
    return MediaError("conflict", 409, message)


def error_body(
    code: str, message: str, details: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message,
            "details": details or [],
            "request_id": current_request_id(),
        }
    }


def error_response(exc: MediaError) -> JSONResponse:
    return JSONResponse(
        error_body(exc.code, exc.message, exc.details), status_code=exc.status, headers=exc.headers
    )


_STATUS_CODES = {
    400: "validation.invalid",
    401: "auth.unauthorized",
    403: "auth.forbidden",
    404: "not_found",
    405: "validation.invalid",
    409: "conflict",
    413: "validation.size.exceeds_limit",
    415: "validation.mime.unsupported",
    429: "rate.limited",
}


def install_error_handlers(app: FastAPI) -> None:
    async def on_media_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, MediaError)
        return error_response(exc)

    async def on_validation_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        details = [
            {
                "field": ".".join(str(part) for part in err["loc"] if part != "body") or "body",
                "message": err["msg"],
            }
            for err in exc.errors()
        ]
        message = "; ".join(f"{d['field']}: {d['message']}" for d in details) or "Invalid request"
        return JSONResponse(error_body("validation.invalid", message, details), status_code=400)

    async def on_http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = _STATUS_CODES.get(exc.status_code, "internal" if exc.status_code >= 500 else "error")
        return JSONResponse(
            error_body(code, str(exc.detail)),
            status_code=exc.status_code,
            headers=dict(exc.headers or {}),
        )

    async def on_unexpected(_: Request, exc: Exception) -> JSONResponse:
        if database_unreachable(exc):
            log.warning("database unavailable", error=repr(exc))
            return error_response(
                MediaError(
                    "database.unavailable",
                    503,
                    "The database is unavailable; nothing was changed. Retry shortly.",
                    headers={"Retry-After": "1"},
                )
            )
        log.exception("unhandled error", exc_info=exc)
        return JSONResponse(error_body("internal", "Internal server error"), status_code=500)

    app.add_exception_handler(MediaError, on_media_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)
