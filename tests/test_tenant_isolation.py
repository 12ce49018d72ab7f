"""Issue 3: tenant isolation, route by route.

Every operation of /openapi.json is called as: no credentials, an expired token, a token signed
with another secret, a revoked API key (header and bearer), an outsider in their own org, the
outsider naming org A (header and query), A's own key pointed at org B, and a viewer of A. Each
must get the right 401/403/404 (another org's resource is 404, never 403), outsiders' answers
must show nothing of A, and A must be unchanged afterwards. An operation nobody classified
fails, and the self-checks below show that a route which forgets its checks fails too.
"""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from sqlalchemy import select

from mediakeep.app import create_app
from mediakeep.deps import ReadSession, ServicesDep, Viewer
from mediakeep.errors import not_found
from mediakeep.media import service as media_service
from mediakeep.media.schemas import MediaOut
from mediakeep.migrate import upgrade_async
from mediakeep.models.media import Media
from tests.conftest import make_settings
from tests.isolation_support import (
    API,
    HIDDEN_ROUTES,
    NOT_WALKED,
    POLICY,
    PRINCIPALS,
    PUBLIC_OPERATIONS,
    app_routes,
    audit_routes,
    build_world,
    only_paths,
    operations_of,
    walk,
)
from tests.media.support import assert_error, original_exists
from tests.reliability.report import record


async def _openapi(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


async def test_every_operation_keeps_tenants_apart(app: FastAPI, client: httpx.AsyncClient) -> None:
    openapi = await _openapi(client)
    world = await build_world(client, app)
    before = world.baseline

    report = await walk(client, openapi, world, app=app)

    # Every documented operation was either walked or is public on purpose; nothing was skipped.
    documented = {op.key for op in operations_of(openapi)}
    assert documented == set(report.public) | set(NOT_WALKED) | {
        k for k in report.operations if not k.startswith("HEAD ") or k in documented
    }
    assert "HEAD /api/v1/media/{media_id}/content" in report.operations
    for principal in PRINCIPALS:
        assert report.calls[principal.name] == len(report.operations), principal.name
    record(
        {
            "suite": "tenant_isolation",
            "operations": len(report.operations),
            "public_operations": len(report.public),
            "principals": len(PRINCIPALS),
            "calls": sum(report.calls.values()),
        }
    )
    # Nothing stale in the tables either: each entry still names a real operation.
    # (a documented HEAD is checked under its GET twin's key, which may itself be undocumented)
    head_twins = {"GET " + k.removeprefix("HEAD ") for k in documented if k.startswith("HEAD ")}
    assert set(POLICY) <= documented | head_twins, set(POLICY) - documented - head_twins
    assert set(PUBLIC_OPERATIONS) <= documented, set(PUBLIC_OPERATIONS) - documented

    # A is as it was: the one media, same bytes and metadata, original still stored.
    owner = world.owner.headers
    media = await client.get(f"{API}/media/{world.media['id']}", headers=owner)
    assert media.status_code == 200, media.text
    for name in ("sha256", "filename", "alt", "caption", "size_bytes", "is_private", "version"):
        assert media.json()[name] == world.media[name], name
    listing = await client.get(f"{API}/media", headers=owner)
    assert [item["id"] for item in listing.json()["data"]] == [world.media["id"]]
    assert original_exists(app, world.owner.org_id, world.media["sha256"])
    assert world.baseline == before
    still = await client.get(f"{API}/media", headers={"X-API-Key": world.key_secret})
    assert still.status_code == 200, still.text

    # The outsider's own writes landed in their own org, B.
    theirs = await client.get(f"{API}/media", headers=world.stranger.headers)
    assert theirs.status_code == 200, theirs.text
    assert {item["org_id"] for item in theirs.json()["data"]} == {world.stranger.org_id}
    stored = [m for m in theirs.json()["data"] if m["status"] != "pending"]
    assert len(stored) == 2  # the upload and the data-URL create (upload-url leaves pending rows)


async def test_no_route_hides_from_the_openapi_document(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """A route left out of /openapi.json would escape the walker: each must be listed."""
    openapi = await _openapi(client)
    assert audit_routes(app, openapi) == []
    served = app_routes(app)
    assert set(HIDDEN_ROUTES) <= served, set(HIDDEN_ROUTES) - served


async def test_signed_files_need_a_valid_signature(app: FastAPI, client: httpx.AsyncClient) -> None:
    """/files/{key} is public only because its signature is the credential."""
    world = await build_world(client, app)
    url: str = world.media["url"]
    public = app.state.services.settings.public_url
    if not url.startswith(public + "/files/"):  # S3 links of public media go to the bucket
        key = f"{world.owner.org_id}/originals/{world.media['sha256']}"
        answer = await client.get(f"/files/{key}", params={"exp": "9999999999", "sig": "0" * 64})
        assert_error(answer, 403, "auth.forbidden")
        return
    path = url[len(public) :]
    assert (await client.get(path)).status_code == 200
    tampered = path.replace("sig=", "sig=0")
    assert_error(await client.get(tampered), 403, "auth.forbidden")
    unsigned = path.split("?", 1)[0]
    assert_error(await client.get(unsigned), 400, "validation.invalid")


# ------------------------------------------------------------------ the walker's self-check

leaky_router = APIRouter(prefix=API, tags=["leaky"])


@leaky_router.get("/leaky/{media_id}", response_model=MediaOut)
async def leaky(
    media_id: str, principal: Viewer, services: ServicesDep, session: ReadSession
) -> MediaOut:
    """Signed in, but the lookup forgets the org: any media of any org, by id."""
    media = await session.get(Media, media_id)
    if media is None:
        raise not_found("media")
    return await media_service.present(services, session, media)


@leaky_router.get("/open/{media_id}", response_model=MediaOut)
async def open_leak(media_id: str, services: ServicesDep, session: ReadSession) -> MediaOut:
    """Forgets authentication altogether."""
    media = await session.get(Media, media_id)
    if media is None:
        raise not_found("media")
    return await media_service.present(services, session, media)


@leaky_router.get("/everything")
async def everything(
    principal: Viewer, services: ServicesDep, session: ReadSession
) -> dict[str, list[MediaOut]]:
    """A list that forgets the org: every org's media."""
    rows = (await session.execute(select(Media))).scalars().all()
    return {"data": [await media_service.present(services, session, row) for row in rows]}


@leaky_router.get("/forgotten")
async def forgotten(principal: Viewer) -> dict[str, str]:
    """Correct, but nobody classified it."""
    return {"org_id": principal.org_id}


@leaky_router.get("/widgets/{widget_id}")
async def widget(widget_id: str, principal: Viewer) -> dict[str, str]:
    """A path parameter the walker does not know how to fill."""
    raise not_found("widget")


@leaky_router.get("/hidden/{media_id}", include_in_schema=False)
async def hidden(media_id: str) -> dict[str, str]:
    """Out of the OpenAPI document, so out of the walker's sight unless listed."""
    return {"media_id": media_id}


@pytest.fixture
async def leaky_app(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    settings = make_settings("sqlite-local", tmp_path / "leaky", request)
    await upgrade_async(settings)
    application = create_app(settings, run_background=False)
    application.include_router(leaky_router)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield application, http


def _failures(excinfo: pytest.ExceptionInfo[AssertionError]) -> list[str]:
    return [line.strip() for line in str(excinfo.value).splitlines()[1:] if line.strip()]


async def test_walker_fails_on_a_route_that_forgot_the_org_filter(
    leaky_app: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = leaky_app
    openapi = await _openapi(client)
    world = await build_world(client, app)
    policy = POLICY | {
        "GET /api/v1/leaky/{media_id}": "viewer",
        "GET /api/v1/open/{media_id}": "viewer",
        "GET /api/v1/forgotten": "viewer",
    }
    # Sanity: the route really leaks A's media to the outsider.
    leaked = await client.get(f"{API}/leaky/{world.media['id']}", headers=world.stranger.headers)
    assert leaked.status_code == 200
    assert leaked.json()["org_id"] == world.owner.org_id

    # The whole document with the leaky route (the other broken routes left out of it), and the
    # app itself so routes missing from the document are audited: everything else passes; the
    # leaky route fails for the outsider in their own org; the undocumented routes are named.
    broken = {
        f"{API}/open/{{media_id}}",
        f"{API}/everything",
        f"{API}/forgotten",
        f"{API}/widgets/{{widget_id}}",
    }
    document = only_paths(openapi, *(path for path in openapi["paths"] if path not in broken))
    with pytest.raises(AssertionError) as excinfo:
        await walk(client, document, world, policy=policy, app=app)
    failures = _failures(excinfo)
    unlisted = "served but not in /openapi.json nor in HIDDEN_ROUTES"
    assert {line.split(":")[0] for line in failures if unlisted in line} == {
        f"GET {path}" for path in broken | {f"{API}/hidden/{{media_id}}"}
    }
    leaks = [line for line in failures if unlisted not in line]
    assert leaks, failures
    assert all("GET /api/v1/leaky/{media_id}" in line for line in leaks), failures
    assert any(line.startswith("stranger (org B):") and "expected 404" in line for line in leaks)


async def test_walker_fails_on_a_route_that_forgot_authentication(
    leaky_app: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = leaky_app
    world = await build_world(client, app)
    document = only_paths(await _openapi(client), f"{API}/open/{{media_id}}")
    with pytest.raises(AssertionError) as excinfo:
        await walk(client, document, world, policy={"GET /api/v1/open/{media_id}": "viewer"})
    failures = _failures(excinfo)
    for principal in PRINCIPALS:
        if principal.expect in ("unauthenticated", "outsider", "not_member"):
            assert any(line.startswith(f"{principal.name}:") for line in failures), principal.name


async def test_walker_fails_on_a_list_that_shows_other_orgs(
    leaky_app: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = leaky_app
    world = await build_world(client, app)
    document = only_paths(await _openapi(client), f"{API}/everything")
    with pytest.raises(AssertionError) as excinfo:
        await walk(client, document, world, policy={"GET /api/v1/everything": "viewer"})
    failures = _failures(excinfo)
    assert len(failures) == 1, failures
    assert failures[0].startswith("stranger (org B): GET /api/v1/everything: answer shows [")
    assert "A's media sha256" in failures[0]


async def test_walker_fails_on_unclassified_routes_and_parameters(
    leaky_app: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = leaky_app
    world = await build_world(client, app)
    openapi = await _openapi(client)

    with pytest.raises(AssertionError, match=r"GET /api/v1/forgotten: not classified"):
        await walk(client, only_paths(openapi, f"{API}/forgotten"), world)

    widgets = only_paths(openapi, f"{API}/widgets/{{widget_id}}")
    with pytest.raises(AssertionError, match=r"path parameter \{widget_id\} is not in PATH_PARAMS"):
        await walk(client, widgets, world, policy={"GET /api/v1/widgets/{widget_id}": "viewer"})

    assert audit_routes(app, openapi) == [
        "GET /api/v1/hidden/{media_id}: served but not in /openapi.json nor in HIDDEN_ROUTES "
        "(classify it)"
    ]
