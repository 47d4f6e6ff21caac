// An agent reviews a call's score (acknowledge, or dispute the score, a step or a cue);
// a coach sees the reviews and resolves open disputes here.
import { api, el, fmtDate, fmtTime, scoreClass, scoreText, sevClass, withToken } from "/static/replay/common.js";

const callId = decodeURIComponent(location.pathname.split("/").pop());
const errorBox = document.getElementById("error");
const STEP_STATUS = { met: "met", missed: "missed", violated: "violated", "n/a": "not applicable" };
let me = null;

function fail(e) { errorBox.textContent = e.message || String(e); errorBox.classList.add("on"); }

function evidenceText(ev) {
  if (ev.words) return "“" + ev.words.map((w) => w.text).join(" ") + "” at " + fmtTime(ev.words[0].start, true);
  if (ev.text) return "“" + ev.text + "”" + (ev.t != null ? " at " + fmtTime(ev.t, true) : "");
  if (ev.title) return ev.title + (ev.t != null ? " at " + fmtTime(ev.t, true) : "");
  return "";
}

function render(r) {
  document.getElementById("agent-link").href = withToken("/team/agents/" + encodeURIComponent(r.agent || ""));
  document.getElementById("agent-link").textContent = r.agent || "Agent";
  document.getElementById("replay-link").href = withToken("/calls/" + r.id);
  const fig = (label, value) => el("span", { class: "fig" }, label, el("b", {}, value));
  document.getElementById("head").replaceChildren(fig("Agent", r.agent || "—"), fig("Call", fmtDate(r.started_at)),
    fig("Length", fmtTime(r.duration_s, true)),
    fig("Score", el("span", { class: "score " + scoreClass(r.score), text: scoreText(r.score) })),
    r.score != null && Math.abs(r.score - r.rubric.score) >= 0.5
      ? el("span", { class: "muted", text: `Scored when stored; the rubric today gives ${scoreText(r.rubric.score)} with the evidence below.` }) : null);
  const steps = Object.entries(r.rubric.steps);
  document.getElementById("steps").replaceChildren(...steps.map(([name, s]) =>
    el("div", { class: "step step-" + s.status.replace("/", "") }, el("b", { text: name.replace("_", " ") }), ` — ${STEP_STATUS[s.status] || s.status}`,
      s.loss ? el("span", { class: "muted", text: ` (−${s.loss} points)` }) : null,
      s.note ? el("div", { class: "muted", text: s.note }) : null,
      ...s.evidence.map((ev) => el("div", { class: "evidence", text: evidenceText(ev) })))));
  document.getElementById("cues").replaceChildren(...(r.cues.length ? r.cues.map((c) =>
    el("div", { class: "cue-live " + sevClass(c.severity) + ((c.evidence || {}).withdrawn ? " withdrawn" : "") },
      el("span", { class: "when", text: fmtTime(c.t, true) }), el("b", { text: c.title || c.id }),
      c.feedback === "flagged" ? el("div", { class: "muted", text: "flagged as wrong during the call" }) : null))
    : [el("p", { class: "muted", text: "No cues." })]));
  const target = document.getElementById("target");
  target.replaceChildren(el("option", { value: "score", text: "the whole score" }),
    ...steps.map(([name]) => el("option", { value: "step:" + name, text: "step: " + name.replace("_", " ") })),
    ...r.cues.map((c) => el("option", { value: "cue:" + c.idx, text: `cue: ${c.title || c.id} at ${fmtTime(c.t, true)}` })));
  document.getElementById("answer-card").hidden = !me || me.role !== "agent";
  document.getElementById("reviews").replaceChildren(...(r.reviews.length ? r.reviews.map(reviewNode)
    : [el("p", { class: "muted", text: "No reviews yet." })]));
}

function reviewNode(v) {
  const what = v.target === "cue" ? "cue " + v.cue_id : v.target === "step" ? "step " + v.step : "the score";
  const node = el("div", { class: "review status-" + v.status },
    el("b", { text: v.kind === "ack" ? "Acknowledged" : "Disputed " + what }), ` by ${v.author} on ${fmtDate(v.created_at)}`,
    v.comment ? el("p", { text: v.comment }) : null,
    v.status === "upheld" || v.status === "overturned" ? el("p", { class: "muted", text: `${v.status === "upheld" ? "Upheld" : "Overturned"} by ${v.resolved_by}: ${v.resolution}` }) : null);
  if (v.status === "open" && me && me.role !== "agent") {
    const text = el("input", { type: "text", placeholder: "Your answer to the agent", class: "resolution" });
    const resolve = (status) => async () => {
      try { await api(`/api/team/reviews/${v.id}`, { method: "PUT", body: { status, resolution: text.value } }); load(); }
      catch (e) { fail(e); }
    };
    node.append(el("div", { class: "resolve" }, text, el("button", { class: "btn", type: "button", onclick: resolve("upheld"), text: "Uphold the score" }),
      el("button", { class: "btn primary", type: "button", onclick: resolve("overturned"), text: "Agent is right" })));
  }
  return node;
}

async function send(kind) {
  const form = document.getElementById("answer");
  const [target, arg] = form.elements.target.value.split(":");
  const body = { kind, target: kind === "ack" ? "score" : target, comment: form.elements.comment.value };
  if (kind === "dispute" && target === "step") body.step = arg;
  if (kind === "dispute" && target === "cue") body.cue_idx = Number(arg);
  try { await api(`/api/calls/${callId}/reviews`, { method: "POST", body }); form.reset(); load(); }
  catch (e) { fail(e); }
}

document.getElementById("answer").addEventListener("submit", (e) => { e.preventDefault(); send("dispute"); });
document.getElementById("ack").addEventListener("click", () => send("ack"));

async function load() {
  try {
    me = me || await api("/api/team/me");
    render(await api(`/api/calls/${callId}/review`));
    errorBox.classList.remove("on");
    window.coachReviewReady = (window.coachReviewReady || 0) + 1;
  } catch (e) { fail(e); }
}
load();
