// The API client of the web app: credentials in sessionStorage, X-Org, refresh on 401.
// Uploads go through the TypeScript SDK (uploads.js).

const STORE = "mediakeep.auth";
const ORG = "mediakeep.org";
export const TUS_THRESHOLD = 20 * 1024 * 1024;

// Files above this go through tus; sessionStorage "mediakeep.tusThreshold" lowers it (tests).
export function tusThreshold() {
  return Number(sessionStorage.getItem("mediakeep.tusThreshold")) || TUS_THRESHOLD;
}

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

export async function refresh() {
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
