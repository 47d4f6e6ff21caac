// One agent over a period: score trend, cue rates, recurring faults, best and worst calls,
// coach notes, voice baseline across calls, reviews.
import uPlot from "/static/vendor/uplot/uPlot.esm.js";
import { api, el, fmtDate, scoreClass, scoreText, sevClass, withToken } from "/static/replay/common.js";

const name = decodeURIComponent(location.pathname.split("/").pop());
const form = document.getElementById("period");
const errorBox = document.getElementById("error");
document.getElementById("board-link").href = withToken("/team");
document.getElementById("calls-link").href = withToken("/?agent=" + encodeURIComponent(name));
document.getElementById("title").textContent = name;
document.getElementById("crumb").textContent = name;
document.title = "coach — " + name;
const STATUS = { open: "open", acknowledged: "acknowledged", upheld: "upheld by the coach", overturned: "overturned: the agent was right" };

function chart(node, xs, series, yLabel) {
  node.replaceChildren();
  if (!xs.length) { node.append(el("p", { class: "muted", text: "No calls in this period." })); return; }
  new uPlot({
    width: Math.max(300, node.clientWidth || 520), height: 200,
    scales: { x: { time: true } },
    axes: [{ stroke: "#677085" }, { stroke: "#677085", label: yLabel }],
    series: [{}, ...series.map(([label, color]) => ({ label, stroke: color, width: 2, points: { show: true, size: 6 } }))],
  }, [xs, ...series.map((s) => s[2])], node);
}

function callLink(c) {
  return el("a", { href: withToken("/team/review/" + c.id) }, fmtDate(c.started_at));
}

async function load() {
  const q = new URLSearchParams();
  const v = (f) => form.elements[f].value;
  if (v("from")) q.set("since", new Date(v("from") + "T00:00:00").toISOString());
  if (v("to")) { const e = new Date(v("to") + "T00:00:00"); e.setDate(e.getDate() + 1); q.set("until", new Date(e - 1).toISOString()); }
  let s;
  try { s = await api(`/api/team/agents/${encodeURIComponent(name)}/summary?` + q); }
  catch (e) { errorBox.textContent = e.message; errorBox.classList.add("on"); return; }
  errorBox.classList.remove("on");
  document.getElementById("totals").textContent = `${s.calls} calls, ${s.minutes} min` + (s.mean_score != null ? `, mean score ${s.mean_score}` : "");
  const t = s.trend;
  chart(document.getElementById("trend"), t.map((c) => Date.parse(c.started_at) / 1000), [["score", "#2e64d8", t.map((c) => c.score)]], "score");
  const b = s.baseline;
  document.getElementById("baseline-text").textContent = b
    ? `Learned from ${b.calls} calls: pace ${Math.round(b.wpm)} wpm, pitch ${Math.round(b.f0_hz)} Hz, level ${Math.round(b.loudness_db)} dBFS. Each dot: one call's median while the agent spoke.`
    : "Fewer than 3 calls with enough speech: each call calibrates itself.";
  const pc = b ? b.per_call.slice().reverse() : [];
  chart(document.getElementById("voice"), pc.map((c) => Date.parse(c.started_at) / 1000),
    [["pace (wpm)", "#5b8def", pc.map((c) => c.wpm)], ["pitch (Hz)", "#8c6bd6", pc.map((c) => c.f0_hz)]], "wpm · Hz");
  document.getElementById("rates").replaceChildren(
    el("tr", {}, el("th", { text: "Cue" }), el("th", { class: "num", text: "Count" }), el("th", { class: "num", text: "Per minute" })),
    ...s.cue_rates.map((r) => el("tr", {}, el("td", {}, el("span", { class: "chip " + sevClass(r.severity), text: r.cue_id })),
      el("td", { class: "num", text: String(r.count) }), el("td", { class: "num", text: r.per_minute != null ? r.per_minute.toFixed(2) : "—" }))));
  document.getElementById("recurring").replaceChildren(...(s.recurring.length ? s.recurring.map((r) =>
    el("p", {}, el("b", { text: r.cue_id }), ` in ${Math.round(r.share * 100)} % of calls (${r.calls})`))
    : [el("p", { class: "muted", text: "No fault in a quarter or more of the calls." })]));
  const list = (title, calls) => [el("h3", { text: title }), ...calls.map((c) =>
    el("p", {}, el("span", { class: "score " + scoreClass(c.score), text: scoreText(c.score) }), " ", callLink(c)))];
  document.getElementById("bestworst").replaceChildren(...list("Best", s.best), ...list("Worst", s.worst));
  document.getElementById("notes").replaceChildren(...(s.notes.length ? s.notes.map((n) =>
    el("p", {}, el("a", { href: withToken(`/calls/${n.call_id}`), text: fmtDate(n.created_at) }), " ", n.author ? el("b", { text: n.author + ": " }) : null, n.text))
    : [el("p", { class: "muted", text: "No notes yet." })]));
  document.getElementById("reviews").replaceChildren(...(s.reviews.length ? s.reviews.map((r) =>
    el("p", {}, el("a", { href: withToken("/team/review/" + r.call_id), text: fmtDate(r.created_at) }), ` ${r.kind === "ack" ? "acknowledged" : "disputed"} ${r.target}${r.cue_id ? " " + r.cue_id : ""}${r.step ? " " + r.step : ""} — ${STATUS[r.status] || r.status}`,
      r.resolution ? el("span", { class: "muted", text: ` (${r.resolved_by}: ${r.resolution})` }) : null))
    : [el("p", { class: "muted", text: "No reviews yet." })]));
  window.coachAgentReady = true;
}

form.addEventListener("change", load);
load();
