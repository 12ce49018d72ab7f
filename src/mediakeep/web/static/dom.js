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
  node.append(...present(children));
  return node;
}

// The children worth showing: the DOM's own append/replaceChildren turn null, undefined and
// false into the text "null", "undefined", "false", so optional parts (`cond ? x : null`) are
// dropped here. Every conditional child goes through `el` or `setChildren`.
function present(children) {
  return children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false)
    .map((c) => (c instanceof Node ? c : String(c)));
}

export function setChildren(node, ...children) {
  node.replaceChildren(...present(children));
  return node;
}

export function say(message) { $("#status").textContent = message; }

// The one size format of the app (and of the CLI): binary multiples with IEC units, so
// 1048576 bytes is "1.0 MiB", never a binary number labelled "MB".
export function formatBytes(n) {
  if (n === null || n === undefined) return "";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

// m:ss (h:mm:ss from an hour). A position is floored (0:05 until the sixth second has
// passed); a length is rounded (`{ round: true }`), so a 5.96 s or 6.00 s clip is "0:06" long.
export function formatTime(seconds, { round = false } = {}) {
  const s = Math.max(0, (round ? Math.round : Math.floor)(seconds || 0));
  const h = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(h ? 2 : 1, "0");
  const ss = String(s % 60).padStart(2, "0");
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

// The API's message and code, plus the field-level details (e.g. the bad cue's line).
export function errorText(err) {
  if (!err || !err.message) return String(err);
  let text = `${err.message}${err.code ? ` (${err.code})` : ""}`;
  // An ApiError keeps the body; the SDK's MediakeepError (uploads) has the details itself.
  const details = (err.body && err.body.error && err.body.error.details) || err.details;
  if (Array.isArray(details)) {
    const extra = details.map((d) => [d.field, d.message].filter(Boolean).join(": ")).filter((d) => d && !text.includes(d));
    if (extra.length) text += ` — ${extra.join("; ")}`;
  }
  return text;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
