"""The direct-upload round trip with real clients: upload-url → the bytes straight to storage
(a form POST to SeaweedFS, or the local backend's signed PUT) → finalize → a ready media."""

import hashlib

import httpx
from fastapi import FastAPI

from tests import mediagen
from tests.factories import TestUser
from tests.media.support import MEDIA, MEDIA_ID, RFC3339_Z, fetch_url, stored_originals
from tests.uploads.support import (
    ask_upload_ok,
    finalize_path,
    incoming_objects,
    is_s3,
    policy_of,
    send,
    upload_key,
)


async def test_upload_url_then_finalize_gives_a_media_with_the_sent_bytes(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    data = mediagen.png(40, 30)
    answer = await ask_upload_ok(client, user, data, filename="holiday.png")
    assert MEDIA_ID.match(answer["media_id"])

    sent = await send(app, client, answer, data)
    assert sent.status_code in (200, 204), sent.text

    done = await client.post(finalize_path(answer["media_id"]), json={}, headers=user.headers)
    assert done.status_code == 200, done.text
    media = done.json()
    assert media["id"] == answer["media_id"]
    assert media["deduped"] is False
    assert media["status"] == "ready"
    assert media["source"] == "presigned"
    assert media["sha256"] == hashlib.sha256(data).hexdigest()
    assert media["size_bytes"] == len(data)
    assert media["mime"] == "image/png"
    assert (media["kind"], media["width"], media["height"]) == ("image", 40, 30)
    assert media["filename"] == "holiday.png"
    assert media["variants"], "finalize makes the variants, as the multipart upload does"

    downloaded = await fetch_url(app, client, media["url"])
    assert downloaded.status_code == 200
    assert downloaded.content == data
    assert stored_originals(app, user.org_id) == [media["sha256"]]
    assert incoming_objects(app, user.org_id) == []
    again = await client.get(f"{MEDIA}/{media['id']}", headers=user.headers)
    assert again.json()["status"] == "ready"


async def test_the_answer_names_method_fields_headers_and_expiry_of_the_backend(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    data = mediagen.jpeg(20, 20)
    answer = await ask_upload_ok(client, user, data, mime="image/jpeg", filename="a.jpg")

    assert set(answer) == {
        "media_id",
        "upload_url",
        "upload_method",
        "upload_fields",
        "upload_headers",
        "expires_at",
    }
    assert RFC3339_Z.match(answer["expires_at"])
    key = upload_key(answer)
    assert key.startswith(f"{user.org_id}/incoming/upl_")
    if is_s3(app):
        assert answer["upload_method"] == "POST"
        assert answer["upload_headers"] == {}
        assert answer["upload_fields"]["key"] == key
        assert answer["upload_fields"]["Content-Type"] == "image/jpeg"
        conditions = policy_of(answer)["conditions"]
        assert {"key": key} in conditions
        assert {"Content-Type": "image/jpeg"} in conditions
        assert ["content-length-range", 1, len(data)] in conditions
    else:
        assert answer["upload_method"] == "PUT"
        assert answer["upload_fields"] == {}
        assert answer["upload_headers"] == {"Content-Type": "image/jpeg"}
        assert "/uploads/local/" in answer["upload_url"]

    pending = await client.get(f"{MEDIA}/{answer['media_id']}", headers=user.headers)
    assert pending.status_code == 200
    body = pending.json()
    assert (body["status"], body["source"], body["url"]) == ("pending", "presigned", None)
    assert body["size_bytes"] == len(data)
    assert body["sha256"] is None
