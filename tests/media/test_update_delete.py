"""PATCH and DELETE /api/v1/media/{id}: partial edits, deletion of rows and stored bytes."""

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests import mediagen
from tests.factories import TestUser
from tests.media.support import (
    MEDIA,
    MEDIA_FIELDS,
    assert_error,
    fetch_url,
    original_exists,
    stored_originals,
    upload,
    upload_ok,
)

FIELDS = {
    "filename": "harbour.jpg",
    "alt": "Boats in a harbour",
    "caption": "Harbour at dawn",
    "description": "Shot from the pier.",
}


async def _media(client: httpx.AsyncClient, user: TestUser) -> dict[str, Any]:
    return await upload_ok(client, user, mediagen.jpeg(), **FIELDS)


async def _patch(
    client: httpx.AsyncClient, user: TestUser, media_id: str, body: dict[str, Any]
) -> httpx.Response:
    return await client.patch(f"{MEDIA}/{media_id}", json=body, headers=user.headers)


async def _get(client: httpx.AsyncClient, user: TestUser, media_id: str) -> httpx.Response:
    return await client.get(f"{MEDIA}/{media_id}", headers=user.headers)


# -------------------------------------------------------------------------------- PATCH


async def test_patch_changes_only_the_given_fields(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    media = await _media(client, user)

    response = await _patch(client, user, media["id"], {"alt": "Two boats"})

    assert response.status_code == 200, response.text
    patched = response.json()
    assert set(patched) == MEDIA_FIELDS
    assert patched["alt"] == "Two boats"
    # Signed links (the media's, its variants', its stream's) are minted fresh on every answer.
    unchanged = set(MEDIA_FIELDS) - {"alt", "updated_at", "url", "expires_at", "variants", "stream"}
    for field in unchanged:
        assert patched[field] == media[field], field
    unsigned = [{k: v for k, v in variant.items() if k != "url"} for variant in media["variants"]]
    assert [{k: v for k, v in v2.items() if k != "url"} for v2 in patched["variants"]] == unsigned
    assert patched["updated_at"] >= media["updated_at"]
    assert (await _get(client, user, media["id"])).json()["alt"] == "Two boats"


async def test_patch_null_clears_a_text_field_and_keeps_the_others(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    media = await _media(client, user)

    response = await _patch(client, user, media["id"], {"caption": None, "is_private": True})

    assert response.status_code == 200, response.text
    fetched = (await _get(client, user, media["id"])).json()
    assert fetched["caption"] is None
    assert fetched["is_private"] is True
    assert fetched["alt"] == FIELDS["alt"]
    assert fetched["description"] == FIELDS["description"]
    assert fetched["filename"] == FIELDS["filename"]


async def test_patch_renames_and_sets_description(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    media = await _media(client, user)
    body = {"filename": "renamed.jpg", "description": "New words"}

    response = await _patch(client, user, media["id"], body)

    assert response.status_code == 200, response.text
    fetched = (await _get(client, user, media["id"])).json()
    assert (fetched["filename"], fetched["description"]) == ("renamed.jpg", "New words")
    assert fetched["alt"] == FIELDS["alt"]
    content = await client.get(f"{MEDIA}/{media['id']}/content", headers=user.headers)
    assert 'filename="renamed.jpg"' in content.headers["content-disposition"]


async def test_patch_metadata_merges_into_the_existing_metadata(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    media = await _media(client, user)
    probed = media["metadata"]

    first = await _patch(client, user, media["id"], {"metadata": {"project": "atlas"}})
    second = await _patch(client, user, media["id"], {"metadata": {"shot": 7}})

    assert first.status_code == 200, first.text
    assert second.json()["metadata"] == probed | {"project": "atlas", "shot": 7}


async def test_empty_patch_changes_nothing(client: httpx.AsyncClient, user: TestUser) -> None:
    media = await _media(client, user)
    response = await _patch(client, user, media["id"], {})
    assert response.status_code == 200, response.text
    for field in ("filename", "alt", "caption", "description", "is_private", "metadata"):
        assert response.json()[field] == media[field]


@pytest.mark.parametrize(
    "body",
    [
        {"filename": None},
        {"is_private": None},
        {"filename": ""},
        {"filename": "x" * 256},
        {"kind": "video"},
        {"sha256": "0" * 64},
        {"is_private": "perhaps"},
        {"metadata": ["not", "an", "object"]},
    ],
    ids=[
        "null-filename",
        "null-is-private",
        "empty-filename",
        "long-filename",
        "read-only-kind",
        "read-only-sha256",
        "bad-bool",
        "metadata-not-object",
    ],
)
async def test_invalid_patch_is_400_and_changes_nothing(
    client: httpx.AsyncClient, user: TestUser, body: dict[str, Any]
) -> None:
    media = await _media(client, user)

    assert_error(await _patch(client, user, media["id"], body), 400, "validation.invalid")

    fetched = (await _get(client, user, media["id"])).json()
    for field in ("filename", "alt", "kind", "sha256", "is_private", "metadata", "updated_at"):
        assert fetched[field] == media[field]


async def test_patch_of_another_orgs_media_is_404_and_leaves_it_alone(
    client: httpx.AsyncClient, user: TestUser, other_user: TestUser
) -> None:
    theirs = await _media(client, other_user)

    response = await _patch(client, user, theirs["id"], {"alt": "mine now"})

    assert_error(response, 404, "not_found")
    assert (await _get(client, other_user, theirs["id"])).json()["alt"] == FIELDS["alt"]


async def test_patch_without_credentials_is_401(client: httpx.AsyncClient, user: TestUser) -> None:
    media = await _media(client, user)
    response = await client.patch(f"{MEDIA}/{media['id']}", json={"alt": "x"})
    assert_error(response, 401, "auth.unauthorized")


# ------------------------------------------------------------------------------- DELETE


async def test_delete_removes_the_media_and_its_stored_original(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    media = await _media(client, user)
    kept = await upload_ok(client, user, mediagen.png())
    assert original_exists(app, user.org_id, media["sha256"])

    response = await client.delete(f"{MEDIA}/{media['id']}", headers=user.headers)

    assert response.status_code == 204
    assert response.content == b""
    assert_error(await _get(client, user, media["id"]), 404, "not_found")
    content = await client.get(f"{MEDIA}/{media['id']}/content", headers=user.headers)
    assert_error(content, 404, "not_found")
    listed = await client.get(MEDIA, headers=user.headers)
    assert [m["id"] for m in listed.json()["data"]] == [kept["id"]]
    assert not original_exists(app, user.org_id, media["sha256"])
    assert stored_originals(app, user.org_id) == [kept["sha256"]]
    old_link = await fetch_url(app, client, media["url"])
    assert old_link.status_code == 404


async def test_delete_twice_is_404(client: httpx.AsyncClient, user: TestUser) -> None:
    media = await _media(client, user)
    first = await client.delete(f"{MEDIA}/{media['id']}", headers=user.headers)
    assert first.status_code == 204
    second = await client.delete(f"{MEDIA}/{media['id']}", headers=user.headers)
    assert_error(second, 404, "not_found")


async def test_bytes_uploaded_again_after_delete_are_a_new_media(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    data = mediagen.jpeg()
    first = await upload_ok(client, user, data)
    assert (await client.delete(f"{MEDIA}/{first['id']}", headers=user.headers)).status_code == 204

    again = await upload(client, user, data)

    assert again.status_code == 201, again.text
    assert again.json()["deduped"] is False
    assert again.json()["id"] != first["id"]
    assert original_exists(app, user.org_id, first["sha256"])
    downloaded = await fetch_url(app, client, again.json()["url"])
    assert downloaded.content == data


async def test_deleting_one_orgs_copy_keeps_the_other_orgs_bytes(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser, other_user: TestUser
) -> None:
    data = mediagen.jpeg()
    mine = await upload_ok(client, user, data)
    theirs = await upload_ok(client, other_user, data)

    response = await client.delete(f"{MEDIA}/{mine['id']}", headers=user.headers)

    assert response.status_code == 204
    assert not original_exists(app, user.org_id, mine["sha256"])
    assert original_exists(app, other_user.org_id, theirs["sha256"])
    content = await client.get(f"{MEDIA}/{theirs['id']}/content", headers=other_user.headers)
    assert content.status_code == 200
    assert content.content == data
    fetched = await _get(client, other_user, theirs["id"])
    assert (await fetch_url(app, client, fetched.json()["url"])).content == data


async def test_delete_of_another_orgs_media_is_404_and_keeps_it(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser, other_user: TestUser
) -> None:
    theirs = await _media(client, other_user)

    response = await client.delete(f"{MEDIA}/{theirs['id']}", headers=user.headers)

    assert_error(response, 404, "not_found")
    assert (await _get(client, other_user, theirs["id"])).status_code == 200
    assert original_exists(app, other_user.org_id, theirs["sha256"])


async def test_delete_without_credentials_is_401(client: httpx.AsyncClient, user: TestUser) -> None:
    media = await _media(client, user)
    assert_error(await client.delete(f"{MEDIA}/{media['id']}"), 401, "auth.unauthorized")
    assert (await _get(client, user, media["id"])).status_code == 200


async def test_patch_filename_is_cleaned_like_an_upload_name(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    media = await _media(client, user)
    response = await _patch(client, user, media["id"], {"filename": "../../etc/pass\u202ewd.png"})
    assert response.status_code == 200, response.text
    assert response.json()["filename"] == "passwd.png"
    # Control characters are refused outright (issue 17, L1), as in every text field.
    controls = await _patch(client, user, media["id"], {"filename": "pass\r\nwd.png"})
    assert controls.status_code == 400
    refused = await _patch(client, user, media["id"], {"filename": "../.."})
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "validation.invalid"
