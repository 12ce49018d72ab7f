"""GET /files/{key}: download links signed with the org's link key (HMAC, key id, expiry), as
the local storage backend's media carry them."""

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest
from fastapi import FastAPI

from mediakeep.storage.links import files_url
from mediakeep.storage.local import LocalStorage
from tests import mediagen
from tests.factories import TestUser
from tests.media.support import NOSNIFF, assert_error, settings_of, upload_ok

# /files links belong to the local storage backend; S3 links go to S3.
pytestmark = pytest.mark.backends("sqlite-local")


@pytest.fixture
def storage(app: FastAPI) -> LocalStorage:
    backend = app.state.services.storage
    assert isinstance(backend, LocalStorage)
    return backend


def _split(url: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(url)
    return parts.path, dict(parse_qsl(parts.query))


def _join(path: str, query: dict[str, str]) -> str:
    return f"{path}?{urlencode(query)}"


async def _uploaded(client: httpx.AsyncClient, user: TestUser) -> tuple[dict[str, Any], bytes]:
    data = mediagen.jpeg()
    return await upload_ok(client, user, data, part_name="boat.jpg"), data


def _key(media: dict[str, Any]) -> str:
    return f"{media['org_id']}/originals/{media['sha256']}"


async def test_signed_link_downloads_the_bytes_with_safe_headers(
    storage: LocalStorage, client: httpx.AsyncClient, user: TestUser
) -> None:
    media, data = await _uploaded(client, user)
    path, query = _split(media["url"])
    assert path == f"/files/{_key(media)}"

    response = await client.get(_join(path, query))

    assert response.status_code == 200, response.text
    assert response.content == data
    assert response.headers["content-type"] == "image/jpeg"
    assert response.headers["x-content-type-options"] == NOSNIFF
    assert response.headers["content-disposition"].startswith("inline")
    assert 'filename="boat.jpg"' in response.headers["content-disposition"]
    assert response.headers["etag"]
    assert response.headers["last-modified"]


async def test_signed_link_needs_no_credentials_but_works_for_anyone_holding_it(
    storage: LocalStorage, client: httpx.AsyncClient, user: TestUser, other_user: TestUser
) -> None:
    media, data = await _uploaded(client, user)
    path, query = _split(media["url"])
    response = await client.get(_join(path, query), headers=other_user.headers)
    assert response.content == data


async def test_signed_link_honours_range(
    storage: LocalStorage, client: httpx.AsyncClient, user: TestUser
) -> None:
    media, data = await _uploaded(client, user)
    path, query = _split(media["url"])

    response = await client.get(_join(path, query), headers={"range": "bytes=0-9"})
    tail = await client.get(_join(path, query), headers={"range": "bytes=-4"})
    past = await client.get(_join(path, query), headers={"range": f"bytes={len(data)}-"})

    assert response.status_code == 206
    assert response.content == data[:10]
    assert response.headers["content-range"] == f"bytes 0-9/{len(data)}"
    assert tail.status_code == 206
    assert tail.content == data[-4:]
    assert past.status_code == 416


def _flip(sig: str) -> str:
    return ("A" if sig[0] != "A" else "B") + sig[1:]


@pytest.mark.parametrize(
    "tamper",
    [
        lambda q: q | {"sig": _flip(q["sig"])},
        lambda q: q | {"sig": q["sig"][:-2]},
        lambda q: q | {"sig": ""},
        lambda q: q | {"exp": str(int(q["exp"]) + 3600)},
        lambda q: q | {"name": "other.jpg"},
        lambda q: {k: v for k, v in q.items() if k != "name"},
        lambda q: q | {"type": "text/html"},
        lambda q: q | {"disp": "attachment"},
    ],
    ids=[
        "flipped-sig",
        "short-sig",
        "empty-sig",
        "later-expiry",
        "changed-name",
        "dropped-name",
        "changed-type",
        "added-disposition",
    ],
)
async def test_tampered_link_is_403_forbidden(
    storage: LocalStorage,
    client: httpx.AsyncClient,
    user: TestUser,
    tamper: Any,
) -> None:
    media, _ = await _uploaded(client, user)
    path, query = _split(media["url"])
    response = await client.get(_join(path, tamper(query)))
    assert_error(response, 403, "auth.forbidden")


async def test_link_moved_to_another_key_is_403(
    storage: LocalStorage, client: httpx.AsyncClient, user: TestUser
) -> None:
    first, _ = await _uploaded(client, user)
    second, _ = await _uploaded(client, user)
    _, query = _split(first["url"])

    response = await client.get(_join(f"/files/{_key(second)}", query))

    assert_error(response, 403, "auth.forbidden")


async def test_link_with_a_path_escaping_the_store_is_refused(
    storage: LocalStorage, client: httpx.AsyncClient, user: TestUser
) -> None:
    media, _ = await _uploaded(client, user)
    _, query = _split(media["url"])
    escaped = f"/files/{media['org_id']}/originals/%2E%2E/%2E%2E/%2E%2E/mediakeep.db"

    response = await client.get(_join(escaped, query))

    assert response.status_code in (403, 404), response.text
    assert b"SQLite" not in response.content


async def test_expired_link_is_401_unauthorized(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    media, _ = await _uploaded(client, user)
    services = app.state.services
    current = (await services.link_keys.load(media["org_id"])).current  # as the presenter signs
    expired = files_url(
        services.settings.local_storage_base_url,
        _key(media),
        -5,
        current,
        filename=media["filename"],
        content_type=media["mime"],
    )
    path, query = _split(expired)

    response = await client.get(_join(path, query))

    assert_error(response, 401, "auth.unauthorized")
    # A forged link never learns whether it expired: the signature is checked first.
    assert_error(
        await client.get(_join(path, query | {"sig": _flip(query["sig"])})), 403, "auth.forbidden"
    )


async def test_link_to_a_deleted_object_is_404(
    storage: LocalStorage, client: httpx.AsyncClient, user: TestUser
) -> None:
    media, _ = await _uploaded(client, user)
    path, query = _split(media["url"])
    await storage.delete(_key(media))
    assert_error(await client.get(_join(path, query)), 404, "not_found")


@pytest.mark.parametrize("missing", ["exp", "sig"])
async def test_link_without_exp_or_sig_is_400(
    storage: LocalStorage, client: httpx.AsyncClient, user: TestUser, missing: str
) -> None:
    media, _ = await _uploaded(client, user)
    path, query = _split(media["url"])
    del query[missing]
    response = await client.get(_join(path, query))
    assert_error(response, 400, "validation.invalid")


@pytest.mark.backends("postgres-s3")
async def test_files_route_on_s3_opens_nothing_without_the_orgs_signature(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    # On S3, /files only redirects links the org's key signed (private media's links).
    assert settings_of(app).storage_backend == "s3"
    media, _ = await _uploaded(client, user)
    response = await client.get(f"/files/{_key(media)}", params={"exp": "9999999999", "sig": "x"})
    assert_error(response, 403, "auth.forbidden")
