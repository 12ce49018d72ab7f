"""Reading media: GET one, list (filters, sorting, cursors), batch, resolve, presign,
content (Range, conditional requests, safe headers), the redirect mode and variants."""

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests import mediagen
from tests.factories import TestUser, new_user
from tests.media.support import (
    MEDIA,
    MEDIA_FIELDS,
    NOSNIFF,
    asgi_client,
    assert_error,
    extra_app,
    fetch_url,
    upload_ok,
)

UNKNOWN_ID = "med_01aaaaaaaaaaaaaaaaaaaaaaaa"


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# ---------------------------------------------------------------------------- a library


@dataclass
class Library:
    """One org holding five media of three kinds, uploaded one after another."""

    owner: TestUser
    items: list[dict[str, Any]]  # in upload order
    data: dict[str, bytes]  # id -> bytes

    def ids(self, *positions: int) -> list[str]:
        return [self.items[p]["id"] for p in positions]


@pytest.fixture(scope="module")
async def library(app: FastAPI) -> Library:
    """Read-only tests share this org (nobody else ever sees it)."""
    async with asgi_client(app) as http:
        owner = await new_user(http)
        plan: list[tuple[bytes, str, str, dict[str, str]]] = [
            (mediagen.jpeg(40, 30), "alpha.jpg", "image/jpeg", {"alt": "Sunset over the sea"}),
            (mediagen.png(50, 40), "beta.png", "image/png", {"caption": "Team photo 100%"}),
            (mediagen.wav(0.5), "gamma.wav", "audio/wav", {"description": "Taped at the BEACH"}),
            (mediagen.jpeg(120, 90, quality=95), "delta.jpg", "image/jpeg", {}),
            (mediagen.mp4(1.0), "epsilon.mp4", "video/mp4", {}),
        ]
        items: list[dict[str, Any]] = []
        data: dict[str, bytes] = {}
        for payload, name, mime, fields in plan:
            body = await upload_ok(http, owner, payload, part_name=name, declared=mime, **fields)
            items.append(body)
            data[body["id"]] = payload
    return Library(owner, items, data)


async def _list(client: httpx.AsyncClient, user: TestUser, **params: Any) -> dict[str, Any]:
    response = await client.get(MEDIA, params=params, headers=user.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _ids(client: httpx.AsyncClient, user: TestUser, **params: Any) -> list[str]:
    return [m["id"] for m in (await _list(client, user, **params))["data"]]


async def _walk(
    client: httpx.AsyncClient, user: TestUser, limit: int, **params: Any
) -> tuple[list[str], int]:
    """All ids, page by page; returns them and the number of pages."""
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        query = dict(params, limit=limit) | ({"cursor": cursor} if cursor else {})
        page = await _list(client, user, **query)
        pages += 1
        assert len(page["data"]) <= limit
        seen.extend(m["id"] for m in page["data"])
        cursor = page["next_cursor"]
        if cursor is None:
            return seen, pages
        assert pages < 50, "the cursor never ends"


# ------------------------------------------------------------------------------ GET one


async def test_get_one_answers_the_media_object_with_a_fresh_working_url(
    app: FastAPI, client: httpx.AsyncClient, library: Library
) -> None:
    item = library.items[0]
    first = await client.get(f"{MEDIA}/{item['id']}", headers=library.owner.headers)
    second = await client.get(f"{MEDIA}/{item['id']}", headers=library.owner.headers)

    assert first.status_code == 200, first.text
    body = first.json()
    assert set(body) == MEDIA_FIELDS  # no "deduped" outside create calls
    for field in ("id", "org_id", "kind", "mime", "size_bytes", "sha256", "filename", "alt"):
        assert body[field] == item[field]
    expires = _time(body["expires_at"])
    assert datetime.now(UTC) + timedelta(minutes=50) < expires
    assert expires <= datetime.now(UTC) + timedelta(hours=1, seconds=5)
    assert _time(second.json()["expires_at"]) >= expires
    for response in (first, second):
        downloaded = await fetch_url(app, client, response.json()["url"])
        assert downloaded.status_code == 200
        assert downloaded.content == library.data[item["id"]]


async def test_get_one_keeps_null_fields_in_the_media_object(
    client: httpx.AsyncClient, library: Library
) -> None:
    audio = library.items[2]
    response = await client.get(f"{MEDIA}/{audio['id']}", headers=library.owner.headers)
    body = response.json()
    assert set(body) == MEDIA_FIELDS
    assert (body["width"], body["height"], body["alt"], body["derived_from"]) == (
        None,
        None,
        None,
        None,
    )


@pytest.mark.parametrize("media_id", [UNKNOWN_ID, "nope", "med_" + "z" * 40])
async def test_get_unknown_id_is_404(
    client: httpx.AsyncClient, library: Library, media_id: str
) -> None:
    response = await client.get(f"{MEDIA}/{media_id}", headers=library.owner.headers)
    assert_error(response, 404, "not_found")


async def test_read_routes_need_credentials(client: httpx.AsyncClient, library: Library) -> None:
    media_id = library.items[0]["id"]
    for response in (
        await client.get(MEDIA),
        await client.get(f"{MEDIA}/{media_id}"),
        await client.get(f"{MEDIA}/{media_id}/content"),
        await client.get(f"{MEDIA}/{media_id}/presign"),
        await client.post(f"{MEDIA}/batch", json={"ids": [media_id]}),
    ):
        assert_error(response, 401, "auth.unauthorized")


# --------------------------------------------------------------------------------- list


async def test_list_defaults_to_newest_first_without_total(
    client: httpx.AsyncClient, library: Library
) -> None:
    body = await _list(client, library.owner)
    assert set(body) == {"data", "next_cursor"}
    assert [m["id"] for m in body["data"]] == library.ids(4, 3, 2, 1, 0)
    assert body["next_cursor"] is None
    for media in body["data"]:
        assert set(media) == MEDIA_FIELDS
        assert media["url"]


@pytest.mark.parametrize(
    ("kind", "positions"),
    [("image", [3, 1, 0]), ("audio", [2]), ("video", [4]), ("document", [])],
)
async def test_list_filters_by_kind(
    client: httpx.AsyncClient, library: Library, kind: str, positions: list[int]
) -> None:
    assert await _ids(client, library.owner, kind=kind) == library.ids(*positions)


async def test_list_filters_by_status(client: httpx.AsyncClient, library: Library) -> None:
    assert await _ids(client, library.owner, status="ready") == library.ids(4, 3, 2, 1, 0)
    assert await _ids(client, library.owner, status="pending") == []
    assert await _ids(client, library.owner, status="failed") == []


@pytest.mark.parametrize(
    ("mime", "positions"),
    [
        ("image/", [3, 1, 0]),
        ("image/png", [1]),
        ("image/jpeg", [3, 0]),
        ("audio/", [2]),
        ("video/mp4", [4]),
        ("application/", []),
        ("image/%", []),
    ],
)
async def test_list_filters_by_mime_prefix(
    client: httpx.AsyncClient, library: Library, mime: str, positions: list[int]
) -> None:
    assert await _ids(client, library.owner, mime=mime) == library.ids(*positions)


@pytest.mark.parametrize(
    ("search", "positions"),
    [
        ("sunset", [0]),  # alt
        ("TEAM", [1]),  # caption, any case
        ("beach", [2]),  # description
        ("Delta", [3]),  # filename
        (".jpg", [3, 0]),
        ("100%", [1]),  # % is a literal, not a wildcard
        ("%", [1]),
        ("_", []),  # _ too
        ("no such words", []),
    ],
)
async def test_list_searches_filename_alt_caption_and_description(
    client: httpx.AsyncClient, library: Library, search: str, positions: list[int]
) -> None:
    assert await _ids(client, library.owner, search=search) == library.ids(*positions)


async def test_list_filters_by_creation_time(client: httpx.AsyncClient, library: Library) -> None:
    created = [item["created_at"] for item in library.items]
    assert created == sorted(created)
    owner = library.owner

    assert await _ids(client, owner, created_after=created[1]) == library.ids(4, 3, 2)
    assert await _ids(client, owner, created_before=created[3]) == library.ids(2, 1, 0)
    both = {"created_after": created[1], "created_before": created[3]}
    assert await _ids(client, owner, **both) == library.ids(2)
    later = (_time(created[4]) + timedelta(seconds=1)).isoformat()
    assert await _ids(client, owner, created_after=later) == []
    earlier = (_time(created[0]) - timedelta(days=1)).isoformat()
    assert await _ids(client, owner, created_after=earlier) == library.ids(4, 3, 2, 1, 0)


@pytest.mark.parametrize("sort", ["created_at", "size_bytes", "filename"])
@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_list_sorts_by_field_and_order_and_the_cursor_walks_each_item_once(
    client: httpx.AsyncClient, library: Library, sort: str, order: str
) -> None:
    expected = [
        item["id"]
        for item in sorted(library.items, key=lambda m: (m[sort], m["id"]), reverse=order == "desc")
    ]

    assert await _ids(client, library.owner, sort=sort, order=order) == expected
    walked, pages = await _walk(client, library.owner, 2, sort=sort, order=order)
    assert walked == expected
    assert pages == 3


async def test_default_sort_is_created_at_descending(
    client: httpx.AsyncClient, library: Library
) -> None:
    explicit = await _ids(client, library.owner, sort="created_at", order="desc")
    assert await _ids(client, library.owner) == explicit


async def test_cursor_walk_keeps_the_filters(client: httpx.AsyncClient, library: Library) -> None:
    walked, pages = await _walk(client, library.owner, 2, kind="image", order="asc")
    assert walked == library.ids(0, 1, 3)
    assert pages == 2
    walked, pages = await _walk(client, library.owner, 1, mime="image/jpeg")
    assert walked == library.ids(3, 0)


async def test_include_total_counts_all_matches_on_every_page(
    client: httpx.AsyncClient, library: Library
) -> None:
    first = await _list(client, library.owner, include_total="true", limit=2)
    assert first["total"] == 5
    assert len(first["data"]) == 2
    second = await _list(
        client, library.owner, include_total="true", limit=2, cursor=first["next_cursor"]
    )
    assert second["total"] == 5
    images = await _list(client, library.owner, include_total="true", kind="image", limit=1)
    assert images["total"] == 3


async def test_limit_200_is_allowed(client: httpx.AsyncClient, library: Library) -> None:
    assert len(await _ids(client, library.owner, limit=200)) == 5


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 201},
        {"limit": 0},
        {"limit": -1},
        {"limit": "many"},
        {"cursor": "not-a-cursor!"},
        {"cursor": "eyJub3QiOiAiYSBsaXN0In0"},
        {"sort": "mime"},
        {"order": "sideways"},
        {"kind": "spreadsheet"},
        {"status": "lost"},
        {"created_after": "yesterday"},
        {"created_after": "2026-01-01T00:00:00"},  # no timezone
    ],
)
async def test_bad_list_parameters_are_400(
    client: httpx.AsyncClient, library: Library, params: dict[str, Any]
) -> None:
    response = await client.get(MEDIA, params=params, headers=library.owner.headers)
    assert_error(response, 400, "validation.invalid")


async def test_cursor_of_another_sort_order_is_400(
    client: httpx.AsyncClient, library: Library
) -> None:
    page = await _list(client, library.owner, limit=2, sort="size_bytes")
    response = await client.get(
        MEDIA,
        params={"limit": 2, "sort": "filename", "cursor": page["next_cursor"]},
        headers=library.owner.headers,
    )
    assert_error(response, 400, "validation.invalid")


async def test_list_is_empty_for_a_new_org(client: httpx.AsyncClient, user: TestUser) -> None:
    assert await _list(client, user, include_total="true") == {
        "data": [],
        "next_cursor": None,
        "total": 0,
    }


# ------------------------------------------------------------------------ batch, resolve


async def test_batch_returns_found_media_and_lists_the_rest_as_missing(
    client: httpx.AsyncClient, library: Library, other_user: TestUser
) -> None:
    foreign = await upload_ok(client, other_user, mediagen.jpeg())
    wanted = [*library.ids(2, 0), foreign["id"], UNKNOWN_ID, library.items[2]["id"]]

    response = await client.post(
        f"{MEDIA}/batch", json={"ids": wanted}, headers=library.owner.headers
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"data", "missing"}
    assert [m["id"] for m in body["data"]] == library.ids(2, 0)
    assert body["missing"] == [foreign["id"], UNKNOWN_ID]
    for media in body["data"]:
        assert set(media) == MEDIA_FIELDS
        assert media["url"]


async def test_batch_takes_up_to_100_ids(client: httpx.AsyncClient, library: Library) -> None:
    ids = [f"med_01{i:024d}" for i in range(99)] + [library.items[0]["id"]]
    response = await client.post(f"{MEDIA}/batch", json={"ids": ids}, headers=library.owner.headers)
    assert response.status_code == 200, response.text
    assert [m["id"] for m in response.json()["data"]] == library.ids(0)
    assert len(response.json()["missing"]) == 99


@pytest.mark.parametrize("route", ["batch", "resolve"])
@pytest.mark.parametrize(
    "body",
    [
        {"ids": [f"med_01{i:024d}" for i in range(101)]},
        {"ids": []},
        {"ids": "med_01aaaaaaaaaaaaaaaaaaaaaaaa"},
        {},
        {"ids": ["x" * 65]},
    ],
    ids=["101-ids", "empty", "not-a-list", "no-ids", "id-too-long"],
)
async def test_batch_and_resolve_refuse_bad_bodies_with_400(
    client: httpx.AsyncClient, library: Library, route: str, body: dict[str, Any]
) -> None:
    response = await client.post(f"{MEDIA}/{route}", json=body, headers=library.owner.headers)
    assert_error(response, 400, "validation.invalid")


async def test_resolve_answers_working_urls_and_missing_ids(
    app: FastAPI, client: httpx.AsyncClient, library: Library, other_user: TestUser
) -> None:
    foreign = await upload_ok(client, other_user, mediagen.jpeg())
    wanted = [library.items[1]["id"], foreign["id"], UNKNOWN_ID]

    response = await client.post(
        f"{MEDIA}/resolve", json={"ids": wanted}, headers=library.owner.headers
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"media", "missing"}
    assert body["missing"] == [foreign["id"], UNKNOWN_ID]
    [resolved] = body["media"]
    assert set(resolved) == {"id", "url", "expires_at"}
    assert resolved["id"] == library.items[1]["id"]
    assert _time(resolved["expires_at"]) > datetime.now(UTC)
    downloaded = await fetch_url(app, client, resolved["url"])
    assert downloaded.content == library.data[resolved["id"]]


# ------------------------------------------------------------------------------ presign


async def test_presign_default_lifetime_and_the_url_works(
    app: FastAPI, client: httpx.AsyncClient, library: Library
) -> None:
    item = library.items[0]
    response = await client.get(f"{MEDIA}/{item['id']}/presign", headers=library.owner.headers)

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"id", "url", "expires_at", "expires_in"}
    assert body["id"] == item["id"]
    assert body["expires_in"] == 3600
    expires = _time(body["expires_at"])
    assert abs((expires - datetime.now(UTC)).total_seconds() - 3600) < 60
    downloaded = await fetch_url(app, client, body["url"])
    assert downloaded.status_code == 200
    assert downloaded.content == library.data[item["id"]]


@pytest.mark.parametrize("seconds", [1, 60, 604800])
async def test_presign_accepts_lifetimes_from_1_second_to_7_days(
    app: FastAPI, client: httpx.AsyncClient, library: Library, seconds: int
) -> None:
    item = library.items[1]
    response = await client.get(
        f"{MEDIA}/{item['id']}/presign",
        params={"expires_in": seconds},
        headers=library.owner.headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["expires_in"] == seconds
    remaining = (_time(body["expires_at"]) - datetime.now(UTC)).total_seconds()
    assert seconds - 60 < remaining <= seconds + 1
    if seconds > 1:  # a 1-second link may lapse before it is fetched
        downloaded = await fetch_url(app, client, body["url"])
        assert downloaded.content == library.data[item["id"]]


@pytest.mark.parametrize("seconds", ["0", "-1", "604801", "soon"])
async def test_presign_refuses_lifetimes_out_of_range(
    client: httpx.AsyncClient, library: Library, seconds: str
) -> None:
    response = await client.get(
        f"{MEDIA}/{library.items[0]['id']}/presign",
        params={"expires_in": seconds},
        headers=library.owner.headers,
    )
    assert_error(response, 400, "validation.invalid")


async def test_presign_of_an_unknown_variant_is_404(
    client: httpx.AsyncClient, library: Library
) -> None:
    response = await client.get(
        f"{MEDIA}/{library.items[0]['id']}/presign",
        params={"variant": "no_such_variant"},
        headers=library.owner.headers,
    )
    assert_error(response, 404, "not_found")


# ------------------------------------------------------------------------------ content


async def _content(
    client: httpx.AsyncClient, library: Library, position: int = 0, **headers: str
) -> httpx.Response:
    return await client.get(
        f"{MEDIA}/{library.items[position]['id']}/content",
        headers=library.owner.headers | headers,
    )


async def test_content_streams_the_whole_original_with_cache_headers(
    client: httpx.AsyncClient, library: Library
) -> None:
    item = library.items[0]
    data = library.data[item["id"]]

    response = await _content(client, library)

    assert response.status_code == 200, response.text
    assert response.content == data
    assert response.headers["content-type"] == "image/jpeg"
    assert response.headers["content-length"] == str(len(data))
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["etag"] == f'"{hashlib.sha256(data).hexdigest()}"'
    assert response.headers["cache-control"] == "private, max-age=31536000, immutable"
    assert response.headers["x-content-type-options"] == NOSNIFF
    assert response.headers["content-disposition"].startswith("inline")
    assert 'filename="alpha.jpg"' in response.headers["content-disposition"]
    modified = parsedate_to_datetime(response.headers["last-modified"])
    assert modified <= datetime.now(UTC)
    assert modified >= _time(item["updated_at"]).replace(microsecond=0)


async def test_content_head_sends_the_headers_without_a_body(
    client: httpx.AsyncClient, library: Library
) -> None:
    item = library.items[1]
    response = await client.head(f"{MEDIA}/{item['id']}/content", headers=library.owner.headers)
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == str(item["size_bytes"])
    assert response.headers["content-type"] == "image/png"


@pytest.mark.parametrize(
    ("range_", "start", "end"),
    [("bytes=0-9", 0, 9), ("bytes=10-", 10, None), ("bytes=-5", -5, None), ("bytes=3-3", 3, 3)],
)
async def test_content_honours_one_range_with_206(
    client: httpx.AsyncClient,
    library: Library,
    range_: str,
    start: int,
    end: int | None,
) -> None:
    data = library.data[library.items[0]["id"]]
    size = len(data)
    first = start % size
    last = size - 1 if end is None else end

    response = await _content(client, library, range=range_)

    assert response.status_code == 206, response.text
    assert response.content == data[first : last + 1]
    assert response.headers["content-range"] == f"bytes {first}-{last}/{size}"
    assert response.headers["content-length"] == str(last - first + 1)


async def test_range_past_the_end_is_416(client: httpx.AsyncClient, library: Library) -> None:
    size = library.items[0]["size_bytes"]
    response = await _content(client, library, range=f"bytes={size}-")
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{size}"


async def test_content_with_matching_if_none_match_is_304(
    client: httpx.AsyncClient, library: Library
) -> None:
    etag = (await _content(client, library)).headers["etag"]

    response = await _content(client, library, **{"if-none-match": etag})

    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == etag
    changed = await _content(client, library, **{"if-none-match": '"something-else"'})
    assert changed.status_code == 200


async def test_content_not_modified_since_last_modified_is_304(
    client: httpx.AsyncClient, library: Library
) -> None:
    last_modified = (await _content(client, library)).headers["last-modified"]
    response = await _content(client, library, **{"if-modified-since": last_modified})
    assert response.status_code == 304
    long_ago = format_datetime(datetime(2001, 1, 1, tzinfo=UTC), usegmt=True)
    assert (await _content(client, library, **{"if-modified-since": long_ago})).status_code == 200


async def test_content_download_is_an_attachment(
    client: httpx.AsyncClient, library: Library
) -> None:
    item = library.items[3]
    response = await client.get(
        f"{MEDIA}/{item['id']}/content",
        params={"download": "1"},
        headers=library.owner.headers,
    )
    assert response.status_code == 200
    assert response.headers["content-disposition"].startswith("attachment")
    assert 'filename="delta.jpg"' in response.headers["content-disposition"]
    assert response.content == library.data[item["id"]]


def _assert_safe_disposition(value: str) -> None:
    assert "\r" not in value
    assert "\n" not in value
    assert ".." not in value
    assert "/" not in value.split("filename*=")[0]
    plain = value.split("filename=", 1)[1].split(";", 1)[0]
    assert plain.count('"') == 2, value  # only the quotes around the value


async def test_filenames_with_quotes_newlines_and_paths_are_sanitised_in_downloads(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    media = await upload_ok(client, user, mediagen.jpeg())
    # Control characters never get in (issue 17, L1: 400, like any other text field) ...
    refused = await client.patch(
        f"{MEDIA}/{media['id']}",
        json={"filename": '../../etc/pa"ss\r\nX-Injected: yes\twd.jpg'},
        headers=user.headers,
    )
    assert refused.status_code == 400, refused.text
    # ... and quotes and paths are cleaned.
    nasty = '../../etc/pa"ss X-Injected: yes wd.jpg'
    patched = await client.patch(
        f"{MEDIA}/{media['id']}", json={"filename": nasty}, headers=user.headers
    )
    assert patched.status_code == 200, patched.text

    for download in ("0", "1"):
        response = await client.get(
            f"{MEDIA}/{media['id']}/content",
            params={"download": download},
            headers=user.headers,
        )
        assert response.status_code == 200
        _assert_safe_disposition(response.headers["content-disposition"])
        assert "X-Injected" not in response.headers
    # The storage link carries the name too (as a signed parameter or S3's override).
    fetched = await client.get(f"{MEDIA}/{media['id']}", headers=user.headers)
    linked = await fetch_url(app, client, fetched.json()["url"])
    assert linked.status_code == 200
    _assert_safe_disposition(linked.headers["content-disposition"])


async def test_content_of_an_unknown_variant_is_404(
    client: httpx.AsyncClient, library: Library
) -> None:
    response = await client.get(
        f"{MEDIA}/{library.items[0]['id']}/content",
        params={"variant": "no_such_variant"},
        headers=library.owner.headers,
    )
    assert_error(response, 404, "not_found")


# ------------------------------------------------------------- MEDIA_PROXY_DOWNLOAD=false


@pytest.fixture(scope="module")
async def redirect_app(
    request: pytest.FixtureRequest, backend: str, service_root: Path
) -> AsyncIterator[FastAPI]:
    async with extra_app(
        request, backend, service_root, "redirect", proxy_download=False
    ) as application:
        yield application


async def test_without_proxy_download_content_redirects_to_the_storage_url(
    redirect_app: FastAPI,
) -> None:
    async with asgi_client(redirect_app) as http:
        owner = await new_user(http)
        data = mediagen.jpeg()
        media = await upload_ok(http, owner, data, part_name="sea.jpg")

        response = await http.get(f"{MEDIA}/{media['id']}/content", headers=owner.headers)
        attachment = await http.get(
            f"{MEDIA}/{media['id']}/content", params={"download": 1}, headers=owner.headers
        )

        assert response.status_code == 302, response.text
        downloaded = await fetch_url(redirect_app, http, response.headers["location"])
        assert downloaded.status_code == 200
        assert downloaded.content == data
        assert attachment.status_code == 302
        saved = await fetch_url(redirect_app, http, attachment.headers["location"])
        assert saved.headers["content-disposition"].startswith("attachment")
        assert saved.content == data


# ----------------------------------------------------------------------------- variants


async def test_variants_list_is_empty_while_none_were_made(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    media = await upload_ok(client, user, mediagen.jpeg(), generate_variants="false")
    response = await client.get(f"{MEDIA}/{media['id']}/variants", headers=user.headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"data": []}


async def test_unknown_variant_is_404(client: httpx.AsyncClient, library: Library) -> None:
    response = await client.get(
        f"{MEDIA}/{library.items[0]['id']}/variants/no_such_variant",
        headers=library.owner.headers,
        follow_redirects=False,
    )
    assert_error(response, 404, "not_found")
