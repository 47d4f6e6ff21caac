// Following one live call: its figures, its cues as they come (withdrawn ones struck
// through) and, where the team's policy shares words, its transcript.
import { el, fmtTime, sevClass, withToken } from "/static/replay/common.js";
import { connectWs, connectionText, paceText, shareBar } from "/static/team/live.js";

const ALERTS = { "warn-cues": "warn cues", "frustration": "frustration", "supervisor-request": "asks for supervisor" };
const callId = decodeURIComponent(location.pathname.split("/").pop());
const head = document.getElementById("head");
const transcript = document.getElementById("transcript");
const cuesBox = document.getElementById("cues");
const errorBox = document.getElementById("error");
let row = null;
let wordsShared = false;
const cues = [];
const lines = [];   // {speaker, words: []}

document.getElementById("board-link").href = withToken("/team");

function renderHead() {
  if (!row) return;
  document.getElementById("crumb").textContent = row.agent + " — live call";
  document.title = "coach — " + row.agent + " live";
  const fig = (label, value) => el("span", { class: "fig" }, label, el("b", {}, value));
  const alerts = row.alerts.length ? row.alerts.map((k) => el("span", { class: "alert-chip", text: ALERTS[k] || k }))
    : [el("span", { class: "muted", text: "none" })];
  head.replaceChildren(...[
    fig("Agent", row.agent), fig("Duration", fmtTime(row.duration_s, true)),
    fig("Warn cues", String(row.warn_count)), fig("Talk split", shareBar(row)),
    fig("Pace", paceText(row)), fig("Connection", connectionText(row)),
    fig("Alerts", el("span", {}, ...alerts)),
    row.state === "ended" && row.stored ? el("a", { class: "btn", href: withToken("/calls/" + row.call_id), text: "Replay this call" }) : null,
  ].filter(Boolean));
}

function renderCues() {
  cuesBox.replaceChildren(...(cues.length ? [...cues].reverse().map((c) =>
    el("div", { class: "cue-live " + sevClass(c.severity) + (c.withdrawn ? " withdrawn" : "") },
      el("span", { class: "when", text: fmtTime(c.t, true) }), el("b", { text: c.title || c.id }),
      c.withdrawn ? el("div", { class: "muted", text: "withdrawn: " + c.withdrawn }) : null))
    : [el("p", { class: "muted", text: "No cues yet." })]));
}

function renderTranscript() {
  if (!wordsShared) {
    transcript.replaceChildren(el("p", { class: "muted", text: "The team's policy keeps the words on the agent's machine." }));
    return;
  }
  transcript.replaceChildren(...lines.slice(-80).map((l) =>
    el("p", { class: l.speaker }, el("span", { class: "who", text: l.speaker === "agent" ? "Agent" : "Customer" }), l.words.join(" "))));
}

function event(e) {
  if (e.type === "cue") cues.push({ ...e });
  else if (e.type === "retract") {
    const c = cues.find((x) => x.id === e.id && Math.abs(x.t - e.t) <= 0.05 && !x.withdrawn);
    if (c) c.withdrawn = e.reason || "withdrawn";
  } else if (e.type === "word" && e.final) {
    const last = lines[lines.length - 1];
    if (last && last.speaker === e.speaker) last.words.push(e.text); else lines.push({ speaker: e.speaker, words: [e.text] });
  }
}

connectWs("/team/ws/calls/" + encodeURIComponent(callId), {
  onState(state, message) {
    const link = document.getElementById("link");
    link.textContent = state === "open" ? "following" : state === "refused" ? "refused" : "reconnecting…";
    link.className = "link-state " + state;
    errorBox.textContent = message || "";
    errorBox.classList.toggle("on", Boolean(message));
  },
  onMessage(m) {
    if (m.type === "follow") {
      row = m.row; wordsShared = m.words_shared; cues.length = 0; lines.length = 0;
      for (const e of m.events) event(e);
      window.coachFollowReady = true;
    } else if (m.type === "row") row = m.row;
    else if (m.type === "event") event(m.event);
    else return;
    renderHead(); renderCues(); renderTranscript();
  },
});
