"""Open streams are re-authorised (API.md, issue 17 H1): after a member is removed or a key
revoked, their already-open SSE stream and WebSocket get a final `closed` message and no
further event; a stream lives no longer than its credential. Real `mediakeep serve` processes."""

import asyncio
import json
import os
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests import mediagen
from tests.events.test_realtime import receive, register, subscribe, ws_url
from tests.live import LiveServer
from tests.live.conftest import StartServer

API = "/api/v1"


@pytest.fixture
def server(start_live_server: StartServer) -> LiveServer:
    return start_live_server(env={"AUTH_ENABLED": "true"})


def _upload(server: LiveServer, headers: dict[str, str]) -> str:
    with httpx.Client(base_url=server.base_url, timeout=60) as http:
        response = http.post(
            f"{API}/media/upload",
            headers=headers,
            files={"file": (f"{os.urandom(3).hex()}.png", mediagen.png(24, 16), "image/png")},
        )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _shared_org(server: LiveServer, owner: dict[str, str], member: dict[str, str]) -> str:
    """An org of `owner` with `member` as a viewer; its slug."""
    slug = f"team-{os.urandom(4).hex()}"
    auth = {"Authorization": owner["Authorization"]}
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        made = http.post(f"{API}/orgs", json={"slug": slug, "name": "Team"}, headers=auth)
        assert made.status_code == 201, made.text
        me = http.get(f"{API}/users/me", headers={"Authorization": member["Authorization"]})
        added = http.post(
            f"{API}/orgs/{slug}/members",
            json={"email": me.json()["email"], "role": "viewer"},
            headers=auth,
        )
        assert added.status_code == 201, added.text
    return slug


async def _sse_lines(
    server: LiveServer, headers: dict[str, str], lines: list[str], connected: asyncio.Event
) -> None:
    async with (
        httpx.AsyncClient(base_url=server.base_url, timeout=60) as http,
        http.stream("GET", f"{API}/events", headers=headers) as response,
    ):
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line == ": connected":
                connected.set()
            elif line:
                lines.append(line)


async def test_a_removed_members_sse_stream_closes_before_the_next_event(
    server: LiveServer,
) -> None:
    owner, member = register(server), register(server)
    slug = _shared_org(server, owner, member)
    owner_in_org = {"Authorization": owner["Authorization"], "X-Org": slug}
    lines: list[str] = []
    connected = asyncio.Event()
    stream = asyncio.create_task(
        _sse_lines(
            server, {"Authorization": member["Authorization"], "X-Org": slug}, lines, connected
        )
    )
    await asyncio.wait_for(connected.wait(), 30)
    first = await asyncio.to_thread(_upload, server, owner_in_org)
    async with asyncio.timeout(30):
        while not any(first in line for line in lines):
            await asyncio.sleep(0.05)
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        me = http.get(f"{API}/users/me", headers={"Authorization": member["Authorization"]})
        removed = http.delete(
            f"{API}/orgs/{slug}/members/{me.json()['id']}",
            headers={"Authorization": owner["Authorization"]},
        )
        assert removed.status_code == 204, removed.text
    second = await asyncio.to_thread(_upload, server, owner_in_org)
    await asyncio.wait_for(stream, 30)  # the server ended the stream
    assert lines[-2:] == [
        "event: closed",
        'data: {"type": "closed", "reason": "access_changed"}',
    ], lines
    assert not any(second in line for line in lines)


async def test_a_revoked_keys_websocket_gets_closed_4401_and_no_event(
    server: LiveServer,
) -> None:
    owner = register(server)
    auth = {"Authorization": owner["Authorization"]}
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        key: dict[str, Any] = http.post(
            f"{API}/api-keys", json={"name": "rt", "role": "viewer"}, headers=auth
        ).json()
    async with connect(ws_url(server), additional_headers={"X-Api-Key": key["key"]}) as ws:
        assert (await receive(ws, 10) or {})["type"] == "ready"
        await subscribe(ws, "media")
        first = await asyncio.to_thread(_upload, server, auth)
        async with asyncio.timeout(30):
            while True:
                message = await receive(ws, 30)
                assert message is not None
                if message["type"] == "event" and message["event"]["data"].get("id") == first:
                    break
        with httpx.Client(base_url=server.base_url, timeout=30) as http:
            assert http.delete(f"{API}/api-keys/{key['id']}", headers=auth).status_code == 204
        second = await asyncio.to_thread(_upload, server, auth)
        received: list[dict[str, Any]] = []
        code = await _read_until_closed(ws, received)
        assert code == 4401
        assert received[-1] == {"type": "closed", "reason": "access_changed"}
        assert not any(
            m["type"] == "event" and m["event"]["data"].get("id") == second for m in received
        )


async def _read_until_closed(ws: ClientConnection, into: list[dict[str, Any]]) -> int | None:
    """Collect messages until the server closes; its close code."""
    try:
        async with asyncio.timeout(30):
            while True:
                into.append(json.loads(await ws.recv()))
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd is not None else None


async def test_a_stream_ends_when_its_access_token_expires(
    start_live_server: StartServer,
) -> None:
    server = start_live_server(env={"AUTH_ENABLED": "true", "AUTH_ACCESS_TOKEN_TTL": "3s"})
    user = register(server)
    lines: list[str] = []
    connected = asyncio.Event()
    stream = asyncio.create_task(
        _sse_lines(server, {"Authorization": user["Authorization"]}, lines, connected)
    )
    await asyncio.wait_for(connected.wait(), 30)
    await asyncio.wait_for(stream, 30)  # well before the 15 s heartbeat would end anything
    assert lines[-2:] == [
        "event: closed",
        'data: {"type": "closed", "reason": "credential_expired"}',
    ], lines
