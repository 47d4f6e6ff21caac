// One call: audio with a waveform per speaker, pitch and pace curves, cue and note
// markers on one time axis, the transcript following playback, cues, coach notes.
import WaveSurfer from "/static/vendor/wavesurfer/wavesurfer.esm.js";
import { api, el, fmtDate, fmtTime, scoreClass, scoreText, sevClass, withToken } from "./common.js";
import { buildCharts } from "./charts.js";
import { Notes } from "./notes.js";
import { Transcript } from "./transcript.js";

const $ = (id) => document.getElementById(id);
const callId = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "");
const base = "/api/calls/" + encodeURIComponent(callId);
const audio = $("audio");
const MARKER_PX = 18;   // markers closer than this go on another row of the cue lane
const MARKER_ROWS = 3;
const BAND_GAP_S = 1.5;

let duration = 0;
let cues = [];
let transcript = null;
let notes = null;
let activeCue = null;

function showError(message) {
  $("error").textContent = message;
  $("error").classList.add("on");
}

// -- header ------------------------------------------------------------------------------

function renderHead(call) {
  const who = call.agent || "Unknown agent";
  document.title = `coach — ${who}, ${fmtDate(call.started_at)}`;
  $("title").textContent = `${who} · ${fmtDate(call.started_at)}`;
  $("crumb").textContent = who;
  // counted as the call list counts them: standing cues; withdrawn ones said apart
  const nWithdrawn = call.cues.filter(isWithdrawn).length;
  const nCues = call.cues.length - nWithdrawn;
  const facts = [
    el("span", {}, "Length ", el("b", { class: "num", text: fmtTime(call.duration_s ?? duration, true) })),
    el("span", {}, "Score ", el("span", { class: "score " + scoreClass(call.score), text: scoreText(call.score, call.n_words ?? call.words.length) })),
    el("span", {}, el("b", { text: String(nCues) }), nCues === 1 ? " cue" : " cues",
      nWithdrawn ? el("span", { class: "muted", text: ` (and ${nWithdrawn} withdrawn)` }) : ""),
    el("span", {}, el("b", { text: String(call.n_words ?? call.words.length) }), " words"),
  ];
  if (call.status && call.status !== "complete") {
    facts.push(el("span", { class: "badge", title: call.status === "recovered"
      ? "coach stopped during this call; this is what was saved" : "the recording ends early",
    text: call.status }));
  }
  if (call.source) facts.push(el("span", { class: "muted", text: call.source }));
  $("facts").replaceChildren(...facts);
  for (const fmt of ["json", "vtt", "srt", "csv"]) $("exp-" + fmt).href = withToken(`${base}/export.${fmt}`);
}

// -- playback ----------------------------------------------------------------------------

function seek(t, play = false) {
  t = Math.max(0, Math.min(duration, t));
  if (audio.src) {
    audio.currentTime = t;
    if (play) audio.play().catch(() => {});
  }
  onTime(t);
}

function currentTime() { return audio.src ? audio.currentTime : 0; }

let lastLabel = -1;
function onTime(t) {
  const p = duration > 0 ? Math.min(1, t / duration) : 0;
  $("playhead").style.left = (p * 100).toFixed(3) + "%";
  $("clock").textContent = fmtTime(t) + " / " + fmtTime(duration);
  transcript?.update(t, !audio.paused);
  const tenth = Math.round(t * 10);
  if (tenth !== lastLabel && notes) { lastLabel = tenth; notes.setTime(t); }
}

function setupControls() {
  const play = $("play");
  play.addEventListener("click", () => (audio.paused ? audio.play().catch(() => {}) : audio.pause()));
  audio.addEventListener("play", () => { play.textContent = "❚❚ Pause"; });
  audio.addEventListener("pause", () => { play.textContent = "▶ Play"; onTime(audio.currentTime); });
  audio.addEventListener("ended", () => { play.textContent = "▶ Play"; });
  audio.addEventListener("seeked", () => onTime(audio.currentTime));
  $("back5").addEventListener("click", () => seek(currentTime() - 5));
  $("fwd5").addEventListener("click", () => seek(currentTime() + 5));
  $("rate").addEventListener("change", (e) => { audio.playbackRate = parseFloat(e.target.value); });
  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.target.closest("input, textarea, select, button, [contenteditable]")) return;
    if (e.key === " ") { e.preventDefault(); play.click(); }
    else if (e.key === "ArrowLeft") { e.preventDefault(); seek(currentTime() - 5); }
    else if (e.key === "ArrowRight") { e.preventDefault(); seek(currentTime() + 5); }
  });
  // While playing, follow at display rate (the media element's timeupdate is ~4 Hz).
  const tick = () => { if (!audio.paused) onTime(audio.currentTime); requestAnimationFrame(tick); };
  requestAnimationFrame(tick);
}

// -- timeline ----------------------------------------------------------------------------

const pct = (t) => (duration > 0 ? Math.max(0, Math.min(100, (t / duration) * 100)) : 0) + "%";

function trackSeek(track) {
  track.addEventListener("click", (e) => {
    if (e.target !== track) return;
    const r = track.getBoundingClientRect();
    seek(((e.clientX - r.left) / r.width) * duration);
  });
}

function evidenceWords(cue) {
  const ws = cue.evidence && Array.isArray(cue.evidence.words) ? cue.evidence.words : [];
  return ws.filter((w) => w && typeof w.start === "number");
}

/** Where a cue's evidence starts: its first evidence word, else the cue time. */
export function evidenceStart(cue) {
  const ws = evidenceWords(cue);
  return ws.length ? Math.min(...ws.map((w) => w.start)) : cue.t;
}

function layoutMarkers() {
  const lane = $("cue-lane");
  const width = lane.clientWidth || 1;
  const rows = new Array(MARKER_ROWS).fill(-Infinity);
  for (const m of lane.querySelectorAll(".marker")) {
    const x = (parseFloat(m.dataset.t) / (duration || 1)) * width;
    let row = rows.findIndex((last) => x - last >= MARKER_PX);
    if (row < 0) row = rows.indexOf(Math.min(...rows));
    rows[row] = x;
    m.style.top = 4 + row * 15 + "px";
  }
}

/** A cue the words after it showed wrong: kept on the page, marked, never scored. */
function isWithdrawn(cue) {
  return cue.withdrawn !== null && cue.withdrawn !== undefined;
}

function withdrawnText(cue) {
  return cue.withdrawn ? `Withdrawn ${cue.withdrawn}` : "Withdrawn";
}

function renderCueMarkers() {
  const lane = $("cue-lane");
  lane.replaceChildren();
  for (const cue of [...cues].sort((a, b) => a.t - b.t)) {
    const fb = (cue.feedback ? " " + cue.feedback : "") + (isWithdrawn(cue) ? " withdrawn" : "");
    lane.append(el("button", {
      class: `marker ${sevClass(cue.severity)}${fb}`, type: "button",
      title: `${fmtTime(cue.t)} · ${cue.title} (${cue.id})` + (cue.feedback ? ` — ${cue.feedback} by the agent` : "")
        + (isWithdrawn(cue) ? ` — ${withdrawnText(cue).toLowerCase()}` : ""),
      "aria-label": `cue ${cue.title} at ${fmtTime(cue.t)}`,
      dataset: { idx: String(cue.idx), t: String(cue.t) }, style: `left: ${pct(cue.t)}`,
      onclick: () => focusCue(cue, true),
    }));
  }
  layoutMarkers();
}

function renderNoteMarkers(list) {
  const lane = $("note-lane");
  lane.replaceChildren();
  for (const n of list) {
    lane.append(el("button", {
      class: "note-marker", type: "button", title: `${fmtTime(n.t)} · ${n.text.slice(0, 80)}`,
      "aria-label": `note at ${fmtTime(n.t)}`, dataset: { id: String(n.id) }, style: `left: ${pct(n.t)}`,
      onclick: () => { seek(n.t); notes.highlight(n.id); },
    }));
  }
}

// -- cues --------------------------------------------------------------------------------

/** The evidence as the server words it (quoted words with their time, figures with units). */
function quote(cue) {
  return cue.evidence_text || "";
}

function renderCueList() {
  $("cue-count").textContent = cues.length ? `(${cues.length})` : "";
  const list = $("cue-list");
  list.replaceChildren();
  if (!cues.length) {
    list.append(el("li", { class: "hint", text: "No cues in this call." }));
    return;
  }
  for (const cue of [...cues].sort((a, b) => a.t - b.t)) {
    const fb = cue.feedback === "dismissed" ? el("span", { class: "fb-badge dismissed", text: "Agent dismissed it" })
      : cue.feedback === "flagged" ? el("span", { class: "fb-badge flagged", text: "⚑ Agent flagged it as wrong" }) : null;
    const gone = isWithdrawn(cue) ? el("span", { class: "fb-badge withdrawn", text: withdrawnText(cue) }) : null;
    list.append(el("li", {
      class: `cue-card ${sevClass(cue.severity)}${cue.feedback ? " " + cue.feedback : ""}${gone ? " withdrawn" : ""}`,
      dataset: { idx: String(cue.idx) }, tabindex: "0",
      onclick: () => focusCue(cue, true),
      onkeydown: (e) => { if (e.key === "Enter") focusCue(cue, true); },
    },
    el("div", { class: "top" }, el("span", { class: "title", text: cue.title }),
      el("span", { class: "t", text: fmtTime(cue.t) })),
    el("div", { class: "quote", text: quote(cue) }),
    el("div", { class: "advice", text: cue.advice }),
    fb || gone ? el("div", { class: "fb" }, gone, fb) : null));
  }
}

/** Shade the stretches of the timeline the evidence words cover (words less than
 * BAND_GAP_S apart share a band: "sorry ... sorry ... apologise" gets three). */
function showBands(words, severity) {
  const overlay = $("overlay");
  for (const old of overlay.querySelectorAll(".span-band")) old.remove();
  const sorted = [...words].sort((a, b) => a.start - b.start);
  const groups = [];
  for (const w of sorted) {
    const end = w.end ?? w.start;
    const last = groups[groups.length - 1];
    if (last && w.start - last.end <= BAND_GAP_S) last.end = Math.max(last.end, end);
    else groups.push({ start: w.start, end });
  }
  for (const g of groups) {
    overlay.prepend(el("div", { class: "span-band " + sevClass(severity),
      style: `left: ${pct(g.start)}; width: calc(${pct(g.end)} - ${pct(g.start)} + 3px)` }));
  }
}

/** Seek to a cue's evidence, play it, and highlight its words everywhere. */
function focusCue(cue, play) {
  activeCue = cue;
  for (const node of document.querySelectorAll(".marker, .cue-card")) {
    node.classList.toggle("active", node.dataset.idx === String(cue.idx));
  }
  const card = $("cue-list").querySelector(`[data-idx="${cue.idx}"]`);
  if (card) {
    const list = $("cue-list");
    if (card.offsetTop < list.scrollTop || card.offsetTop + card.offsetHeight > list.scrollTop + list.clientHeight) {
      list.scrollTop = card.offsetTop - list.offsetTop - 8;
    }
  }
  const ws = evidenceWords(cue);
  transcript.showEvidence(transcript.match(ws), cue.severity);
  showBands(ws.length ? ws : [{ start: cue.t, end: cue.t }], cue.severity);
  seek(evidenceStart(cue), play);
}

// -- start -------------------------------------------------------------------------------

async function loadPeaks() {
  try {
    return await api(base + "/peaks?n=3000");
  } catch (e) {
    if (e.status === 404) return null;  // no audio stored
    showError("The waveform could not be drawn: " + e.message);
    return null;
  }
}

function alignTimeline(plotLeft, plotRight) {
  const tl = $("timeline");
  tl.style.setProperty("--gutter", plotLeft + "px");
  tl.style.setProperty("--plot-right", plotRight + "px");
}

async function init() {
  $("back").href = withToken("/");
  $("docs-link").href = withToken("/docs");
  let call;
  try {
    call = await api(base);
  } catch (e) {
    $("title").textContent = e.status === 404 ? "No such call" : "The call could not be loaded";
    showError(e.message);
    document.body.dataset.state = "error";
    return;
  }
  const peaks = call.audio_bytes > 0 ? await loadPeaks() : null;
  const lastWord = call.words.reduce((m, w) => Math.max(m, w.end), 0);
  duration = (peaks && peaks.duration_s) || call.duration_s || lastWord || 1;
  cues = call.cues;
  renderHead(call);

  const charts = buildCharts({ pitchRoot: $("pitch-chart"), paceRoot: $("pace-chart"),
    prosody: call.prosody, duration, onSeek: (t) => seek(t) });
  alignTimeline(charts.plotLeft, charts.plotRight);
  for (const [key, id] of [["pitch", "pitch-chart"], ["pace", "pace-chart"]]) {
    if (charts.empty[key]) $(id).append(el("div", { class: "chart-empty", text: "no readings in this call" }));
  }

  transcript = new Transcript($("transcript"), call.words, { onSeek: (t) => seek(t) });
  notes = new Notes({ callId, notes: call.notes, duration, list: $("note-list"), form: $("note-form"),
    getTime: currentTime, onSeek: (t) => seek(t), onChange: renderNoteMarkers });
  renderNoteMarkers(notes.notes);
  renderCueMarkers();
  renderCueList();
  trackSeek($("cue-lane"));
  trackSeek($("note-lane"));
  setupControls();

  let ready = Promise.resolve();
  if (peaks) {
    audio.src = withToken(base + "/audio");
    const mono = peaks.channels.length < 2;
    $("waveform").classList.toggle("mono", mono);
    if (mono) $("wave-labels").replaceChildren(el("span", { class: "agent", text: "Agent" }));
    const ws = WaveSurfer.create({
      container: $("waveform"), media: audio, peaks: peaks.channels, duration,
      height: 46, normalize: true, cursorWidth: 0, dragToSeek: true, interact: true,
      barWidth: 2, barGap: 1, barRadius: 1, hideScrollbar: true, autoScroll: false,
      splitChannels: [
        { waveColor: "#8fb0f4", progressColor: "#3d6fe0" },
        { waveColor: "#b7a2e6", progressColor: "#6f48c9" },
      ].slice(0, peaks.channels.length),
    });
    ready = new Promise((resolve) => {   // drawn (or given up on: the page still works)
      const t0 = performance.now();
      const check = () => {
        if (ws.getWrapper().querySelector("canvas") || performance.now() - t0 > 5000) resolve();
        else requestAnimationFrame(check);
      };
      check();
    });
    ws.on("interaction", (t) => onTime(t));
    $("play").disabled = false;
  } else {
    $("noaudio").classList.add("on");
    $("waveform").parentElement.style.display = "none";
    for (const id of ["play", "back5", "fwd5", "rate"]) $(id).disabled = true;
  }
  new ResizeObserver(() => { charts.resize(); layoutMarkers(); }).observe($("timeline"));
  onTime(0);
  await ready;
  document.body.dataset.state = "ready";
}

init().catch((e) => { showError("The page failed: " + e.message); document.body.dataset.state = "error"; });
