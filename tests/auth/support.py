"""Small helpers shared by the auth tests."""

from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import Executable

from mediakeep.services import Services

PASSWORD = "correct horse battery staple"


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is API.md's error body with this status and code; returns the error."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert set(error) == {"code", "message", "details", "request_id"}
    assert error["code"] == code
    assert isinstance(error["message"], str)
    assert error["message"]
    assert isinstance(error["details"], list)
    assert error["request_id"].startswith("req_")
    assert error["request_id"] == response.headers["x-request-id"]
    return error


async def execute(app: FastAPI, statement: Executable) -> None:
    """Run one statement in its own committed transaction (to age rows in time, not to cheat)."""
    services: Services = app.state.services
    async with services.db.write_session() as session:
        await session.execute(statement)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
