// What the caller's role in the current organisation allows, from the role the API reports
// (GET /api/v1/orgs: each org's `role`; for an API key, the key's own capped role). Forms the
// role may not use are disabled with the reason shown, instead of failing after submit; the
// server's 403 stays the real check.
import { el } from "./dom.js";

const RANK = { viewer: 0, member: 1, admin: 2, owner: 3 };
const PEOPLE = { viewer: "Viewers", member: "Members", admin: "Admins", owner: "Owners" };

let role = null; // unknown (e.g. auth off): nothing is locked

export function setRole(value) { role = value in RANK ? value : null; }

export function allows(needed) { return role === null || RANK[role] >= RANK[needed]; }

// "Viewers cannot upload — ask an admin" (members are managed by owners).
export function reason(needed, doing) {
  return `${PEOPLE[role] || "You"} cannot ${doing} — ask an ${needed === "owner" ? "owner" : "admin"}`;
}

// Disable (or enable again) the controls of `form` for the current role, the reason shown at
// the top of the form and tied to its submit button. Controls disabled for another reason
// (e.g. the event boxes while "All events" is ticked) are left as they are.
export function lockForm(form, needed, doing) {
  if (!form) return true;
  const allowed = allows(needed);
  const id = `${form.id || "form"}-reason`;
  let note = form.querySelector(":scope > .form-reason");
  for (const control of form.elements) {
    if (!allowed && !control.disabled) { control.disabled = true; control.dataset.roleLocked = ""; }
    else if (allowed && "roleLocked" in control.dataset) { control.disabled = false; delete control.dataset.roleLocked; }
  }
  if (allowed) {
    if (note) note.remove();
    delete form.dataset.locked;
    return true;
  }
  if (!note) {
    note = el("p", { class: "form-reason", id, role: "note" });
    const heading = form.querySelector(":scope > h3, :scope > h4");
    if (heading) heading.after(note); else form.prepend(note);
  }
  note.textContent = reason(needed, doing);
  form.dataset.locked = "";
  for (const button of form.querySelectorAll("button[type=submit]")) button.setAttribute("aria-describedby", id);
  return false;
}

// A single button (delete, revoke, remove): disabled with the reason as its tooltip.
export function lockButton(button, needed, doing) {
  if (allows(needed)) return button;
  button.disabled = true;
  button.title = reason(needed, doing);
  return button;
}
