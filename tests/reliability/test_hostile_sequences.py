"""Hostile sequences (issue 17's attack run, M3/L3/L4/I): an attacker holding something that
once worked — a password guess budget, an access token, a link, a weak key — tries it after
the server should have taken it back. Each case prepares that state through the public API,
makes the one hostile request and expects its documented refusal, on SQLite + local storage
and PostgreSQL + S3. The counts go to docs/reliability.md (checked by test_issue17_map.py).

The cases are deliberately small: the domain tests named in `tests/reliability/issue17.py`
check the same protections in depth (the legitimate paths next to the refused ones)."""

import contextlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI

from mediakeep.kit import signing
from tests.auth.support import bearer
from tests.factories import TestUser, new_user
from tests.media.support import fetch_url, settings_of
from tests.mediagen import png
from tests.orgs.support import ORGS, new_team
from tests.reliability.report import record
from tests.streaming.support import token_for

pytestmark = pytest.mark.reliability

API = "/api/v1"
MEDIA = f"{API}/media"


@dataclass(frozen=True)
class Ctx:
    app: FastAPI
    client: httpx.AsyncClient
    user: TestUser  # a fresh user of its own personal org


Attack = Callable[[Ctx], Awaitable[httpx.Response]]


@dataclass(frozen=True)
class Sequence:
    finding: str  # issue 17's finding id
    name: str
    status: int
    code: str
    attack: Attack


def _ok(response: httpx.Response, status: int = 200) -> httpx.Response:
    assert response.status_code == status, response.text
    return response


async def _login(ctx: Ctx, password: str) -> httpx.Response:
    return await ctx.client.post(
        f"{API}/auth/login", json={"email": ctx.user.email, "password": password}
    )


async def _me(ctx: Ctx, access_token: str) -> httpx.Response:
    return await ctx.client.get(f"{API}/users/me", headers=bearer(access_token))


async def _image(ctx: Ctx, headers: dict[str, str]) -> str:
    response = await ctx.client.post(
        f"{MEDIA}/upload", files={"file": ("s.png", png(40, 30), "image/png")}, headers=headers
    )
    return str(_ok(response, 201).json()["id"])


async def _make_private(ctx: Ctx, media_id: str) -> dict[str, object]:
    response = await ctx.client.patch(
        f"{MEDIA}/{media_id}", json={"is_private": True}, headers=ctx.user.headers
    )
    body: dict[str, object] = _ok(response).json()
    return body


async def _transform_path(ctx: Ctx, media_id: str) -> str:
    response = await ctx.client.post(
        f"{MEDIA}/{media_id}/transform-url", json={"width": 20}, headers=ctx.user.headers
    )
    url = str(_ok(response).json()["url"])
    return url.removeprefix(settings_of(ctx.app).public_url)


async def _rotate(ctx: Ctx) -> None:
    _ok(
        await ctx.client.post(
            f"{ORGS}/{ctx.user.org_slug}/signing-keys/rotate", json={}, headers=ctx.user.headers
        )
    )


# M3: failed logins braked per account, the right password included while braked.


async def right_password_after_a_run_of_wrong_ones(ctx: Ctx) -> httpx.Response:
    # The brake starts after AUTH_LOGIN_FAILURES_FREE (5) failures and locks the account for
    # AUTH_LOGIN_BACKOFF_BASE (1 s); a guesser keeps going until it is told to wait, then
    # tries the right password at once.
    for _ in range(20):
        if (await _login(ctx, "not the password")).status_code == 429:
            break
    return await _login(ctx, ctx.user.password)


# L4: access tokens end with their session; password change and profile need the right proof.


async def access_token_after_logout(ctx: Ctx) -> httpx.Response:
    _ok(await _me(ctx, ctx.user.access_token))  # the principal cache is warm
    _ok(
        await ctx.client.post(f"{API}/auth/logout", json={"refresh_token": ctx.user.refresh_token}),
        204,
    )
    return await _me(ctx, ctx.user.access_token)


async def other_sessions_token_after_logout_all(ctx: Ctx) -> httpx.Response:
    other = _ok(await _login(ctx, ctx.user.password)).json()["access_token"]
    _ok(await _me(ctx, other))
    _ok(await ctx.client.post(f"{API}/auth/logout-all", headers=ctx.user.headers), 204)
    return await _me(ctx, other)


async def other_sessions_token_after_password_change(ctx: Ctx) -> httpx.Response:
    other = _ok(await _login(ctx, ctx.user.password)).json()["access_token"]
    _ok(await _me(ctx, other))
    changed = await ctx.client.patch(
        f"{API}/users/me",
        headers=ctx.user.headers,
        json={"password": "a brand new passphrase", "current_password": ctx.user.password},
    )
    _ok(changed)
    return await _me(ctx, other)


async def access_token_after_refresh_token_reuse(ctx: Ctx) -> httpx.Response:
    body = {"refresh_token": ctx.user.refresh_token}
    fresh = _ok(await ctx.client.post(f"{API}/auth/refresh", json=body)).json()
    _ok(await _me(ctx, fresh["access_token"]))
    await ctx.client.post(f"{API}/auth/refresh", json=body)  # the stolen copy, replayed
    return await _me(ctx, fresh["access_token"])


async def password_change_without_the_current_password(ctx: Ctx) -> httpx.Response:
    return await ctx.client.patch(
        f"{API}/users/me", headers=ctx.user.headers, json={"password": "taken over now"}
    )


async def password_change_with_a_wrong_current_password(ctx: Ctx) -> httpx.Response:
    return await ctx.client.patch(
        f"{API}/users/me",
        headers=ctx.user.headers,
        json={"password": "taken over now", "current_password": "a guess"},
    )


async def viewer_api_key_renames_the_account(ctx: Ctx) -> httpx.Response:
    created = await ctx.client.post(
        f"{API}/api-keys", json={"name": "ro", "role": "viewer"}, headers=ctx.user.headers
    )
    key = _ok(created, 201).json()["key"]
    return await ctx.client.patch(
        f"{API}/users/me", headers={"X-Api-Key": key}, json={"name": "defaced"}
    )


# L3: links end with the org's signing key and with the holder's membership.


async def files_link_after_key_rotation(ctx: Ctx) -> httpx.Response:
    media = await _make_private(ctx, await _image(ctx, ctx.user.headers))
    url = str(media["url"])
    assert (await fetch_url(ctx.app, ctx.client, url)).status_code in {200, 302}
    await _rotate(ctx)
    return await fetch_url(ctx.app, ctx.client, url)


async def transform_url_after_key_rotation(ctx: Ctx) -> httpx.Response:
    path = await _transform_path(ctx, await _image(ctx, ctx.user.headers))
    _ok(await ctx.client.get(path))
    await _rotate(ctx)
    return await ctx.client.get(path)


async def removed_members_stream_url(ctx: Ctx) -> httpx.Response:
    team = await new_team(ctx.client)
    media_id = await _image(ctx, team.as_(team.member))
    token = token_for(
        settings_of(ctx.app).secret_key,
        team.org["id"],
        team.member.user_id,
        media_id,
        signing.expiry_in(3600),
    )
    path = f"/stream/{token}/{media_id}/hls/master.m3u8"
    # The token opens (the media has no stream: 404) while its holder is a member.
    _ok(await ctx.client.get(path), 404)
    removed = await ctx.client.delete(
        f"{ORGS}/{team.slug}/members/{team.member.user_id}", headers=team.as_(team.owner)
    )
    _ok(removed, 204)
    return await ctx.client.get(path)


async def member_rotates_the_orgs_signing_keys(ctx: Ctx) -> httpx.Response:
    team = await new_team(ctx.client)
    return await ctx.client.post(
        f"{ORGS}/{team.slug}/signing-keys/rotate", json={}, headers=team.as_(team.member)
    )


# I: `is_private` — a long-lived public transform URL stops working once the media is private.


async def public_transform_url_of_a_now_private_media(ctx: Ctx) -> httpx.Response:
    media_id = await _image(ctx, ctx.user.headers)
    path = await _transform_path(ctx, media_id)  # minted while public: no expiry
    await _make_private(ctx, media_id)
    return await ctx.client.get(path)


U401 = (401, "auth.unauthorized")
F403 = (403, "auth.forbidden")
CORPUS = [
    Sequence(
        "M3",
        "right password after a run of wrong ones",
        429,
        "auth.throttled",
        right_password_after_a_run_of_wrong_ones,
    ),
    Sequence("L4", "access token after logout", *U401, access_token_after_logout),
    Sequence(
        "L4", "other session's token after logout-all", *U401, other_sessions_token_after_logout_all
    ),
    Sequence(
        "L4",
        "other session's token after a password change",
        *U401,
        other_sessions_token_after_password_change,
    ),
    Sequence(
        "L4",
        "access token after refresh-token reuse",
        *U401,
        access_token_after_refresh_token_reuse,
    ),
    Sequence(
        "L4",
        "password change without the current password",
        *F403,
        password_change_without_the_current_password,
    ),
    Sequence(
        "L4",
        "password change with a wrong current password",
        *F403,
        password_change_with_a_wrong_current_password,
    ),
    Sequence("L4", "viewer API key renames the account", *F403, viewer_api_key_renames_the_account),
    Sequence("L3", "/files link after key rotation", *F403, files_link_after_key_rotation),
    Sequence("L3", "transform URL after key rotation", *F403, transform_url_after_key_rotation),
    Sequence("L3", "removed member's stream URL", *U401, removed_members_stream_url),
    Sequence(
        "L3", "member rotates the org's signing keys", *F403, member_rotates_the_orgs_signing_keys
    ),
    Sequence(
        "I",
        "public transform URL of a now private media",
        *F403,
        public_transform_url_of_a_now_private_media,
    ),
]
OUTCOMES: dict[str, int] = {}


@pytest.mark.parametrize("case", CORPUS, ids=[case.name for case in CORPUS])
async def test_hostile_sequence_is_refused(
    app: FastAPI, client: httpx.AsyncClient, backend: str, case: Sequence
) -> None:
    ctx = Ctx(app, client, await new_user(client))
    response = await case.attack(ctx)
    OUTCOMES[f"{backend}:{case.name}"] = response.status_code
    assert response.status_code == case.status, response.text[:500]
    error = response.json()["error"]
    assert error["code"] == case.code
    assert error["request_id"] == response.headers["x-request-id"]


@pytest.fixture(scope="module", autouse=True)
def report_hostile_sequences(request: pytest.FixtureRequest) -> Iterator[None]:
    """After the module, one report line of what ran (docs/reliability.md's figures). A report,
    not a check: every case asserts its own refusal."""
    yield
    if not OUTCOMES:
        return
    line = {
        "suite": "hostile_sequences",
        "cases": len(CORPUS),
        "requests": len(OUTCOMES),
        "refused": sum(1 for status in OUTCOMES.values() if 400 <= status < 500),
        "server_errors": sum(1 for status in OUTCOMES.values() if status >= 500),
    }
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        record(line)  # shown in a plain run, not only with -s
