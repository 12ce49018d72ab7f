"""The request id of the request being served, for error bodies and log lines."""

from contextvars import ContextVar

_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


def current_request_id() -> str | None:
    return _request_id.get()


def set_request_id(value: str | None) -> None:
    _request_id.set(value)


_user_id: ContextVar[str | None] = ContextVar("user_id", default=None)


def current_user_id() -> str | None:
    """The authenticated principal's user id, for links bound to it (e.g. stream tokens)."""
    return _user_id.get()


def set_user_id(value: str | None) -> None:
    _user_id.set(value)
