// The transcript by speaker: turns of words, the word being played, evidence words.
import { el, fmtTime, sevClass } from "./common.js";

const TURN_GAP_S = 1.5;      // a pause this long starts a new turn of the same speaker
const HOLD_S = 0.35;         // a word stays "now" this long after it ends (short gaps)
const FOLLOW_PAUSE_MS = 4000; // after the reader scrolls, stop following for this long

/** Words sorted by start, grouped into turns: consecutive words of one speaker. */
export function turns(words) {
  const out = [];
  let cur = null;
  words.forEach((w, i) => {
    if (!cur || cur.speaker !== w.speaker || w.start - cur.end > TURN_GAP_S) {
      cur = { speaker: w.speaker, start: w.start, end: w.end, idx: [] };
      out.push(cur);
    }
    cur.idx.push(i);
    cur.end = Math.max(cur.end, w.end);
  });
  return out;
}

const norm = (s) => String(s || "").toLowerCase().replace(/[^\p{L}\p{N}']+/gu, "");

export class Transcript {
  constructor(box, words, { onSeek }) {
    this.box = box;
    this.words = [...words].sort((a, b) => a.start - b.start || a.end - b.end);
    this.spans = [];
    this.now = new Set();
    this.evidence = [];
    this.lastUserScroll = 0;
    this.bySpeaker = {};
    this.words.forEach((w, i) => (this.bySpeaker[w.speaker] ||= []).push(i));
    for (const ev of ["wheel", "touchmove", "keydown", "mousedown"]) {
      box.addEventListener(ev, () => { this.lastUserScroll = Date.now(); }, { passive: true });
    }
    this.render(onSeek);
  }

  render(onSeek) {
    this.box.replaceChildren();
    if (!this.words.length) {
      this.box.append(el("p", { class: "muted", text: "No words were recognised in this call." }));
      return;
    }
    for (const turn of turns(this.words)) {
      const text = el("div", { class: "text" });
      for (const i of turn.idx) {
        const w = this.words[i];
        const span = el("span", {
          class: "w" + (typeof w.probability === "number" && w.probability < 0.4 ? " low" : ""),
          dataset: { i: String(i), start: String(w.start) }, text: w.text,
          title: fmtTime(w.start) + (typeof w.probability === "number" && w.probability < 0.4
            ? " · low confidence" : ""),
        });
        this.spans[i] = span;
        text.append(span, " ");
      }
      const who = el("div", { class: "who" }, turn.speaker === "agent" ? "Agent" : "Customer",
        el("span", { class: "t", text: fmtTime(turn.start), dataset: { start: String(turn.start) } }));
      this.box.append(el("div", { class: "seg " + turn.speaker }, who, text));
    }
    this.box.addEventListener("click", (e) => {
      const target = e.target.closest("[data-start]");
      if (target) onSeek(parseFloat(target.dataset.start));
    });
  }

  /** Highlight the word each speaker is saying at `t`, and keep it in view. */
  update(t, playing) {
    const next = new Set();
    for (const idx of Object.values(this.bySpeaker)) {
      let lo = 0, hi = idx.length - 1, found = -1;
      while (lo <= hi) {               // last word of this speaker starting at or before t
        const mid = (lo + hi) >> 1;
        if (this.words[idx[mid]].start <= t) { found = mid; lo = mid + 1; } else hi = mid - 1;
      }
      if (found >= 0 && t <= this.words[idx[found]].end + HOLD_S) next.add(idx[found]);
    }
    for (const i of this.now) if (!next.has(i)) this.spans[i]?.classList.remove("now");
    let first = null;
    for (const i of next) {
      if (!this.now.has(i)) this.spans[i]?.classList.add("now");
      if (first === null || this.words[i].start < this.words[first].start) first = i;
    }
    const changed = next.size !== this.now.size || [...next].some((i) => !this.now.has(i));
    this.now = next;
    if (changed && playing && first !== null && Date.now() - this.lastUserScroll > FOLLOW_PAUSE_MS) {
      this.reveal(this.spans[first]);
    }
  }

  /** Scroll the transcript box (not the page) so `span` sits in its upper third. */
  reveal(span, force = false) {
    if (!span) return;
    const box = this.box;
    const top = span.offsetTop, bottom = top + span.offsetHeight;
    const visible = top >= box.scrollTop + 8 && bottom <= box.scrollTop + box.clientHeight - 8;
    if (!visible || force) {
      box.scrollTo({ top: Math.max(0, top - box.clientHeight / 3), behavior: "smooth" });
    }
  }

  /** Indices of the transcript words a cue's evidence names (matched by time, then text). */
  match(evWords) {
    const out = [];
    for (const ev of evWords || []) {
      if (typeof ev.start !== "number") continue;
      let best = -1, bestScore = Infinity;
      for (let i = 0; i < this.words.length; i++) {
        const w = this.words[i];
        const d = Math.abs(w.start - ev.start) + Math.abs(w.end - (ev.end ?? ev.start));
        if (d > 0.6) continue;
        const score = d + (norm(w.text) === norm(ev.text) ? 0 : 0.5);
        if (score < bestScore) { bestScore = score; best = i; }
      }
      if (best >= 0 && !out.includes(best)) out.push(best);
    }
    return out;
  }

  /** Mark `indices` as the evidence of a cue of `severity` (replacing any earlier). */
  showEvidence(indices, severity) {
    for (const i of this.evidence) this.spans[i]?.classList.remove("evidence", "sev-info", "sev-nudge", "sev-warn");
    this.evidence = indices;
    for (const i of indices) this.spans[i]?.classList.add("evidence", sevClass(severity));
    if (indices.length) this.reveal(this.spans[indices[0]], true);
    this.lastUserScroll = 0;
  }
}
