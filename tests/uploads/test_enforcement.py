"""The storage side refuses whatever the upload URL was not signed for: more bytes, another
key, another org's prefix, another content type, after expiry, or with a tampered signature
or policy. SeaweedFS checks the presigned POST itself; the local backend's signed PUT is
checked by the service. Each refusal stores nothing, and the upload stays finalizable."""

import base64
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from mediakeep.ids import new_id
from mediakeep.storage.local import LocalStorage
from mediakeep.storage.s3 import S3Storage
from tests import mediagen
from tests.factories import TestUser
from tests.media.support import assert_error
from tests.uploads.support import (
    ask_upload_ok,
    finalize_path,
    incoming_objects,
    is_s3,
    org_objects,
    send,
    storage_of,
    upload_key,
    with_path,
    with_query,
)


async def _nothing_stored_and_upload_still_open(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser, answer: dict[str, Any], data: bytes
) -> None:
    """Nothing reached the store; finalize says so; the genuine upload then still works."""
    assert incoming_objects(app, user.org_id) == []
    early = await client.post(finalize_path(answer["media_id"]), json={}, headers=user.headers)
    assert_error(early, 409, "conflict")
    sent = await send(app, client, answer, data)
    assert sent.status_code in (200, 204), sent.text
    done = await client.post(finalize_path(answer["media_id"]), json={}, headers=user.headers)
    assert done.status_code == 200, done.text


def _refused_by_s3(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert f"<Code>{code}</Code>" in response.text, response.text


async def test_more_bytes_than_declared_are_refused(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    data = mediagen.png(24, 24)
    answer = await ask_upload_ok(client, user, data)

    response = await send(app, client, answer, data + b"\0")

    if is_s3(app):
        _refused_by_s3(response, 400, "EntityTooLarge")
    else:
        assert_error(response, 413, "validation.size.exceeds_limit")
    await _nothing_stored_and_upload_still_open(app, client, user, answer, data)


async def test_another_key_in_the_same_org_is_refused(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    data = mediagen.png(24, 24)
    answer = await ask_upload_ok(client, user, data)
    other_key = f"{user.org_id}/incoming/{new_id('upl')}"

    if is_s3(app):
        response = await send(app, client, answer, data, fields={"key": other_key})
        _refused_by_s3(response, 403, "AccessDenied")
    else:
        url = with_path(answer["upload_url"], f"/uploads/local/{other_key}")
        response = await send(app, client, answer, data, url=url)
        assert_error(response, 403, "auth.forbidden")
    await _nothing_stored_and_upload_still_open(app, client, user, answer, data)


async def test_another_orgs_prefix_is_refused(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser, other_user: TestUser
) -> None:
    data = mediagen.png(24, 24)
    answer = await ask_upload_ok(client, user, data)
    upload_id = upload_key(answer).rsplit("/", 1)[-1]
    foreign_key = f"{other_user.org_id}/incoming/{upload_id}"

    if is_s3(app):
        response = await send(app, client, answer, data, fields={"key": foreign_key})
        _refused_by_s3(response, 403, "AccessDenied")
    else:
        url = with_path(answer["upload_url"], f"/uploads/local/{foreign_key}")
        response = await send(app, client, answer, data, url=url)
        assert_error(response, 403, "auth.forbidden")
    assert org_objects(app, other_user.org_id) == []
    await _nothing_stored_and_upload_still_open(app, client, user, answer, data)


async def test_another_content_type_is_refused(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    data = mediagen.png(24, 24)
    answer = await ask_upload_ok(client, user, data)

    response = await send(app, client, answer, data, content_type="text/html")

    if is_s3(app):
        _refused_by_s3(response, 403, "AccessDenied")
    else:
        assert_error(response, 403, "auth.forbidden")
    await _nothing_stored_and_upload_still_open(app, client, user, answer, data)


async def test_an_expired_upload_url_is_refused(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    data = mediagen.png(24, 24)
    answer = await ask_upload_ok(client, user, data)
    key = upload_key(answer)
    storage = storage_of(app)
    # The same grant as the answer's, made by the storage itself with an expiry in the past.
    if isinstance(storage, S3Storage):
        url, fields = storage.presigned_post(key, "image/png", len(data), expires_in=-60)
        expired = answer | {"upload_url": url, "upload_fields": fields}
        response = await send(app, client, expired, data)
        _refused_by_s3(response, 403, "AccessDenied")
        assert "expired" in response.text
    else:
        assert isinstance(storage, LocalStorage)
        past = int(time.time()) - 60
        url = storage.signed_put_url(key, "image/png", len(data), expires_at=past)
        response = await send(app, client, answer, data, url=url)
        assert_error(response, 401, "auth.unauthorized")
    await _nothing_stored_and_upload_still_open(app, client, user, answer, data)


def _policy_without_size_limit(fields: dict[str, str]) -> str:
    policy = json.loads(base64.b64decode(fields["policy"]))
    policy["conditions"] = [
        condition
        for condition in policy["conditions"]
        if not (isinstance(condition, list) and condition[0] == "content-length-range")
    ]
    return base64.b64encode(json.dumps(policy).encode()).decode()


async def test_a_tampered_policy_or_signature_is_refused(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    data = mediagen.png(24, 24)
    answer = await ask_upload_ok(client, user, data)
    bigger = data + b"\0" * 1000

    if is_s3(app):
        loose = _policy_without_size_limit(answer["upload_fields"])
        response = await send(app, client, answer, bigger, fields={"policy": loose})
        _refused_by_s3(response, 403, "SignatureDoesNotMatch")
        forged = {"x-amz-signature": "0" * 64}
        response = await send(app, client, answer, data, fields=forged)
        _refused_by_s3(response, 403, "SignatureDoesNotMatch")
    else:
        url = answer["upload_url"]
        for tampered in (
            with_query(url, size=str(len(bigger))),
            with_query(url, exp=str(int(time.time()) + 86400)),
            with_query(url, type="text/html"),
            with_query(url, sig="A" * 43),
        ):
            response = await send(app, client, answer, bigger, url=tampered)
            assert_error(response, 403, "auth.forbidden")
    await _nothing_stored_and_upload_still_open(app, client, user, answer, data)


@pytest.mark.backend_only("sqlite-local")
async def test_local_put_stops_reading_at_the_first_byte_over_the_signed_size(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    data = mediagen.png(24, 24)
    answer = await ask_upload_ok(client, user, data)
    chunk = b"\0" * 65536
    produced = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal produced
        for _ in range(1000):  # 64 MiB, if anyone read it all
            produced += 1
            yield chunk

    path = answer["upload_url"].split("/uploads/local/", 1)[1]
    response = await client.put(
        f"/uploads/local/{path}", content=endless(), headers=answer["upload_headers"]
    )

    assert_error(response, 413, "validation.size.exceeds_limit")
    assert produced <= 3, produced
    await _nothing_stored_and_upload_still_open(app, client, user, answer, data)


@pytest.mark.backend_only("sqlite-local")
async def test_local_put_refuses_a_declared_length_over_the_signed_size_before_reading(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    data = mediagen.png(24, 24)
    answer = await ask_upload_ok(client, user, data)
    headers = answer["upload_headers"] | {"Content-Length": str(len(data) + 1)}
    path = answer["upload_url"].split("/uploads/local/", 1)[1]

    response = await client.put(f"/uploads/local/{path}", content=data + b"\0", headers=headers)

    assert_error(response, 413, "validation.size.exceeds_limit")
    await _nothing_stored_and_upload_still_open(app, client, user, answer, data)


@pytest.mark.backend_only("postgres-s3")
async def test_local_put_answers_404_on_the_s3_backend(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    key = f"{user.org_id}/incoming/{new_id('upl')}"
    response = await client.put(
        f"/uploads/local/{key}?exp=9999999999&size=10&type=image/png&sig=x",
        content=b"x",
        headers={"Content-Type": "image/png"},
    )
    assert_error(response, 404, "not_found")
