"""Which answers are kept: on routes that exist only here, counting how often they really ran."""

from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.requests import ClientDisconnect
from starlette.types import Message

from mediakeep.app import create_app
from mediakeep.idempotency.service import MAX_STORED_BODY
from mediakeep.migrate import upgrade_async
from tests.conftest import make_settings
from tests.idempotency.support import new_key, replayed

BASE = "/api/v1/test-only"
runs: Counter[str] = Counter()


def _router() -> APIRouter:
    router = APIRouter(prefix=BASE, tags=["test"])

    @router.post("/count", status_code=201)
    async def count(request: Request) -> dict[str, int]:
        runs[request.headers["x-test"]] += 1
        return {"n": runs[request.headers["x-test"]]}

    @router.post("/flaky")
    async def flaky(request: Request) -> JSONResponse:
        runs[request.headers["x-test"]] += 1
        status = 503 if runs[request.headers["x-test"]] == 1 else 201
        return JSONResponse({"run": runs[request.headers["x-test"]]}, status_code=status)

    @router.post("/crash")
    async def crash(request: Request) -> dict[str, int]:
        runs[request.headers["x-test"]] += 1
        if runs[request.headers["x-test"]] == 1:
            raise RuntimeError("a bug")
        return {"run": runs[request.headers["x-test"]]}

    @router.post("/text", status_code=202)
    async def text(request: Request) -> PlainTextResponse:
        runs[request.headers["x-test"]] += 1
        return PlainTextResponse(f"run {runs[request.headers['x-test']]}", status_code=202)

    @router.post("/echo", status_code=201)
    async def echo(request: Request) -> JSONResponse:
        runs[request.headers["x-test"]] += 1
        try:
            body = await request.body()
        except ClientDisconnect:
            return JSONResponse({"error": "went away"}, status_code=400)
        return JSONResponse({"echo": body.decode()}, status_code=201)

    @router.post("/big")
    async def big(request: Request) -> StreamingResponse:
        runs[request.headers["x-test"]] += 1
        n = runs[request.headers["x-test"]]

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(3):
                yield bytes([n]) * (MAX_STORED_BODY // 2 + 1)

        return StreamingResponse(chunks(), media_type="application/octet-stream")

    return router


@pytest.fixture(scope="module")
async def test_app(service_root: Path, request: pytest.FixtureRequest) -> AsyncIterator[FastAPI]:
    settings = make_settings("sqlite-local", service_root / "idempotency-answers", request)
    await upgrade_async(settings)
    app = create_app(settings, run_background=False)
    app.include_router(_router())
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def http(test_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    # raise_app_exceptions=False: a crashing route answers 500 as it would to a real client.
    transport = httpx.ASGITransport(app=test_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def _post(http: httpx.AsyncClient, path: str, key: str, test: str) -> httpx.Response:
    return await http.post(f"{BASE}/{path}", headers={"Idempotency-Key": key, "X-Test": test})


async def test_a_replay_does_nothing_twice(http: httpx.AsyncClient) -> None:
    key = new_key()
    answers = [await _post(http, "count", key, "count") for _ in range(3)]
    assert [a.status_code for a in answers] == [201, 201, 201]
    assert [a.json() for a in answers] == [{"n": 1}] * 3
    assert [replayed(a) for a in answers] == [False, True, True]
    assert runs["count"] == 1


async def test_a_5xx_answer_lets_the_retry_run_again(http: httpx.AsyncClient) -> None:
    key = new_key()
    first = await _post(http, "flaky", key, "flaky")
    second = await _post(http, "flaky", key, "flaky")
    third = await _post(http, "flaky", key, "flaky")
    assert (first.status_code, second.status_code, third.status_code) == (503, 201, 201)
    assert not replayed(second)
    assert replayed(third)
    assert third.json() == {"run": 2}
    assert runs["flaky"] == 2


async def test_a_request_that_crashed_can_be_retried(http: httpx.AsyncClient) -> None:
    key = new_key()
    first = await _post(http, "crash", key, "crash")
    assert first.status_code == 500
    assert first.json()["error"]["code"] == "internal"
    second = await _post(http, "crash", key, "crash")
    assert second.status_code == 200
    assert not replayed(second)
    assert runs["crash"] == 2


async def test_status_content_type_and_body_are_replayed_as_they_were(
    http: httpx.AsyncClient,
) -> None:
    key = new_key()
    first = await _post(http, "text", key, "text")
    again = await _post(http, "text", key, "text")
    assert (again.status_code, again.text) == (202, "run 1")
    assert again.headers["content-type"] == first.headers["content-type"]
    assert again.headers["content-type"].startswith("text/plain")
    assert again.headers["content-length"] == str(len("run 1"))


async def test_an_answer_over_the_stored_size_is_streamed_but_not_kept(
    http: httpx.AsyncClient,
) -> None:
    key = new_key()
    first = await _post(http, "big", key, "big")
    assert first.status_code == 200
    assert len(first.content) > MAX_STORED_BODY
    again = await _post(http, "big", key, "big")
    assert not replayed(again)
    assert again.content[:1] == b"\x02"
    assert runs["big"] == 2


async def test_an_anonymous_caller_is_known_by_its_address(test_app: FastAPI) -> None:
    key = new_key()
    answers = []
    for address in ("192.0.2.10", "192.0.2.10", "192.0.2.11"):
        transport = httpx.ASGITransport(app=test_app, client=(address, 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            answers.append(await _post(c, "count", key, "by-address"))
    assert [a.json()["n"] for a in answers] == [1, 1, 2]
    assert [replayed(a) for a in answers] == [False, True, False]


async def test_a_4xx_earned_by_a_client_that_went_away_is_not_kept(
    test_app: FastAPI, http: httpx.AsyncClient
) -> None:
    key = new_key()
    sent: list[Message] = []

    async def went_away() -> Message:
        return {"type": "http.disconnect"}

    async def collect(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": f"{BASE}/echo",
        "raw_path": f"{BASE}/echo".encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"idempotency-key", key.encode()), (b"x-test", b"echo")],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    await test_app(scope, went_away, collect)
    assert sent[0]["status"] == 400
    retry = await http.post(
        f"{BASE}/echo", headers={"Idempotency-Key": key, "X-Test": "echo"}, content=b"hello"
    )
    assert retry.status_code == 201
    assert not replayed(retry)
    assert retry.json() == {"echo": "hello"}
    again = await http.post(
        f"{BASE}/echo", headers={"Idempotency-Key": key, "X-Test": "echo"}, content=b"other"
    )
    assert replayed(again)
    assert again.json() == {"echo": "hello"}
    assert runs["echo"] == 2
