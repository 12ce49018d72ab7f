"""The one exception the SDK raises: the API's error body (code, message, details, request id)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

# The code a non-JSON answer (a proxy's HTML page, an S3 XML error) is given, by status.
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
    503: "storage.unavailable",
}


class MediakeepError(Exception):
    """An answer of the API that is an error, or no answer at all.

    `code` is the API's error code (`not_found`, `validation.invalid`, `rate.limited`, ...),
    `status` the HTTP status (None when no answer arrived), `request_id` the server's
    `X-Request-Id` (quote it in bug reports), `details` the per-field details.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str,
        status: int | None = None,
        request_id: str | None = None,
        details: list[dict[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.request_id = request_id
        self.details = details or []
        self.headers: dict[str, str] = dict(headers or {})

    def __str__(self) -> str:
        where = [self.code]
        if self.status is not None:
            where.append(f"HTTP {self.status}")
        if self.request_id:
            where.append(f"request {self.request_id}")
        return f"{self.message} ({', '.join(where)})"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, status={self.status!r}, "
            f"request_id={self.request_id!r}, message={self.message!r})"
        )

    @classmethod
    def from_response(cls, response: httpx.Response) -> MediakeepError:
        """The error an answer carries; the response's body must have been read."""
        status = response.status_code
        request_id = response.headers.get("x-request-id")
        code = _STATUS_CODES.get(status, "internal" if status >= 500 else "http.error")
        message = f"HTTP {status} {response.reason_phrase or ''}".strip()
        details: list[dict[str, Any]] = []
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
            body = None
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            code = str(error.get("code") or code)
            message = str(error.get("message") or message)
            request_id = error.get("request_id") or request_id
            raw_details = error.get("details")
            if isinstance(raw_details, list):
                details = [d for d in raw_details if isinstance(d, dict)]
        elif response.text:
            message = f"{message}: {response.text.strip()[:300]}"
        return cls(
            message,
            code=code,
            status=status,
            request_id=request_id,
            details=details,
            headers=response.headers,
        )


class MediakeepConnectionError(MediakeepError):
    """No answer: the server could not be reached, or the connection broke (after retries)."""

    def __init__(self, message: str, *, cause: Exception | None = None) -> None:
        super().__init__(message, code="connection.failed")
        self.cause = cause
