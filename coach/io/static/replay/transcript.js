// The transcript by speaker: turns of words, the word being played, evidence words.
import { el, fmtTime, sevClass } from "./common.js";

const RUN_GAP_S = 1.5;       // a speaker's words closer than this are one run of speech
const ASIDE_WORDS = 4;       // a run this short, said while the other speaker talks, is an aside
const ASIDE_S = 2.0;
const LOW_CONFIDENCE = 0.4;  // words the recogniser gave less than this are shown grey
const HOLD_S = 0.35;         // a word stays "now" this long after it ends (short gaps)
const FOLLOW_PAUSE_MS = 4000; // after the reader scrolls, stop following for this long
const BACKCHANNEL = new Set(["yeah", "yes", "yep", "mm", "mmhm", "mmhmm", "mhm", "hmm", "uhhuh", "uh",
  "um", "okay", "ok", "right", "sure", "alright", "i", "see", "got", "it", "ah", "oh"]);

/** Runs of speech: each speaker's words split where they pause longer than RUN_GAP_S. */
function runsOf(words) {
  const runs = [];
  const open = {};
  words.forEach((w, i) => {
    let r = open[w.speaker];
    if (!r || w.start - r.end > RUN_GAP_S) {
      r = { speaker: w.speaker, start: w.start, end: w.end, idx: [] };
      open[w.speaker] = r;
      runs.push(r);
    }
    r.idx.push(i);
    r.end = Math.max(r.end, w.end);
  });
  return runs.sort((a, b) => a.start - b.start);
}

/** Words sorted by start, grouped into turns. A speaker's consecutive words form one turn
 * until the other speaker takes the floor; a short run of the other speaker said while
 * the first goes on ("yeah", "mm-hm", "right, next time") is an aside inside the turn,
 * as is a lone backchannel between two runs of the same speaker. Each turn:
 * {speaker, start, end, idx: [word indices], asides: [{speaker, start, idx}]} */
export function turns(words) {
  const runs = runsOf(words);
  const short = (r) => r.idx.length <= ASIDE_WORDS && r.end - r.start <= ASIDE_S;
  const filler = (r) => r.idx.length <= 2 &&
    r.idx.every((i) => BACKCHANNEL.has(norm(words[i].text).replace(/'/g, "")));
  const host = new Map();   // aside run -> the run it sits in
  runs.forEach((r, k) => {
    if (!short(r)) return;
    const over = runs.find((o) => o !== r && o.speaker !== r.speaker && !host.has(o) &&
      o.start < r.start && o.end > r.end);           // the other speaker goes on through it
    if (over) { host.set(r, over); return; }
    const prev = runs.slice(0, k).reverse().find((o) => !host.has(o));
    const next = runs.slice(k + 1).find((o) => !short(o) || !filler(o));
    if (filler(r) && prev && next && prev.speaker !== r.speaker && next.speaker === prev.speaker) {
      host.set(r, prev);                              // "mm-hm" between two runs of the other
    }
  });
  const out = [];
  const turnOf = new Map();
  for (const r of runs) {
    if (host.has(r)) continue;
    const last = out[out.length - 1];
    if (last && last.speaker === r.speaker) {
      last.idx.push(...r.idx);
      last.end = Math.max(last.end, r.end);
      turnOf.set(r, last);
    } else {
      const t = { speaker: r.speaker, start: r.start, end: r.end, idx: [...r.idx], asides: [] };
      out.push(t);
      turnOf.set(r, t);
    }
  }
  for (const [r, h] of host) {
    let t = turnOf.get(h);
    while (!t && host.has(h)) t = turnOf.get(h = host.get(h));
    (t || out[0])?.asides.push({ speaker: r.speaker, start: r.start, idx: r.idx });
  }
  for (const t of out) {
    t.idx.sort((a, b) => a - b);
    t.asides.sort((a, b) => a.start - b.start);
  }
  return out;
}

const label = (speaker) => (speaker === "agent" ? "Agent" : "Customer");
const isLow = (w) => typeof w.probability === "number" && w.probability < LOW_CONFIDENCE;

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

  wordSpan(i) {
    const w = this.words[i];
    const span = el("span", {
      class: "w" + (isLow(w) ? " low" : ""),
      dataset: { i: String(i), start: String(w.start) }, text: w.text,
      title: fmtTime(w.start) + (isLow(w) ? " · the recogniser was unsure of this word" : ""),
    });
    this.spans[i] = span;
    return span;
  }

  render(onSeek) {
    this.box.replaceChildren();
    if (!this.words.length) {
      this.box.append(el("p", { class: "muted", text: "No words were recognised in this call." }));
      return;
    }
    const all = turns(this.words);
    const notes = [];
    if (this.words.some(isLow)) {
      notes.push(el("span", {}, el("span", { class: "low-sample", text: "grey words" }),
        ": the recogniser was unsure of them (under 40 % confidence)"));
    }
    if (all.some((t) => t.asides.length)) {
      notes.push(el("span", {}, el("span", { class: "aside sample", text: "Customer: yeah" }),
        " said while the other person was talking"));
    }
    if (notes.length) this.box.append(el("div", { class: "transcript-legend" }, notes));
    for (const turn of all) {
      const text = el("div", { class: "text" });
      let a = 0;
      const flushAsides = (before) => {
        while (a < turn.asides.length && turn.asides[a].start < before) {
          const aside = turn.asides[a++];
          const box = el("span", { class: "aside " + aside.speaker,
            title: `${label(aside.speaker)} at ${fmtTime(aside.start)}, while the other was talking` },
          el("span", { class: "by", text: label(aside.speaker) + ": " }));
          aside.idx.forEach((i, k) => box.append(this.wordSpan(i), k < aside.idx.length - 1 ? " " : ""));
          text.append(box, " ");
        }
      };
      for (const i of turn.idx) {
        flushAsides(this.words[i].start);
        text.append(this.wordSpan(i), " ");
      }
      flushAsides(Infinity);
      const who = el("div", { class: "who" }, label(turn.speaker),
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
