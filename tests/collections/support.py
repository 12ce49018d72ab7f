"""Helpers shared by the collection tests."""

import re
from typing import Any

import httpx

COLLECTIONS = "/api/v1/collections"
COLLECTION_ID = re.compile(r"^col_[0-9a-hjkmnp-tv-z]{26}$")
UNKNOWN_COLLECTION = "col_01aaaaaaaaaaaaaaaaaaaaaaaa"
COLLECTION_FIELDS = {
    "id",
    "name",
    "description",
    "media_count",
    "created_by",
    "created_at",
    "updated_at",
}


async def create_collection(
    client: httpx.AsyncClient, headers: dict[str, str], name: str = "Holidays", **fields: Any
) -> dict[str, Any]:
    response = await client.post(COLLECTIONS, json={"name": name, **fields}, headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def get_collection(
    client: httpx.AsyncClient, headers: dict[str, str], collection_id: str
) -> dict[str, Any]:
    response = await client.get(f"{COLLECTIONS}/{collection_id}", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def add_media(
    client: httpx.AsyncClient, headers: dict[str, str], collection_id: str, media_ids: list[str]
) -> dict[str, Any]:
    response = await client.post(
        f"{COLLECTIONS}/{collection_id}/media", json={"media_ids": media_ids}, headers=headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def member_ids(
    client: httpx.AsyncClient, headers: dict[str, str], collection_id: str, **params: Any
) -> list[str]:
    response = await client.get(
        f"{COLLECTIONS}/{collection_id}/media", params=params, headers=headers
    )
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["data"]]
