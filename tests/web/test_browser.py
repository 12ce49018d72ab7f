"""The web app in a real browser (Debian's Chromium driven by Playwright) against a real server.

One journey, as a user would take it: register through the form, drop three images and a video
onto the library, watch per-file progress and thumbnails appear, drop one image again and see it
deduplicated, open the video and watch it play, and send GET /api/v1/usage from the API
playground. Screenshots are written to tests/web/artifacts/ (gitignored) for a human to look at.
"""

from __future__ import annotations

import base64
import io
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image, ImageDraw

from tests import mediagen
from tests.live.conftest import StartServer
from tests.web.conftest import CHROMIUM, SERVER_ENV

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Debian's Chromium is missing at /usr/bin/chromium (apt-get install chromium)",
    ),
]


def picture(color: tuple[int, int, int], size: tuple[int, int], fmt: str) -> bytes:
    """A small picture: a colour field with a contrasting disc, so thumbnails are recognisable."""
    image = Image.new("RGB", size, color)
    draw = ImageDraw.Draw(image)
    w, h = size
    draw.ellipse((w // 4, h // 4, 3 * w // 4, 3 * h // 4), fill=tuple(255 - c for c in color))
    out = io.BytesIO()
    exif = Image.Exif()
    exif[0x010F] = "WebCam"  # Make: shown in the detail view's EXIF table
    image.save(out, format=fmt, exif=exif)
    return out.getvalue()


def as_payload(name: str, mime: str, data: bytes) -> dict[str, str]:
    return {"name": name, "type": mime, "b64": base64.b64encode(data).decode()}


DROP_JS = """
async (files) => {
  const dt = new DataTransfer();
  for (const f of files) {
    const bytes = Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0));
    dt.items.add(new File([bytes], f.name, { type: f.type }));
  }
  const zone = document.querySelector('#dropzone');
  for (const type of ['dragenter', 'dragover', 'drop']) {
    zone.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
  }
  return dt.files.length;
}
"""


STREAM_READY_JS = """
async (id) => {
  const cred = JSON.parse(sessionStorage.getItem('mediakeep.auth'));
  const res = await fetch('/api/v1/media/' + id, {
    headers: { Authorization: 'Bearer ' + cred.access_token } });
  const media = await res.json();
  if (media.stream && media.stream.status === 'failed') throw new Error('stream failed');
  return Boolean(media.stream && media.stream.hls_url);
}
"""


def test_sign_in_upload_play_and_playground(
    start_live_server: StartServer, browser: Any, artifacts: Path
) -> None:
    server = start_live_server(env=SERVER_ENV)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on(
        "console",
        lambda msg: (
            problems.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None
        ),
    )
    expect = sync_api.expect
    expect.set_options(timeout=30_000)

    # Sign in: register through the UI (the app then logs in with the same credentials).
    page.goto(server.base_url + "/")
    expect(page.locator("#view-signin")).to_be_visible()
    register = page.locator("#register-form")
    register.get_by_label("Name").fill("Web Tester")
    register.get_by_label("Email").fill(f"web-{uuid.uuid4().hex[:10]}@example.com")
    register.get_by_label("Password").fill("a-long-password-for-tests")
    register.get_by_role("button", name="Register").click()
    expect(page.locator("#view-library")).to_be_visible()
    expect(page.locator("#org-select option")).not_to_have_count(0)
    expect(page.locator("#grid-empty")).to_be_visible()
    # Live events: the app holds the realtime WebSocket open, authenticated by its first message.
    expect(page.locator("body")).to_have_attribute("data-realtime", "connected")
    page.screenshot(path=str(artifacts / "01-empty-library.png"))

    # Upload three images and one video by drag-and-drop.
    images = [
        as_payload("red.jpg", "image/jpeg", picture((200, 40, 40), (480, 320), "JPEG")),
        as_payload("green.png", "image/png", picture((30, 160, 80), (320, 320), "PNG")),
        as_payload("blue.jpg", "image/jpeg", picture((40, 70, 200), (320, 480), "JPEG")),
    ]
    video = as_payload("clip.mp4", "video/mp4", mediagen.mp4(seconds=4, width=320, height=240))
    assert page.evaluate(DROP_JS, [*images, video]) == 4

    uploads = page.locator("#uploads li")
    expect(uploads).to_have_count(4)
    expect(page.locator("#uploads li.done")).to_have_count(4, timeout=60_000)
    for progress in page.locator("#uploads progress").all():
        expect(progress).to_have_attribute("value", "100")
    expect(page.locator("#grid li.card")).to_have_count(4)
    # Placeholders first, then the thumbnail variants of the three images load.
    for name in ("red.jpg", "green.png", "blue.jpg"):
        card = page.locator("#grid li.card", has_text=name)
        expect(card.locator(".thumb img.loaded")).to_have_count(1, timeout=60_000)
    sources = [img.get_attribute("src") or "" for img in page.locator("#grid .thumb img").all()]
    assert all(src.startswith(("http://", "https://")) for src in sources), sources

    # Dropping the same bytes again is deduplicated, and said so.
    assert page.evaluate(DROP_JS, [images[0]]) == 1
    expect(page.locator("#uploads li.deduped .upload-note")).to_have_text("already in your library")
    expect(page.locator("#grid li.card")).to_have_count(4)
    page.screenshot(path=str(artifacts / "02-library.png"), full_page=True)

    # Big files go through the resumable tus client (the threshold is lowered for the test).
    page.evaluate("sessionStorage.setItem('mediakeep.tusThreshold', '1024')")
    purple = as_payload("purple.png", "image/png", picture((120, 40, 160), (400, 300), "PNG"))
    assert page.evaluate(DROP_JS, [purple]) == 1
    expect(page.locator('#uploads li.done[data-via="tus"]')).to_have_count(1)
    expect(page.locator("#grid li.card")).to_have_count(5)
    page.evaluate("sessionStorage.removeItem('mediakeep.tusThreshold')")

    # Search narrows the grid.
    page.get_by_label("Search").fill("green")
    expect(page.locator("#grid li.card")).to_have_count(1)
    page.get_by_label("Search").fill("")
    expect(page.locator("#grid li.card")).to_have_count(5)
    page.get_by_label("Kind").select_option("video")
    expect(page.locator("#grid li.card")).to_have_count(1)
    page.get_by_label("Kind").select_option("")
    expect(page.locator("#grid li.card")).to_have_count(5)

    # Open the video: it plays (currentTime advances).
    page.locator("#grid a.card-link", has_text="clip.mp4").click()
    expect(page.locator("#media-title")).to_have_text("clip.mp4")
    player = page.locator("video#player")
    expect(player).to_be_visible()
    page.evaluate(
        "async () => { const v = document.querySelector('#player'); v.muted = true;"
        " await v.play(); }"
    )
    page.wait_for_function(
        "() => document.querySelector('#player').currentTime > 0.5", timeout=30_000
    )
    assert page.evaluate("document.querySelector('#player').error") is None
    page.screenshot(path=str(artifacts / "03-video.png"), full_page=True)

    # Once the server has made the HLS ladder, the player streams it through the vendored
    # hls.js (preferred wherever MSE exists, for its subtitle tracks) and it plays too.
    if (
        "/api/v1/media/{media_id}/stream"
        in httpx.get(server.base_url + "/openapi.json").json()["paths"]
    ):
        page.wait_for_function(STREAM_READY_JS, arg=page.url.rsplit("/", 1)[-1], timeout=90_000)
        page.reload()
        expect(player).to_have_attribute("data-source", "hls.js")
        page.evaluate(
            "async () => { const v = document.querySelector('#player'); v.muted = true;"
            " await v.play(); }"
        )
        page.wait_for_function(
            "() => document.querySelector('#player').currentTime > 0.5", timeout=30_000
        )

    # The API playground: GET /api/v1/usage answers 200 with the org's numbers.
    page.get_by_role("link", name="API playground").click()
    expect(page.locator("#view-playground")).to_be_visible()
    option = page.locator('#pg-op option[data-key="GET /api/v1/usage"]')
    page.locator("#pg-op").select_option(value=option.get_attribute("value"))
    expect(page.locator("#pg-doc")).to_contain_text("GET /api/v1/usage")
    page.get_by_role("button", name="Send request").click()
    expect(page.locator("#pg-status")).to_have_attribute("data-status", "200")
    expect(page.locator("#pg-response")).to_contain_text('"media_count": 5')
    page.screenshot(path=str(artifacts / "04-playground.png"), full_page=True)

    # An expired access token is refreshed with the refresh token, unseen by the user.
    page.evaluate(
        "() => { const c = JSON.parse(sessionStorage.getItem('mediakeep.auth'));"
        " c.access_token = 'expired';"
        " sessionStorage.setItem('mediakeep.auth', JSON.stringify(c));"
        " location.hash = '#/library'; }"
    )
    expect(page.locator("#grid li.card")).to_have_count(5)
    assert (
        page.evaluate("JSON.parse(sessionStorage.getItem('mediakeep.auth')).access_token")
        != "expired"
    )

    # The vendored hls.js loads as a module under the page's CSP.
    assert page.evaluate(
        "async () => (await import('/static/vendor/hls.mjs')).default.isSupported()"
    )

    # Collections: create one, add a picture to it from its page, open it as a filtered grid.
    page.get_by_role("link", name="Collections").click()
    page.locator("#collection-form").get_by_label("Name").fill("Holidays")
    page.get_by_role("button", name="Create collection").click()
    expect(page.locator("#collections a", has_text="Holidays")).to_be_visible()
    page.get_by_role("link", name="Library").click()
    page.locator("#grid a.card-link", has_text="blue.jpg").click()
    expect(page.locator("#media-title")).to_have_text("blue.jpg")
    expect(page.locator("#media-info dl")).to_contain_text("320 × 480")
    expect(page.locator("#media-info table", has_text="EXIF")).to_contain_text("WebCam")
    page.get_by_label("Add to collection").select_option(label="Holidays")
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.locator("#status")).to_have_text("Added blue.jpg to Holidays.")
    page.get_by_role("link", name="Collections").click()
    page.locator("#collections a", has_text="Holidays").click()
    expect(page.locator("#grid li.card")).to_have_count(1)
    expect(page.locator("#grid li.card")).to_contain_text("blue.jpg")
    expect(page.locator("#collection-filter")).to_contain_text("Holidays")
    # Removing it from the collection leaves the collection empty (and the media in place).
    page.get_by_role("button", name="Remove blue.jpg from this collection").click()
    expect(page.locator("#grid li.card")).to_have_count(0)
    page.reload()
    expect(page.locator("#grid-empty")).to_be_visible()
    expect(page.locator("#grid li.card")).to_have_count(0)

    # API keys: created (shown once), listed; then sign out and back in with the key.
    page.get_by_role("link", name="API keys").click()
    page.locator("#key-form").get_by_label("Name").fill("browser-key")
    page.get_by_role("button", name="Create key").click()
    expect(page.locator("#new-key")).to_be_visible()
    key = page.locator("#new-key-value").inner_text()
    assert len(key) > 20
    expect(page.locator("#keys tr", has_text="browser-key")).to_have_count(1)
    page.screenshot(path=str(artifacts / "05-keys.png"), full_page=True)
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator("#view-signin")).to_be_visible()
    page.locator("#apikey-form").get_by_label("API key").fill(key)
    page.get_by_role("button", name="Use key").click()
    expect(page.locator("#grid li.card")).to_have_count(5)

    # Infinite scroll: with 35 media the first page (30) is followed by the next cursor's.
    with httpx.Client(base_url=server.base_url, headers={"X-API-Key": key}, timeout=30) as api:
        for i in range(30):
            data = picture((8 * i, 100, 255 - 8 * i), (40, 40), "PNG")
            res = api.post("/api/v1/media/upload", files={"file": (f"tile-{i:02d}.png", data)})
            assert res.status_code == 201, res.text
    cursors: list[str] = []
    page.on("request", lambda req: cursors.append(req.url) if "cursor=" in req.url else None)
    page.reload()
    expect(page.locator("#grid li.card")).not_to_have_count(0)
    for _ in range(20):
        if page.locator("#grid li.card").count() == 35:
            break
        page.mouse.wheel(0, 4000)
        page.wait_for_timeout(250)
    expect(page.locator("#grid li.card")).to_have_count(35)
    assert cursors, "the second page was never asked for"

    # A narrow screen still shows the library usably.
    page.set_viewport_size({"width": 390, "height": 844})
    page.get_by_role("link", name="Library").click()
    page.evaluate("window.scrollTo(0, 0)")
    expect(page.locator("#grid .thumb img.loaded").first).to_be_visible()
    page.screenshot(path=str(artifacts / "06-narrow.png"))

    context.close()
    # The one expected failure: the expired access token's 401 that triggered the refresh.
    expired = "the server responded with a status of 401"
    assert [p for p in problems if expired not in p] == [], problems
    assert len(problems) <= 1, problems
