// Small DOM helpers shared by the app's modules (no framework: the page has no build step).

export const $ = (sel) => document.querySelector(sel);

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export function say(message) { $("#status").textContent = message; }

export function formatBytes(n) {
  if (n === null || n === undefined) return "";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

export function formatTime(seconds) {
  const s = Math.max(0, Math.floor(seconds || 0));
  const h = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(h ? 2 : 1, "0");
  const ss = String(s % 60).padStart(2, "0");
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

// The API's message and code, plus the field-level details (e.g. the bad cue's line).
export function errorText(err) {
  if (!err || !err.message) return String(err);
  let text = `${err.message}${err.code ? ` (${err.code})` : ""}`;
  const details = err.body && err.body.error && err.body.error.details;
  if (Array.isArray(details)) {
    const extra = details.map((d) => [d.field, d.message].filter(Boolean).join(": ")).filter((d) => d && !text.includes(d));
    if (extra.length) text += ` — ${extra.join("; ")}`;
  }
  return text;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
