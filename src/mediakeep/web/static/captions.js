// The captions part of the detail view: list, read, add or replace (file or pasted text),
// approve, and generate with speech recognition (an AI job followed live).
import { ApiError, api, rawFetch } from "./api.js";
import { el, errorText, say } from "./dom.js";
import { lockButton, lockForm } from "./roles.js";

async function captionText(mediaId, language) {
  const res = await rawFetch(`/api/v1/media/${mediaId}/captions/${encodeURIComponent(language)}.vtt`);
  if (!res.ok) throw new ApiError(res.status, await res.json().catch(() => null));
  return res.text();
}

// `followJob(job, target)` shows a job's progress in `target` and resolves with its final state;
// `onChange()` runs after the captions changed (the player reloads its subtitle tracks).
export function captionsSection(media, { followJob, onChange = () => {} }) {
  const base = `/api/v1/media/${media.id}/captions`;
  let captions = media.captions || [];

  const rows = el("tbody", { id: "caption-rows" });
  const table = el("table", { class: "table captions-table" },
    el("caption", { class: "visually-hidden", text: "Captions of this media" }),
    el("thead", {}, el("tr", {}, ["Language", "Source", "State"].map((h) => el("th", { scope: "col", text: h })),
      el("th", { scope: "col" }, el("span", { class: "visually-hidden", text: "Actions" })))),
    rows);
  const empty = el("p", { class: "muted", id: "captions-empty", text: "No captions yet." });
  const viewer = el("pre", { id: "caption-text", class: "caption-text", hidden: true, tabindex: "0", "aria-label": "Caption text" });

  // ---- add / replace
  const language = el("input", { name: "language", required: true, value: "en", maxlength: "35", pattern: "[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*", autocomplete: "off" });
  const format = el("select", { name: "format" }, el("option", { value: "vtt", text: "WebVTT (.vtt)" }), el("option", { value: "srt", text: "SubRip (.srt)" }));
  const file = el("input", { type: "file", name: "file", accept: ".vtt,.srt,text/vtt,application/x-subrip" });
  const content = el("textarea", { name: "content", rows: "8", spellcheck: "false", required: true, placeholder: "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nHello" });
  const error = el("p", { class: "form-error", id: "caption-error", role: "alert" });
  const form = el("form", { class: "panel caption-form", id: "caption-form", "aria-labelledby": "caption-form-title" },
    el("h4", { id: "caption-form-title", text: "Add or replace captions" }),
    el("div", { class: "toolbar" }, el("label", {}, "Language", language), el("label", {}, "Format", format), el("label", {}, "Caption file", file)),
    el("label", { class: "block" }, "Caption text", content),
    error,
    el("button", { type: "submit", text: "Save captions" }));

  file.addEventListener("change", async () => {
    const picked = file.files && file.files[0];
    if (!picked) return;
    content.value = await picked.text();
    format.value = /\.srt$/i.test(picked.name) || !content.value.trimStart().startsWith("WEBVTT") ? "srt" : "vtt";
    const named = picked.name.match(/\.([A-Za-z]{2,3}(?:-[A-Za-z0-9]+)?)\.(?:vtt|srt)$/);
    if (named) language.value = named[1];
  });

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.textContent = "";
    const lang = language.value.trim();
    const exists = captions.some((c) => c.language.toLowerCase() === lang.toLowerCase());
    try {
      if (exists) {
        await api(`${base}/${encodeURIComponent(lang)}`, { method: "PATCH", body: { content: content.value, format: format.value } });
      } else {
        await api(base, { method: "POST", body: { language: lang, content: content.value, format: format.value } });
      }
      say(`Saved the ${lang} captions.`);
      content.value = "";
      file.value = "";
      await reload();
    } catch (err) {
      error.textContent = `Could not save: ${errorText(err)}`;
      content.focus();
    }
  });

  // ---- speech recognition
  const spoken = el("input", { name: "language", placeholder: "detect", maxlength: "35", autocomplete: "off" });
  const review = el("input", { type: "checkbox", name: "review_required", checked: true });
  const progress = el("span", { id: "asr-job", class: "muted", "aria-live": "polite" });
  const asr = el("form", { class: "toolbar", id: "asr-form", "aria-label": "Generate captions" },
    el("label", {}, "Spoken language", spoken),
    el("label", { class: "check" }, review, "Review before use"),
    el("button", { type: "submit", text: "Generate captions" }), progress);
  asr.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = { media_id: media.id, review_required: review.checked };
    if (spoken.value.trim()) body.language = spoken.value.trim();
    try {
      const answer = await api("/api/v1/ai/generate-caption", { method: "POST", body });
      const done = await followJob(answer.job, progress);
      if (done.status === "completed") { say("Captions generated."); await reload(); }
    } catch (err) { progress.textContent = `Could not generate: ${errorText(err)}`; }
  });

  async function show(caption, button) {
    if (!viewer.hidden && viewer.dataset.language === caption.language) {
      viewer.hidden = true;
      button.setAttribute("aria-expanded", "false");
      return;
    }
    try {
      viewer.textContent = await captionText(media.id, caption.language);
      viewer.dataset.language = caption.language;
      viewer.hidden = false;
      for (const other of rows.querySelectorAll("[aria-expanded]")) other.setAttribute("aria-expanded", "false");
      button.setAttribute("aria-expanded", "true");
    } catch (err) { say(`Could not read the captions: ${errorText(err)}`); }
  }

  async function edit(caption) {
    try {
      content.value = await captionText(media.id, caption.language);
      language.value = caption.language;
      format.value = "vtt";
      content.focus();
    } catch (err) { say(`Could not read the captions: ${errorText(err)}`); }
  }

  async function approve(caption) {
    try {
      await api(`${base}/${encodeURIComponent(caption.language)}`, { method: "PATCH", body: { approved: !caption.approved } });
      say(`${caption.approved ? "Withdrew approval of" : "Approved"} the ${caption.language} captions.`);
      await reload();
    } catch (err) { say(`Could not change the captions: ${errorText(err)}`); }
  }

  function render() {
    empty.hidden = captions.length > 0;
    table.hidden = captions.length === 0;
    rows.replaceChildren(...captions.map((c) => {
      const view = el("button", { type: "button", class: "small", "aria-expanded": "false", "aria-controls": "caption-text", "aria-label": `View ${c.language} captions`, text: "View" });
      view.addEventListener("click", () => show(c, view));
      return el("tr", { "data-language": c.language },
        el("td", { text: c.language }), el("td", { text: c.source === "asr" ? "speech recognition" : "manual" }),
        el("td", { class: c.approved ? "ok" : "warn", text: c.approved ? "approved" : "needs review" }),
        el("td", {}, el("div", { class: "row-actions" }, view,
          lockButton(el("button", { type: "button", class: "small", "aria-label": `Edit ${c.language} captions`, text: "Edit", onclick: () => edit(c) }), "member", "edit captions"),
          lockButton(el("button", { type: "button", class: "small", "aria-label": `${c.approved ? "Unapprove" : "Approve"} ${c.language} captions`, text: c.approved ? "Unapprove" : "Approve", onclick: () => approve(c) }), "member", "approve captions"),
          el("a", { href: c.url_vtt, text: "VTT" }), el("a", { href: c.url_srt, text: "SRT" }))));
    }));
  }

  async function reload() {
    try { captions = (await api(base)).data; } catch (err) { say(`Could not list captions: ${errorText(err)}`); }
    render();
    onChange();
  }

  render();
  lockForm(form, "member", "edit captions");
  lockForm(asr, "member", "generate captions");
  const canSpeak = media.kind === "video" || media.kind === "audio";
  return el("section", { class: "captions", "aria-labelledby": "captions-title" },
    el("h3", { id: "captions-title", text: "Captions" }), el("div", { class: "scroll-x" }, table), empty, viewer, form,
    canSpeak ? asr : null);
}
