// The API client of the web app: credentials in sessionStorage, X-Org, refresh on 401,
// XHR uploads with progress and a small tus 1.0 client for big files.

const STORE = "mediakeep.auth";
const ORG = "mediakeep.org";
export const TUS_THRESHOLD = 20 * 1024 * 1024;

// Files above this go through tus; sessionStorage "mediakeep.tusThreshold" lowers it (tests).
export function tusThreshold() {
  return Number(sessionStorage.getItem("mediakeep.tusThreshold")) || TUS_THRESHOLD;
}
const TUS_CHUNK = 8 * 1024 * 1024;

export class ApiError extends Error {
  constructor(status, body) {
    const err = body && body.error ? body.error : {};
    super(err.message || `HTTP ${status}`);
    this.status = status;
    this.code = err.code || "http";
    this.body = body;
  }
}

export const auth = {
  get() {
    try { return JSON.parse(sessionStorage.getItem(STORE) || "null"); } catch { return null; }
  },
  set(value) {
    if (value) sessionStorage.setItem(STORE, JSON.stringify(value));
    else sessionStorage.removeItem(STORE);
  },
  get org() { return sessionStorage.getItem(ORG) || ""; },
  set org(slug) {
    if (slug) sessionStorage.setItem(ORG, slug); else sessionStorage.removeItem(ORG);
  },
};

export function authHeaders() {
  const cred = auth.get();
  const headers = {};
  if (cred && cred.api_key) headers["X-API-Key"] = cred.api_key;
  else if (cred && cred.access_token) headers.Authorization = `Bearer ${cred.access_token}`;
  if (auth.org) headers["X-Org"] = auth.org;
  return headers;
}

let refreshing = null;

async function refresh() {
  const cred = auth.get();
  if (!cred || !cred.refresh_token) return false;
  if (!refreshing) {
    refreshing = (async () => {
      const res = await fetch("/api/v1/auth/refresh", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ refresh_token: cred.refresh_token }),
      });
      if (!res.ok) return false;
      auth.set(await res.json());
      return true;
    })().finally(() => { setTimeout(() => { refreshing = null; }, 0); });
  }
  return refreshing;
}

export const events = new EventTarget();

// fetch with credentials; one retry after a refresh when the access token expired.
export async function rawFetch(path, options = {}, retry = true) {
  const headers = { ...authHeaders(), ...(options.headers || {}) };
  const res = await fetch(path, { ...options, headers });
  if (res.status === 401 && retry && (await refresh())) return rawFetch(path, options, false);
  if (res.status === 401) events.dispatchEvent(new Event("unauthorized"));
  return res;
}

export async function api(path, { method = "GET", body, query } = {}) {
  let url = path;
  if (query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
    const s = q.toString();
    if (s) url += (url.includes("?") ? "&" : "?") + s;
  }
  const options = { method, headers: {} };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const res = await rawFetch(url, options);
  const text = await res.text();
  let data = null;
  if (text) { try { data = JSON.parse(text); } catch { data = text; } }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

// POST /media/upload as multipart with XHR, reporting upload progress (0..1).
export function uploadMultipart(file, onProgress, fields = {}) {
  return new Promise((resolve, reject) => {
    const send = (retry) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", "/api/v1/media/upload");
      for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v);
      xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
      xhr.onerror = () => reject(new ApiError(0, { error: { message: "Network error" } }));
      xhr.onload = async () => {
        let data = null;
        try { data = JSON.parse(xhr.responseText); } catch { data = null; }
        if (xhr.status === 401 && retry && (await refresh())) return send(false);
        if (xhr.status >= 200 && xhr.status < 300) resolve(data);
        else reject(new ApiError(xhr.status, data));
      };
      const form = new FormData();
      for (const [k, v] of Object.entries(fields)) form.append(k, v);
      form.append("file", file, file.name);
      xhr.send(form);
    };
    send(true);
  });
}

let tusSupport = null;

// Does the server speak tus (OPTIONS /api/v1/uploads/tus answers Tus-Version)?
export async function tusAvailable() {
  if (tusSupport === null) {
    try {
      const res = await fetch("/api/v1/uploads/tus", { method: "OPTIONS" });
      tusSupport = res.ok && (res.headers.get("Tus-Version") || "").includes("1.0.0");
    } catch { tusSupport = false; }
  }
  return tusSupport;
}

function b64(text) {
  return btoa(String.fromCharCode(...new TextEncoder().encode(text)));
}

function xhrPatch(url, offset, blob, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PATCH", url);
    for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v);
    xhr.setRequestHeader("Tus-Resumable", "1.0.0");
    xhr.setRequestHeader("Upload-Offset", String(offset));
    xhr.setRequestHeader("Content-Type", "application/offset+octet-stream");
    xhr.upload.onprogress = (e) => onProgress(e.loaded);
    xhr.onerror = () => reject(new ApiError(0, { error: { message: "Network error" } }));
    xhr.onload = () => resolve(xhr);
    xhr.send(blob);
  });
}

// A resumable upload: create, then PATCH chunks; after a network error ask HEAD for the
// offset and go on from there. Resolves with the finished media (fetched by Media-Id).
export async function uploadTus(file, onProgress) {
  const meta = `filename ${b64(file.name)},filetype ${b64(file.type || "application/octet-stream")}`;
  const created = await rawFetch("/api/v1/uploads/tus", {
    method: "POST",
    headers: { "Tus-Resumable": "1.0.0", "Upload-Length": String(file.size), "Upload-Metadata": meta },
  });
  if (created.status !== 201) throw new ApiError(created.status, await created.json().catch(() => null));
  const url = new URL(created.headers.get("Location"), location.href).toString();
  let offset = 0;
  let failures = 0;
  let mediaId = null;
  while (offset < file.size) {
    const end = Math.min(offset + TUS_CHUNK, file.size);
    try {
      const xhr = await xhrPatch(url, offset, file.slice(offset, end), (n) => onProgress((offset + n) / file.size));
      if (xhr.status !== 204 && xhr.status !== 200) {
        let body = null;
        try { body = JSON.parse(xhr.responseText); } catch { body = null; }
        throw new ApiError(xhr.status, body);
      }
      offset = Number(xhr.getResponseHeader("Upload-Offset"));
      mediaId = xhr.getResponseHeader("Media-Id") || mediaId;
      failures = 0;
    } catch (err) {
      if (err.status || ++failures > 5) throw err;
      await new Promise((r) => setTimeout(r, 1000 * failures));
      const head = await rawFetch(url, { method: "HEAD", headers: { "Tus-Resumable": "1.0.0" } });
      offset = Number(head.headers.get("Upload-Offset") || offset);
    }
  }
  if (!mediaId) throw new ApiError(0, { error: { message: "The server did not name the media" } });
  return api(`/api/v1/media/${mediaId}`);
}
