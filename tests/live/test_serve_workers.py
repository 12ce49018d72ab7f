"""`mediakeep serve --workers N`: several API processes on one port, on SQLite and on
PostgreSQL, sharing one principal-cache epoch, with jobs run by one local pool beside them."""

import psutil
import pytest

from tests.live import LiveServer, small_png
from tests.live.conftest import StartServer

PASSWORD = "correct horse battery staple"
ROUNDS = 40  # requests per phase: the kernel spreads them over both processes


def _api_processes(server: LiveServer) -> list[psutil.Process]:
    """The uvicorn worker processes under `serve` (spawned by multiprocessing)."""
    return [
        child
        for child in psutil.Process(server.pid).children()
        if "spawn_main" in " ".join(child.cmdline())
    ]


@pytest.mark.parametrize("backend", ["sqlite-local", "postgres-s3"])
def test_two_api_processes_serve_one_port_and_honour_a_revocation_at_once(
    start_live_server: StartServer, backend: str, request: pytest.FixtureRequest
) -> None:
    if backend == "postgres-s3":
        request.applymarker(pytest.mark.postgres)
    server = start_live_server(
        backend, env={"AUTH_ENABLED": "true"}, serve_args=("--workers", "2")
    )
    assert len(_api_processes(server)) == 2
    with server.client() as http:
        email = f"workers-{backend}@example.com"
        assert http.post(
            "/api/v1/auth/register", json={"email": email, "password": PASSWORD}
        ).status_code == 201
        token = http.post(
            "/api/v1/auth/login", json={"email": email, "password": PASSWORD}
        ).json()["access_token"]
        owner = {"Authorization": f"Bearer {token}"}
        key = http.post(
            "/api/v1/api-keys", json={"name": "w", "role": "member"}, headers=owner
        ).json()
        with_key = {"X-Api-Key": key["key"]}
        uploaded = http.post(
            "/api/v1/media/upload",
            files={"file": ("w.png", small_png(), "image/png")},
            headers=with_key,
        )
        assert uploaded.status_code == 201, uploaded.text
        media_id = uploaded.json()["id"]
        # Every process answers (and caches the key's principal).
        statuses = {http.get(f"/api/v1/media/{media_id}", headers=with_key).status_code
                    for _ in range(ROUNDS)}
        assert statuses == {200}
        assert http.delete(f"/api/v1/api-keys/{key['id']}", headers=owner).status_code == 204
        statuses = {http.get(f"/api/v1/media/{media_id}", headers=with_key).status_code
                    for _ in range(ROUNDS)}
        assert statuses == {401}
