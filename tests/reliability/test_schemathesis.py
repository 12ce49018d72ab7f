"""schemathesis over /openapi.json (issue 11): every operation with schema-valid and invalid data,
then the OpenAPI links as a state machine, against a real `mediakeep serve` (SQLite, local
storage, auth on) signed in as an org owner.

Checks: no 5xx, status codes, content types and bodies as documented, invalid data refused with
4xx. Path parameters are drawn both from generated values and from resources seeded up front
(an image, an audio, a video, a collection, a job, a webhook, API keys, a tus upload, signed
file/transform/stream URLs), so cases reach past the 404s; DELETEs get resources of their own.
No operation is left out: the SSE route is asked with `follow=false` (so its answer ends), the
signed routes get real signatures and tokens, and the WebSocket is not in the document.
Default counts take about 3 minutes here; `pytest --long` runs many more examples and steps.

Deterministic by default (issue 18): the README's command always draws the same cases, from
SEED, and first replays every example stored in EXAMPLES_DIR (Hypothesis's example database,
kept in the repository), so a failure found once is tried again on every run. Only `--long`
explores at random, and it writes what it finds into EXAMPLES_DIR: commit those files, and the
finding becomes a fixed example of the default run. (Hypothesis's `derandomize=True` would also
fix the draws, but it cannot be combined with an example database; a fixed seed can.)
"""

from __future__ import annotations

import base64
import itertools
import os
import re
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import hypothesis
import pytest
import schemathesis
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.generation.stateful.state_machine import StepInput
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.transport.serialization import Binary

from mediakeep.app import create_app
from mediakeep.config import Settings
from tests import mediagen
from tests.fixtures.services import free_port
from tests.live import LiveServer, base_env
from tests.reliability.report import record

# The whole single-operation run is one test (84 subtests): minutes, more on a loaded machine.
pytestmark = [pytest.mark.reliability, pytest.mark.timeout(900)]

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
# Hypothesis examples per operation (fuzzing phase; the coverage and examples phases add their
# own deterministic cases), and state machine runs x steps.
FUZZ_EXAMPLES = {False: 12, True: 200}
STATEFUL_RUNS = {False: 50, True: 300}
STATEFUL_STEPS = {False: 12, True: 12}
# Steps that followed a link, at least (the default run follows about four times as many).
MIN_LINKED_STEPS = 20
REQUEST_TIMEOUT = 60
SEED = 18_2026_12  # the default run's draws; --long draws at random
EXAMPLES_DIR = Path(__file__).parent / "hypothesis-examples"
PASSWORD = "correct horse battery staple"
EVENTS = "GET /api/v1/events"
# Ends every session of the signed-in user: sent as the owner, it would leave every later case,
# and the whole stateful run, a 401 (issue 18: links were then almost never followed).
LOGOUT_ALL = "POST /api/v1/auth/logout-all"


# --------------------------------------------------------------------------- the server


@dataclass
class Seeded:
    """Made before the run: live resources, resources DELETEs may use up, signed URLs."""

    token: str
    org_slug: str
    # A user of its own for LOGOUT_ALL, signed in afresh for each such case.
    signout_email: str
    ids: dict[str, str] = field(default_factory=dict)
    doomed: dict[str, list[str]] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)


@dataclass
class Tally:
    operations: set[str] = field(default_factory=set)
    cases: int = 0
    seeded_cases: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def count(self, case: Case, status: int | None) -> None:
        self.operations.add(case.operation.label)
        self.cases += 1
        if status is not None:
            self.statuses[status] = self.statuses.get(status, 0) + 1

    def fail(self, case: Case, exc: BaseException) -> None:
        if isinstance(exc, FailureGroup):
            what = "; ".join(f"{f.code} {f.title}: {f.message}" for f in exc.exceptions)
        else:
            what = str(exc) or type(exc).__name__
        key = f"{case.operation.label}: {' '.join(what.split())}"[:400]
        self.failures.setdefault(key, case.as_curl_command()[:1000])


def _server(root: Path) -> Iterator[LiveServer]:
    data_dir = root / "data"
    data_dir.mkdir(parents=True)
    port = free_port()
    env = base_env() | {
        "MEDIA_DATA_DIR": str(data_dir),
        "MEDIA_API_HOST": "127.0.0.1",
        "MEDIA_API_PORT": str(port),
        "AUTH_ENABLED": "true",
        "AUTH_SECRET_KEY": "schemathesis-secret-" + "x" * 40,
        "AUTH_ARGON2_TIME_COST": "1",
        "AUTH_ARGON2_MEMORY_KIB": "1024",
        "MEDIA_LOG_LEVEL": "WARNING",
        "MEDIA_SWEEP_INTERVAL": "1h",
        "MEDIA_WORKERS": "1",
        # The fuzzer is one client sending thousands of requests: limits stay on, but high.
        "MEDIA_RATE_LIMIT_ANONYMOUS": "1000000/minute",
        "MEDIA_RATE_LIMIT_USER": "1000000/minute",
        "MEDIA_RATE_LIMIT_API_KEY": "1000000/minute",
        "MEDIA_RATE_LIMIT_UPLOAD_URL": "1000000/minute",
        "MEDIA_RATE_LIMIT_CAPTION": "1000000/minute",
        # Generated remote URLs and webhook targets must fail fast, not hang on DNS.
        "MEDIA_REMOTE_FETCH_TIMEOUT": "2s",
        "MEDIA_WEBHOOK_TIMEOUT": "2s",
    }
    server = LiveServer(data_dir=data_dir, env=env, port=port, log_path=root / "server.log")
    try:
        server.start()
        yield server
    finally:
        server.stop()


def _ok(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    assert response.status_code in statuses, (
        f"{response.request.method} {response.request.url}: {response.status_code} "
        f"{response.text[:500]}"
    )
    return response.json() if response.content else {}


def _register(http: httpx.Client, name: str) -> tuple[str, dict[str, Any]]:
    email = f"{name}-{os.urandom(4).hex()}@example.com"
    _ok(http.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD}), 201)
    tokens = _ok(http.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD}), 200)
    me = _ok(
        http.get("/api/v1/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}),
        200,
    )
    return tokens["access_token"], me | {"email": email}


def _upload(http: httpx.Client, name: str, data: bytes, mime: str, **fields: str) -> str:
    body = _ok(
        http.post("/api/v1/media/upload", files={"file": (name, data, mime)}, data=fields),
        200,
        201,
        202,
    )
    return str(body["media"]["id"] if "media" in body else body["id"])


def _seed(server: LiveServer) -> Seeded:
    with server.client() as anonymous:
        token, me = _register(anonymous, "owner")
        _, member = _register(anonymous, "member")
        _, signout = _register(anonymous, "signout")
    slug = next(o["slug"] for o in me["orgs"] if o["id"] == me["default_org_id"])
    seeded = Seeded(token=token, org_slug=slug, signout_email=signout["email"])
    ids, doomed, urls = seeded.ids, seeded.doomed, seeded.urls
    with server.client(headers={"Authorization": f"Bearer {token}"}) as http:
        ids["image"] = _upload(http, "seed.png", mediagen.png(64, 48), "image/png")
        ids["audio"] = _upload(http, "seed.wav", mediagen.wav(1.0), "audio/wav")
        ids["video"] = _upload(http, "seed.mp4", mediagen.mp4(1.0), "video/mp4")
        doomed["media"] = [
            _upload(http, f"doomed{i}.png", mediagen.png(16, 16), "image/png") for i in range(4)
        ]
        collection = _ok(http.post("/api/v1/collections", json={"name": "seeded"}), 201)
        ids["collection"] = collection["id"]
        _ok(
            http.post(
                f"/api/v1/collections/{collection['id']}/media",
                json={"media_ids": [ids["image"], ids["audio"]]},
            ),
            200,
        )
        doomed["collection"] = [
            _ok(http.post("/api/v1/collections", json={"name": f"doomed {i}"}), 201)["id"]
            for i in range(3)
        ]
        doomed["api_key"] = [
            _ok(http.post("/api/v1/api-keys", json={"name": f"doomed {i}"}), 201)["id"]
            for i in range(3)
        ]
        # A public address literal (example.com's; nothing resolves names here) and an event
        # this org never emits: only the fuzzer's `POST .../test` ever tries a delivery.
        hook = {"url": "https://93.184.215.14/mediakeep-fuzz", "events": ["user.registered"]}
        ids["webhook"] = _ok(http.post("/api/v1/webhooks", json=hook), 201)["id"]
        doomed["webhook"] = [
            _ok(http.post("/api/v1/webhooks", json=hook), 201)["id"] for _ in range(3)
        ]
        job = _ok(
            http.post(
                f"/api/v1/media/{ids['video']}/trim", json={"start_time": 0, "end_time": 0.5}
            ),
            202,
        )
        ids["job"] = job["job"]["id"]
        _ok(
            http.post(
                f"/api/v1/media/{ids['video']}/captions",
                json={"language": "en", "content": "WEBVTT\n\n00:00.000 --> 00:00.900\nhello\n"},
            ),
            201,
        )
        _ok(
            http.post(
                f"/api/v1/orgs/{slug}/members", json={"email": member["email"], "role": "member"}
            ),
            201,
        )
        ids["member"] = member["id"]
        tus = {"Tus-Resumable": "1.0.0", "Upload-Length": "1000"}
        uploads = []
        for _ in range(4):
            created = http.post("/api/v1/uploads/tus", headers=tus)
            assert created.status_code == 201, created.text
            uploads.append(created.headers["location"].rstrip("/").rsplit("/", 1)[-1])
        ids["tus"], doomed["tus"] = uploads[0], uploads[1:]
        urls["files"] = _ok(http.get(f"/api/v1/media/{ids['image']}/presign"), 200)["url"]
        urls["transform"] = _ok(
            http.post(f"/api/v1/media/{ids['image']}/transform-url", json={"width": 20}), 200
        )["url"]
        put = _ok(
            http.post(
                "/api/v1/media/upload-url",
                json={"filename": "put.png", "mime": "image/png", "size_bytes": 1000},
            ),
            201,
        )
        urls["put"] = put["upload_url"]
        urls.update(_stream_url(http, ids["video"]))
    return seeded


def _stream_url(http: httpx.Client, video: str) -> dict[str, str]:
    """The HLS master playlist URL of the video, once its renditions are made (the worker is
    busy with other jobs too; without it the stream route is fuzzed with generated tokens)."""
    _ok(
        http.post(f"/api/v1/media/{video}/stream", json={"formats": ["hls"], "renditions": [48]}),
        202,
        200,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        answer = http.get(f"/api/v1/media/{video}/stream")
        if answer.status_code == 200 and answer.json().get("hls_url"):
            return {"stream": answer.json()["hls_url"]}
        if answer.status_code not in (200, 409):
            break
        time.sleep(0.5)  # the renditions are made by the worker process; nothing to await
    _say(f"schemathesis: no stream URL ({answer.status_code} {answer.text[:200]})")
    return {}


# --------------------------------------------------------------------------- seeded values


def _path_of(url: str) -> tuple[list[str], dict[str, str]]:
    parts = urlsplit(url)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    return parts.path.strip("/").split("/"), query


def _choices(seeded: Seeded, labels: list[str]) -> dict[str, list[dict[str, dict[str, str]]]]:
    """Per operation label: {"path": ..., "query": ...} overlays made of seeded resources."""
    ids, doomed, urls = seeded.ids, seeded.doomed, seeded.urls
    media = [ids["image"], ids["audio"], ids["video"]]
    found: dict[str, list[dict[str, dict[str, str]]]] = {}

    def add(label: str, *overlays: dict[str, str], query: dict[str, str] | None = None) -> None:
        found[label] = [{"path": o, "query": query or {}} for o in overlays]

    for label in labels:
        method, path = label.split(" ", 1)
        names = tuple(re.findall(r"\{([^}]+)\}", path))
        if names == ("media_id",):
            pool = doomed["media"] if method == "DELETE" else media
            add(label, *({"media_id": m} for m in pool))
        elif names == ("collection_id",):
            pool = doomed["collection"] if method == "DELETE" else [ids["collection"]]
            add(label, *({"collection_id": c} for c in pool))
        elif names == ("webhook_id",):
            pool = doomed["webhook"] if method == "DELETE" else [ids["webhook"]]
            add(label, *({"webhook_id": w} for w in pool))
        elif names == ("upload_id",):
            pool = doomed["tus"] if method == "DELETE" else [ids["tus"]]
            add(label, *({"upload_id": u} for u in pool))
        elif names == ("job_id",):
            add(label, {"job_id": ids["job"]})
        elif names == ("id",):
            add(label, *({"id": k} for k in doomed["api_key"]))
        elif names == ("slug",):
            add(label, {"slug": seeded.org_slug})
    add(
        "DELETE /api/v1/orgs/{slug}/members/{user_id}",
        {"slug": seeded.org_slug, "user_id": ids["member"]},
    )
    add(
        "DELETE /api/v1/collections/{collection_id}/media/{media_id}",
        {"collection_id": ids["collection"], "media_id": ids["audio"]},
    )
    add(
        "GET /api/v1/media/{media_id}/variants/{name}",
        {"media_id": ids["image"], "name": "thumbnail"},
        {"media_id": ids["image"], "name": "small"},
        {"media_id": ids["video"], "name": "poster"},
    )
    for label in (
        "PATCH /api/v1/media/{media_id}/captions/{language}",
        "GET /api/v1/media/{media_id}/captions/{language}.vtt",
        "GET /api/v1/media/{media_id}/captions/{language}.srt",
    ):
        add(label, {"media_id": ids["video"], "language": "en"})
    parts, query = _path_of(urls["files"])
    add("GET /files/{key}", {"key": "/".join(parts[1:])}, query=query)
    parts, query = _path_of(urls["put"])
    add("PUT /uploads/local/{key}", {"key": "/".join(parts[2:])}, query=query)
    parts, _ = _path_of(urls["transform"])
    add(
        "GET /t/{signature}/{options}/{media_id}",
        {"signature": parts[1], "options": parts[2], "media_id": parts[3]},
    )
    if "stream" in urls:
        parts, _ = _path_of(urls["stream"])
        add(
            "GET /stream/{token}/{media_id}/{fmt}/{name}",
            {"token": parts[1], "media_id": parts[2], "fmt": parts[3], "name": parts[4]},
        )
    return found


# Noise images: each one new bytes, so an upload makes a new media rather than a dedup.
_real_images = (mediagen.png(32, 24) for _ in itertools.count())


def _overlay(case: Case, choice: dict[str, dict[str, str]], tally: Tally) -> Case:
    tally.seeded_cases += 1
    case.path_parameters = {**(case.path_parameters or {}), **choice["path"]}
    if choice["query"]:
        case.query = {**(case.query or {}), **choice["query"]}
    return case


def _valid(case: Case) -> bool:
    return case.meta is not None and case.meta.generation.mode == GenerationMode.POSITIVE


def _real_body(case: Case) -> Case:
    """A decodable image in place of generated bytes, so uploads get past 415 and make media."""
    label = case.operation.label
    if label == "POST /api/v1/media/upload" and isinstance(case.body, dict):
        case.body = {**case.body, "file": Binary(next(_real_images))}
        # schemathesis re-checks an edited body against the schema, and counts any body with
        # binary parts as invalid (so the case would turn "negative"); the image is a valid
        # `format: binary` value, so take the edited case as generated, as it does for auth.
        case._record_starting_state()
    elif label == "POST /api/v1/media" and isinstance(case.body, dict):
        source = case.body.get("source")
        if isinstance(source, dict) and source.get("type") == "data_url":
            encoded = base64.b64encode(next(_real_images)).decode()
            case.body = {
                **case.body,
                "source": {**source, "data_url": f"data:image/png;base64,{encoded}"},
            }
    return case


class Seeder:
    """Points valid cases at seeded resources: per operation, round robin over its seeded
    overlays plus one turn for the generated values (so unknown ids stay tested too)."""

    def __init__(self, seeded: Seeded, labels: list[str], tally: Tally) -> None:
        self.choices = _choices(seeded, labels)
        self.turns: dict[str, int] = {}
        self.tally = tally

    def apply(self, case: Case) -> None:
        # Decided on the final case (its generation mode is known only now): a negative case
        # keeps what makes it invalid, so "invalid data is refused" still means what it says.
        if case.meta is None or case.meta.generation.mode != GenerationMode.POSITIVE:
            return
        label = case.operation.label
        turn = self.turns.get(label, 0)
        self.turns[label] = turn + 1
        pool = self.choices.get(label, [])
        if turn % (len(pool) + 1) < len(pool):
            _overlay(case, pool[turn % (len(pool) + 1)], self.tally)
        if turn % 2 == 0:
            _real_body(case)


@schemathesis.serializer("application/offset+octet-stream")
def _offset_stream(_: Any, value: Any) -> bytes:
    """tus chunks (PATCH bodies) are raw bytes, as application/octet-stream is."""
    if isinstance(value, bytes):
        return value
    return str(value).encode()


# --------------------------------------------------------------------------- fixtures


@dataclass
class FuzzEnv:
    server: LiveServer
    seeded: Seeded
    tally: Tally
    long: bool
    seeder: Seeder
    document: dict[str, Any]
    database: Path  # the example database this run reads (and, under --long, writes)

    def load(self) -> Any:
        config = schemathesis.Config() if self.long else schemathesis.Config(seed=SEED)
        schema = schemathesis.openapi.from_url(
            f"{self.server.base_url}/openapi.json", config=config
        )
        schema.config.update(
            base_url=self.server.base_url,
            headers={"Authorization": f"Bearer {self.seeded.token}"},
            request_timeout=REQUEST_TIMEOUT,
        )
        schema.config.generation.update(
            modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
            max_examples=FUZZ_EXAMPLES[self.long],
            database=str(self.database),
            # Credentials come from the owner's token header, not from generated values.
            with_security_parameters=False,
        )
        return schema

    def call(self, case: Case) -> None:
        """Send the case and apply CHECKS (less any waived for this answer), counting it."""
        self.seeder.apply(case)
        _wire_arrays(case)
        if case.operation.label == EVENTS:
            _no_follow(case)
        response = None
        started = time.monotonic()
        try:
            response = case.call(timeout=REQUEST_TIMEOUT, **self.call_kwargs(case))
            self.check(case, response)
        finally:
            self.tally.count(case, response.status_code if response is not None else None)
            label = case.operation.label
            spent = time.monotonic() - started
            self.tally.seconds[label] = self.tally.seconds.get(label, 0.0) + spent

    def call_kwargs(self, case: Case) -> dict[str, Any]:
        """LOGOUT_ALL as a session of its own user, so the owner's session outlives it."""
        if case.operation.label != LOGOUT_ALL:
            return {}
        credentials = {"email": self.seeded.signout_email, "password": PASSWORD}
        with self.server.client() as http:
            token = _ok(http.post("/api/v1/auth/login", json=credentials), 200)["access_token"]
        return {"headers": {"Authorization": f"Bearer {token}"}}

    def assert_signed_in(self) -> None:
        with self.server.client(headers={"Authorization": f"Bearer {self.seeded.token}"}) as http:
            answer = http.get("/api/v1/users/me")
        assert answer.status_code == 200, f"the owner's session has ended: {answer.text[:300]}"

    def check(self, case: Case, response: Any) -> None:
        waived = _waived(case, response)
        try:
            case.validate_response(response, checks=[c for c in CHECKS if c not in waived])
        except (FailureGroup, AssertionError) as exc:
            self.tally.fail(case, exc)
            raise


def _error_code(response: Any) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error.get("code") if isinstance(error, dict) else None


def _waived(case: Case, response: Any) -> list[Any]:
    """Checks that do not apply to this one answer, each for a reason API.md gives."""
    waived = []
    code = _error_code(response)
    # A remote URL that cannot be fetched is 502 `upstream.fetch_failed` by contract; the
    # fuzzer's remote URLs name hosts that do not resolve here. It is not our server failing.
    if (
        case.operation.label == "POST /api/v1/media"
        and response.status_code == 502
        and code == "upstream.fetch_failed"
    ):
        waived.append(not_a_server_error)
    # tus 1.0 says a missing or unsupported `Tus-Resumable` MUST be answered 412, a status
    # schemathesis does not count as a rejection (its list stops at 400/401/403/404/409/...).
    tus = case.operation.path.startswith("/api/v1/uploads/tus")
    if response.status_code == 412 and tus and code in ("tus.version_unsupported", None):
        waived.append(negative_data_rejection)  # None: a HEAD answer has no body to read
    # schemathesis leaves a "#" in a path parameter unencoded, so the rest of the URL becomes a
    # fragment and the request names another resource (a 405 of the parent path, say): only
    # "no server error" still applies to its answer.
    if any("#" in str(value) for value in (case.path_parameters or {}).values()):
        waived += [
            status_code_conformance,
            response_schema_conformance,
            content_type_conformance,
            negative_data_rejection,
        ]
    return waived


def _wire_arrays(case: Case) -> None:
    """multipart/form-data has no arrays: a list is sent as one part per item, so an empty or
    one-item list would reach the server as an absent field or a plain value, both valid. Send
    a negative case's lists as two parts at least, so the wire carries what the case means."""
    if case.media_type != "multipart/form-data" or not isinstance(case.body, dict) or _valid(case):
        return
    if any(isinstance(v, list) and len(v) < 2 for v in case.body.values()):
        case.body = {
            k: (v * 2 if v else ["", ""]) if isinstance(v, list) and len(v) < 2 else v
            for k, v in case.body.items()
        }


_BOOLEANS = {"true", "false", "1", "0", "yes", "no", "on", "off", "t", "f", "y", "n"}


def _no_follow(case: Case) -> None:
    """`GET /api/v1/events` follows the stream for ever unless `follow=false`: set it, except
    when an invalid `follow` is what makes a negative case invalid (that one must get 400)."""
    query = dict(case.query or {})
    follow = query.get("follow")
    if follow is None or str(follow).lower() in _BOOLEANS:
        query["follow"] = "false"
        case.query = query


@pytest.fixture(scope="module")
def fuzz_env(tmp_path_factory: pytest.TempPathFactory, long_mode: bool) -> Iterator[FuzzEnv]:
    root = tmp_path_factory.mktemp("schemathesis")
    # The default run replays the stored examples from a copy, so it leaves the repository as
    # it found it; --long adds what it finds to the stored ones.
    database = EXAMPLES_DIR if long_mode else root / "examples"
    if not long_mode:
        shutil.copytree(EXAMPLES_DIR, database)
    for server in _server(root):
        started = time.monotonic()
        seeded = _seed(server)
        took = time.monotonic() - started
        _say(f"schemathesis: seeded in {took:.1f}s: {seeded.ids}, urls: {sorted(seeded.urls)}")
        with server.client() as http:
            document = _ok(http.get("/openapi.json"), 200)
        labels = [f"{m.upper()} {path}" for path, ops in document["paths"].items() for m in ops]
        tally = Tally()
        env = FuzzEnv(
            server, seeded, tally, long_mode, Seeder(seeded, labels, tally), document, database
        )
        yield env
        _report(env)
        # Every case was sent signed in: none may have ended the session the others use.
        env.assert_signed_in()
        if tally.cases:  # the single-operation run took place (not only the stateful one)
            assert tally.operations == set(labels), sorted(set(labels) - tally.operations)
            assert tally.seeded_cases > 0, "no case used a seeded resource"


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")


def _report(env: FuzzEnv) -> None:
    tally = env.tally
    slowest = sorted(tally.seconds.items(), key=lambda item: -item[1])[:8]
    _say("schemathesis slowest: " + ", ".join(f"{label} {t:.1f}s" for label, t in slowest))
    for failure, curl in sorted(tally.failures.items()):
        _say(f"schemathesis failure: {failure}\n    {curl}")
    record(
        {
            "test": "schemathesis",
            "long": env.long,
            "operations": len(tally.operations),
            "cases": tally.cases,
            "seeded_cases": tally.seeded_cases,
            "failures": len(tally.failures),
            "statuses": {str(k): v for k, v in sorted(tally.statuses.items())},
        }
    )


@pytest.fixture(scope="module")
def fuzz_schema(fuzz_env: FuzzEnv) -> Any:
    return fuzz_env.load()


schema = schemathesis.pytest.from_fixture("fuzz_schema")


@schema.parametrize()
def test_every_operation_answers_as_documented(case: Case, fuzz_env: FuzzEnv) -> None:
    fuzz_env.call(case)


def test_openapi_links_name_real_operations_and_parameters(tmp_path: Path) -> None:
    """Every link targets an operation of the document and fills parameters it declares."""
    document = create_app(Settings(data_dir=tmp_path)).openapi()
    operations = {
        op["operationId"]: op for item in document["paths"].values() for op in item.values()
    }
    links = 0
    for source_id, source in operations.items():
        for status, response in source["responses"].items():
            for name, link in response.get("links", {}).items():
                links += 1
                target = operations.get(link["operationId"])
                assert target is not None, f"{source_id} {status} {name}: no such operation"
                declared = {p["name"] for p in target.get("parameters", [])}
                assert set(link["parameters"]) <= declared, f"{source_id} {status} {name}"
                for expression in link["parameters"].values():
                    assert expression.startswith(("$response.body#/", "$request.path.")), name
    assert links >= 30, links
    # Authenticated operations say how to authenticate, and that a bad credential is 401.
    for operation_id, operation in operations.items():
        if operation.get("security"):
            assert "401" in operation["responses"], operation_id


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    # schemathesis 4's lazy (fixture) schemas relabel subtests through `node._nodeid`, an
    # attribute pytest 9 no longer has; give it one.
    node: Any = request.node
    if not hasattr(node, "_nodeid"):
        node._nodeid = node.nodeid


def _inconsistent_draw(exc: BaseException) -> bool:
    """Hypothesis's "data generation behaved differently" (Flaky, or an assertion raised from
    its data tree), as opposed to a check that failed."""
    if isinstance(exc, hypothesis.errors.FlakyStrategyDefinition):
        return True
    trace = exc.__traceback__
    while trace is not None and trace.tb_next is not None:
        trace = trace.tb_next
    return (
        isinstance(exc, AssertionError)
        and trace is not None
        and trace.tb_frame.f_globals.get("__name__") == "hypothesis.internal.conjecture.datatree"
    )


@dataclass
class Steps:
    scenarios: int = 0
    steps: int = 0
    linked: int = 0
    by_operation: dict[str, int] = field(default_factory=dict)
    # Linked steps per path parameter of their target ("media_id": links into media routes).
    linked_into: dict[str, int] = field(default_factory=dict)


def test_links_chain_operations_into_working_scenarios(fuzz_env: FuzzEnv) -> None:
    """The OpenAPI links as a state machine: upload -> read/patch/delete, create -> use ->
    delete, job -> get/cancel; each step checked like the single-operation run."""
    declared = sum(
        len(response.get("links", {}))
        for item in fuzz_env.document["paths"].values()
        for operation in item.values()
        for response in operation["responses"].values()
    )
    assert declared > 0, "the OpenAPI document declares no links"
    # Signed out, every step is a 401 and no link has a response to follow.
    fuzz_env.assert_signed_in()
    schema = fuzz_env.load()
    steps = Steps()
    machine = schema.as_state_machine()
    # Roots such as `POST /media/{media_id}/trim` would mostly meet 404 with a generated id and
    # give their links nothing to follow: point them at seeded resources, as the single-operation
    # run does (its own turns, so this run draws alike whether that one ran first or not).
    roots = Seeder(fuzz_env.seeded, list(fuzz_env.seeder.choices), Tally())

    class Workflow(machine):  # type: ignore[misc, valid-type]
        def setup(self) -> None:
            steps.scenarios += 1

        def before_call(self, case: Case) -> None:
            if _valid(case):
                _real_body(case)
            _wire_arrays(case)
            if case.operation.label == EVENTS:
                _no_follow(case)

        def step(self, input: StepInput) -> Any:
            if input.transition is None:
                roots.apply(input.case)
            steps.steps += 1
            label = input.case.operation.label
            steps.by_operation[label] = steps.by_operation.get(label, 0) + 1
            if input.transition is not None and input.is_applied:
                steps.linked += 1
                for name in re.findall(r"\{([^}]+)\}", input.case.operation.path):
                    steps.linked_into[name] = steps.linked_into.get(name, 0) + 1
            return super().step(input)

        def call(self, case: Case, **kwargs: Any) -> Any:
            return case.call(timeout=REQUEST_TIMEOUT, **(kwargs | fuzz_env.call_kwargs(case)))

        def validate_response(self, response: Any, case: Case, *_: Any, **__: Any) -> None:
            fuzz_env.check(case, response)

    started = time.monotonic()
    failures_before = set(fuzz_env.tally.failures)
    restarts = 0
    try:
        # A live server is state Hypothesis cannot see: the same choices can draw differently
        # later (a bundle filled or not), which it reports as Flaky and stops. As schemathesis's
        # own engine does, go on with a new run then, unless a check failed meanwhile.
        while steps.scenarios < STATEFUL_RUNS[fuzz_env.long] and restarts < 50:
            settings = hypothesis.settings(
                max_examples=STATEFUL_RUNS[fuzz_env.long] - steps.scenarios,
                stateful_step_count=STATEFUL_STEPS[fuzz_env.long],
                deadline=None,
                database=None,
                suppress_health_check=list(hypothesis.HealthCheck),
                # No shrinking: a replay against a server that moved on is not the same run.
                phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
            )
            if not fuzz_env.long:
                # Each (re)start draws from its own fixed seed: the same runs every time.
                hypothesis.seed(SEED + restarts)(Workflow)
            try:
                Workflow.run(settings=settings)
            except (hypothesis.errors.Flaky, AssertionError) as exc:
                found = sorted(set(fuzz_env.tally.failures) - failures_before)
                if found or not _inconsistent_draw(exc):
                    raise AssertionError(f"stateful failures: {found}") from exc
                restarts += 1
    finally:
        record(
            {
                "test": "schemathesis_stateful",
                "long": fuzz_env.long,
                "declared_links": declared,
                "transitions": schema.statistic.transitions.total,
                "scenarios": steps.scenarios,
                "steps": steps.steps,
                "linked_steps": steps.linked,
                "linked_into": dict(sorted(steps.linked_into.items())),
                "operations": len(steps.by_operation),
                "restarts": restarts,
                "seconds": round(time.monotonic() - started, 1),
            }
        )
    # Scenarios that never left their first call would test no link at all. The default run
    # follows dozens (issue 18: one, when the owner had been signed out): a floor well below.
    assert steps.linked >= MIN_LINKED_STEPS, f"{steps.linked} linked steps: {steps.by_operation}"
    for resource in ("media_id", "collection_id"):
        assert steps.linked_into.get(resource), f"no link into a {resource} route: {steps}"
