"""POST /media/{id}/finalize: the stored object is verified (present, size = declared, type
allowed, hash) and becomes a media; refused bytes take the pending row and the object with them;
duplicates collapse onto the existing media."""

import hashlib
from datetime import timedelta
from pathlib import Path

import httpx
from fastapi import FastAPI

from mediakeep.kit.time import now
from tests import mediagen
from tests.factories import TestUser
from tests.media.support import MEDIA, assert_error, stored_originals, upload_ok
from tests.orgs.support import new_team
from tests.uploads.support import (
    ask_upload,
    ask_upload_ok,
    finalize_path,
    incoming_objects,
    media_row,
    send,
    set_upload_expiry,
    storage_of,
    upload_key,
)


async def _uploaded(
    app: FastAPI,
    client: httpx.AsyncClient,
    user: TestUser,
    data: bytes,
    *,
    declared_size: int | None = None,
    mime: str = "image/png",
) -> dict[str, object]:
    """An upload-url answer whose bytes (`data`) are already in the store."""
    size = declared_size if declared_size is not None else len(data)
    response = await ask_upload(client, user, size, mime=mime)
    assert response.status_code == 201, response.text
    answer: dict[str, object] = response.json()
    sent = await send(app, client, answer, data)
    assert sent.status_code in (200, 204), sent.text
    return answer


async def _finalize(
    client: httpx.AsyncClient, user: TestUser, media_id: object, **body: str
) -> httpx.Response:
    return await client.post(finalize_path(str(media_id)), json=body, headers=user.headers)


async def _gone(app: FastAPI, client: httpx.AsyncClient, user: TestUser, media_id: object) -> None:
    """The refused upload left no row and no object."""
    response = await client.get(f"{MEDIA}/{media_id}", headers=user.headers)
    assert_error(response, 404, "not_found")
    assert incoming_objects(app, user.org_id) == []
    assert stored_originals(app, user.org_id) == []


async def test_finalize_twice_is_a_conflict(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    data = mediagen.png(20, 20)
    answer = await _uploaded(app, client, user, data)
    first = await _finalize(client, user, answer["media_id"])
    assert first.status_code == 200, first.text

    second = await _finalize(client, user, answer["media_id"])

    assert_error(second, 409, "conflict")
    assert stored_originals(app, user.org_id) == [hashlib.sha256(data).hexdigest()]


async def test_finalize_before_anything_was_uploaded_is_a_conflict_and_keeps_the_upload(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    data = mediagen.png(20, 20)
    answer = await ask_upload_ok(client, user, data)

    early = await _finalize(client, user, answer["media_id"])

    error = assert_error(early, 409, "conflict")
    assert "uploaded" in error["message"]
    sent = await send(app, client, answer, data)
    assert sent.status_code in (200, 204)
    assert (await _finalize(client, user, answer["media_id"])).status_code == 200


async def test_fewer_bytes_than_declared_are_refused_and_removed(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    data = mediagen.png(20, 20)
    answer = await _uploaded(app, client, user, data, declared_size=len(data) + 10)

    response = await _finalize(client, user, answer["media_id"])

    error = assert_error(response, 400, "validation.invalid")
    assert error["details"][0]["field"] == "size_bytes"
    await _gone(app, client, user, answer["media_id"])


async def test_more_bytes_than_declared_are_refused_and_removed(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser, tmp_path: Path
) -> None:
    data = mediagen.png(20, 20)
    answer = await ask_upload_ok(client, user, data)
    # Neither S3's policy nor the signed PUT lets this happen; put it there behind their back.
    bigger = tmp_path / "bigger"
    bigger.write_bytes(data + b"\0" * 10)
    await storage_of(app).commit_file(bigger, upload_key(answer), "image/png")

    response = await _finalize(client, user, answer["media_id"])

    assert_error(response, 413, "validation.size.exceeds_limit")
    await _gone(app, client, user, answer["media_id"])


async def test_a_sha256_that_does_not_match_the_stored_bytes_is_refused(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    data = mediagen.png(20, 20)
    answer = await _uploaded(app, client, user, data)

    response = await _finalize(client, user, answer["media_id"], sha256="0" * 64)

    error = assert_error(response, 400, "validation.invalid")
    assert error["details"][0]["field"] == "sha256"
    await _gone(app, client, user, answer["media_id"])


async def test_a_matching_sha256_and_etag_are_accepted(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    data = mediagen.png(20, 20)
    answer = await ask_upload_ok(client, user, data)
    sent = await send(app, client, answer, data)
    etag = sent.headers["etag"]

    response = await _finalize(
        client, user, answer["media_id"], sha256=hashlib.sha256(data).hexdigest(), etag=etag
    )

    assert response.status_code == 200, response.text
    assert response.json()["sha256"] == hashlib.sha256(data).hexdigest()


async def test_an_etag_of_another_version_is_a_conflict(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    data = mediagen.png(20, 20)
    answer = await _uploaded(app, client, user, data)

    response = await _finalize(client, user, answer["media_id"], etag='"not-this-one"')

    assert_error(response, 409, "conflict")
    assert (await _finalize(client, user, answer["media_id"])).status_code == 200


async def test_a_duplicate_collapses_onto_the_existing_media_and_its_object_is_deleted(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    data = mediagen.jpeg(30, 20)
    existing = await upload_ok(client, user, data)
    answer = await _uploaded(app, client, user, data, mime="image/jpeg")

    response = await _finalize(client, user, answer["media_id"])

    assert response.status_code == 200, response.text
    media = response.json()
    assert media["id"] == existing["id"]
    assert media["deduped"] is True
    pending = await client.get(f"{MEDIA}/{answer['media_id']}", headers=user.headers)
    assert_error(pending, 404, "not_found")
    listed = (await client.get(MEDIA, headers=user.headers)).json()["data"]
    assert [m["id"] for m in listed] == [existing["id"]]
    assert incoming_objects(app, user.org_id) == []
    assert stored_originals(app, user.org_id) == [existing["sha256"]]


async def test_corrupt_bytes_are_unprocessable_and_removed(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    data = mediagen.truncated_jpeg()
    answer = await _uploaded(app, client, user, data, mime="image/jpeg")

    response = await _finalize(client, user, answer["media_id"])

    assert_error(response, 422, "media.unprocessable")
    await _gone(app, client, user, answer["media_id"])


async def test_bytes_of_a_type_that_is_not_allowed_are_refused_whatever_was_declared(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    data = b"<html><script>alert(1)</script></html>" * 20
    answer = await _uploaded(app, client, user, data, mime="image/png")

    response = await _finalize(client, user, answer["media_id"])

    assert_error(response, 415, "validation.mime.unsupported")
    await _gone(app, client, user, answer["media_id"])


async def test_the_sniffed_type_wins_over_the_declared_one(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    data = mediagen.jpeg(16, 16)
    answer = await _uploaded(app, client, user, data, mime="image/png")

    response = await _finalize(client, user, answer["media_id"])

    assert response.status_code == 200, response.text
    assert response.json()["mime"] == "image/jpeg"


async def test_another_orgs_upload_is_not_found_and_stays_pending(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser, other_user: TestUser
) -> None:
    data = mediagen.png(20, 20)
    answer = await _uploaded(app, client, user, data)

    response = await _finalize(client, other_user, answer["media_id"])

    assert_error(response, 404, "not_found")
    row = await media_row(app, user.org_id, str(answer["media_id"]))
    assert row is not None
    assert row.status == "pending"
    assert (await _finalize(client, user, answer["media_id"])).status_code == 200


async def test_a_viewer_may_neither_ask_for_an_upload_url_nor_finalize(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    team = await new_team(client)
    data = mediagen.png(20, 20)
    refused = await ask_upload(client, team.viewer, len(data), headers=team.as_(team.viewer))
    assert_error(refused, 403, "auth.forbidden")

    asked = await ask_upload(client, team.member, len(data), headers=team.as_(team.member))
    assert asked.status_code == 201, asked.text
    answer = asked.json()
    assert (await send(app, client, answer, data)).status_code in (200, 204)
    finalize = finalize_path(answer["media_id"])
    viewer = await client.post(finalize, json={}, headers=team.as_(team.viewer))
    assert_error(viewer, 403, "auth.forbidden")
    member = await client.post(finalize, json={}, headers=team.as_(team.member))
    assert member.status_code == 200, member.text
    assert member.json()["org_id"] == team.org["id"]


async def test_finalize_after_the_upload_expired_is_gone(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    data = mediagen.png(20, 20)
    answer = await _uploaded(app, client, user, data)
    await set_upload_expiry(app, user.org_id, str(answer["media_id"]), now() - timedelta(days=1))

    response = await _finalize(client, user, answer["media_id"])

    assert_error(response, 410, "upload.expired")
    assert stored_originals(app, user.org_id) == []


async def test_finalize_of_a_media_that_is_not_a_pending_upload_is_a_conflict(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    existing = await upload_ok(client, user, mediagen.png(20, 20))

    response = await _finalize(client, user, existing["id"])

    assert_error(response, 409, "conflict")


async def test_finalize_without_a_body_is_accepted(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    data = mediagen.png(20, 20)
    answer = await _uploaded(app, client, user, data)

    response = await client.post(finalize_path(str(answer["media_id"])), headers=user.headers)

    assert response.status_code == 200, response.text
    media = response.json()
    assert media["id"] == answer["media_id"]
    assert media["status"] != "pending"
    assert media["sha256"] == hashlib.sha256(data).hexdigest()
