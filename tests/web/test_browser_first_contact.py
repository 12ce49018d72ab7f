"""The web app's first-contact defects (issue 16, item 10), in a real browser.

Library cards without stray "null"/"undefined" text and with IEC sizes; a player with one
(keyboard-operable) control bar and the clip's length rounded from the API's duration; the
stream's details as a list, not JSON; the playground opening on GET /api/v1/media and clearing
the previous answer; a viewer's forms disabled with the reason.

One `mediakeep serve` (module) and one Chromium (session); every test opens its own browser
context. The owner signs in with an API key; the viewer is a second user added to the owner's
organisation with the `viewer` role, signed in with their own tokens. Screenshots (375 px wide)
go to tests/web/artifacts/.
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import mediagen
from tests.live import LiveServer

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
expect = sync_api.expect

pytestmark = [pytest.mark.slow]

PASSWORD = "a-long-password-for-tests"


@dataclass
class Org:
    server: LiveServer
    slug: str
    key: str  # the owner's admin API key
    clip_id: str  # a 6.00 s, 24 fps clip (hls.js reports 5.999999 s for it)
    image_id: str
    viewer: dict[str, str]  # the viewer's login answer (access and refresh tokens)

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.server.base_url, headers={"X-API-Key": self.key}, timeout=30
        )


def _register(http: httpx.Client) -> tuple[str, dict[str, str]]:
    email = f"first-{uuid.uuid4().hex[:10]}@example.com"
    res = http.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    assert res.status_code == 201, res.text
    tokens = http.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert tokens.status_code == 200, tokens.text
    return email, dict(tokens.json())


@pytest.fixture(scope="module")
def org(web_server: LiveServer) -> Org:
    with httpx.Client(base_url=web_server.base_url, timeout=60) as http:
        _, owner = _register(http)
        bearer = {"Authorization": f"Bearer {owner['access_token']}"}
        slug = http.get("/api/v1/orgs", headers=bearer).json()["data"][0]["slug"]
        created = http.post(
            "/api/v1/api-keys", json={"name": "owner", "role": "admin"}, headers=bearer
        )
        assert created.status_code == 201, created.text
        key = created.json()["key"]
        viewer_email, viewer = _register(http)
        added = http.post(
            f"/api/v1/orgs/{slug}/members",
            json={"email": viewer_email, "role": "viewer"},
            headers=bearer,
        )
        assert added.status_code in (200, 201), added.text
        ids = []
        for name, data, mime in (
            ("six.mp4", mediagen.mp4(seconds=6, width=320, height=240, fps=24), "video/mp4"),
            ("pic.jpg", mediagen.jpeg(1000, 800, quality=95), "image/jpeg"),  # > 1 MiB
        ):
            res = http.post(
                "/api/v1/media/upload",
                files={"file": (name, data, mime)},
                headers={"X-API-Key": key},
            )
            assert res.status_code == 201, res.text
            body = res.json()
            ids.append(body.get("media", body)["id"])
    return Org(web_server, slug, key, ids[0], ids[1], viewer)


def stream_ready(org: Org, timeout: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    with org.client() as api:
        while time.monotonic() < deadline:
            res = api.get(f"/api/v1/media/{org.clip_id}/stream")
            if res.status_code == 200 and res.json()["status"] == "ready":
                return dict(res.json())
            if res.status_code == 200:
                assert res.json()["status"] != "failed", res.text
            time.sleep(1)  # transcoding runs in the server process; poll its state
    raise AssertionError("the stream was not ready in time")


@dataclass
class Page:
    page: Any
    problems: list[str] = field(default_factory=list)


@pytest.fixture
def open_page(browser: Any, org: Org) -> Iterator[Callable[..., Page]]:
    """`open_page(route, as_viewer=False, width=1280)`: a signed-in context at `#/route`."""
    contexts: list[Any] = []
    expect.set_options(timeout=30_000)

    def open_(route: str, as_viewer: bool = False, width: int = 1280) -> Page:
        context = browser.new_context(viewport={"width": width, "height": 900})
        contexts.append(context)
        auth = json.dumps(org.viewer if as_viewer else {"api_key": org.key})
        context.add_init_script(
            "if (!sessionStorage.getItem('mediakeep.auth')) {"
            f" sessionStorage.setItem('mediakeep.auth', {json.dumps(auth)});"
            f" sessionStorage.setItem('mediakeep.org', {json.dumps(org.slug)}); }}"
        )
        page = context.new_page()
        result = Page(page)
        page.on("pageerror", lambda exc: result.problems.append(f"page error: {exc}"))
        page.on(
            "console",
            lambda msg: (
                result.problems.append(f"console {msg.type}: {msg.text}")
                if msg.type == "error"
                else None
            ),
        )
        page.goto(f"{org.server.base_url}/#/{route}")
        expect(page.locator("#nav")).to_be_visible()
        return result

    yield open_
    for context in contexts:
        context.close()


STRAY = re.compile(r"\b(null|undefined|NaN|\[object Object\])\b")


def test_library_cards_show_no_stray_text_and_iec_sizes(
    open_page: Callable[..., Page], org: Org, artifacts: Path
) -> None:
    view = open_page("library", width=375)
    page = view.page
    cards = page.locator("#grid li.card")
    expect(cards).to_have_count(2)
    with org.client() as api:
        sizes = {m["filename"]: m["size_bytes"] for m in api.get("/api/v1/media").json()["data"]}
    assert 1024 < sizes["six.mp4"] < 1024 * 1024 < sizes["pic.jpg"] < 1024 * 1024 * 1024, sizes
    expect(cards.filter(has_text="six.mp4")).to_contain_text(
        f"video · {sizes['six.mp4'] / 1024:.1f} KiB"
    )
    expect(cards.filter(has_text="pic.jpg")).to_contain_text(
        f"image · {sizes['pic.jpg'] / 1024 / 1024:.1f} MiB"
    )
    for text in cards.all_inner_texts():
        assert not STRAY.search(text), text
        assert not re.search(r"\d (KB|MB|GB)\b", text), text  # binary sizes carry IEC units
    page.screenshot(path=str(artifacts / "20-first-contact-library.png"), full_page=True)

    # The collection view adds a Remove button to each card: still no stray text.
    with org.client() as api:
        made = api.post("/api/v1/collections", json={"name": f"c-{uuid.uuid4().hex[:6]}"})
        assert made.status_code == 201, made.text
        cid = made.json()["id"]
        assert api.post(
            f"/api/v1/collections/{cid}/media", json={"media_ids": [org.image_id]}
        ).is_success
    page.goto(f"{org.server.base_url}/#/collection/{cid}")
    expect(cards).to_have_count(1)
    expect(cards.get_by_role("button", name="Remove pic.jpg from this collection")).to_be_visible()
    assert not STRAY.search(cards.first.inner_text())
    assert view.problems == []


def test_player_has_one_control_bar_and_the_rounded_length(
    open_page: Callable[..., Page], org: Org, artifacts: Path
) -> None:
    stream = stream_ready(org)
    view = open_page(f"media/{org.clip_id}", width=375)
    page = view.page
    player = page.locator("video#player")
    expect(player).to_have_attribute("data-source", "hls.js")
    # One set of controls: the element's own are off, the custom bar is the only one.
    assert player.get_attribute("controls") is None
    expect(page.locator(".player-controls")).to_have_count(1)
    expect(page.locator("#view-media input[type=range]")).to_have_count(1)
    # hls.js says 5.999999 s; the API's 6.0 s is shown, rounded.
    page.wait_for_function("() => document.querySelector('#player').duration > 5")
    expect(page.locator("#seek-time")).to_have_text("0:00 / 0:06")

    # Keyboard only: mute, play, pause with the bar's buttons.
    mute = page.get_by_role("button", name="Mute")
    mute.focus()
    page.keyboard.press("Space")
    expect(mute).to_have_attribute("aria-pressed", "true")
    page.get_by_role("button", name="Play").focus()
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelector('#player').currentTime > 0.3")
    pause = page.get_by_role("button", name="Pause")
    expect(pause).to_be_focused()
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelector('#player').paused")
    # At the end the clock still reads the whole length.
    page.locator("#seek").focus()
    page.keyboard.press("End")
    expect(page.locator("#seek-time")).to_have_text("0:06 / 0:06")

    # The stream's details are a list with links, not JSON.
    details = page.locator("#media-stream")
    expect(details).to_contain_text("HLS, DASH")
    expect(details).to_contain_text("240p")
    hls = details.get_by_role("link", name="master.m3u8 (signed link)")
    href = hls.get_attribute("href") or ""
    # A signed link of its own (minted per request): the same playlist as the API's, and it plays.
    assert href.split("/stream/")[0] == stream["hls_url"].split("/stream/")[0]
    assert href.endswith(f"/{org.clip_id}/hls/master.m3u8"), href
    assert httpx.get(href, timeout=30).text.startswith("#EXTM3U")
    expect(details.get_by_role("link", name="manifest.mpd (signed link)")).to_have_count(1)
    info = page.locator("#media-info").inner_text()
    assert "{" not in info, info
    assert '"status"' not in info, info
    assert not STRAY.search(info), info
    page.screenshot(path=str(artifacts / "21-first-contact-player.png"), full_page=True)
    assert view.problems == []


def test_playground_opens_on_list_media_and_clears_the_answer(
    open_page: Callable[..., Page],
) -> None:
    view = open_page("playground")
    page = view.page
    select = page.locator("#pg-op")
    expect(select.locator("option:checked")).to_have_attribute("data-key", "GET /api/v1/media")
    expect(page.locator("#pg-doc")).to_contain_text("GET /api/v1/media")
    page.get_by_role("button", name="Send request").click()
    expect(page.locator("#pg-status")).to_have_attribute("data-status", "200")
    expect(page.locator("#pg-response")).to_contain_text('"next_cursor"')

    option = page.locator('#pg-op option[data-key="GET /api/v1/usage"]')
    select.select_option(value=option.get_attribute("value"))
    expect(page.locator("#pg-doc")).to_contain_text("GET /api/v1/usage")
    expect(page.locator("#pg-status")).to_have_text("No request sent yet.")
    expect(page.locator("#pg-status")).not_to_have_attribute("data-status", re.compile("."))
    expect(page.locator("#pg-response")).to_have_text("")
    expect(page.locator("#pg-headers")).to_have_text("")
    assert view.problems == []


DROP_JS = """
async (b64) => {
  const dt = new DataTransfer();
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  dt.items.add(new File([bytes], 'refused.png', { type: 'image/png' }));
  const zone = document.querySelector('#dropzone');
  for (const type of ['dragenter', 'dragover', 'drop']) {
    zone.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
  }
}
"""


def test_viewer_sees_disabled_forms_with_the_reason(
    open_page: Callable[..., Page], org: Org, artifacts: Path
) -> None:
    view = open_page("library", as_viewer=True, width=375)
    page = view.page
    expect(page.locator("#org-select")).to_have_value(org.slug)
    expect(page.locator("#grid li.card")).to_have_count(2)

    # Uploads: the drop zone says why, its file input is disabled, a drop uploads nothing.
    expect(page.locator("#dropzone")).to_have_attribute("aria-disabled", "true")
    expect(page.locator("#file-input")).to_be_disabled()
    expect(page.locator("#drop-reason")).to_have_text("Viewers cannot upload — ask an admin")
    page.screenshot(path=str(artifacts / "22-first-contact-viewer.png"), full_page=True)
    page.evaluate(DROP_JS, base64.b64encode(mediagen.png(8, 8)).decode())
    expect(page.locator("#status")).to_have_text("Viewers cannot upload — ask an admin")
    expect(page.locator("#uploads li")).to_have_count(0)

    # Collections, API keys and webhooks: each form disabled, with its reason.
    for route, form, reason in (
        ("collections", "#collection-form", "Viewers cannot create collections — ask an admin"),
        ("keys", "#key-form", "Viewers cannot create API keys — ask an admin"),
        ("webhooks", "#webhook-form", "Viewers cannot manage webhooks — ask an admin"),
    ):
        page.goto(f"{org.server.base_url}/#/{route}")
        locked = page.locator(form)
        expect(locked.locator(".form-reason")).to_have_text(reason)
        expect(locked.get_by_role("button")).to_be_disabled()
        for control in locked.locator("input, select, textarea").all():
            expect(control).to_be_disabled()

    # The media page: captions forms, the collection picker and Delete are disabled too.
    page.goto(f"{org.server.base_url}/#/media/{org.clip_id}")
    expect(page.locator("#caption-form .form-reason")).to_have_text(
        "Viewers cannot edit captions — ask an admin"
    )
    expect(page.get_by_role("button", name="Save captions")).to_be_disabled()
    expect(page.get_by_role("button", name="Generate captions")).to_be_disabled()
    expect(page.get_by_role("button", name="Add", exact=True)).to_be_disabled()
    expect(page.get_by_role("button", name="Delete media")).to_be_disabled()

    # In the viewer's own organisation (they own it) the same forms are open again.
    own = next(
        o
        for o in page.evaluate(
            "() => [...document.querySelectorAll('#org-select option')].map((o) => o.value)"
        )
        if o != org.slug
    )
    page.goto(f"{org.server.base_url}/#/library")
    page.locator("#org-select").select_option(own)
    expect(page.locator("#dropzone")).to_have_attribute("aria-disabled", "false")
    expect(page.locator("#file-input")).to_be_enabled()
    expect(page.locator("#drop-reason")).to_be_hidden()
    page.goto(f"{org.server.base_url}/#/collections")
    expect(page.locator("#collection-form .form-reason")).to_have_count(0)
    expect(page.locator("#collection-form").get_by_role("button")).to_be_enabled()
    assert view.problems == []
