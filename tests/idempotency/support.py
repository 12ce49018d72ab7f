"""Helpers of the idempotency tests."""

import uuid
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from mediakeep.models.idempotency import IdempotencyKey
from mediakeep.services import Services
from tests.factories import TestUser

MEDIA = "/api/v1/media"


def new_key() -> str:
    return str(uuid.uuid4())


async def upload(
    client: httpx.AsyncClient,
    user: TestUser,
    data: bytes,
    key: str | None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    sent = dict(user.headers) | (headers or {})
    if key is not None:
        sent["Idempotency-Key"] = key
    return await client.post(
        f"{MEDIA}/upload", files={"file": ("picture.jpg", data, "image/jpeg")}, headers=sent
    )


async def media_ids(client: httpx.AsyncClient, user: TestUser) -> list[str]:
    listed = await client.get(MEDIA, headers=user.headers, params={"limit": 200})
    assert listed.status_code == 200, listed.text
    return [item["id"] for item in listed.json()["data"]]


async def stored_rows(app: FastAPI) -> list[IdempotencyKey]:
    services: Services = app.state.services
    async with services.db.read_session() as session:
        return list((await session.execute(select(IdempotencyKey))).scalars())


def replayed(response: httpx.Response) -> bool:
    return response.headers.get("idempotent-replayed") == "true"


def json_of(response: httpx.Response) -> Any:
    return response.json()
