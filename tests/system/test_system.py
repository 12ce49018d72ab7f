"""Liveness, readiness, metrics, OpenAPI, request ids and CORS of the running app."""

from pathlib import Path

import httpx
import pytest

from mediakeep.app import create_app
from mediakeep.migrate import upgrade_async
from tests.conftest import make_settings

ISSUE_ROUTES = {
    ("post", "/api/v1/auth/register"),
    ("post", "/api/v1/auth/login"),
    ("post", "/api/v1/auth/refresh"),
    ("get", "/api/v1/users/me"),
    ("post", "/api/v1/api-keys"),
    ("get", "/api/v1/api-keys"),
    ("delete", "/api/v1/api-keys/{key_id}"),
    ("post", "/api/v1/media/upload"),
    ("post", "/api/v1/media"),
    ("get", "/api/v1/media"),
    ("get", "/api/v1/media/{media_id}"),
    ("patch", "/api/v1/media/{media_id}"),
    ("delete", "/api/v1/media/{media_id}"),
    ("post", "/api/v1/media/batch"),
    ("post", "/api/v1/media/resolve"),
    ("get", "/api/v1/media/{media_id}/presign"),
    ("get", "/api/v1/media/{media_id}/content"),
}


async def test_healthz_answers_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_reports_database_and_storage(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"]["database"] == "ok"
    assert response.json()["checks"]["storage"] == "ok"


async def test_readyz_names_failing_storage(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    not_a_dir = tmp_path / "blocked"
    not_a_dir.write_text("a file where the object store should be")
    settings = make_settings(
        "sqlite-local", tmp_path / "data", request, local_storage_path=str(not_a_dir)
    )
    await upgrade_async(settings)
    app = create_app(settings, run_background=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            response = await http.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failing"] == ["storage"]


async def test_metrics_expose_request_counts(client: httpx.AsyncClient) -> None:
    await client.get("/healthz")
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert "mediakeep_http_requests_total" in response.text
    assert 'route="/healthz"' in response.text


async def test_openapi_lists_the_routes_with_stable_operation_ids(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    assert document["openapi"].startswith("3.1")
    present = {(method, path) for path, ops in document["paths"].items() for method in ops}
    shapes = {(m, _shape(p)) for m, p in present}
    assert {(m, _shape(p)) for m, p in ISSUE_ROUTES} <= shapes
    operation_ids = [
        op["operationId"] for ops in document["paths"].values() for op in ops.values()
    ]
    assert len(operation_ids) == len(set(operation_ids))
    assert "media_upload" in operation_ids
    assert "media_get_media" in operation_ids


def _shape(path: str) -> str:
    import re

    return re.sub(r"\{[^}]+\}", "{}", path)


async def test_docs_page_is_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    assert "swagger" in response.text.lower()


async def test_every_response_carries_a_request_id(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/media")
    assert response.status_code == 401
    request_id = response.headers["x-request-id"]
    assert request_id.startswith("req_")
    assert response.json()["error"]["request_id"] == request_id


async def test_incoming_request_id_is_kept(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"X-Request-Id": "trace-abc.123"})
    assert response.headers["x-request-id"] == "trace-abc.123"


async def test_hostile_incoming_request_id_is_replaced(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"X-Request-Id": "x" * 500})
    assert response.headers["x-request-id"].startswith("req_")


async def test_cors_allows_only_configured_origins(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    settings = make_settings(
        "sqlite-local", tmp_path, request, cors_origins="https://app.example.com"
    )
    await upgrade_async(settings)
    app = create_app(settings, run_background=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            preflight = {"Access-Control-Request-Method": "POST"}
            allowed = await http.options(
                "/api/v1/media/upload", headers={"Origin": "https://app.example.com", **preflight}
            )
            refused = await http.options(
                "/api/v1/media/upload", headers={"Origin": "https://evil.example", **preflight}
            )
    assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "access-control-allow-origin" not in refused.headers


async def test_unknown_route_gets_the_error_body(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/nope")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
