// The webhooks page: endpoints (create, pause/resume, delete, test) and their recent deliveries.
import { api } from "./api.js";
import { $, el, errorText, say } from "./dom.js";
import { allows } from "./roles.js";

// API.md "Webhooks and realtime events" (job.progress is realtime only, not delivered).
export const WEBHOOK_EVENTS = [
  "media.uploaded", "media.ready", "media.updated", "media.deleted", "media.quarantined",
  "job.completed", "job.failed", "collection.created", "collection.updated", "collection.deleted",
  "user.registered",
];

let shown = null; // the webhook whose deliveries are open

function eventBoxes() {
  const all = $("#wh-all");
  const boxes = () => Array.from(document.querySelectorAll("#wh-events input[name=event]"));
  if (!boxes().length) {
    $("#wh-events").append(...WEBHOOK_EVENTS.map((name) =>
      el("label", { class: "check" }, el("input", { type: "checkbox", name: "event", value: name }), name)));
  }
  const sync = () => { for (const box of boxes()) box.disabled = all.checked || all.disabled; };
  all.onchange = sync;
  sync();
}

function selectedEvents() {
  if ($("#wh-all").checked) return ["*"];
  return Array.from(document.querySelectorAll("#wh-events input[name=event]:checked")).map((b) => b.value);
}

function when(text) { return text ? text.replace("T", " ").replace(/\.\d+Z$|Z$/, " UTC") : ""; }

async function showDeliveries(hook) {
  shown = hook;
  const panel = $("#wh-deliveries");
  panel.hidden = false;
  $("#wh-deliveries-title").textContent = `Recent deliveries to ${hook.url}`;
  const body = $("#wh-delivery-rows");
  try {
    const page = await api(`/api/v1/webhooks/${hook.id}/deliveries`, { query: { limit: 50 } });
    $("#wh-deliveries-empty").hidden = page.data.length > 0;
    body.replaceChildren(...page.data.map((d) => {
      const last = d.attempt_log[d.attempt_log.length - 1];
      const log = d.attempt_log.length
        ? el("details", {}, el("summary", { text: `${d.attempt_log.length} logged` }),
          el("ol", { class: "attempts" }, d.attempt_log.map((a) => el("li", {},
            `${when(a.at)} — ${a.status_code ?? "no answer"} in ${a.latency_ms} ms`,
            a.error ? ` — ${a.error}` : "",
            a.response ? el("pre", { class: "excerpt", text: a.response }) : null))))
        : "—";
      return el("tr", { "data-status": d.status },
        el("td", { text: d.event_type }),
        el("td", { class: { succeeded: "ok", failed: "bad", pending: "warn" }[d.status], text: d.status }),
        el("td", { text: String(d.attempts) }),
        el("td", { text: d.last_status_code ?? (last && last.error ? "error" : "—") }),
        el("td", { text: when(d.created_at) }),
        el("td", {}, log));
    }));
  } catch (err) { say(`Could not load deliveries: ${errorText(err)}`); }
}

export async function loadWebhooks() {
  eventBoxes();
  if (!allows("admin")) { // the form says why; the list would only answer 403
    $("#webhooks").replaceChildren();
    $("#webhooks-table").hidden = true;
    $("#wh-deliveries").hidden = true;
    return;
  }
  try {
    const page = await api("/api/v1/webhooks");
    $("#wh-empty").hidden = page.data.length > 0;
    $("#webhooks-table").hidden = page.data.length === 0;
    $("#webhooks").replaceChildren(...page.data.map((hook) => {
      const toggle = async () => {
        try {
          await api(`/api/v1/webhooks/${hook.id}`, { method: "PATCH", body: { enabled: !hook.enabled } });
          say(`${hook.enabled ? "Paused" : "Resumed"} ${hook.url}.`);
          await loadWebhooks();
        } catch (err) { say(`Could not change the webhook: ${errorText(err)}`); }
      };
      const test = async () => {
        try {
          await api(`/api/v1/webhooks/${hook.id}/test`, { method: "POST" });
          say(`Test event queued for ${hook.url}.`);
          await showDeliveries(hook);
        } catch (err) { say(`Could not send a test: ${errorText(err)}`); }
      };
      const remove = async () => {
        if (!confirm(`Delete the webhook to ${hook.url}?`)) return;
        try {
          await api(`/api/v1/webhooks/${hook.id}`, { method: "DELETE" });
          say(`Deleted the webhook to ${hook.url}.`);
          if (shown && shown.id === hook.id) { shown = null; $("#wh-deliveries").hidden = true; }
          await loadWebhooks();
        } catch (err) { say(`Could not delete: ${errorText(err)}`); }
      };
      const state = hook.enabled ? "enabled" : `disabled${hook.disabled_reason ? ` (${hook.disabled_reason})` : ""}`;
      return el("tr", { "data-id": hook.id, "data-enabled": String(hook.enabled) },
        el("td", { class: "wrap" }, el("code", { text: hook.url }), hook.description ? el("div", { class: "muted", text: hook.description }) : null),
        el("td", { text: hook.events.includes("*") ? "all events" : hook.events.join(", ") }),
        el("td", { class: hook.enabled ? "ok" : "bad", text: state }),
        el("td", {}, el("div", { class: "row-actions" },
          el("button", { type: "button", class: "small", "aria-label": `${hook.enabled ? "Pause" : "Resume"} webhook ${hook.url}`, text: hook.enabled ? "Pause" : "Resume", onclick: toggle }),
          el("button", { type: "button", class: "small", "aria-label": `Send a test event to ${hook.url}`, text: "Send test", onclick: test }),
          el("button", { type: "button", class: "small", "aria-label": `Deliveries to ${hook.url}`, text: "Deliveries", onclick: () => showDeliveries(hook) }),
          el("button", { type: "button", class: "danger small", "aria-label": `Delete webhook ${hook.url}`, text: "Delete", onclick: remove }))));
    }));
    if (shown && page.data.some((h) => h.id === shown.id)) await showDeliveries(shown);
  } catch (err) {
    say(err.status === 403 ? "Only admins of this organisation may manage webhooks." : `Could not load webhooks: ${errorText(err)}`);
  }
}

export function initWebhooks() {
  $("#webhook-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const form = e.target;
    const error = $("#wh-error");
    error.textContent = "";
    const events = selectedEvents();
    if (!events.length) { error.textContent = "Choose at least one event."; return; }
    const body = { url: form.elements.url.value.trim(), events };
    const description = form.elements.description.value.trim();
    if (description) body.description = description;
    try {
      const created = await api("/api/v1/webhooks", { method: "POST", body });
      $("#wh-secret-value").textContent = created.secret;
      $("#wh-secret").hidden = false;
      form.reset();
      eventBoxes();
      say(`Created a webhook to ${created.url}.`);
      await loadWebhooks();
    } catch (err) { error.textContent = `Could not create the webhook: ${errorText(err)}`; }
  });
  $("#copy-secret").addEventListener("click", async () => {
    try { await navigator.clipboard.writeText($("#wh-secret-value").textContent); say("Secret copied."); }
    catch { say("Copy failed; select the secret and copy it by hand."); }
  });
  $("#wh-refresh").addEventListener("click", () => { if (shown) showDeliveries(shown); });
}
