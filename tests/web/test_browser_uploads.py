"""The web app's uploads, which go through the TypeScript SDK's committed browser bundle
(static/vendor/mediakeep-client.mjs), in Chromium against a real server: a multipart upload
whose progress bar fills, a tus upload paused and resumed from the server's offset, and a tus
upload cancelled (the server drops its bytes). Every request of the page goes to the server's
own origin: nothing is loaded from another host.

The Pause and Cancel buttons are clicked from the page itself, by a MutationObserver on the
progress bar, at the first progress of the upload: a click from the test process could come
after a loopback upload has already finished. Files are made in the page (24 MiB WAVs: three tus
PATCHes of the SDK's 8 MiB), so the pause always lands before the last one.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.live import LiveServer
from tests.web.conftest import CHROMIUM

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
expect = sync_api.expect

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(300),
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Debian's Chromium is missing at /usr/bin/chromium (apt-get install chromium)",
    ),
]

MiB = 1024 * 1024

# Makes a WAV of `size` bytes whose samples depend on `seed`, records its SHA-256, and drops it
# on the library. `clickAt` names the row button ("Pause" / "Cancel") that a MutationObserver
# clicks at the first progress above 0 %, after noting the tus URL the SDK stored.
DROP_WAV_JS = """
async ({ name, size, seed, clickAt }) => {
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  const ascii = (at, text) => [...text].forEach((c, i) => (bytes[at + i] = c.charCodeAt(0)));
  ascii(0, "RIFF"); view.setUint32(4, size - 8, true); ascii(8, "WAVEfmt ");
  view.setUint32(16, 16, true); view.setUint16(20, 1, true); view.setUint16(22, 1, true);
  view.setUint32(24, 44100, true); view.setUint32(28, 88200, true); view.setUint16(32, 2, true);
  view.setUint16(34, 16, true); ascii(36, "data"); view.setUint32(40, size - 44, true);
  for (let i = 44; i < size; i++) bytes[i] = (i * seed + (i >> 10)) & 0xff;
  window.seen = window.seen || {};
  window.seen[name] = { progress: [], tusUrls: [] };
  window.seen[name].digest = [...new Uint8Array(await crypto.subtle.digest("SHA-256", bytes))]
    .map((b) => b.toString(16).padStart(2, "0")).join("");
  const uploads = document.querySelector("#uploads");
  const watch = new MutationObserver(() => {
    const row = [...uploads.children]
      .find((li) => li.querySelector(".upload-name").textContent === name);
    if (!row) return;
    const value = Number(row.querySelector("progress").value);
    const seen = window.seen[name];
    if (seen.progress.at(-1) !== value) seen.progress.push(value);
    if (clickAt && value > 0) {
      seen.tusUrls = Object.entries(localStorage)
        .filter(([key]) => key.startsWith("tus::")).map(([, v]) => JSON.parse(v).uploadUrl);
      const button = [...row.querySelectorAll("button")].find((b) => b.textContent === clickAt);
      clickAt = null;
      button.click();
    }
  });
  watch.observe(uploads,
    { subtree: true, childList: true, attributes: true, attributeFilter: ["value"] });
  const dt = new DataTransfer();
  dt.items.add(new File([bytes], name, { type: "audio/wav" }));
  const zone = document.querySelector("#dropzone");
  for (const type of ["dragenter", "dragover", "drop"]) {
    zone.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
  }
  return window.seen[name].digest;
}
"""

TUS_KEYS_JS = "Object.keys(localStorage).filter((key) => key.startsWith('tus::')).length"


@pytest.fixture(scope="module")
def tokens(web_server: LiveServer) -> dict[str, str]:
    email = f"uploads-{uuid.uuid4().hex[:10]}@example.com"
    password = "a-long-password-for-tests"
    with httpx.Client(base_url=web_server.base_url, timeout=30) as http:
        registered = http.post("/api/v1/auth/register", json={"email": email, "password": password})
        assert registered.status_code == 201, registered.text
        login = http.post("/api/v1/auth/login", json={"email": email, "password": password})
        assert login.status_code == 200, login.text
    pair = login.json()
    return {"access_token": pair["access_token"], "refresh_token": pair["refresh_token"]}


@pytest.fixture
def library(browser: Any, web_server: LiveServer, tokens: dict[str, str]) -> Iterator[Any]:
    """The library page of a signed-in user; fails the test if it requests another origin."""
    expect.set_options(timeout=60_000)
    context = browser.new_context()
    context.add_init_script(
        f"sessionStorage.setItem('mediakeep.auth', {json.dumps(json.dumps(tokens))});"
        "sessionStorage.setItem('mediakeep.tusThreshold', String(1024 * 1024));"
    )
    page = context.new_page()
    foreign: list[str] = []
    errors: list[str] = []
    page.on(
        "request",
        lambda request: (
            foreign.append(request.url)
            if not request.url.startswith((web_server.base_url + "/", "data:", "blob:"))
            else None
        ),
    )
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{web_server.base_url}/#/library")
    expect(page.locator("#view-library")).to_be_visible()
    try:
        yield page
    finally:
        context.close()
    assert foreign == [], foreign
    assert errors == [], errors


def api(server: LiveServer, tokens: dict[str, str]) -> httpx.Client:
    return httpx.Client(
        base_url=server.base_url,
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
        timeout=30,
    )


def test_a_small_file_is_sent_by_multipart_with_its_progress_shown(
    library: Any, web_server: LiveServer, tokens: dict[str, str]
) -> None:
    digest = library.evaluate(
        DROP_WAV_JS, {"name": "small.wav", "size": 512 * 1024, "seed": 3, "clickAt": None}
    )
    row = library.locator("#uploads li", has_text="small.wav")
    expect(row).to_have_attribute("data-state", "done")
    assert row.get_attribute("data-via") == "multipart"
    expect(row.locator(".upload-note")).to_have_text("uploaded")
    expect(row.locator("progress")).to_have_attribute("value", "100")
    expect(row.locator("button")).to_have_count(0)  # nothing to pause or cancel any more
    progress = library.evaluate("window.seen['small.wav'].progress")
    assert progress[-1] == 100
    assert progress == sorted(progress), progress
    with api(web_server, tokens) as http:
        media = http.get(f"/api/v1/media/{row.get_attribute('data-media-id')}").json()
    assert (media["filename"], media["sha256"], media["source"]) == ("small.wav", digest, "upload")
    expect(library.locator(f'#grid [data-id="{media["id"]}"]')).to_have_count(1)


def test_a_big_file_is_paused_and_resumed_from_the_servers_offset(
    library: Any, web_server: LiveServer, tokens: dict[str, str]
) -> None:
    digest = library.evaluate(
        DROP_WAV_JS, {"name": "paused.wav", "size": 24 * MiB, "seed": 5, "clickAt": "Pause"}
    )
    row = library.locator("#uploads li", has_text="paused.wav")
    expect(row).to_have_attribute("data-state", "paused")
    assert row.get_attribute("data-via") == "tus"
    expect(row.locator(".upload-note")).to_contain_text("paused at")
    assert library.evaluate(TUS_KEYS_JS) == 1  # the SDK remembers the upload (localStorage)
    (tus_url,) = library.evaluate("window.seen['paused.wav'].tusUrls")
    with api(web_server, tokens) as http:
        head = http.head(tus_url, headers={"Tus-Resumable": "1.0.0"})
    assert head.status_code == 200, head.text
    offset = int(head.headers["Upload-Offset"])
    assert 0 < offset < 24 * MiB  # the first 8 MiB PATCH was stored; the last was never sent

    before = len(library.evaluate("window.seen['paused.wav'].progress"))
    row.get_by_role("button", name="Resume the upload of paused.wav").click()
    expect(row).to_have_attribute("data-state", "done")
    expect(row.locator(".upload-note")).to_have_text("uploaded")
    resumed = library.evaluate("window.seen['paused.wav'].progress")[before:]
    # Resumed from the server's offset, not from 0.
    assert resumed, "no progress after Resume"
    assert min(resumed) >= offset * 100 // (24 * MiB), (resumed, offset)
    assert resumed[-1] == 100
    assert library.evaluate(TUS_KEYS_JS) == 0
    with api(web_server, tokens) as http:
        media = http.get(f"/api/v1/media/{row.get_attribute('data-media-id')}").json()
    assert (media["filename"], media["sha256"], media["source"]) == ("paused.wav", digest, "tus")


def test_a_cancelled_upload_is_dropped_by_the_server(
    library: Any, web_server: LiveServer, tokens: dict[str, str]
) -> None:
    library.evaluate(
        DROP_WAV_JS, {"name": "cancelled.wav", "size": 24 * MiB, "seed": 9, "clickAt": "Cancel"}
    )
    row = library.locator("#uploads li", has_text="cancelled.wav")
    expect(row).to_have_attribute("data-state", "canceled")
    expect(row.locator(".upload-note")).to_have_text("canceled")
    expect(row.locator("button")).to_have_count(0)
    assert row.get_attribute("data-media-id") is None
    assert library.evaluate(TUS_KEYS_JS) == 0
    (tus_url,) = library.evaluate("window.seen['cancelled.wav'].tusUrls")
    with api(web_server, tokens) as http:
        assert http.head(tus_url, headers={"Tus-Resumable": "1.0.0"}).status_code == 404
        listed = http.get("/api/v1/media", params={"limit": 100}).json()["data"]
    names = [m["filename"] for m in listed]
    assert "cancelled.wav" not in names
