// The API playground: every operation of /openapi.json, with its documentation, a form for
// its parameters and body, sent with the signed-in user's credentials.
import { rawFetch } from "./api.js";

const $ = (sel) => document.querySelector(sel);
let spec = null;
let operations = [];

function resolve(schema) {
  let node = schema || {};
  for (let i = 0; node.$ref && i < 10; i += 1) {
    node = node.$ref.replace(/^#\//, "").split("/").reduce((acc, part) => acc[part], spec) || {};
  }
  return node;
}

// A small example value of a JSON schema: required fields, defaults and examples first.
function example(schema, depth = 0) {
  const s = resolve(schema);
  if (depth > 4) return null;
  if (s.example !== undefined) return s.example;
  if (s.examples && s.examples.length) return s.examples[0];
  if (s.default !== undefined) return s.default;
  if (s.enum) return s.enum[0];
  const variants = s.anyOf || s.oneOf;
  if (variants) return example(variants.find((v) => resolve(v).type !== "null") || variants[0], depth + 1);
  if (s.allOf) return example(s.allOf[0], depth + 1);
  const type = Array.isArray(s.type) ? s.type.find((t) => t !== "null") : s.type;
  if (type === "object" || s.properties) {
    const out = {};
    const required = new Set(s.required || []);
    for (const [name, prop] of Object.entries(s.properties || {})) {
      if (required.has(name) || Object.keys(s.properties).length <= 3) out[name] = example(prop, depth + 1);
    }
    return out;
  }
  if (type === "array") return [];
  if (type === "integer" || type === "number") return s.minimum ?? 0;
  if (type === "boolean") return false;
  if (type === "string") return s.format === "email" ? "user@example.com" : "";
  return null;
}

// The operation the playground opens on: listing the library is safe and says something.
const FIRST = ["GET /api/v1/media", "GET /api/v1/usage", "GET /api/v1/users/me"];

// An answer belongs to the operation that got it: changing the operation clears it.
function clearResponse() {
  const status = $("#pg-status");
  status.textContent = "No request sent yet.";
  delete status.dataset.status;
  $("#pg-headers").textContent = "";
  $("#pg-response").textContent = "";
}

function renderOperation() {
  const op = operations[Number($("#pg-op").value)];
  if (!op) return;
  clearResponse();
  const doc = $("#pg-doc");
  doc.replaceChildren();
  const title = document.createElement("p");
  const strong = document.createElement("strong");
  strong.textContent = `${op.method.toUpperCase()} ${op.path}`;
  title.append(strong, ` — ${op.summary || ""}`);
  const desc = document.createElement("p");
  desc.className = "doc-text";
  desc.textContent = op.description || "";
  doc.append(title, desc);

  const params = $("#pg-params");
  params.replaceChildren();
  const legend = document.createElement("legend");
  legend.textContent = "Parameters";
  params.append(legend);
  const list = (op.parameters || []).map((p) => resolve(p)).filter((p) => p.in === "path" || p.in === "query");
  if (!list.length) {
    const none = document.createElement("p");
    none.className = "muted";
    none.textContent = "No path or query parameters.";
    params.append(none);
  }
  for (const p of list) {
    const label = document.createElement("label");
    label.textContent = `${p.name} (${p.in}${p.required ? ", required" : ""}) `;
    const input = document.createElement("input");
    input.name = p.name;
    input.dataset.in = p.in;
    input.required = Boolean(p.required);
    const schema = resolve(p.schema);
    if (schema.default !== undefined && schema.default !== null) input.placeholder = String(schema.default);
    if (p.description) input.title = p.description;
    label.append(input);
    params.append(label);
  }

  const content = (op.requestBody && op.requestBody.content) || {};
  const json = content["application/json"];
  const multipart = content["multipart/form-data"];
  $("#pg-body-label").hidden = !json;
  $("#pg-file-label").hidden = !multipart || Boolean(json);
  $("#pg-body").value = json ? JSON.stringify(example(json.schema), null, 2) : "";
}

export async function initPlayground() {
  if (spec) return;
  const res = await fetch("/openapi.json");
  spec = await res.json();
  operations = [];
  for (const [path, ops] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      if (["get", "post", "put", "patch", "delete", "head", "options"].includes(method)) operations.push({ ...op, method, path });
    }
  }
  const select = $("#pg-op");
  const groups = new Map();
  operations.forEach((op, index) => {
    const tag = (op.tags && op.tags[0]) || "other";
    if (!groups.has(tag)) {
      const group = document.createElement("optgroup");
      group.label = tag;
      groups.set(tag, group);
      select.append(group);
    }
    const option = document.createElement("option");
    option.value = String(index);
    option.dataset.key = `${op.method.toUpperCase()} ${op.path}`;
    option.textContent = `${op.method.toUpperCase()} ${op.path} — ${op.summary || ""}`;
    groups.get(tag).append(option);
  });
  const first = FIRST.map((key) => select.querySelector(`option[data-key="${key}"]`)).find(Boolean);
  if (first) select.value = first.value;
  select.addEventListener("change", renderOperation);
  $("#pg-form").addEventListener("submit", send);
  renderOperation();
}

async function send(e) {
  e.preventDefault();
  const op = operations[Number($("#pg-op").value)];
  let path = op.path;
  const query = new URLSearchParams();
  for (const input of document.querySelectorAll("#pg-params input")) {
    if (input.dataset.in === "path") path = path.replace(`{${input.name}}`, encodeURIComponent(input.value));
    else if (input.value !== "") query.set(input.name, input.value);
  }
  const url = path + (query.toString() ? `?${query}` : "");
  const options = { method: op.method.toUpperCase(), headers: {} };
  if (!$("#pg-body-label").hidden && $("#pg-body").value.trim()) {
    try { JSON.parse($("#pg-body").value); } catch (err) {
      $("#pg-status").textContent = `The JSON body does not parse: ${err.message}`;
      return;
    }
    options.headers["Content-Type"] = "application/json";
    options.body = $("#pg-body").value;
  } else if (!$("#pg-file-label").hidden && $("#pg-file").files.length) {
    const form = new FormData();
    form.append("file", $("#pg-file").files[0]);
    options.body = form;
  }
  $("#pg-status").textContent = `Sending ${options.method} ${url}…`;
  const started = performance.now();
  try {
    const res = await rawFetch(url, options);
    const ms = Math.round(performance.now() - started);
    const text = await res.text();
    if (operations[Number($("#pg-op").value)] !== op) return; // the user moved on meanwhile
    let shown = text;
    try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch { /* not JSON */ }
    $("#pg-status").textContent = `${res.status} ${res.statusText} · ${ms} ms · ${options.method} ${url}`;
    $("#pg-status").dataset.status = String(res.status);
    $("#pg-headers").textContent = [...res.headers.entries()].map(([k, v]) => `${k}: ${v}`).join("\n");
    $("#pg-response").textContent = shown.length > 200000 ? `${shown.slice(0, 200000)}\n…` : shown;
  } catch (err) {
    $("#pg-status").textContent = `Request failed: ${err.message}`;
  }
}
