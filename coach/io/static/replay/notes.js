// Coach notes: add at the playback time, edit, delete; stored through the API.
import { api, el, fmtTime } from "./common.js";

const AUTHOR_KEY = "coach.replay.author";

/** "1:02.5" / "62.5" / "1:02:03" -> seconds, or NaN. */
export function parseTime(text) {
  const parts = String(text).trim().split(":");
  if (!parts.length || parts.length > 3 || parts.some((p) => !/^\d+(\.\d+)?$/.test(p))) return NaN;
  return parts.reduce((acc, p) => acc * 60 + parseFloat(p), 0);
}

export class Notes {
  constructor({ callId, notes, duration, list, form, getTime, onSeek, onChange }) {
    this.callId = callId;
    this.notes = [...notes].sort((a, b) => a.t - b.t || a.id - b.id);
    this.duration = duration;
    this.list = list;
    this.form = form;
    this.getTime = getTime;
    this.onSeek = onSeek;
    this.onChange = onChange;
    this.text = form.querySelector("#note-text");
    this.author = form.querySelector("#note-author");
    this.button = form.querySelector("#note-add");
    this.error = form.querySelector("#note-error");
    this.author.value = localStorage.getItem(AUTHOR_KEY) || "";
    this.author.addEventListener("change", () => localStorage.setItem(AUTHOR_KEY, this.author.value.trim()));
    form.addEventListener("submit", (e) => { e.preventDefault(); this.add(); });
    this.text.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); this.add(); }
    });
    this.render();
  }

  get base() { return "/api/calls/" + encodeURIComponent(this.callId) + "/notes"; }

  setTime(t) { this.button.textContent = "Add note at " + fmtTime(t); }

  fail(message) { this.error.textContent = message || ""; }

  async add() {
    const text = this.text.value.trim();
    if (!text) { this.fail("Write the note first."); this.text.focus(); return; }
    const t = Math.round(this.getTime() * 100) / 100;
    this.button.disabled = true;
    try {
      const note = await api(this.base, { method: "POST",
        body: { t, text, author: this.author.value.trim() || null } });
      this.notes.push(note);
      this.notes.sort((a, b) => a.t - b.t || a.id - b.id);
      this.text.value = "";
      this.fail("");
      this.changed(note.id);
    } catch (e) {
      this.fail("Not saved: " + e.message);
    } finally {
      this.button.disabled = false;
    }
  }

  async save(note, text, tText) {
    const t = parseTime(tText);
    if (!text.trim()) return "The note is empty (delete it instead).";
    if (!isFinite(t) || t < 0 || t > this.duration + 0.5) return "Time must be between 0:00 and " + fmtTime(this.duration) + ".";
    try {
      const updated = await api(this.base + "/" + note.id, { method: "PATCH",
        body: { text: text.trim(), t: Math.round(t * 100) / 100 } });
      Object.assign(note, updated);
      this.notes.sort((a, b) => a.t - b.t || a.id - b.id);
      this.changed(note.id);
      return null;
    } catch (e) {
      return "Not saved: " + e.message;
    }
  }

  async remove(note) {
    try {
      await api(this.base + "/" + note.id, { method: "DELETE" });
    } catch (e) {
      if (e.status !== 404) { this.fail("Not deleted: " + e.message); return; }
    }
    this.notes = this.notes.filter((n) => n.id !== note.id);
    this.fail("");
    this.changed(null);
  }

  changed(activeId) {
    this.render(activeId);
    this.onChange(this.notes);
  }

  highlight(id) {
    for (const li of this.list.children) li.classList.toggle("active", li.dataset.id === String(id));
    const li = this.list.querySelector(`[data-id="${id}"]`);
    if (li) li.scrollIntoView({ block: "nearest" });
  }

  render(activeId = null) {
    this.list.replaceChildren();
    if (!this.notes.length) {
      this.list.append(el("li", { class: "hint", text: "No notes yet. Pause where something matters and write what the agent should hear." }));
      return;
    }
    for (const note of this.notes) this.list.append(this.item(note, note.id === activeId));
  }

  item(note, active) {
    const body = el("div", { class: "body", text: note.text });
    let armTimer = null;
    const del = el("button", { class: "btn small danger", type: "button", text: "Delete" });
    del.addEventListener("click", () => {
      if (del.classList.contains("armed")) { clearTimeout(armTimer); this.remove(note); return; }
      del.classList.add("armed"); del.textContent = "Delete?";
      armTimer = setTimeout(() => { del.classList.remove("armed"); del.textContent = "Delete"; }, 4000);
    });
    const edit = el("button", { class: "btn small", type: "button", text: "Edit" });
    const li = el("li", { class: "note" + (active ? " active" : ""), dataset: { id: String(note.id) } },
      el("div", { class: "top" },
        el("span", { class: "t", text: fmtTime(note.t), title: "Play from here",
          onclick: () => this.onSeek(note.t) }),
        el("span", { class: "by", text: note.author || "" }), edit, del),
      body);
    edit.addEventListener("click", () => this.editor(li, note, body));
    return li;
  }

  editor(li, note, body) {
    if (li.querySelector("textarea")) return;
    const area = el("textarea", { maxlength: "4000" });
    area.value = note.text;
    const time = el("input", { type: "text", value: fmtTime(note.t), "aria-label": "note time" });
    const now = el("button", { class: "btn small", type: "button", text: "Now",
      title: "Move the note to the playback time",
      onclick: () => { time.value = fmtTime(this.getTime()); } });
    const msg = el("span", { class: "hint" });
    const save = el("button", { class: "btn small primary", type: "button", text: "Save" });
    const cancel = el("button", { class: "btn small", type: "button", text: "Cancel",
      onclick: () => this.render() });
    save.addEventListener("click", async () => {
      save.disabled = true;
      const err = await this.save(note, area.value, time.value);
      save.disabled = false;
      if (err) msg.textContent = err;
    });
    body.replaceWith(el("div", { class: "editing" }, area,
      el("div", { class: "edit-row" }, time, now, save, cancel, msg)));
    area.focus();
  }
}
