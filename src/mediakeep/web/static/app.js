// mediakeep web app: sign-in, org switcher, library, uploads, detail, collections, keys, webhooks.
import { api, auth, events, tusAvailable, tusThreshold } from "./api.js";
import { captionsSection } from "./captions.js";
import { $, el, errorText, formatBytes, say, setChildren, sleep } from "./dom.js";
import { destroyPlayer, mountPlayer } from "./player.js";
import { initPlayground } from "./playground.js";
import { allows, lockButton, lockForm, reason, setRole } from "./roles.js";
import { connectRealtime, disconnectRealtime, isConnected, onJob, onMedia } from "./realtime.js";
import { discardUpload, sendFile } from "./uploads.js";
import { initWebhooks, loadWebhooks } from "./webhooks.js";


// ---------------------------------------------------------------- sign in, orgs, routing

const state = { user: null, orgs: [], collection: null };

async function signedIn() {
  const cred = auth.get();
  if (!cred) return false;
  try {
    state.user = cred.api_key ? null : await api("/api/v1/users/me");
    const orgs = await api("/api/v1/orgs");
    state.orgs = Array.isArray(orgs) ? orgs : orgs.data || [];
  } catch (err) {
    if (err.status === 401) { auth.set(null); return false; }
    throw err;
  }
  const select = $("#org-select");
  select.replaceChildren(...state.orgs.map((o) => el("option", { value: o.slug, text: o.name || o.slug })));
  if (!state.orgs.some((o) => o.slug === auth.org)) auth.org = state.orgs[0] ? state.orgs[0].slug : "";
  select.value = auth.org;
  roleFromOrgs();
  $("#whoami").textContent = state.user ? state.user.email : "API key";
  connectRealtime();
  return true;
}

// The caller's role in the chosen org, as GET /api/v1/orgs reports it.
function roleFromOrgs() {
  const org = state.orgs.find((o) => o.slug === auth.org);
  setRole(org ? org.role : null);
}

// The page's own forms, enabled or disabled (with the reason) for the current role.
function applyRoles() {
  const uploads = allows("member");
  const zone = $("#dropzone");
  zone.setAttribute("aria-disabled", String(!uploads));
  $("#file-input").disabled = !uploads;
  const note = $("#drop-reason");
  note.hidden = uploads;
  note.textContent = uploads ? "" : reason("member", "upload");
  zone.setAttribute("aria-describedby", uploads ? "drop-help" : "drop-help drop-reason");
  lockForm($("#collection-form"), "member", "create collections");
  lockForm($("#key-form"), "admin", "create API keys");
  lockForm($("#webhook-form"), "admin", "manage webhooks");
}

function showView(name) {
  for (const view of document.querySelectorAll(".view")) view.hidden = view.id !== `view-${name}`;
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.getAttribute("href") === `#/${name}`) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

async function route() {
  const cred = auth.get();
  $("#nav").hidden = !cred;
  $("#session").hidden = !cred;
  if (!cred) { showView("signin"); return; }
  applyRoles();
  const [, name = "library", id] = location.hash.split("/");
  if (name !== "media") destroyPlayer();
  if (name === "media" && id) { showView("media"); await showMedia(id); return; }
  if (name === "collections") { showView("collections"); await loadCollections(); return; }
  if (name === "playground") { showView("playground"); await initPlayground(); return; }
  if (name === "keys") { showView("keys"); if (allows("admin")) await loadKeys(); else $("#keys").replaceChildren(); return; }
  if (name === "webhooks") { showView("webhooks"); await loadWebhooks(); return; }
  if (name === "collection" && id) state.collection = id;
  else state.collection = null;
  showView("library");
  await resetLibrary();
}

async function start() {
  try {
    if (!(await signedIn())) auth.set(null);
  } catch (err) { say(errorText(err)); }
  await route();
}

async function afterSignIn(cred) {
  auth.set(cred);
  if (await signedIn()) { say("Signed in."); location.hash = "#/library"; await route(); }
  else say("Those credentials were not accepted.");
}

function formData(form) { return Object.fromEntries(new FormData(form).entries()); }

$("#login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  try { await afterSignIn(await api("/api/v1/auth/login", { method: "POST", body: formData(e.target) })); }
  catch (err) { say(`Login failed: ${errorText(err)}`); }
});

$("#register-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const body = formData(e.target);
  if (!body.name) delete body.name;
  try {
    await api("/api/v1/auth/register", { method: "POST", body });
    const tokens = await api("/api/v1/auth/login", { method: "POST", body: { email: body.email, password: body.password } });
    await afterSignIn(tokens);
  } catch (err) { say(`Registration failed: ${errorText(err)}`); }
});

$("#apikey-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  await afterSignIn({ api_key: formData(e.target).api_key.trim() });
});

$("#sign-out").addEventListener("click", async () => {
  const cred = auth.get();
  if (cred && cred.refresh_token) {
    try { await api("/api/v1/auth/logout", { method: "POST", body: { refresh_token: cred.refresh_token } }); } catch { /* signed out anyway */ }
  }
  disconnectRealtime();
  auth.set(null);
  auth.org = "";
  say("Signed out.");
  location.hash = "";
  await route();
});

$("#org-select").addEventListener("change", async (e) => {
  auth.org = e.target.value;
  roleFromOrgs();
  connectRealtime();
  say(`Now working in ${auth.org}.`);
  await route();
});

events.addEventListener("unauthorized", () => {
  disconnectRealtime();
  auth.set(null);
  say("Your session ended; please sign in again.");
  route();
});

window.addEventListener("hashchange", () => { say(""); route(); });

// ---------------------------------------------------------------- library

const library = { cursor: null, loading: false, done: false, generation: 0 };

function thumbnailUrl(media) {
  const variants = media.variants || [];
  const pick = (name) => variants.find((v) => v.name === name);
  const found = pick("thumbnail") || pick("small") || pick("poster");
  if (found) return found.url;
  return media.kind === "image" && media.status === "ready" ? media.url : null;
}

function card(media) {
  const item = el("li", { class: "card", "data-id": media.id });
  fillCard(item, media);
  return item;
}

function fillCard(item, media) {
  const color = media.placeholder && media.placeholder.dominant_color;
  const thumb = el("div", { class: "thumb" });
  if (color) thumb.style.backgroundColor = color;
  const src = thumbnailUrl(media);
  if (src) {
    const img = el("img", { src, alt: media.alt || "", loading: "lazy", decoding: "async" });
    img.addEventListener("load", () => img.classList.add("loaded"));
    thumb.append(img);
  } else {
    thumb.append(el("span", { class: "kind-badge", text: media.kind }));
  }
  item.dataset.status = media.status;
  setChildren(item,
    el("a", { href: `#/media/${media.id}`, class: "card-link", "aria-label": `${media.filename} (${media.kind}, ${formatBytes(media.size_bytes)})` },
      thumb,
      el("span", { class: "card-name", text: media.filename || media.id }),
      el("span", { class: "card-meta muted", text: `${media.kind} · ${formatBytes(media.size_bytes)}${media.status !== "ready" ? ` · ${media.status}` : ""}` })),
    state.collection ? removeFromCollection(item, media, state.collection) : null,
  );
}

function removeFromCollection(item, media, collectionId) {
  return lockButton(el("button", {
    type: "button", class: "danger small card-remove", text: "Remove", "aria-label": `Remove ${media.filename} from this collection`,
    onclick: async () => {
      try {
        await api(`/api/v1/collections/${collectionId}/media/${media.id}`, { method: "DELETE" });
        item.remove();
        $("#grid-empty").hidden = $("#grid").children.length > 0;
        say(`Removed ${media.filename} from the collection.`);
      } catch (err) { say(`Could not remove it: ${errorText(err)}`); }
    },
  }), "member", "change collections");
}

// A media without its thumbnail yet (variants or a video poster still being made): look again.
async function watchCard(item, media) {
  for (let i = 0; i < 60 && !thumbnailUrl(media) && ["pending", "processing", "ready"].includes(media.status); i += 1) {
    await sleep(i < 10 ? 1000 : 3000);
    if (!item.isConnected) return;
    try { media = await api(`/api/v1/media/${media.id}`); } catch { return; }
    if (thumbnailUrl(media) || media.status !== item.dataset.status) fillCard(item, media);
    if (media.status === "ready" && media.kind !== "image" && media.kind !== "video") return;
    if (media.status === "ready" && media.kind === "video" && i > 15) return;
  }
}

async function loadMore() {
  if (library.loading || library.done) return;
  library.loading = true;
  const generation = library.generation;
  try {
    const path = state.collection ? `/api/v1/collections/${state.collection}/media` : "/api/v1/media";
    const page = await api(path, {
      query: { limit: 30, cursor: library.cursor, search: $("#search").value.trim(), kind: $("#kind").value },
    });
    if (generation !== library.generation) return;
    for (const media of page.data) {
      if (document.querySelector(`#grid [data-id="${media.id}"]`)) continue;
      const item = card(media);
      $("#grid").append(item);
      if (!thumbnailUrl(media)) watchCard(item, media);
    }
    library.cursor = page.next_cursor;
    library.done = !page.next_cursor;
    $("#grid-empty").hidden = $("#grid").children.length > 0;
  } catch (err) {
    say(`Could not load the library: ${errorText(err)}`);
    library.done = true;
  } finally {
    library.loading = false;
  }
  // Keep filling while the sentinel is still on screen.
  if (!library.done && sentinelVisible) loadMore();
}

async function resetLibrary() {
  library.generation += 1;
  library.cursor = null;
  library.done = false;
  library.loading = false;
  $("#grid").replaceChildren();
  const chip = $("#collection-filter");
  chip.hidden = !state.collection;
  if (state.collection) {
    const id = state.collection;
    chip.replaceChildren(`Collection ${id} `, el("a", { href: "#/library", text: "show all" }));
    api(`/api/v1/collections/${id}`).then((c) => {
      if (state.collection === id) chip.firstChild.textContent = `Collection “${c.name}” `;
    }).catch(() => { /* the ID will do */ });
  }
  await loadMore();
}

let sentinelVisible = false;
new IntersectionObserver((entries) => {
  sentinelVisible = entries.some((e) => e.isIntersecting);
  if (sentinelVisible) loadMore();
}, { rootMargin: "400px" }).observe($("#sentinel"));

let searchTimer = null;
$("#search").addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(resetLibrary, 300);
});
$("#kind").addEventListener("change", resetLibrary);
$("#filters").addEventListener("submit", (e) => { e.preventDefault(); resetLibrary(); });

// ---------------------------------------------------------------- uploads

function uploadRow(file) {
  const progress = el("progress", { max: "100", value: "0", "aria-label": `Upload of ${file.name}` });
  const note = el("span", { class: "upload-note", text: "waiting" });
  const pause = el("button", { type: "button", class: "upload-pause small", hidden: true, text: "Pause", "aria-label": `Pause the upload of ${file.name}` });
  const cancel = el("button", { type: "button", class: "upload-cancel small", text: "Cancel", "aria-label": `Cancel the upload of ${file.name}` });
  const actions = el("span", { class: "upload-actions" }, pause, cancel);
  const row = el("li", { class: "upload" }, el("span", { class: "upload-name", text: file.name }), progress, note, actions);
  $("#uploads").prepend(row);
  return { row, progress, note, pause, cancel, actions };
}

// One file, sent by the SDK (uploads.js). A tus upload can be paused and resumed; any upload
// can be cancelled. Resolves when the file is done, failed, paused or cancelled, so a paused
// file does not hold up the queue; Resume sends it on by itself.
async function uploadOne(file) {
  const ui = uploadRow(file);
  const setState = (state, text) => {
    ui.row.dataset.state = state;
    ui.row.classList.toggle("failed", state === "failed");
    if (text !== undefined) ui.note.textContent = text;
  };
  const onProgress = (sent, total) => {
    const percent = total ? Math.floor((sent / total) * 100) : 0;
    ui.progress.value = percent;
    ui.note.textContent = `${percent}%`;
  };
  let via = "multipart";
  try {
    if (file.size > tusThreshold() && (await tusAvailable())) via = "tus";
  } catch { via = "multipart"; }
  ui.row.dataset.via = via;
  let controller = null;
  let canceled = false;

  const finished = (answer) => {
    let job = null;
    if (answer && answer.media && answer.job) { job = answer.job; answer = answer.media; }
    ui.progress.value = 100;
    ui.row.dataset.mediaId = answer.id;
    ui.actions.remove();
    if (answer.deduped) {
      ui.row.classList.add("deduped");
      setState("done", "already in your library");
    } else {
      ui.row.classList.add("done");
      setState("done", "uploaded");
    }
    const existing = document.querySelector(`#grid [data-id="${answer.id}"]`);
    const item = existing || card(answer);
    if (!existing) $("#grid").prepend(item);
    $("#grid-empty").hidden = true;
    if (job) followJob(job, ui.note);
    if (!thumbnailUrl(answer)) watchCard(item, answer);
  };

  const run = async () => {
    controller = new AbortController();
    const { signal } = controller;
    ui.pause.hidden = via !== "tus";
    ui.pause.textContent = "Pause";
    ui.pause.setAttribute("aria-label", `Pause the upload of ${file.name}`);
    setState("sending", via === "tus" ? "sending (resumable)" : "sending");
    try {
      finished(await sendFile(file, { method: via, onProgress, signal }));
    } catch (err) {
      if (canceled) return;
      if (signal.aborted) {
        ui.pause.textContent = "Resume";
        ui.pause.setAttribute("aria-label", `Resume the upload of ${file.name}`);
        setState("paused", `paused at ${ui.progress.value}%`);
      } else {
        // A failed tus upload stays resumable (Resume asks the server for its offset).
        if (via === "tus") ui.pause.textContent = "Resume";
        else ui.actions.remove();
        setState("failed", `failed: ${errorText(err)}`);
      }
    } finally {
      if (controller && controller.signal === signal) controller = null;
    }
  };

  ui.pause.addEventListener("click", () => {
    if (controller) controller.abort();
    else run();
  });
  ui.cancel.addEventListener("click", async () => {
    canceled = true;
    if (controller) controller.abort();
    ui.actions.remove();
    setState("canceling", "canceling…");
    try {
      if (via === "tus") await discardUpload(file);
      setState("canceled", "canceled");
    } catch (err) {
      setState("failed", `cancel failed: ${errorText(err)}`);
    }
  });
  await run();
}

async function uploadFiles(files) {
  const list = Array.from(files);
  if (!list.length) return;
  say(`Uploading ${list.length} file${list.length > 1 ? "s" : ""}…`);
  // A few at a time: many small files finish quickly without flooding the server.
  const queue = [...list];
  const workers = Array.from({ length: Math.min(3, queue.length) }, async () => {
    while (queue.length) await uploadOne(queue.shift());
  });
  await Promise.all(workers);
  say(`Finished ${list.length} upload${list.length > 1 ? "s" : ""}.`);
}

const dropzone = $("#dropzone");
for (const type of ["dragenter", "dragover"]) {
  dropzone.addEventListener(type, (e) => { e.preventDefault(); dropzone.classList.add("over"); });
}
dropzone.addEventListener("dragleave", () => dropzone.classList.remove("over"));
dropzone.addEventListener("drop", (e) => {
  e.preventDefault();
  dropzone.classList.remove("over");
  if (!allows("member")) { say(reason("member", "upload")); return; }
  if (e.dataTransfer && e.dataTransfer.files.length) uploadFiles(e.dataTransfer.files);
});
dropzone.addEventListener("keydown", (e) => {
  if (e.key === "Enter" || e.key === " ") { e.preventDefault(); if (allows("member")) $("#file-input").click(); }
});
$("#file-input").addEventListener("change", (e) => { uploadFiles(e.target.files); e.target.value = ""; });

// ---------------------------------------------------------------- jobs

const FINAL = ["completed", "failed", "canceled"];

function showJob(job, target) {
  const progress = job.progress ?? 0;
  target.textContent = `${job.type}: ${job.status} ${progress}%`;
  if (job.failed_reason) target.textContent += ` — ${job.failed_reason}`;
  target.dataset.status = job.status;
}

// Live over the WebSocket (job.progress events); polled too, slowly while the socket is up.
async function followJob(job, target) {
  let current = job;
  const off = onJob(job.id, (event) => {
    if (FINAL.includes(current.status)) return;
    const type = event.type.replace("job.", "");
    const status = { progress: "active", completed: "completed", failed: "failed" }[type] || event.data.status || current.status;
    current = { ...current, ...event.data, status, progress: type === "completed" ? 100 : event.data.progress ?? current.progress };
    showJob(current, target);
  });
  try {
    for (let i = 0; i < 900 && !FINAL.includes(current.status); i += 1) {
      showJob(current, target);
      await sleep(isConnected() ? 4000 : 1000);
      if (!target.isConnected || FINAL.includes(current.status)) break;
      try { current = await api(`/api/v1/jobs/${current.id}`); } catch { break; }
    }
    showJob(current, target);
  } finally { off(); }
  return current;
}

// media.ready / media.updated: refresh that card if the grid shows it.
onMedia(async (event) => {
  const id = event.data && (event.data.id || event.data.media_id);
  const item = id && document.querySelector(`#grid [data-id="${id}"]`);
  if (!item || event.type === "media.deleted") { if (item) item.remove(); return; }
  try { fillCard(item, await api(`/api/v1/media/${id}`)); } catch { /* gone or not allowed */ }
});

// ---------------------------------------------------------------- media detail

function dl(entries) {
  return el("dl", { class: "meta" }, entries.filter(([, v]) => v !== null && v !== undefined && v !== "")
    .flatMap(([k, v]) => [el("dt", { text: k }), el("dd", {}, v)]));
}

// A metadata value as people read it: lists joined, nested objects as a small list, links
// as links; never raw JSON.
function readable(value) {
  if (value === null || value === undefined) return "—";
  if (Array.isArray(value)) {
    return value.some((v) => v && typeof v === "object")
      ? el("ul", { class: "plain" }, value.map((v) => el("li", {}, readable(v))))
      : value.join(", ") || "—";
  }
  if (typeof value === "object") {
    return el("ul", { class: "plain" }, Object.entries(value).map(([k, v]) => el("li", {}, `${k}: `, readable(v))));
  }
  if (typeof value === "string" && /^https?:\/\//.test(value)) return el("a", { href: value, text: value, class: "wrap" });
  return String(value);
}

function table(caption, rows) {
  return el("table", { class: "table" }, el("caption", { text: caption }),
    el("tbody", {}, rows.map(([k, v]) => el("tr", {}, el("th", { scope: "row", text: k }), el("td", {}, readable(v))))));
}

const FORMAT_NAMES = { hls: "HLS", dash: "DASH" };

// The adaptive stream of a video or audio as a list: state, formats, renditions and the
// signed playlist links (GET /media/{id}/stream once it is ready).
function streamSection(media) {
  const known = { ...(media.metadata && media.metadata.stream), ...media.stream };
  const box = el("div", { id: "media-stream" });
  const render = (stream) => {
    const renditions = (stream.renditions || []).map((r) => (typeof r === "number" ? `${r}p` : r));
    setChildren(box, dl([
      ["State", stream.status],
      ["Formats", (stream.formats || []).map((f) => FORMAT_NAMES[f] || f).join(", ")],
      ["Renditions", renditions.join(", ")],
      ["HLS playlist", stream.hls_url ? el("a", { href: stream.hls_url, text: "master.m3u8 (signed link)" }) : null],
      ["DASH manifest", stream.dash_url ? el("a", { href: stream.dash_url, text: "manifest.mpd (signed link)" }) : null],
      ["Storyboard", stream.storyboard_url ? el("a", { href: stream.storyboard_url, text: "thumbnails track (WebVTT)" }) : null],
      ["Links expire", stream.expires_at],
      ["Failed because", stream.failed_reason],
    ]));
  };
  render(known);
  if (known.status === "ready") {
    api(`/api/v1/media/${media.id}/stream`).then(render).catch(() => { /* the summary will do */ });
  }
  return box;
}

async function showMedia(id) {
  const preview = $("#media-preview");
  const info = $("#media-info");
  preview.replaceChildren(el("p", { class: "muted", text: "Loading…" }));
  info.replaceChildren();
  $("#media-captions").replaceChildren();
  let media;
  try { media = await api(`/api/v1/media/${id}`); } catch (err) {
    preview.replaceChildren(el("p", { text: `Could not load this media: ${errorText(err)}` }));
    return;
  }
  $("#media-title").textContent = media.filename || media.id;
  if (media.placeholder && media.placeholder.dominant_color) preview.style.backgroundColor = media.placeholder.dominant_color;
  if (media.kind === "image") {
    const large = (media.variants || []).find((v) => v.name === "large" || v.name === "medium");
    preview.replaceChildren(el("img", { src: large ? large.url : media.url, alt: media.alt || media.filename }));
  } else if (media.kind === "video" || media.kind === "audio") {
    preview.replaceChildren(await mountPlayer(media));
    // Changed captions change the stream's subtitle tracks: load the player again.
    const here = () => location.hash === `#/media/${media.id}`;
    const onChange = async () => {
      if (!here()) return;
      try {
        const fresh = await mountPlayer(await api(`/api/v1/media/${media.id}`));
        if (here()) preview.replaceChildren(fresh); else destroyPlayer();
      } catch { /* keep the player there is */ }
    };
    $("#media-captions").replaceChildren(captionsSection(media, { followJob, onChange }));
  } else {
    preview.replaceChildren(el("a", { href: media.url, text: "Download" }));
  }
  const metadata = media.metadata || {};
  const exif = metadata.exif || {};
  const other = Object.entries(metadata).filter(([k]) => k !== "exif" && k !== "stream");
  const streamed = media.stream || metadata.stream;
  const parts = [
    dl([
      ["ID", el("code", { text: media.id })],
      ["Kind", media.kind], ["Status", media.status], ["Type", media.mime],
      ["Size", formatBytes(media.size_bytes)],
      ["Dimensions", media.width ? `${media.width} × ${media.height}` : null],
      ["Duration", media.duration_seconds ? `${media.duration_seconds.toFixed(2)} s` : null],
      ["Source", media.source], ["SHA-256", el("code", { class: "wrap", text: media.sha256 || "" })],
      ["Alt", media.alt], ["Caption", media.caption], ["Created", media.created_at],
      ["Original", el("a", { href: media.url, text: "download (signed link)" })],
    ]),
    other.length ? table("Metadata", other) : null,
    Object.keys(exif).length ? table("EXIF", Object.entries(exif)) : null,
    streamed ? el("h3", { text: "Stream" }) : null,
    streamed ? streamSection(media) : null,
    el("h3", { text: "Variants" }),
    (media.variants || []).length
      ? el("ul", { class: "variants" }, media.variants.map((v) => el("li", {}, el("a", { href: v.url, text: v.name }), ` ${v.mime} ${v.width || ""}×${v.height || ""} ${formatBytes(v.size_bytes)}`)))
      : el("p", { class: "muted", text: "No variants yet." }),
    el("h3", { text: "Collections" }),
    collectionPicker(media),
    el("h3", { text: "Jobs" }),
    el("ul", { id: "media-jobs", class: "jobs", "aria-live": "polite" }),
    lockButton(el("button", { type: "button", class: "danger", onclick: () => deleteMedia(media), text: "Delete media" }), "member", "delete media"),
  ];
  setChildren(info, parts);
  try {
    const jobs = await api("/api/v1/jobs", { query: { media_id: media.id, limit: 20 } });
    const list = $("#media-jobs");
    if (!list) return;
    if (!jobs.data.length) list.append(el("li", { class: "muted", text: "No jobs." }));
    for (const job of jobs.data) {
      const line = el("span");
      list.append(el("li", {}, line));
      followJob(job, line);
    }
  } catch { /* jobs are optional detail */ }
}

function collectionPicker(media) {
  const select = el("select", { id: "add-to-collection" }, el("option", { value: "", text: "Choose a collection…" }));
  const form = el("form", { class: "toolbar" },
    el("label", { for: "add-to-collection", text: "Add to collection" }), select,
    el("button", { type: "submit", text: "Add" }));
  lockForm(form, "member", "add media to collections");
  api("/api/v1/collections", { query: { limit: 200 } }).then((page) => {
    select.append(...page.data.map((c) => el("option", { value: c.id, text: c.name })));
  }).catch(() => { form.hidden = true; });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!select.value) return;
    const name = select.selectedOptions[0].textContent;
    try {
      await api(`/api/v1/collections/${select.value}/media`, { method: "POST", body: { media_ids: [media.id] } });
      say(`Added ${media.filename} to ${name}.`);
    } catch (err) { say(`Could not add to ${name}: ${errorText(err)}`); }
  });
  return form;
}

async function deleteMedia(media) {
  if (!confirm(`Delete ${media.filename}?`)) return;
  try {
    await api(`/api/v1/media/${media.id}`, { method: "DELETE" });
    say(`Deleted ${media.filename}.`);
    location.hash = "#/library";
  } catch (err) { say(`Delete failed: ${errorText(err)}`); }
}

// ---------------------------------------------------------------- collections

async function loadCollections() {
  const list = $("#collections");
  try {
    const page = await api("/api/v1/collections", { query: { limit: 200 } });
    list.replaceChildren(...page.data.map((c) => el("li", {},
      el("a", { href: `#/collection/${c.id}`, text: c.name }),
      el("span", { class: "muted", text: ` ${c.media_count ?? ""}${c.media_count !== undefined ? " media" : ""} ${c.description || ""}` }),
      lockButton(el("button", { type: "button", class: "danger small", "aria-label": `Delete collection ${c.name}`, text: "Delete",
        onclick: async () => { await api(`/api/v1/collections/${c.id}`, { method: "DELETE" }); loadCollections(); } }), "member", "delete collections"))));
    if (!page.data.length) list.replaceChildren(el("li", { class: "muted", text: "No collections yet." }));
  } catch (err) { say(`Could not load collections: ${errorText(err)}`); }
}

$("#collection-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const body = formData(e.target);
  if (!body.description) delete body.description;
  try { await api("/api/v1/collections", { method: "POST", body }); e.target.reset(); say(`Created ${body.name}.`); loadCollections(); }
  catch (err) { say(`Could not create the collection: ${errorText(err)}`); }
});

// ---------------------------------------------------------------- API keys

async function loadKeys() {
  try {
    const page = await api("/api/v1/api-keys");
    const keys = Array.isArray(page) ? page : page.data;
    $("#keys").replaceChildren(...keys.map((k) => el("tr", {},
      el("td", { text: k.name }), el("td", {}, el("code", { text: k.prefix || "" })), el("td", { text: k.role || "" }),
      el("td", { text: k.created_at || "" }),
      el("td", {}, el("button", { type: "button", class: "danger small", "aria-label": `Revoke key ${k.name}`, text: "Revoke",
        onclick: async () => {
          try { await api(`/api/v1/api-keys/${k.id}`, { method: "DELETE" }); say(`Revoked ${k.name}.`); loadKeys(); }
          catch (err) { say(`Could not revoke: ${errorText(err)}`); }
        } })))));
  } catch (err) { say(`Could not load API keys: ${errorText(err)}`); }
}

$("#key-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  try {
    const created = await api("/api/v1/api-keys", { method: "POST", body: formData(e.target) });
    $("#new-key-value").textContent = created.key;
    $("#new-key").hidden = false;
    e.target.reset();
    loadKeys();
  } catch (err) { say(`Could not create the key: ${errorText(err)}`); }
});
$("#copy-key").addEventListener("click", async () => {
  try { await navigator.clipboard.writeText($("#new-key-value").textContent); say("Key copied."); }
  catch { say("Copy failed; select the key and copy it by hand."); }
});

initWebhooks();
start();
