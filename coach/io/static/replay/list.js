// The call list: filters (kept in the address bar), a page of calls, links to each call.
import { api, el, fmtDate, fmtTime, scoreClass, scoreText, sevClass, withToken } from "./common.js";

const PAGE = 25;
const FIELDS = ["from", "to", "agent", "cue", "min_score", "max_score", "q"];
const SEV_RANK = { warn: 0, nudge: 1, info: 2 };

const form = document.getElementById("filters");
const results = document.getElementById("results");
const errorBox = document.getElementById("error");
let cueTypes = new Map();   // id -> {title, severity}
let offset = 0;
let seq = 0;

document.getElementById("docs-link").href = withToken("/docs");

function readUrl() {
  const p = new URLSearchParams(location.search);
  for (const f of FIELDS) if (form.elements[f]) form.elements[f].value = p.get(f) || "";
  offset = Math.max(0, parseInt(p.get("offset") || "0", 10) || 0);
}

function writeUrl() {
  const p = new URLSearchParams();
  const tok = new URLSearchParams(location.search).get("token");
  if (tok) p.set("token", tok);
  for (const f of FIELDS) { const v = form.elements[f].value.trim(); if (v) p.set(f, v); }
  if (offset) p.set("offset", String(offset));
  const qs = p.toString();
  history.replaceState(null, "", location.pathname + (qs ? "?" + qs : ""));
}

/** The API query for the form: dates are the reader's local days, sent as UTC instants. */
function apiQuery() {
  const q = new URLSearchParams();
  const v = (f) => form.elements[f].value.trim();
  if (v("from")) q.set("since", new Date(v("from") + "T00:00:00").toISOString());
  if (v("to")) {
    const end = new Date(v("to") + "T00:00:00");   // the whole day: until is inclusive
    end.setDate(end.getDate() + 1);
    q.set("until", new Date(end.getTime() - 1).toISOString());
  }
  for (const f of ["agent", "cue", "min_score", "max_score", "q"]) if (v(f)) q.set(f, v(f));
  q.set("limit", String(PAGE));
  q.set("offset", String(offset));
  return q;
}

function showError(message) {
  errorBox.textContent = message || "";
  errorBox.classList.toggle("on", Boolean(message));
}

function cueChips(counts) {
  const entries = Object.entries(counts || {}).filter(([, n]) => n > 0);
  entries.sort((a, b) => {
    const sa = SEV_RANK[(cueTypes.get(a[0]) || {}).severity] ?? 1;
    const sb = SEV_RANK[(cueTypes.get(b[0]) || {}).severity] ?? 1;
    return sa - sb || b[1] - a[1] || a[0].localeCompare(b[0]);
  });
  if (!entries.length) return [el("span", { class: "muted", text: "none" })];
  const shown = entries.slice(0, 5).map(([id, n]) => {
    const type = cueTypes.get(id);
    return el("span", { class: "chip " + sevClass(type ? type.severity : "nudge"),
      title: id + (n > 1 ? " ×" + n : ""), dataset: { cue: id } },
    type ? type.title : id, n > 1 ? el("b", { text: "×" + n }) : null);
  });
  if (entries.length > 5) {
    const rest = entries.slice(5).map(([id, n]) => (cueTypes.get(id)?.title || id) + (n > 1 ? " ×" + n : "")).join(", ");
    shown.push(el("span", { class: "chip", title: rest, text: "+" + (entries.length - 5) }));
  }
  return shown;
}

function render(data) {
  results.replaceChildren();
  if (!data.calls.length) {
    const filtered = FIELDS.some((f) => form.elements[f].value.trim());
    results.append(el("div", { class: "empty" }, filtered
      ? "No calls match these filters."
      : "No calls stored yet. Calls recorded by coach live, or analysed with coach analyze --save, appear here."));
  } else {
    const body = el("tbody");
    for (const c of data.calls) {
      const href = withToken("/calls/" + encodeURIComponent(c.id));
      const total = Object.values(c.cue_counts || {}).reduce((a, b) => a + b, 0);
      const row = el("tr", { dataset: { id: c.id } },
        el("td", { class: "when" }, el("a", { href, text: fmtDate(c.started_at) }),
          el("span", { class: "src", text: c.source || "" })),
        el("td", { class: "agent", text: c.agent || "—" }),
        el("td", { class: "right num", text: fmtTime(c.duration_s, true) }),
        el("td", { class: "right" }, el("span", { class: "score " + scoreClass(c.score), text: scoreText(c.score, c.n_words) })),
        el("td", { class: "right num", text: String(total) }),
        el("td", {}, el("div", { class: "chips" }, cueChips(c.cue_counts))),
        el("td", {}, c.status && c.status !== "complete" ? el("span", { class: "badge", text: c.status }) : ""));
      row.addEventListener("click", (e) => { if (!e.target.closest("a")) location.href = href; });
      body.append(row);
    }
    results.append(el("table", { class: "calls" },
      el("thead", {}, el("tr", {},
        el("th", { text: "Call" }), el("th", { text: "Agent" }), el("th", { class: "right", text: "Length" }),
        el("th", { class: "right", text: "Score" }), el("th", { class: "right", text: "Cues" }),
        el("th", { text: "Which cues" }), el("th", { text: "" }))),
      body));
  }
  const first = data.total ? offset + 1 : 0;
  const last = Math.min(offset + data.calls.length, data.total);
  document.getElementById("range").textContent =
    data.total ? `${first}–${last} of ${data.total} call${data.total === 1 ? "" : "s"}` : "";
  document.getElementById("prev").disabled = offset <= 0;
  document.getElementById("next").disabled = offset + PAGE >= data.total;
}

async function load() {
  const mine = ++seq;
  writeUrl();
  document.body.dataset.state = "loading";
  try {
    const data = await api("/api/calls?" + apiQuery().toString());
    if (mine !== seq) return;
    showError("");
    render(data);
  } catch (e) {
    if (mine !== seq) return;
    showError("Could not load the calls: " + e.message);
    results.replaceChildren();
  }
  if (mine === seq) document.body.dataset.state = "ready";
}

function fillSelect(select, values, current) {
  for (const [value, label] of values) select.append(el("option", { value, text: label }));
  if (current && ![...select.options].some((o) => o.value === current)) {
    select.append(el("option", { value: current, text: current }));
  }
  select.value = current || "";
}

async function init() {
  readUrl();
  // the selects have no options yet, so take their values from the address
  const url = new URLSearchParams(location.search);
  const wantAgent = url.get("agent") || "", wantCue = url.get("cue") || "";
  try {
    const [agents, types] = await Promise.all([api("/api/agents"), api("/api/cue-types")]);
    cueTypes = new Map(types.map((t) => [t.id, t]));
    fillSelect(form.elements.agent, agents.map((a) => [a, a]), wantAgent);
    const sorted = [...types].sort((a, b) => a.id.localeCompare(b.id));
    fillSelect(form.elements.cue, sorted.map((t) => [t.id, t.title + " (" + t.id + ")"]), wantCue);
  } catch (e) {
    showError("Could not load the filters: " + e.message);
  }
  let timer = null;
  form.addEventListener("input", (e) => {
    offset = 0;
    clearTimeout(timer);
    timer = setTimeout(load, e.target.name === "q" ? 300 : 0);
  });
  form.addEventListener("submit", (e) => { e.preventDefault(); offset = 0; load(); });
  form.addEventListener("reset", () => { offset = 0; setTimeout(load, 0); });
  document.getElementById("prev").addEventListener("click", () => { offset = Math.max(0, offset - PAGE); load(); });
  document.getElementById("next").addEventListener("click", () => { offset += PAGE; load(); });
  await load();
}

init();
