"""WebSocket and SSE against a real `mediakeep serve` (uvicorn, worker processes): an async
upload's job.progress then job.completed reach its org's clients, and nobody else's."""

import asyncio
import contextlib
import json
import os
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests import mediagen
from tests.fixtures.services import RedisServer
from tests.live import LiveServer
from tests.live.conftest import StartServer


def register(server: LiveServer) -> dict[str, str]:
    email = f"rt-{os.urandom(4).hex()}@example.com"
    password = "correct horse battery staple"
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        assert (
            http.post(
                "/api/v1/auth/register", json={"email": email, "password": password}
            ).status_code
            == 201
        )
        token = http.post("/api/v1/auth/login", json={"email": email, "password": password}).json()[
            "access_token"
        ]
    return {"Authorization": f"Bearer {token}", "token": token}


def ws_url(server: LiveServer) -> str:
    return f"ws://127.0.0.1:{server.port}/api/v1/realtime"


async def receive(ws: ClientConnection, timeout: float) -> dict[str, Any] | None:
    try:
        async with asyncio.timeout(timeout):
            message: dict[str, Any] = json.loads(await ws.recv())
            return message
    except TimeoutError:
        return None


async def events_until(
    ws: ClientConnection, done: str, timeout: float = 60
) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while True:
            message = json.loads(await ws.recv())
            if message["type"] == "event":
                seen.append(message["event"])
                if message["event"]["type"] == done:
                    return seen


async def subscribe(ws: ClientConnection, channel: str) -> None:
    await ws.send(json.dumps({"type": "subscribe", "channel": channel}))
    while (message := await receive(ws, 10)) is not None:
        if message["type"] == "subscribed":
            return
    raise AssertionError("no subscribe acknowledgement")


async def sse_events(
    server: LiveServer,
    headers: dict[str, str],
    seconds: float,
    *,
    stop_at: str | None = None,
    connected: asyncio.Event | None = None,
    **params: str,
) -> list[dict[str, Any]]:
    """The events an SSE client receives in `seconds` (or until one of type `stop_at`);
    `connected` is set when the stream's `: connected` comment arrives (subscribed)."""
    found: list[dict[str, Any]] = []
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        with contextlib.suppress(TimeoutError):
            async with (
                asyncio.timeout(seconds),
                http.stream("GET", "/api/v1/events", headers=headers, params=params) as response,
            ):
                assert response.status_code == 200
                assert response.headers["content-type"].startswith("text/event-stream")
                async for line in response.aiter_lines():
                    if line == ": connected" and connected is not None:
                        connected.set()
                    if line.startswith("data: "):
                        found.append(json.loads(line.removeprefix("data: ")))
                        if found[-1]["type"] == stop_at:
                            break
    return found


def upload_async(server: LiveServer, headers: dict[str, str]) -> str:
    with httpx.Client(base_url=server.base_url, timeout=60) as http:
        response = http.post(
            "/api/v1/media/upload",
            headers={"Authorization": headers["Authorization"]},
            files={"file": ("rt.jpg", mediagen.jpeg(80, 60), "image/jpeg")},
            data={"async": "true"},
        )
    assert response.status_code == 202, response.text
    return str(response.json()["job"]["id"])


@pytest.fixture
def server(start_live_server: StartServer) -> LiveServer:
    return start_live_server(env={"AUTH_ENABLED": "true"})


async def test_websocket_and_sse_see_only_their_orgs_job_events(server: LiveServer) -> None:
    alice = register(server)
    bob = register(server)
    auth_header = {"Authorization": alice["Authorization"]}
    async with (
        connect(ws_url(server), additional_headers=auth_header) as mine,
        connect(ws_url(server)) as theirs,
    ):
        assert (await receive(mine, 10) or {})["type"] == "ready"
        await theirs.send(json.dumps({"type": "auth", "token": bob["token"]}))
        assert (await receive(theirs, 10) or {})["type"] == "ready"
        await subscribe(mine, "jobs")
        await subscribe(theirs, "jobs")
        await subscribe(theirs, "media")

        job_id = upload_async(server, alice)
        seen = await events_until(mine, "job.completed")
        types = [e["type"] for e in seen if e["data"].get("id") == job_id]
        assert "job.progress" in types
        assert types.index("job.progress") < types.index("job.completed")
        assert all(e["type"].startswith("job.") for e in seen)
        # Bob's client got nothing of Alice's (at most a heartbeat).
        while (message := await receive(theirs, 1.0)) is not None:
            assert message["type"] != "event", message

    # SSE: replay after the first progress event brings the rest, for Alice only.
    first = next(e for e in seen if e["type"] == "job.progress")
    replayed = await sse_events(server, {**auth_header, "Last-Event-ID": first["id"]}, 3.0)
    replayed_types = [e["type"] for e in replayed if e["data"].get("id") == job_id]
    assert "job.completed" in replayed_types
    assert first["id"] not in [e["id"] for e in replayed]
    assert all(e["org_id"] == first["org_id"] for e in replayed)
    bobs = await sse_events(
        server, {"Authorization": bob["Authorization"], "Last-Event-ID": first["id"]}, 2.0
    )
    assert [e for e in bobs if e["org_id"] != bobs[0]["org_id"]] == []
    assert all(e["org_id"] != first["org_id"] for e in bobs)


async def test_live_sse_filters_by_type(server: LiveServer) -> None:
    alice = register(server)
    headers = {"Authorization": alice["Authorization"]}

    subscribed = asyncio.Event()
    stream = asyncio.create_task(
        sse_events(
            server,
            headers,
            30.0,
            stop_at="job.completed",
            connected=subscribed,
            types="job.completed",
        )
    )
    # Upload only once the stream is subscribed, so its job's events cannot come before it.
    await asyncio.wait_for(subscribed.wait(), 30)
    job_id = await asyncio.to_thread(upload_async, server, alice)
    got = await stream
    assert [e["type"] for e in got] == ["job.completed"] * len(got)
    assert any(e["data"]["id"] == job_id for e in got)


async def read_forever(ws: ClientConnection) -> None:
    while True:
        await ws.recv()


async def test_websocket_refuses_bad_credentials(server: LiveServer) -> None:
    async with connect(ws_url(server)) as ws:
        await ws.send(json.dumps({"type": "auth", "token": "not-a-token"}))
        with pytest.raises(ConnectionClosed) as closed:
            await read_forever(ws)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4401
    async with connect(ws_url(server), additional_headers={"Authorization": "Bearer x"}) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await read_forever(ws)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4401


async def test_two_replicas_share_events_through_redis(
    start_live_server: StartServer, redis_server: RedisServer
) -> None:
    env = {"AUTH_ENABLED": "true", "REDIS_URL": redis_server.url}
    first = start_live_server(env=env)
    # A second replica on the same database (and Redis): only Redis carries events between them.
    second = start_live_server(env=env | {"MEDIA_DATA_DIR": str(first.data_dir)})
    alice = register(first)
    bob = register(first)
    async with (
        connect(ws_url(second), additional_headers={"Authorization": alice["Authorization"]}) as ws,
        connect(
            ws_url(second), additional_headers={"Authorization": bob["Authorization"]}
        ) as other,
    ):
        assert (await receive(ws, 10) or {})["type"] == "ready"
        assert (await receive(other, 10) or {})["type"] == "ready"
        await subscribe(ws, "jobs")
        await subscribe(other, "jobs")
        job_id = upload_async(first, alice)
        seen = await events_until(ws, "job.completed")
        assert any(e["type"] == "job.completed" and e["data"]["id"] == job_id for e in seen)
        while (message := await receive(other, 1.0)) is not None:
            assert message["type"] != "event", message


def upload_sync(server: LiveServer, headers: dict[str, str]) -> str:
    with httpx.Client(base_url=server.base_url, timeout=60) as http:
        response = http.post(
            "/api/v1/media/upload",
            headers={"Authorization": headers["Authorization"]},
            files={"file": ("s.jpg", mediagen.jpeg(40, 30), "image/jpeg")},
        )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def no_event(ws: ClientConnection, seconds: float = 1.5) -> None:
    while (message := await receive(ws, seconds)) is not None:
        assert message["type"] != "event", message


async def test_websocket_resource_filter_unsubscribe_and_ping(server: LiveServer) -> None:
    alice = register(server)
    async with connect(
        ws_url(server), additional_headers={"Authorization": alice["Authorization"]}
    ) as ws:
        assert (await receive(ws, 10) or {})["type"] == "ready"
        await ws.send(
            json.dumps({"type": "subscribe", "channel": "media", "resource_id": "med_none"})
        )
        assert (await receive(ws, 10) or {})["type"] == "subscribed"
        await asyncio.to_thread(upload_sync, server, alice)
        await no_event(ws)  # another resource's events are not sent

        await subscribe(ws, "media")
        media_id = await asyncio.to_thread(upload_sync, server, alice)
        seen = await events_until(ws, "media.ready", timeout=20)
        assert [e["type"] for e in seen] == ["media.uploaded", "media.ready"]
        assert {e["data"]["id"] for e in seen} == {media_id}

        await ws.send(json.dumps({"type": "unsubscribe", "channel": "media"}))
        await ws.send(
            json.dumps({"type": "unsubscribe", "channel": "media", "resource_id": "med_none"})
        )
        await asyncio.to_thread(upload_sync, server, alice)
        await ws.send(json.dumps({"type": "ping"}))
        replies = []
        while (message := await receive(ws, 1.5)) is not None:
            replies.append(message)
        assert {"type": "pong"} in replies
        assert not [m for m in replies if m["type"] == "event"]
        await ws.send(json.dumps({"type": "subscribe", "channel": "nope"}))
        assert (await receive(ws, 10) or {})["type"] == "error"
    assert ws.close_code == 1000
