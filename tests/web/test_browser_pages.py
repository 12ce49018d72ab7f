"""The web app's pages in a real browser: webhooks, captions, the player's captions and
storyboard scrubbing, a keyboard-only form, and a narrow (375 px) screen.

All tests of this module share one Chromium (session) and one `mediakeep serve` (module); each
opens its own browser context signed in with an admin API key made over HTTP. A loopback
webhook receiver (a real HTTP server on 127.0.0.1) is allowed by MEDIA_ALLOW_PRIVATE_NETWORKS.
Screenshots go to tests/web/artifacts/.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import mediagen
from tests.live import LiveServer

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
expect = sync_api.expect

pytestmark = [pytest.mark.slow]

GOOD_VTT = """WEBVTT

00:00:00.500 --> 00:00:04.000
Hello from the captions test

00:00:04.000 --> 00:00:09.000
A second cue
"""
# Line 3 has "->" where a timing line needs "-->".
BAD_VTT = """WEBVTT

00:00:01.000 -> 00:00:02.000
broken arrow
"""


@dataclass
class Account:
    server: LiveServer
    key: str
    video_id: str

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.server.base_url, headers={"X-API-Key": self.key}, timeout=30
        )


@pytest.fixture(scope="module")
def account(web_server: LiveServer) -> Account:
    """A registered user with an admin API key and a 10 s video (its stream is made at once)."""
    email = f"pages-{uuid.uuid4().hex[:10]}@example.com"
    password = "a-long-password-for-tests"
    with httpx.Client(base_url=web_server.base_url, timeout=30) as http:
        assert (
            http.post("/api/v1/auth/register", json={"email": email, "password": password})
        ).status_code == 201
        tokens = http.post("/api/v1/auth/login", json={"email": email, "password": password})
        assert tokens.status_code == 200, tokens.text
        bearer = {"Authorization": f"Bearer {tokens.json()['access_token']}"}
        created = http.post(
            "/api/v1/api-keys", json={"name": "pages", "role": "admin"}, headers=bearer
        )
        assert created.status_code == 201, created.text
        key = created.json()["key"]
        video = mediagen.mp4(seconds=10, width=320, height=240)
        res = http.post(
            "/api/v1/media/upload",
            files={"file": ("scrub.mp4", video, "video/mp4")},
            headers={"X-API-Key": key},
        )
        assert res.status_code == 201, res.text
        body = res.json()
        media = body.get("media", body)
    return Account(server=web_server, key=key, video_id=media["id"])


@dataclass
class Page:
    page: Any
    problems: list[str] = field(default_factory=list)

    def console_errors(self, *expected: str) -> list[str]:
        return [p for p in self.problems if not any(e in p for e in expected)]


@pytest.fixture
def open_page(browser: Any, account: Account) -> Iterator[Callable[..., Page]]:
    """`open_page(hash, width=1280)`: a new context signed in with the API key at `#/hash`."""
    contexts: list[Any] = []
    expect.set_options(timeout=30_000)

    def open_(route: str, width: int = 1280, height: int = 900) -> Page:
        context = browser.new_context(viewport={"width": width, "height": height})
        contexts.append(context)
        auth = json.dumps({"api_key": account.key})
        context.add_init_script(
            f"if (!sessionStorage.getItem('mediakeep.auth'))"
            f" sessionStorage.setItem('mediakeep.auth', {json.dumps(auth)});"
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
        page.on("dialog", lambda dialog: dialog.accept())
        page.goto(f"{account.server.base_url}/#/{route}")
        expect(page.locator("#nav")).to_be_visible()
        return result

    yield open_
    for context in contexts:
        context.close()


def contains(text: str) -> re.Pattern[str]:
    return re.compile(re.escape(text))


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]]

    def do_POST(self) -> None:  # noqa: N802 - the name http.server dispatches to
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        payload = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    """A webhook receiver on 127.0.0.1: (its URL, the requests it got)."""
    received: list[tuple[dict[str, str], bytes]] = []
    handler = type("Receiver", (_Receiver,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks/mediakeep", received
    finally:
        server.shutdown()
        server.server_close()


def focused(page: Any) -> str:
    """What has the keyboard focus, as `tag:name` (or `tag#id`)."""
    return str(
        page.evaluate(
            "() => { const a = document.activeElement;"
            " return a.tagName.toLowerCase() + (a.name ? ':' + a.name : a.id ? '#' + a.id : ''); }"
        )
    )


def tab_to(page: Any, target: str, limit: int = 15) -> None:
    for _ in range(limit):
        page.keyboard.press("Tab")
        if focused(page) == target:
            return
    raise AssertionError(f"{target} was not reached with Tab; focus is on {focused(page)}")


def test_webhooks_page_keyboard_only(
    open_page: Callable[..., Page],
    account: Account,
    receiver: tuple[str, list[tuple[dict[str, str], bytes]]],
    artifacts: Path,
) -> None:
    url, received = receiver
    view = open_page("webhooks")
    page = view.page
    expect(page.locator("#view-webhooks")).to_be_visible()
    expect(page.locator("#wh-empty")).to_be_visible()
    # Every field of the form has a label.
    form = page.locator("#webhook-form")
    for label in ("Endpoint URL", "Description", "All events", "media.uploaded", "job.failed"):
        expect(form.get_by_label(label, exact=True)).to_have_count(1)

    # Keyboard only: from the top of the page, Tab into the form, type, tick, submit.
    page.locator("#main").focus()
    tab_to(page, "input:url")
    page.keyboard.type(url)
    page.keyboard.press("Tab")
    assert focused(page) == "input:description"
    page.keyboard.type("browser receiver")
    page.keyboard.press("Tab")
    assert focused(page) == "input:all"
    page.keyboard.press("Space")  # untick "All events": the single events become choosable
    page.keyboard.press("Tab")
    assert focused(page) == "input:event"
    page.keyboard.press("Space")  # media.uploaded
    tab_to(page, "button")
    expect(page.locator(":focus")).to_have_text("Create webhook")
    page.keyboard.press("Enter")

    expect(page.locator("#wh-secret")).to_be_visible()
    secret = page.locator("#wh-secret-value").inner_text()
    assert secret.startswith("whsec_")
    row = page.locator("#webhooks tr", has_text=url)
    expect(row).to_have_count(1)
    expect(row).to_contain_text("media.uploaded")
    with account.client() as api:
        hooks = api.get("/api/v1/webhooks").json()["data"]
    assert [(h["url"], h["events"], h["description"]) for h in hooks] == [
        (url, ["media.uploaded"], "browser receiver")
    ]
    hook_id = hooks[0]["id"]

    # A test event reaches the receiver, signed with the secret the page showed once.
    row.get_by_role("button", name=f"Send a test event to {url}").click()
    deadline = time.monotonic() + 60
    while not received and time.monotonic() < deadline:
        time.sleep(0.2)  # the sender runs in the server process; wait for its POST
    assert received, "the test event never reached the receiver"
    headers, body = received[0]
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert headers["webhook-signature"] == f"v1,{expected}"
    assert json.loads(body)["type"] == "webhook.test"

    # The deliveries table shows it, succeeded after one attempt with the receiver's 200.
    expect(page.locator("#wh-deliveries")).to_be_visible()
    delivered = page.locator('#wh-delivery-rows tr[data-status="succeeded"]')
    for _ in range(60):
        if delivered.count():
            break
        page.get_by_role("button", name="Refresh deliveries").click()
        page.wait_for_timeout(500)
    expect(delivered).to_have_count(1)
    expect(delivered.locator("td").nth(0)).to_have_text("webhook.test")
    expect(delivered.locator("td").nth(2)).to_have_text("1")
    expect(delivered.locator("td").nth(3)).to_have_text("200")
    page.screenshot(path=str(artifacts / "10-webhooks.png"), full_page=True)

    # Pause and delete, each checked through the API.
    row.get_by_role("button", name=f"Pause webhook {url}").click()
    expect(row).to_have_attribute("data-enabled", "false")
    with account.client() as api:
        assert api.get(f"/api/v1/webhooks/{hook_id}").json()["enabled"] is False
    row.get_by_role("button", name=f"Resume webhook {url}").click()
    expect(row).to_have_attribute("data-enabled", "true")
    row.get_by_role("button", name=f"Delete webhook {url}").click()
    expect(page.locator("#wh-empty")).to_be_visible()
    with account.client() as api:
        assert api.get("/api/v1/webhooks").json()["data"] == []
    assert view.console_errors() == []


def stream_of(account: Account, timeout: float = 240) -> dict[str, Any]:
    """The video's stream once its renditions are made."""
    deadline = time.monotonic() + timeout
    with account.client() as api:
        while time.monotonic() < deadline:
            res = api.get(f"/api/v1/media/{account.video_id}/stream")
            if res.status_code == 200 and res.json()["status"] == "ready":
                return dict(res.json())
            assert res.status_code in (200, 404, 409), res.text
            if res.status_code == 200:
                assert res.json()["status"] != "failed", res.text
            time.sleep(1)  # transcoding runs in the server; poll its state
    raise AssertionError("the stream was not ready in time")


def test_captions_edit_approve_and_play(
    open_page: Callable[..., Page], account: Account, artifacts: Path
) -> None:
    view = open_page(f"media/{account.video_id}")
    page = view.page
    expect(page.locator("#media-title")).to_have_text("scrub.mp4")
    expect(page.locator("#captions-empty")).to_be_visible()
    form = page.locator("#caption-form")

    # Pasted text with a bad cue: the API's 400 names the line, and the page shows it.
    form.get_by_label("Language").fill("en")
    form.get_by_label("Caption text").fill(BAD_VTT)
    form.get_by_role("button", name="Save captions").click()
    expect(page.locator("#caption-error")).to_contain_text("line 3")
    with account.client() as api:
        assert api.get(f"/api/v1/media/{account.video_id}/captions").json()["data"] == []

    # A .vtt file chosen in the form fills the text; saved, it is listed as approved.
    form.get_by_label("Caption file").set_input_files(
        files=[{"name": "talk.en.vtt", "mimeType": "text/vtt", "buffer": GOOD_VTT.encode()}]
    )
    expect(form.get_by_label("Caption text")).to_have_value(GOOD_VTT)
    form.get_by_role("button", name="Save captions").click()
    row = page.locator('#caption-rows tr[data-language="en"]')
    expect(row).to_contain_text("manual")
    expect(row).to_contain_text("approved")
    expect(page.locator("#caption-error")).to_have_text("")

    # Unapprove, then approve again (PATCH), seen through the API.
    row.get_by_role("button", name="Unapprove en captions").click()
    expect(row).to_contain_text("needs review")
    with account.client() as api:
        captions = api.get(f"/api/v1/media/{account.video_id}/captions").json()["data"]
    assert [(c["language"], c["approved"]) for c in captions] == [("en", False)]
    row.get_by_role("button", name="Approve en captions").click()
    expect(row.locator("td").nth(2)).to_have_text("approved")

    # View the text; edit it (PATCH content) and view again.
    row.get_by_role("button", name="View en captions").click()
    expect(page.locator("#caption-text")).to_contain_text("Hello from the captions test")
    row.get_by_role("button", name="Edit en captions").click()
    text = form.get_by_label("Caption text")
    expect(text).to_have_value(contains("Hello from the captions test"))
    text.fill(GOOD_VTT.replace("A second cue", "An edited cue"))
    form.get_by_role("button", name="Save captions").click()
    expect(page.locator("#status")).to_have_text("Saved the en captions.")
    with account.client() as api:
        vtt = api.get(f"/api/v1/media/{account.video_id}/captions/en.vtt").text
    assert "An edited cue" in vtt

    # Once streamed, the player is hls.js and the captions are among its text tracks.
    stream = stream_of(account)
    page.reload()
    player = page.locator("video#player")
    expect(player).to_have_attribute("data-source", "hls.js")
    page.wait_for_function("() => document.querySelector('#player').textTracks.length > 0")
    menu = page.get_by_role("combobox", name="Captions", exact=True)
    expect(menu.locator("option", has_text="en")).to_have_count(1)
    menu.select_option(label=menu.locator("option", has_text="en").inner_text())
    page.wait_for_function(
        "() => Array.from(document.querySelector('#player').textTracks)"
        ".some((t) => t.mode === 'showing' && (t.language || t.label).startsWith('en'))"
    )
    # They came from the master playlist's SUBTITLES group through hls.js, not <track>.
    master = httpx.get(stream["hls_url"], timeout=30).text
    assert "TYPE=SUBTITLES" in master
    expect(player).to_have_attribute("data-subtitle-tracks", "1")
    # (hls.js adds its own empty `data:` <track>; none points at the caption files.)
    expect(player.locator('track:not([src^="data:"])')).to_have_count(0)
    assert page.evaluate("document.querySelector('#player').textTracks.length") == 1
    # The cue text of the showing track is the edited caption's.
    page.wait_for_function(
        "() => Array.from(document.querySelector('#player').textTracks)"
        ".some((t) => t.cues && Array.from(t.cues).some((c) => c.text === 'An edited cue'))"
    )
    page.screenshot(path=str(artifacts / "11-captions.png"), full_page=True)
    assert view.console_errors("status of 400") == []


def spoken_wav(text: str) -> bytes:
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        pytest.skip("espeak-ng is missing: no speech to recognise (apt-get install espeak-ng)")
    run = subprocess.run([espeak, "-v", "en", "--stdout", text], capture_output=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_generate_captions_with_speech_recognition(
    open_page: Callable[..., Page], account: Account
) -> None:
    with account.client() as api:
        res = api.post(
            "/api/v1/media/upload",
            files={"file": ("speech.wav", spoken_wav("hello world, this is a test"), "audio/wav")},
        )
        assert res.status_code == 201, res.text
        media_id = res.json().get("media", res.json())["id"]
    view = open_page(f"media/{media_id}")
    page = view.page
    expect(page.locator("#media-title")).to_have_text("speech.wav")
    asr = page.locator("#asr-form")
    asr.get_by_label("Spoken language").fill("en")
    expect(asr.get_by_label("Review before use")).to_be_checked()
    asr.get_by_role("button", name="Generate captions").click()
    # The job's progress is shown as it runs, then its end.
    job = page.locator("#asr-job")
    expect(job).to_contain_text("ai.generate_caption")
    expect(job).to_have_attribute("data-status", re.compile("completed|failed"), timeout=240_000)
    expect(job).to_have_attribute("data-status", "completed")
    row = page.locator('#caption-rows tr[data-language^="en"]')
    expect(row).to_contain_text("speech recognition")
    expect(row).to_contain_text("needs review")
    row.get_by_role("button", name=re.compile("^Approve en")).click()
    expect(row.locator("td").nth(2)).to_have_text("approved")
    with account.client() as api:
        captions = api.get(f"/api/v1/media/{media_id}/captions").json()["data"]
        assert [(c["source"], c["approved"]) for c in captions] == [("asr", True)]
        language = captions[0]["language"]
        vtt = api.get(f"/api/v1/media/{media_id}/captions/{language}.vtt").text
    assert "hello" in vtt.lower()
    assert view.console_errors() == []


def test_storyboard_scrubbing(
    open_page: Callable[..., Page], account: Account, artifacts: Path
) -> None:
    stream = stream_of(account)
    assert stream["storyboard_url"], stream  # every video gets a storyboard at ingest
    view = open_page(f"media/{account.video_id}")
    page = view.page
    expect(page.locator(".scrub-track")).to_have_attribute("data-storyboard", "loaded")
    seek = page.locator("#seek")
    expect(seek).to_be_visible()
    box = seek.bounding_box()
    assert box is not None
    tile = page.locator("#scrub-tile")

    def tile_at(fraction: float) -> tuple[str, str]:
        seek.hover(position={"x": box["width"] * fraction, "y": box["height"] / 2})
        expect(page.locator("#scrub-preview")).to_be_visible()
        return (
            str(tile.evaluate("t => t.style.backgroundImage")),
            str(tile.evaluate("t => t.style.backgroundPosition")),
        )

    early_image, early_position = tile_at(0.02)
    late_image, late_position = tile_at(0.9)
    assert "storyboard.jpg" in early_image
    assert "storyboard.jpg" in late_image
    assert late_position != early_position
    assert any(float(v.rstrip("px")) != 0 for v in late_position.split()), late_position
    page.screenshot(path=str(artifacts / "12-storyboard.png"))

    # The keyboard seeks and previews too: End, then ArrowLeft (5 s back).
    page.mouse.move(0, 0)
    seek.focus()
    page.keyboard.press("End")
    expect(page.locator("#scrub-preview")).to_be_visible()
    page.wait_for_function("() => document.querySelector('#player').currentTime > 9")
    end_position = tile.evaluate("t => t.style.backgroundPosition")
    page.keyboard.press("ArrowLeft")
    page.wait_for_function(
        "() => { const t = document.querySelector('#player').currentTime; return t > 4 && t < 6; }"
    )
    expect(page.locator("#scrub-preview")).to_be_visible()
    assert tile.evaluate("t => t.style.backgroundPosition") != end_position
    expect(seek).to_have_attribute("aria-valuetext", contains(" of "))

    # Dragging along the bar seeks there, the preview following the pointer.
    middle = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.1, middle)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.65, middle, steps=5)
    expect(page.locator("#scrub-preview")).to_be_visible()
    expect(page.locator("#scrub-preview .scrub-label")).to_have_text("0:06")
    page.mouse.up()
    page.wait_for_function(
        "() => Math.abs(document.querySelector('#player').currentTime - 6.5) < 0.6"
    )
    assert view.console_errors() == []


STICKING_OUT_JS = """
() => {
  const width = document.documentElement.clientWidth;
  const out = [];
  for (const node of document.querySelectorAll('body *')) {
    const box = node.getBoundingClientRect();
    if (box.width > 0 && box.right > width && !node.closest('.scroll-x')) {
      const name = `${node.tagName.toLowerCase()}#${node.id}.${node.className}`;
      out.push(`${name} ends at ${box.right}`);
    }
  }
  const wide = document.documentElement.scrollWidth;
  if (wide > width) out.push(`page is ${wide} px wide`);
  return out;
}
"""


def sticking_out(page: Any) -> list[str]:
    """What makes the page wider than the screen (tables may scroll inside .scroll-x)."""
    return list(page.evaluate(STICKING_OUT_JS))


def test_narrow_screen(open_page: Callable[..., Page], account: Account, artifacts: Path) -> None:
    view = open_page("library", width=375, height=812)
    page = view.page
    expect(page.locator("#grid li.card")).not_to_have_count(0)
    assert sticking_out(page) == []
    page.screenshot(path=str(artifacts / "13-narrow-library.png"), full_page=True)

    page.locator("#grid a.card-link", has_text="scrub.mp4").click()
    expect(page.locator("#media-title")).to_have_text("scrub.mp4")
    expect(page.locator("#player")).to_be_visible()
    expect(page.locator("#caption-form")).to_be_visible()
    assert sticking_out(page) == []
    page.screenshot(path=str(artifacts / "14-narrow-detail.png"), full_page=True)

    page.get_by_role("link", name="Webhooks").click()
    expect(page.locator("#webhook-form")).to_be_visible()
    assert sticking_out(page) == []
    page.screenshot(path=str(artifacts / "15-narrow-webhooks.png"), full_page=True)
    assert view.console_errors() == []
