// The video/audio player of the detail view: the HLS stream through hls.js (its subtitle tracks
// rendered natively as text tracks), a captions menu, and a seek bar that previews the frame
// under the pointer (or the keyboard's position) from the stream's storyboard sprite.
import { api } from "./api.js";
import { el, formatTime } from "./dom.js";

let hlsModule;
async function loadHls() {
  if (hlsModule === undefined) {
    try { hlsModule = (await import("./vendor/hls.mjs")).default; } catch { hlsModule = null; }
  }
  return hlsModule;
}

let active = null; // the hls.js instance of the player on screen, destroyed when it goes

export function destroyPlayer() {
  if (active) { active.destroy(); active = null; }
}

// ---------------------------------------------------------------- storyboard (WebVTT thumbnails)

function seconds(stamp) {
  const parts = stamp.trim().split(":").map(Number);
  if (parts.some((n) => Number.isNaN(n))) return NaN;
  return parts.reduce((total, part) => total * 60 + part, 0);
}

// Cues of a thumbnails track: `00:00:05.000 --> 00:00:10.000` then `sprite.jpg#xywh=x,y,w,h`,
// the image reference resolved against the VTT's own URL.
export function parseStoryboard(text, baseUrl) {
  const cues = [];
  const lines = text.replace(/\r\n?/g, "\n").split("\n");
  for (let i = 0; i < lines.length; i += 1) {
    const timing = lines[i].match(/^\s*((?:\d+:)?\d{1,2}:\d{2}(?:\.\d+)?)\s+-->\s+((?:\d+:)?\d{1,2}:\d{2}(?:\.\d+)?)/);
    if (!timing) continue;
    const ref = (lines[i + 1] || "").trim();
    const hash = ref.indexOf("#");
    if (!ref || hash < 0) continue;
    const xywh = ref.slice(hash + 1).match(/xywh=(\d+),(\d+),(\d+),(\d+)/);
    if (!xywh) continue;
    const [x, y, w, h] = xywh.slice(1).map(Number);
    cues.push({
      start: seconds(timing[1]), end: seconds(timing[2]),
      url: new URL(ref.slice(0, hash), baseUrl).toString(), x, y, w, h,
    });
    i += 1;
  }
  return cues.sort((a, b) => a.start - b.start);
}

export function cueAt(cues, time) {
  let found = null;
  for (const cue of cues) {
    if (cue.start <= time) found = cue;
    if (cue.start <= time && time < cue.end) return cue;
  }
  return found || cues[0] || null;
}

async function loadStoryboard(url) {
  if (!url) return [];
  try {
    const res = await fetch(url);
    if (!res.ok) return [];
    return parseStoryboard(await res.text(), new URL(url, location.href).toString());
  } catch { return []; }
}

// ---------------------------------------------------------------- seek bar with preview

function seekBar(node, media, storyboard) {
  // The API's probed length first: the element's may be a few frames short (5.96 s of a
  // 6.00 s clip) or missing until the metadata loads.
  const duration = () => (media.duration_seconds > 0 ? media.duration_seconds
    : Number.isFinite(node.duration) && node.duration > 0 ? node.duration : 0);
  const clockText = (t) => `${node.ended ? formatTime(duration(), { round: true }) : formatTime(t)} / ${formatTime(duration(), { round: true })}`;
  const range = el("input", {
    type: "range", id: "seek", min: "0", max: String(duration() || 1), step: "0.1", value: "0",
    "aria-label": "Seek", "aria-describedby": "seek-help",
  });
  const clock = el("output", { id: "seek-time", for: "seek", class: "seek-time", text: clockText(0) });
  const tile = el("div", { class: "scrub-tile", id: "scrub-tile" });
  const label = el("span", { class: "scrub-label" });
  const preview = el("div", { class: "scrub-preview", id: "scrub-preview", hidden: true, "aria-hidden": "true" }, tile, label);
  const track = el("div", { class: "scrub-track" }, range, preview);
  const help = el("span", { id: "seek-help", class: "visually-hidden", text: "Arrow keys move 5 seconds, Page Up and Page Down a tenth, Home and End to the ends." });
  let cues = [];
  let dragging = false;
  let hideTimer = null;

  storyboard.then((found) => {
    cues = found;
    track.dataset.storyboard = found.length ? "loaded" : "none";
  });

  function showPreview(time) {
    const total = duration();
    if (!total) return;
    const t = Math.min(Math.max(time, 0), total);
    const cue = cueAt(cues, t);
    if (cue) {
      tile.hidden = false;
      tile.style.width = `${cue.w}px`;
      tile.style.height = `${cue.h}px`;
      tile.style.backgroundImage = `url("${cue.url}")`;
      tile.style.backgroundPosition = `-${cue.x}px -${cue.y}px`;
      tile.dataset.time = String(t);
    } else {
      tile.hidden = true;
    }
    label.textContent = formatTime(t);
    preview.hidden = false;
    // Centre over the time's position on the bar, kept inside the bar.
    const width = range.clientWidth;
    const half = (cue ? cue.w : preview.offsetWidth) / 2;
    const x = (t / total) * width;
    preview.style.left = `${Math.min(Math.max(x - half, 0), Math.max(width - 2 * half, 0))}px`;
  }

  function hideSoon(ms = 1200) {
    clearTimeout(hideTimer);
    hideTimer = setTimeout(() => { if (!dragging) preview.hidden = true; }, ms);
  }

  function timeAtPointer(e) {
    const rect = range.getBoundingClientRect();
    return ((e.clientX - rect.left) / rect.width) * duration();
  }

  function seek(time) {
    const t = Math.min(Math.max(time, 0), duration());
    range.value = String(t);
    try { node.currentTime = t; } catch { /* not seekable yet */ }
    update();
    showPreview(t);
    hideSoon();
  }

  function update() {
    const total = duration();
    range.max = String(total || 1);
    if (!dragging) range.value = String(node.currentTime || 0);
    const text = clockText(Number(range.value));
    clock.textContent = text;
    range.setAttribute("aria-valuetext", text.replace(" / ", " of "));
  }

  range.addEventListener("pointermove", (e) => { clearTimeout(hideTimer); showPreview(timeAtPointer(e)); });
  range.addEventListener("pointerleave", () => { if (!dragging) hideSoon(150); });
  range.addEventListener("pointerdown", () => {
    dragging = true;
    window.addEventListener("pointerup", () => { dragging = false; hideSoon(); }, { once: true });
  });
  range.addEventListener("input", () => {
    const t = Number(range.value);
    try { node.currentTime = t; } catch { /* not seekable yet */ }
    showPreview(t);
    update();
  });
  range.addEventListener("keydown", (e) => {
    const total = duration();
    const stepBy = { ArrowRight: 5, ArrowUp: 5, ArrowLeft: -5, ArrowDown: -5, PageUp: total / 10, PageDown: -total / 10 }[e.key];
    if (stepBy !== undefined) { e.preventDefault(); seek(Number(range.value) + stepBy); }
    else if (e.key === "Home") { e.preventDefault(); seek(0); }
    else if (e.key === "End") { e.preventDefault(); seek(total); }
  });
  range.addEventListener("blur", () => hideSoon(0));
  for (const type of ["timeupdate", "durationchange", "loadedmetadata", "seeked", "ended"]) node.addEventListener(type, update);
  return el("div", { class: "scrub" }, track, clock, help);
}

// ---------------------------------------------------------------- play, mute, full screen

// The element has no `controls`: this bar is the player's only one, all buttons (Tab, Enter,
// Space), with the seek bar's keys, and K or Space on the picture to play/pause.
function buttons(node, isVideo) {
  const play = el("button", { type: "button", class: "small", id: "play", "aria-label": "Play", text: "Play" });
  const mute = el("button", { type: "button", class: "small", id: "mute", "aria-pressed": "false", text: "Mute" });
  const full = isVideo ? el("button", { type: "button", class: "small", id: "fullscreen", text: "Full screen" }) : null;
  const toggle = () => { if (node.paused || node.ended) node.play().catch(() => { /* not playable yet */ }); else node.pause(); };
  const sync = () => {
    const playing = !node.paused && !node.ended;
    play.textContent = playing ? "Pause" : "Play";
    play.setAttribute("aria-label", playing ? "Pause" : "Play");
    mute.setAttribute("aria-pressed", String(node.muted));
  };
  play.addEventListener("click", toggle);
  mute.addEventListener("click", () => { node.muted = !node.muted; });
  if (full) {
    full.addEventListener("click", () => {
      if (document.fullscreenElement) document.exitFullscreen();
      else node.closest(".player").requestFullscreen().catch(() => { /* refused by the browser */ });
    });
  }
  node.addEventListener("click", toggle);
  node.addEventListener("keydown", (e) => {
    if (e.key === " " || e.key === "k") { e.preventDefault(); toggle(); }
  });
  for (const type of ["play", "pause", "ended", "volumechange"]) node.addEventListener(type, sync);
  return { play, rest: [mute, full] };
}

// ---------------------------------------------------------------- captions menu

function captionsMenu(node, getHls) {
  const select = el("select", { id: "caption-select" }, el("option", { value: "off", text: "Off" }));
  const wrap = el("span", { class: "caption-menu", hidden: true }, el("label", { for: "caption-select", text: "Captions" }), select);

  function choices() {
    const hls = getHls();
    if (hls && hls.subtitleTracks && hls.subtitleTracks.length) {
      return hls.subtitleTracks.map((t, i) => ({
        value: `hls:${i}`, label: t.name || t.lang || `Track ${i + 1}`, on: hls.subtitleTrack === i && hls.subtitleDisplay,
      }));
    }
    return Array.from(node.textTracks).filter((t) => t.kind === "captions" || t.kind === "subtitles").map((t, i) => ({
      value: `native:${i}`, label: t.label || t.language || `Track ${i + 1}`, on: t.mode === "showing",
    }));
  }

  function refresh() {
    const list = choices();
    wrap.hidden = list.length === 0;
    const chosen = list.find((c) => c.on);
    select.replaceChildren(el("option", { value: "off", text: "Off" }), ...list.map((c) => el("option", { value: c.value, text: c.label })));
    select.value = chosen ? chosen.value : "off";
  }

  select.addEventListener("change", () => {
    const [kind, index] = select.value.split(":");
    const hls = getHls();
    if (hls && hls.subtitleTracks && hls.subtitleTracks.length) {
      hls.subtitleDisplay = kind === "hls";
      hls.subtitleTrack = kind === "hls" ? Number(index) : -1;
    } else {
      const tracks = Array.from(node.textTracks).filter((t) => t.kind === "captions" || t.kind === "subtitles");
      tracks.forEach((t, i) => { t.mode = kind === "native" && i === Number(index) ? "showing" : "disabled"; });
    }
    node.dataset.captions = select.value;
  });
  node.textTracks.addEventListener("addtrack", refresh);
  node.textTracks.addEventListener("removetrack", refresh);
  return { wrap, refresh };
}

// ---------------------------------------------------------------- the player

function addTrackElements(node, media) {
  // Approved captions first; unreviewed ones are marked so.
  const captions = [...(media.captions || [])].sort((a, b) => Number(b.approved) - Number(a.approved));
  for (const caption of captions) {
    if (!caption.url_vtt) continue;
    const label = caption.approved ? caption.language : `${caption.language} (unreviewed)`;
    node.append(el("track", { kind: "captions", srclang: caption.language, label, src: caption.url_vtt }));
  }
}

export async function mountPlayer(media) {
  destroyPlayer();
  const isVideo = media.kind === "video";
  const poster = (media.variants || []).find((v) => v.name === "poster");
  // No `controls`: the bar below is the one set of controls (a native bar would be a second).
  const node = el(isVideo ? "video" : "audio", { preload: "metadata", playsinline: true, id: "player", poster: poster && poster.url, tabindex: isVideo ? "0" : null });
  node.setAttribute("aria-label", `${isVideo ? "Video" : "Audio"}: ${media.filename}`);

  let stream = null;
  if (media.stream && media.stream.status === "ready") {
    try { stream = await api(`/api/v1/media/${media.id}/stream`); } catch { stream = media.stream; }
  }
  const hlsUrl = stream && stream.hls_url;
  const Hls = hlsUrl ? await loadHls() : null;
  let hls = null;
  const menu = captionsMenu(node, () => hls);

  // hls.js wherever MSE exists (it gives the subtitle tracks); native HLS only without it.
  if (hlsUrl && Hls && Hls.isSupported()) {
    node.dataset.source = "hls.js";
    hls = new Hls({ renderTextTracksNatively: true });
    active = hls;
    hls.on(Hls.Events.SUBTITLE_TRACKS_UPDATED, () => {
      node.dataset.subtitleTracks = String(hls.subtitleTracks.length);
      menu.refresh();
    });
    hls.on(Hls.Events.SUBTITLE_TRACK_SWITCH, menu.refresh);
    hls.on(Hls.Events.MANIFEST_PARSED, () => {
      // A master playlist without a SUBTITLES group (streamed before any caption was
      // approved): give the captions as <track> elements instead.
      if (!hls.allSubtitleTracks.length) addTrackElements(node, media);
      menu.refresh();
    });
    hls.on(Hls.Events.ERROR, (_event, data) => {
      if (!data.fatal || active !== hls) return;
      // The stream cannot be played (expired link, broken segment): play the original.
      destroyPlayer();
      node.dataset.source = "original";
      node.src = media.url;
      addTrackElements(node, media);
    });
    hls.loadSource(hlsUrl);
    hls.attachMedia(node);
  } else if (hlsUrl && node.canPlayType("application/vnd.apple.mpegurl")) {
    node.dataset.source = "hls-native";
    node.src = hlsUrl;
  } else {
    node.dataset.source = "original";
    node.src = media.url;
    addTrackElements(node, media);
  }

  const storyboard = loadStoryboard(isVideo && stream ? stream.storyboard_url : null);
  const { play, rest } = buttons(node, isVideo);
  const controls = el("div", { class: "player-controls", role: "group", "aria-label": "Player controls" },
    play, seekBar(node, media, storyboard), rest, menu.wrap);
  menu.refresh();
  return el("div", { class: "player" }, node, controls);
}
