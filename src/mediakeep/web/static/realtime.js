// Live events over the WebSocket at /api/v1/realtime: job progress and media changes arrive
// as they happen; callers keep a slow poll as the fallback when the socket is down.
import { auth } from "./api.js";

const jobListeners = new Map();
const mediaListeners = new Set();
let socket = null;
let connected = false;
let retryTimer = null;

function setConnected(value) {
  connected = value;
  document.body.dataset.realtime = value ? "connected" : "disconnected";
}

export function isConnected() { return connected; }

export function onJob(id, fn) {
  if (!jobListeners.has(id)) jobListeners.set(id, new Set());
  jobListeners.get(id).add(fn);
  return () => {
    const set = jobListeners.get(id);
    if (set) { set.delete(fn); if (!set.size) jobListeners.delete(id); }
  };
}

export function onMedia(fn) {
  mediaListeners.add(fn);
  return () => mediaListeners.delete(fn);
}

function dispatch(event) {
  const data = event.data || {};
  if (event.type.startsWith("job.") && data.id) {
    for (const fn of jobListeners.get(data.id) || []) fn(event);
  } else if (event.type.startsWith("media.")) {
    for (const fn of mediaListeners) fn(event);
  }
}

export function disconnectRealtime() {
  clearTimeout(retryTimer);
  if (socket) { socket.onclose = null; socket.close(); socket = null; }
  setConnected(false);
}

export function connectRealtime() {
  disconnectRealtime();
  const cred = auth.get();
  if (!cred || typeof WebSocket === "undefined") return;
  const url = new URL("/api/v1/realtime", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  if (auth.org) url.searchParams.set("org", auth.org);
  const ws = new WebSocket(url);
  socket = ws;
  ws.onopen = () => {
    const fresh = auth.get() || {};
    ws.send(JSON.stringify(fresh.api_key ? { type: "auth", api_key: fresh.api_key } : { type: "auth", token: fresh.access_token }));
  };
  ws.onmessage = (message) => {
    let data;
    try { data = JSON.parse(message.data); } catch { return; }
    if (data.type === "ready") {
      setConnected(true);
      ws.send(JSON.stringify({ type: "subscribe", channel: "jobs" }));
      ws.send(JSON.stringify({ type: "subscribe", channel: "media" }));
    } else if (data.type === "ping") {
      ws.send(JSON.stringify({ type: "pong" }));
    } else if (data.type === "event" && data.event) {
      dispatch(data.event);
    }
  };
  ws.onclose = () => {
    setConnected(false);
    if (socket !== ws) return;
    socket = null;
    // Reconnect while signed in (a refreshed token is picked up on the next attempt).
    retryTimer = setTimeout(() => { if (auth.get()) connectRealtime(); }, 3000);
  };
}
