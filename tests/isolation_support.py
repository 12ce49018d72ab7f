"""The tenant-isolation walker: every operation of the OpenAPI document, as every kind of
principal that must not reach org A's data (issue 3).

The tables below are the classification a new route needs. An operation that is in neither
PUBLIC_OPERATIONS nor POLICY, a path parameter nobody mapped, a required query/header parameter
nobody filled, or a route hidden from the OpenAPI document that nobody listed, is a failure:
the next engineer has to say what the route is before the suite is green again.

`walk()` collects every failure and raises one AssertionError naming them all, so the self-check
in tests/test_tenant_isolation.py can run it on an app with a leaky route and see it fail.
"""

import copy
import dataclasses
import json
import os
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

import httpx
from fastapi import FastAPI
from starlette.routing import Mount, WebSocketRoute

from mediakeep.auth.security import create_access_token
from mediakeep.ids import new_id
from tests.factories import TestUser, new_user
from tests.mediagen import data_url, png

API = "/api/v1"

# ------------------------------------------------------------------ classification tables

# Operations anyone may call, each with the reason it needs no credentials.
PUBLIC_OPERATIONS: dict[str, str] = {
    "GET /healthz": "liveness probe; API.md: no auth, no I/O",
    "GET /readyz": "readiness probe for load balancers; says only which backend is down",
    "GET /metrics": "Prometheus scrape; aggregate counters only, no tenant data",
    "GET /files/{key}": "local storage's signed links: the HMAC signature and expiry are the "
    "credential (checked in test_signed_files_need_a_valid_signature)",
    "POST /api/v1/auth/register": "creating an account cannot need one",
    "POST /api/v1/auth/login": "exchanges email and password for tokens",
    "POST /api/v1/auth/refresh": "the refresh token in the body is the credential",
    "POST /api/v1/auth/logout": "the refresh token in the body is the credential",
    "POST /api/v1/auth/guest-login": "mints a new guest with its own empty org (off by default)",
    "GET /t/{signature}/{options}/{media_id}": "signed transform URLs: the HMAC over options "
    "and media id with the media's org key is the credential (tests/transforms)",
    "GET /stream/{token}/{media_id}/{fmt}/{name}": "signed stream token is the credential "
    "(bound to org, principal, media and expiry; tests/streaming)",
}

# Operations classified but not walked, with the reason and the test that covers them instead.
NOT_WALKED: dict[str, str] = {}

# Operations that end the calling user's own sessions (no org, no resource id). Walked like any
# other, but every principal calls them as a stand-in made for that call (a fresh user of its
# own org for the stranger, a spare viewer of A for the viewer), so the walk's own tokens live
# on; the owner's snapshot and the walk's later calls show no one else's session ended.
ENDS_CALLERS_SESSIONS: dict[str, str] = {
    "POST /api/v1/auth/logout-all": "ends every session of the caller's own user "
    "(tests/auth/test_sessions_end.py checks that it does)",
}

# Routes the OpenAPI document does not show (so the walker would not see them on its own).
# A value "walk as GET" makes the walker call it with the GET twin's policy.
WALK_AS_GET = "walk as GET"
HIDDEN_ROUTES: dict[str, str] = {
    "GET /openapi.json": "public: the OpenAPI document itself",
    "HEAD /openapi.json": "public: the OpenAPI document itself",
    "GET /docs": "public: Swagger UI page (static HTML)",
    "GET /docs/assets/{name}": "public: Swagger UI / ReDoc assets shipped in the wheel",
    "GET /redoc": "public: ReDoc page (static HTML)",
    "HEAD /files/{key}": "public: HEAD twin of the signed files route",
    "HEAD /api/v1/media/{media_id}/content": WALK_AS_GET,
    "HEAD /t/{signature}/{options}/{media_id}": "public: HEAD twin of the signed transform route",
    "HEAD /stream/{token}/{media_id}/{fmt}/{name}": "public: HEAD twin of the signed stream route",
    "GET /": "public: the web app's static index.html; it holds no tenant data (tests/web)",
    "MOUNT /static": "public: the web app's static JS/CSS files, the same for everyone",
    "WEBSOCKET /api/v1/realtime": "authenticates itself (header or first `auth` message, "
    "else close 4401) and sends only the principal's org's events (tests/events/test_realtime)",
}
PUBLIC_OPERATIONS |= {
    "PUT /uploads/local/{key}": "local storage's signed upload URLs: the HMAC over key, size, "
    "type and expiry is the credential (tests/uploads/test_enforcement.py)",
    "OPTIONS /api/v1/uploads/tus": "tus discovery: the server's capabilities, no tenant data",
    "OPTIONS /api/v1/uploads/tus/{upload_id}": "tus discovery: the server's capabilities only",
}

Need = Literal["viewer", "member", "admin", "owner", "self"]

# The least role in org A an operation needs. "self" = it acts on the caller's own account
# (profile, the orgs they belong to, creating a new org), never on an org's resources: any
# signed-in user may call it, and it must still show nothing of an org they are not in.
POLICY: dict[str, Need] = {
    "GET /api/v1/users/me": "self",
    "POST /api/v1/auth/logout-all": "self",
    "PATCH /api/v1/users/me": "self",
    "GET /api/v1/orgs": "self",
    "POST /api/v1/orgs": "self",
    "POST /api/v1/api-keys": "admin",
    "GET /api/v1/api-keys": "admin",
    "DELETE /api/v1/api-keys/{id}": "admin",
    "POST /api/v1/media/upload": "member",
    "POST /api/v1/media": "member",
    "GET /api/v1/media": "viewer",
    "POST /api/v1/media/batch": "viewer",
    "POST /api/v1/media/resolve": "viewer",
    "GET /api/v1/media/{media_id}": "viewer",
    "PATCH /api/v1/media/{media_id}": "member",
    "DELETE /api/v1/media/{media_id}": "member",
    "GET /api/v1/media/{media_id}/presign": "viewer",
    "GET /api/v1/media/{media_id}/content": "viewer",
    "GET /api/v1/media/{media_id}/variants": "viewer",
    "GET /api/v1/media/{media_id}/variants/{name}": "viewer",
    "POST /api/v1/media/{media_id}/variants": "member",
    "POST /api/v1/media/{media_id}/convert": "member",
    "POST /api/v1/media/{media_id}/resize": "member",
    "POST /api/v1/media/{media_id}/crop": "member",
    "POST /api/v1/media/{media_id}/transcode": "member",
    "POST /api/v1/media/{media_id}/trim": "member",
    "POST /api/v1/media/{media_id}/thumbnail": "member",
    "POST /api/v1/media/{media_id}/stream": "member",
    "GET /api/v1/media/{media_id}/stream": "viewer",
    "POST /api/v1/media/{media_id}/transform-url": "viewer",
    "GET /api/v1/media/{media_id}/captions": "viewer",
    "POST /api/v1/media/{media_id}/captions": "member",
    "PATCH /api/v1/media/{media_id}/captions/{language}": "member",
    "GET /api/v1/media/{media_id}/captions/{language}.vtt": "viewer",
    "GET /api/v1/media/{media_id}/captions/{language}.srt": "viewer",
    "GET /api/v1/media/{media_id}/transcript": "viewer",
    "POST /api/v1/ai/generate-image": "member",
    "POST /api/v1/ai/generate-audio": "member",
    "POST /api/v1/ai/generate-caption": "member",
    "GET /api/v1/ai/providers": "viewer",
    "POST /api/v1/orgs/{slug}/members": "owner",
    "GET /api/v1/orgs/{slug}/members": "viewer",
    "DELETE /api/v1/orgs/{slug}/members/{user_id}": "owner",
    "POST /api/v1/orgs/{slug}/signing-keys/rotate": "admin",
    "GET /api/v1/usage": "viewer",
    "GET /api/v1/events": "viewer",  # walked with follow=false: the replay, then the end
    "POST /api/v1/collections": "member",
    "GET /api/v1/collections": "viewer",
    "GET /api/v1/collections/{collection_id}": "viewer",
    "PATCH /api/v1/collections/{collection_id}": "member",
    "DELETE /api/v1/collections/{collection_id}": "member",
    "POST /api/v1/collections/{collection_id}/media": "member",
    "GET /api/v1/collections/{collection_id}/media": "viewer",
    "DELETE /api/v1/collections/{collection_id}/media/{media_id}": "member",
    "GET /api/v1/jobs": "viewer",
    "POST /api/v1/webhooks": "admin",
    "GET /api/v1/webhooks": "admin",
    "GET /api/v1/webhooks/{webhook_id}": "admin",
    "PATCH /api/v1/webhooks/{webhook_id}": "admin",
    "DELETE /api/v1/webhooks/{webhook_id}": "admin",
    "GET /api/v1/webhooks/{webhook_id}/deliveries": "admin",
    "POST /api/v1/webhooks/{webhook_id}/test": "admin",
    "GET /api/v1/jobs/{job_id}": "viewer",
    "POST /api/v1/jobs/{job_id}/cancel": "member",
    "POST /api/v1/media/batch/convert": "member",
    "POST /api/v1/media/upload-url": "member",
    "POST /api/v1/media/prepare-upload": "member",
    "POST /api/v1/media/{media_id}/finalize": "member",
    "POST /api/v1/uploads/tus": "member",
    "HEAD /api/v1/uploads/tus/{upload_id}": "member",
    "GET /api/v1/uploads/tus/{upload_id}": "member",  # HEAD is checked under its GET key
    "PATCH /api/v1/uploads/tus/{upload_id}": "member",
    "DELETE /api/v1/uploads/tus/{upload_id}": "member",
}

# Statuses a viewer's allowed call may also get besides the operation's documented 2xx/3xx,
# when the fixture resource legitimately does not exist; with the reason.
VIEWER_ALSO_ACCEPTED: dict[str, tuple[Callable[["World"], set[int]], str]] = {
    "GET /api/v1/media/{media_id}/variants/{name}": (
        lambda w: set() if w.media["variants"] else {404},
        "the walker asks for A's first variant; while this version makes no variants (no "
        "processing yet) A's image has none, so 404 is right; once it has one, only 302 is",
    ),
    "GET /api/v1/media/{media_id}/captions/{language}.vtt": (
        lambda _: {404},
        "A's media has no captions in the walker's world, so its caption file is a 404",
    ),
    "GET /api/v1/media/{media_id}/captions/{language}.srt": (
        lambda _: {404},
        "A's media has no captions in the walker's world, so its caption file is a 404",
    ),
    "GET /api/v1/media/{media_id}/stream": (
        lambda _: {404},
        "A's media is an image: no stream was ever asked for, so its stream is a 404",
    ),
    "GET /api/v1/media/{media_id}/transcript": (
        lambda _: {404},
        "A's media has no captions in the walker's world, so it has no transcript (404)",
    ),
    "GET /api/v1/jobs/{job_id}": (
        lambda _: {404},
        "org A has no job (its image was uploaded synchronously): the walker asks for an id "
        "that exists nowhere",
    ),
}


@dataclass
class World:
    """Org A (owner, a viewer member, one image, an API key) and the principals that try it."""

    owner: TestUser
    viewer: TestUser
    stranger: TestUser  # owner of org B, not a member of A
    bystander: TestUser  # a third user, in no shared org
    media: dict[str, Any]
    key_id: str
    key_secret: str
    revoked_key: str
    expired_token: str
    forged_token: str
    baseline: dict[str, Any] = field(default_factory=dict)
    collection: dict[str, Any] = field(default_factory=dict)  # holds `media`
    # A second viewer of A, the viewer's stand-in for ENDS_CALLERS_SESSIONS (used once).
    spare_viewer: TestUser | None = None

    @property
    def slug(self) -> str:
        return self.owner.org_slug

    @property
    def variant_name(self) -> str:
        variants = self.media["variants"]
        return str(variants[0]["name"]) if variants else "thumbnail"

    def markers(self) -> dict[str, str]:
        """Strings that only org A's data contains: none may reach an outsider's answer."""
        return {
            "A's org id": self.owner.org_id,
            "A's slug": self.owner.org_slug,
            "A's media id": self.media["id"],
            "A's media sha256": self.media["sha256"],
            "A's media filename": self.media["filename"],
            "A's API key id": self.key_id,
            "A's collection id": self.collection.get("id", ""),
            "A's collection name": self.collection.get("name", ""),
            "A owner's user id": self.owner.user_id,
            "A owner's email": self.owner.email,
            "A viewer's email": self.viewer.email,
        }


# Path parameters: (path prefix, name) -> (A's value, a well-formed value that exists nowhere,
# whether the value names a resource of A). The first matching prefix wins.
ParamValue = tuple[Callable[[World], str], Callable[[World], str], bool]
PATH_PARAMS: list[tuple[str, str, ParamValue]] = [
    # `media_id` names a media wherever it appears (a collection's member, a job's input...).
    (f"{API}/", "media_id", (lambda w: w.media["id"], lambda w: _fake_id(w.media["id"]), True)),
    (f"{API}/media/", "id", (lambda w: w.media["id"], lambda w: _fake_id(w.media["id"]), True)),
    (f"{API}/media/", "name", (lambda w: w.variant_name, lambda w: w.variant_name, False)),
    # A caption language is not a resource of its own: A's media has none in the walker.
    (f"{API}/media/", "language", (lambda _: "en", lambda _: "en", False)),
    (
        f"{API}/collections/",
        "collection_id",
        (lambda w: w.collection["id"], lambda w: _fake_id(w.collection["id"]), True),
    ),
    (f"{API}/api-keys/", "id", (lambda w: w.key_id, lambda w: _fake_id(w.key_id), True)),
    (f"{API}/api-keys/", "key_id", (lambda w: w.key_id, lambda w: _fake_id(w.key_id), True)),
    (f"{API}/orgs/", "slug", (lambda w: w.slug, lambda _: f"no-such-{os.urandom(4).hex()}", True)),
    # Org A has no tus upload in flight: both values exist nowhere; outsiders get the same 404.
    (
        f"{API}/uploads/tus/",
        "upload_id",
        (lambda _: new_id("upl"), lambda _: new_id("upl"), True),
    ),
    # Org A has no job: both values exist nowhere, and every outsider must get the same 404.
    (f"{API}/jobs/", "job_id", (lambda _: new_id("job"), lambda _: new_id("job"), True)),
    # Org A has no webhook: both values exist nowhere; outsiders get the same 404.
    (f"{API}/webhooks/", "webhook_id", (lambda _: new_id("wh"), lambda _: new_id("wh"), True)),
    (
        f"{API}/",
        "user_id",
        (lambda w: w.owner.user_id, lambda w: _fake_id(w.owner.user_id), True),
    ),
]

# Required query / header parameters, by name. Empty today: no protected operation has one.
REQUIRED_PARAMS: dict[str, Callable[[World], str]] = {}


def _fake_id(real: str) -> str:
    """A fresh id with the same prefix: well formed, but no resource anywhere has it."""
    return str(new_id(real.partition("_")[0]))


def _upload_body(_: World) -> dict[str, Any]:
    return {"files": {"file": ("walker.png", png(), "image/png")}}


# Request bodies: small valid bodies by operation, fresh per request. A JSON operation missing
# here gets a body made from its schema (required fields only).
BODIES: dict[str, Callable[[World], dict[str, Any]]] = {
    "PATCH /api/v1/users/me": lambda _: {"json": {"name": "Walked"}},
    "POST /api/v1/orgs": lambda _: {
        "json": {"slug": f"walker-{os.urandom(5).hex()}", "name": "Walker"}
    },
    "POST /api/v1/api-keys": lambda _: {"json": {"name": "walker", "role": "member"}},
    "POST /api/v1/media/upload": _upload_body,
    "POST /api/v1/media": lambda _: {
        "json": {"source": {"type": "data_url", "data_url": data_url(png())}}
    },
    "POST /api/v1/media/batch": lambda w: {"json": {"ids": [w.media["id"]]}},
    "POST /api/v1/collections": lambda _: {"json": {"name": "walker"}},
    # An address literal that is public: the SSRF guard passes it without a DNS lookup.
    "POST /api/v1/webhooks": lambda _: {
        "json": {"url": "http://93.184.215.14/walker", "events": ["media.ready"]}
    },
    "PATCH /api/v1/webhooks/{webhook_id}": lambda _: {"json": {"description": "walked"}},
    "PATCH /api/v1/collections/{collection_id}": lambda _: {"json": {"name": "walked"}},
    "POST /api/v1/collections/{collection_id}/media": lambda w: {
        "json": {"media_ids": [w.media["id"]]}
    },
    "POST /api/v1/media/{media_id}/variants": lambda _: {"json": {}},
    "POST /api/v1/media/{media_id}/captions": lambda _: {
        "json": {"language": "en", "content": "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nhi\n"}
    },
    "PATCH /api/v1/media/{media_id}/captions/{language}": lambda _: {"json": {"approved": False}},
    "POST /api/v1/ai/generate-image": lambda _: {"json": {"prompt": "a walker's lighthouse"}},
    "POST /api/v1/ai/generate-audio": lambda _: {"json": {"text": "walker", "format": "wav"}},
    "POST /api/v1/media/{media_id}/convert": lambda _: {"json": {"format": "png"}},
    "POST /api/v1/media/{media_id}/resize": lambda _: {"json": {"width": 8}},
    "POST /api/v1/media/{media_id}/transcode": lambda _: {"json": {"format": "mp4"}},
    "POST /api/v1/media/{media_id}/trim": lambda _: {"json": {"start_time": 0, "end_time": 1}},
    "POST /api/v1/media/{media_id}/thumbnail": lambda _: {"json": {"timestamp": 0}},
    "POST /api/v1/media/{media_id}/stream": lambda _: {"json": {"formats": ["hls", "dash"]}},
    "POST /api/v1/media/{media_id}/crop": lambda _: {
        "json": {"x": 0, "y": 0, "width": 4, "height": 4, "mode": "replace"}
    },
    "POST /api/v1/media/resolve": lambda w: {"json": {"ids": [w.media["id"]]}},
    "GET /api/v1/events": lambda _: {
        "params": {"follow": "false"},
        "headers": {"Last-Event-ID": new_id("evt")},
    },
    "POST /api/v1/media/batch/convert": lambda w: {
        "json": {"ids": [w.media["id"]], "format": "png"}
    },
    "POST /api/v1/media/upload-url": lambda _: {
        "json": {"filename": "w.png", "mime": "image/png", "size_bytes": 100}
    },
    "POST /api/v1/media/prepare-upload": lambda _: {
        "json": {"filename": "w.png", "mime": "image/png", "size_bytes": 100}
    },
    "POST /api/v1/media/{media_id}/finalize": lambda _: {"json": {}},
    "POST /api/v1/uploads/tus": lambda _: {
        "headers": {"Tus-Resumable": "1.0.0", "Upload-Length": "100"}
    },
    "PATCH /api/v1/uploads/tus/{upload_id}": lambda _: {
        "headers": {
            "Tus-Resumable": "1.0.0",
            "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream",
        },
        "content": b"x",
    },
    "DELETE /api/v1/uploads/tus/{upload_id}": lambda _: {"headers": {"Tus-Resumable": "1.0.0"}},
    "HEAD /api/v1/uploads/tus/{upload_id}": lambda _: {"headers": {"Tus-Resumable": "1.0.0"}},
    "GET /api/v1/uploads/tus/{upload_id}": lambda _: {"headers": {"Tus-Resumable": "1.0.0"}},
    "PATCH /api/v1/media/{media_id}": lambda _: {
        "json": {"alt": "changed by the walker", "filename": "walked.png", "is_private": True}
    },
    # The most harmful write: making the outsider an owner of A.
    "POST /api/v1/orgs/{slug}/members": lambda w: {
        "json": {"email": w.stranger.email, "role": "owner"}
    },
}

# Operations whose body (not path) names a resource of A: (world, fake) -> the body, naming A's
# resource, or with fake=True one that exists nowhere. An outsider must get the same 404 for both.
BODIES_NAMING_A: dict[str, Callable[[World, bool], dict[str, Any]]] = {
    "POST /api/v1/ai/generate-caption": lambda w, fake: {
        "json": {"media_id": _fake_id(w.media["id"]) if fake else w.media["id"]}
    },
}

# ------------------------------------------------------------------ principals

Expect = Literal["unauthenticated", "outsider", "not_member", "viewer"]


@dataclass(frozen=True)
class Principal:
    name: str
    expect: Expect
    headers: Callable[[World], dict[str, str]]
    query: Callable[[World], dict[str, str]] = lambda _: {}


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


PRINCIPALS: list[Principal] = [
    Principal("no credentials", "unauthenticated", lambda _: {}),
    Principal("expired token", "unauthenticated", lambda w: _bearer(w.expired_token)),
    Principal(
        "token signed with another secret", "unauthenticated", lambda w: _bearer(w.forged_token)
    ),
    Principal("revoked API key", "unauthenticated", lambda w: {"X-API-Key": w.revoked_key}),
    Principal("revoked API key as bearer", "unauthenticated", lambda w: _bearer(w.revoked_key)),
    Principal("stranger (org B)", "outsider", lambda w: w.stranger.headers),
    Principal(
        "stranger with X-Org A", "not_member", lambda w: w.stranger.headers | {"X-Org": w.slug}
    ),
    Principal(
        "stranger with ?org=A",
        "not_member",
        lambda w: w.stranger.headers,
        lambda w: {"org": w.slug},
    ),
    Principal(
        "A's API key with X-Org B",
        "not_member",
        lambda w: {"X-API-Key": w.key_secret, "X-Org": w.stranger.org_slug},
    ),
    Principal("viewer of A", "viewer", lambda w: w.viewer.headers | {"X-Org": w.slug}),
]

# ------------------------------------------------------------------ building org A


async def build_world(client: httpx.AsyncClient, app: FastAPI) -> World:
    owner = await new_user(client, name="Alice Owner")
    viewer = await new_user(client, name="Vic Viewer")
    stranger = await new_user(client, name="Sam Stranger")
    bystander = await new_user(client, name="Bea Bystander")
    spare_viewer = await new_user(client, name="Val Viewer")

    for member in (viewer, spare_viewer):
        added = await client.post(
            f"{API}/orgs/{owner.org_slug}/members",
            json={"email": member.email, "role": "viewer"},
            headers=owner.headers,
        )
        assert added.status_code == 201, added.text

    uploaded = await client.post(
        f"{API}/media/upload",
        files={"file": (f"a-secret-{os.urandom(4).hex()}.png", png(), "image/png")},
        data={"alt": "A's alt text", "caption": "A's caption"},
        headers=owner.headers,
    )
    assert uploaded.status_code == 201, uploaded.text
    media = uploaded.json()
    assert media["org_id"] == owner.org_id

    key = await client.post(
        f"{API}/api-keys", json={"name": "A's key", "role": "admin"}, headers=owner.headers
    )
    assert key.status_code == 201, key.text
    doomed = await client.post(f"{API}/api-keys", json={"name": "doomed"}, headers=owner.headers)
    assert doomed.status_code == 201, doomed.text
    revoked = await client.delete(f"{API}/api-keys/{doomed.json()['id']}", headers=owner.headers)
    assert revoked.status_code == 204, revoked.text

    secret = app.state.services.settings.secret_key
    world = World(
        owner=owner,
        viewer=viewer,
        stranger=stranger,
        bystander=bystander,
        spare_viewer=spare_viewer,
        media=media,
        key_id=key.json()["id"],
        key_secret=key.json()["key"],
        revoked_key=doomed.json()["key"],
        expired_token=create_access_token(secret, owner.user_id, timedelta(seconds=-60)),
        forged_token=create_access_token(
            "not-the-secret-" + "y" * 40, owner.user_id, timedelta(minutes=5)
        ),
    )
    collection = await client.post(
        f"{API}/collections",
        json={"name": f"A-collection-{os.urandom(4).hex()}"},
        headers=owner.headers,
    )
    assert collection.status_code == 201, collection.text
    world.collection = collection.json()
    filled = await client.post(
        f"{API}/collections/{world.collection['id']}/media",
        json={"media_ids": [media["id"]]},
        headers=owner.headers,
    )
    assert filled.status_code == 200, filled.text
    # Sanity: the credentials that must work do, and org B starts empty.
    for headers in (
        owner.headers,
        {"X-API-Key": world.key_secret},
        viewer.headers | {"X-Org": world.slug},
    ):
        seen = await client.get(f"{API}/media/{media['id']}", headers=headers)
        assert seen.status_code == 200, seen.text
    usage = await client.get(f"{API}/usage", headers=stranger.headers)
    assert usage.status_code == 200, usage.text
    assert usage.json()["media_count"] == 0, usage.json()
    world.baseline = await snapshot(client, world)
    return world


def _stable(value: Any) -> Any:
    """A media answer without its short-lived links (they are re-signed on every read)."""
    if isinstance(value, dict):
        return {
            k: _stable(v)
            for k, v in value.items()
            if k not in ("url", "expires_at") and not k.endswith("_url")
        }
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


async def media_state(client: httpx.AsyncClient, world: World) -> Any:
    response = await client.get(f"{API}/media/{world.media['id']}", headers=world.owner.headers)
    if response.status_code != 200:
        return f"GET A's media as its owner: {response.status_code} {response.text[:200]}"
    return _stable(response.json())


async def snapshot(client: httpx.AsyncClient, world: World) -> dict[str, Any]:
    """What org A holds, read by its owner: its media, API keys and members."""
    owner = world.owner.headers
    media = await client.get(f"{API}/media", params={"include_total": "true"}, headers=owner)
    keys = await client.get(f"{API}/api-keys", headers=owner)
    members = await client.get(f"{API}/orgs/{world.slug}/members", headers=owner)
    usage = await client.get(f"{API}/usage", headers=owner)
    collections = await client.get(f"{API}/collections", headers=owner)
    in_collection = await client.get(
        f"{API}/collections/{world.collection['id']}/media", headers=owner
    )
    for response in (media, keys, members, usage, collections, in_collection):
        assert response.status_code == 200, response.text
    return {
        "media": await media_state(client, world),
        "media ids": sorted(item["id"] for item in media.json()["data"]),
        "media total": media.json()["total"],
        "api keys": sorted((k["id"], k["role"]) for k in keys.json()["data"]),
        "members": sorted((m["user_id"], m["role"]) for m in members.json()["data"]),
        "usage": {k: usage.json()[k] for k in ("media_count", "bytes_stored")},
        "collections": sorted(
            (c["id"], c["name"], c["media_count"]) for c in collections.json()["data"]
        ),
        "collection media": sorted(item["id"] for item in in_collection.json()["data"]),
    }


# ------------------------------------------------------------------ the walker


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    spec: dict[str, Any]

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def policy_key(self) -> str:
        return f"GET {self.path}" if self.method == "HEAD" else self.key

    @property
    def writes(self) -> bool:
        return self.method not in ("GET", "HEAD")

    def documented_success(self) -> set[int]:
        found = {int(s) for s in self.spec.get("responses", {}) if s[:1] in "23" and s.isdigit()}
        return found or {200}


@dataclass
class WalkReport:
    """How many calls each principal made and what they got."""

    operations: list[str] = field(default_factory=list)
    public: list[str] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)
    statuses: dict[str, Counter[int]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


_PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")
_METHODS = ("get", "put", "post", "patch", "delete", "head", "options")


def operations_of(openapi: dict[str, Any]) -> list[Operation]:
    found = []
    for path, item in openapi.get("paths", {}).items():
        for method, spec in item.items():
            if method in _METHODS:
                found.append(Operation(method.upper(), path, spec))
    return found


def _normal(path: str) -> str:
    return _PARAM.sub(lambda m: "{" + m.group(1) + "}", path)


def app_routes(app: FastAPI) -> set[str]:
    """'METHOD path' of every route the app answers, including those hidden from OpenAPI;
    'MOUNT path' / 'WEBSOCKET path' for sub-apps and sockets, which OpenAPI never shows."""
    found: set[str] = set()

    def add(route: Any) -> None:
        if hasattr(route, "effective_route_contexts"):  # FastAPI's included routers
            for context in route.effective_route_contexts():
                add(context)
            return
        original = getattr(route, "original_route", route)
        path = getattr(route, "path", None)
        methods = getattr(route, "methods", None)
        if path is None:
            found.add(f"UNKNOWN {route!r}")
        elif isinstance(original, Mount):
            found.add(f"MOUNT {_normal(path)}")
        elif isinstance(original, WebSocketRoute):
            found.add(f"WEBSOCKET {_normal(path)}")
        elif methods:
            found.update(f"{m} {_normal(path)}" for m in methods)
        else:
            found.add(f"UNKNOWN {_normal(path)}")

    for route in app.routes:
        add(route)
    return found


def audit_routes(app: FastAPI, openapi: dict[str, Any]) -> list[str]:
    """Routes the app serves that are neither in the OpenAPI document nor in HIDDEN_ROUTES."""
    documented = {op.key for op in operations_of(openapi)}
    return sorted(
        f"{route}: served but not in /openapi.json nor in HIDDEN_ROUTES (classify it)"
        for route in app_routes(app)
        if route not in documented and route not in HIDDEN_ROUTES
    )


def _resolve(ref: str, openapi: dict[str, Any]) -> dict[str, Any]:
    node: Any = openapi
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return dict(node)


def minimal_json(schema: dict[str, Any], openapi: dict[str, Any], depth: int = 0) -> Any:
    """The smallest value the schema allows, filling only required properties."""
    if depth > 8:
        raise ValueError("schema too deep")
    if "$ref" in schema:
        return minimal_json(_resolve(schema["$ref"], openapi), openapi, depth + 1)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    for combinator in ("anyOf", "oneOf", "allOf"):
        if combinator in schema:
            options = [s for s in schema[combinator] if s.get("type") != "null"]
            return minimal_json(options[0], openapi, depth + 1)
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next(k for k in kind if k != "null")
    if kind == "object":
        properties = schema.get("properties", {})
        return {
            name: minimal_json(properties.get(name, {}), openapi, depth + 1)
            for name in schema.get("required", [])
        }
    if kind == "array":
        count = schema.get("minItems", 0)
        return [minimal_json(schema.get("items", {}), openapi, depth + 1) for _ in range(count)]
    if kind == "string":
        return "x" * max(1, schema.get("minLength", 1))
    if kind == "integer":
        return max(1, schema.get("minimum", 1))
    if kind == "number":
        return 1.0
    if kind == "boolean":
        return False
    raise ValueError(f"no minimal value for {schema}")


@dataclass
class Built:
    url: str
    params: dict[str, str]
    body: dict[str, Any]
    names_a: bool  # a path parameter names a resource of org A
    substitutions: list[tuple[str, str]]  # (A's value, fake value) per path parameter
    text: str  # everything the request carries, to know what an answer may echo


def build_request(
    op: Operation, world: World, openapi: dict[str, Any], *, fake: bool = False
) -> Built:
    """The request for one operation against org A (or, with fake=True, against ids that exist
    nowhere). Raises LookupError for anything nobody classified."""
    names_a = False
    substitutions: list[tuple[str, str]] = []

    def fill(match: re.Match[str]) -> str:
        nonlocal names_a
        name = match.group(1)
        for prefix, param, (real, unreal, of_a) in PATH_PARAMS:
            if param == name and op.path.startswith(prefix):
                value, other = real(world), unreal(world)
                names_a = names_a or of_a
                substitutions.append((value, other))
                return other if fake else value
        raise LookupError(
            f"{op.key}: path parameter {{{name}}} is not in PATH_PARAMS; map it to a resource "
            "of org A (and say whether it names one)"
        )

    url = _PARAM.sub(fill, op.path)
    params: dict[str, str] = {}
    headers_needed: list[str] = []
    # Required headers a BODIES entry sends (tus: Tus-Resumable, Upload-Length, ...) are met.
    supplied = BODIES[op.policy_key](world).get("headers", {}) if op.policy_key in BODIES else {}
    for parameter in op.spec.get("parameters", []):
        if not parameter.get("required") or parameter["in"] == "path":
            continue
        if parameter["in"] == "header" and parameter["name"] in supplied:
            continue
        filler = REQUIRED_PARAMS.get(parameter["name"])
        if filler is None:
            raise LookupError(
                f"{op.key}: required {parameter['in']} parameter {parameter['name']!r} is not "
                "in REQUIRED_PARAMS"
            )
        if parameter["in"] == "query":
            params[parameter["name"]] = filler(world)
        else:
            headers_needed.append(parameter["name"])
    if headers_needed:
        raise LookupError(f"{op.key}: required header/cookie parameters {headers_needed}")

    body: dict[str, Any] = {}
    maker = BODIES.get(op.policy_key)
    request_body = op.spec.get("requestBody")
    naming = BODIES_NAMING_A.get(op.policy_key)
    if naming is not None:
        body = naming(world, fake)
        names_a = True
    elif maker is not None:
        body = maker(world)
    elif request_body:
        content = request_body.get("content", {})
        if "application/json" in content:
            try:
                body = {"json": minimal_json(content["application/json"]["schema"], openapi)}
            except (ValueError, KeyError, StopIteration, IndexError) as exc:
                raise LookupError(
                    f"{op.key}: cannot derive a body ({exc}); add it to BODIES"
                ) from exc
        elif request_body.get("required"):
            raise LookupError(f"{op.key}: a {sorted(content)} body is needed; add it to BODIES")
    text = url + json.dumps(params) + json.dumps(body.get("json")) + json.dumps(body.get("data"))
    return Built(url, params, body, names_a, substitutions, text)


def _error_code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        code = body["error"].get("code")
        return code if isinstance(code, str) else None
    return None


def _error_message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return ""


async def _send(
    client: httpx.AsyncClient,
    op: Operation,
    built: Built,
    headers: dict[str, str],
    extra_params: dict[str, str],
) -> httpx.Response:
    body = dict(built.body)
    protocol_headers = body.pop("headers", {})  # e.g. tus's Tus-Resumable, never credentials
    fixed_params = body.pop("params", {})  # e.g. follow=false for the endless SSE stream
    return await client.request(
        op.method,
        built.url,
        params=built.params | fixed_params | extra_params,
        headers=protocol_headers | headers,
        follow_redirects=False,
        **body,
    )


def _leaks(response: httpx.Response, world: World, built: Built) -> list[str]:
    """Markers of org A in the answer that the request itself did not carry."""
    text = response.text
    return [
        label
        for label, marker in world.markers().items()
        if marker and marker in text and marker not in built.text
    ]


def _expected_error(
    response: httpx.Response, status: int, code: str, head_request: bool
) -> str | None:
    if response.status_code != status:
        return f"expected {status} {code}, got {response.status_code}: {response.text[:300]}"
    if not head_request and _error_code(response) != code:
        return f"expected error code {code}, got {response.text[:300]}"
    return None


def _normalise(message: str, substitutions: list[tuple[str, str]]) -> str:
    for real, fake in substitutions:
        message = message.replace(real, "<ref>").replace(fake, "<ref>")
    return message


async def walk(
    client: httpx.AsyncClient,
    openapi: dict[str, Any],
    world: World,
    *,
    policy: dict[str, Need] | None = None,
    app: FastAPI | None = None,
) -> WalkReport:
    """Call every operation of `openapi` as every principal of PRINCIPALS and check each answer.

    Raises AssertionError listing every failure (unclassified routes, wrong statuses, leaks of
    A's data, changes to A). With `app`, routes hidden from the document are walked too (those
    HIDDEN_ROUTES marks "walk as GET") and unlisted hidden routes fail.
    """
    policy = POLICY if policy is None else policy
    report = WalkReport()
    walked: list[Operation] = []
    for op in operations_of(openapi):
        if op.key in PUBLIC_OPERATIONS:
            report.public.append(op.key)
        elif op.key in NOT_WALKED:
            continue
        elif op.key in policy:
            walked.append(op)
        else:
            report.failures.append(
                f"{op.key}: not classified: add it to POLICY (the least role in the org it "
                "needs) or, with a reason, to PUBLIC_OPERATIONS"
            )
    if app is not None:
        report.failures.extend(audit_routes(app, openapi))
        documented = {op.key: op for op in walked}
        for route, reason in HIDDEN_ROUTES.items():
            method, _, path = route.partition(" ")
            twin = documented.get(f"GET {path}")
            if reason == WALK_AS_GET and twin is not None and route in app_routes(app):
                walked.append(Operation(method, path, twin.spec))
    # Writes last, deletes at the very end: a wrong success must not hide later checks.
    walked.sort(key=lambda op: (op.writes, op.method == "DELETE", op.path))
    report.operations = [op.key for op in walked]

    for principal in PRINCIPALS:
        statuses: Counter[int] = Counter()
        report.statuses[principal.name] = statuses
        for op in walked:
            try:
                built = build_request(op, world, openapi)
            except LookupError as exc:
                if principal is PRINCIPALS[0]:
                    report.failures.append(str(exc))
                continue
            caller = await _stand_ins(client, world) if op.key in ENDS_CALLERS_SESSIONS else world
            headers = principal.headers(caller)
            response = await _send(client, op, built, headers, principal.query(caller))
            statuses[response.status_code] += 1
            report.calls[principal.name] += 1
            problem = await _check(client, op, built, principal, response, world, openapi, policy)
            if problem is None and op.writes:
                after = await media_state(client, world)
                if after != world.baseline["media"]:
                    problem = f"A's media changed: {after}"
            if problem:
                report.failures.append(f"{principal.name}: {op.key}: {problem}")
        state = await snapshot(client, world)
        if state != world.baseline:
            report.failures.append(
                f"{principal.name}: org A changed: {state} (it was {world.baseline})"
            )
            world.baseline = state  # report each change once
    if report.failures:
        raise AssertionError(
            f"{len(report.failures)} tenant-isolation failures:\n  " + "\n  ".join(report.failures)
        )
    return report


async def _stand_ins(client: httpx.AsyncClient, world: World) -> World:
    """The world as the principals see it for one call of an ENDS_CALLERS_SESSIONS operation:
    their user replaced by one whose sessions the walk does not need."""
    assert world.spare_viewer is not None
    stranger = await new_user(client, name="Stand-in Stranger")
    return dataclasses.replace(world, stranger=stranger, viewer=world.spare_viewer)


async def _check(
    client: httpx.AsyncClient,
    op: Operation,
    built: Built,
    principal: Principal,
    response: httpx.Response,
    world: World,
    openapi: dict[str, Any],
    policy: dict[str, Need],
) -> str | None:
    head = op.method == "HEAD"
    if principal.expect == "unauthenticated":
        return _expected_error(response, 401, "auth.unauthorized", head)
    if principal.expect == "not_member":
        return _expected_error(response, 404, "not_found", head)
    need = policy[op.policy_key]
    if principal.expect == "outsider":
        if built.names_a:
            problem = _expected_error(response, 404, "not_found", head)
            if problem is None:
                problem = await _probe(client, op, built, principal, response, world, openapi)
            return problem
        if response.status_code not in op.documented_success():
            got = f"{response.status_code}: {response.text[:300]}"
            return f"expected success in its own org, got {got}"
        leaks = _leaks(response, world, built)
        return f"answer shows {leaks}: {response.text[:300]}" if leaks else None
    # The viewer, acting in A.
    if need in ("viewer", "self"):
        accepted = op.documented_success()
        if op.policy_key in VIEWER_ALSO_ACCEPTED:
            accepted |= VIEWER_ALSO_ACCEPTED[op.policy_key][0](world)
        if response.status_code not in accepted:
            got = f"{response.status_code}: {response.text[:300]}"
            return f"a viewer may do this; expected {sorted(accepted)}, got {got}"
        return None
    return _expected_error(response, 403, "auth.forbidden", head)


async def _probe(
    client: httpx.AsyncClient,
    op: Operation,
    real: Built,
    principal: Principal,
    response: httpx.Response,
    world: World,
    openapi: dict[str, Any],
) -> str | None:
    """An outsider's answer for A's resource equals the answer for one that exists nowhere,
    so ids cannot be probed."""
    fake = build_request(op, world, openapi, fake=True)
    other = await _send(client, op, fake, principal.headers(world), principal.query(world))
    pairs = real.substitutions + fake.substitutions
    mine = (
        response.status_code,
        _error_code(response),
        _normalise(_error_message(response), pairs),
    )
    theirs = (other.status_code, _error_code(other), _normalise(_error_message(other), pairs))
    if mine != theirs:
        return f"A's resource answers {mine}, one that does not exist {theirs}: ids can be probed"
    return None


def only_paths(openapi: dict[str, Any], *paths: str) -> dict[str, Any]:
    """A copy of the document keeping only these paths (components stay)."""
    document = copy.deepcopy(openapi)
    document["paths"] = {p: v for p, v in document["paths"].items() if p in paths}
    return document
