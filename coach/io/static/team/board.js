// The supervisor's live board: every live call the viewer may see, updated over
// /team/ws/board; alerts with an optional sound; click a call to follow it.
import { el, fmtTime, sevClass, token, withToken } from "/static/replay/common.js";
import { connectWs, connectionText, paceText, shareBar } from "/static/team/live.js";

const rows = new Map();      // call id -> row
const ended = new Map();
const seenAlerts = new Set();
const tbody = document.getElementById("rows");
const endedBody = document.getElementById("ended");
const alertsBox = document.getElementById("alerts");
const sound = document.getElementById("sound");
const linkState = document.getElementById("link");
const errorBox = document.getElementById("error");

document.getElementById("calls-link").href = withToken("/");
document.getElementById("reviews-link").href = withToken("/team/reviews");
sound.checked = localStorage.getItem("coach-board-sound") === "on";
sound.addEventListener("change", () => {
  localStorage.setItem("coach-board-sound", sound.checked ? "on" : "off");
  if (sound.checked) beep(0.05);
});

function beep(volume = 0.2) {
  try {
    const ctx = beep.ctx || (beep.ctx = new AudioContext());
    const o = ctx.createOscillator(), g = ctx.createGain();
    o.frequency.value = 880; g.gain.value = volume;
    o.connect(g).connect(ctx.destination);
    o.start(); o.stop(ctx.currentTime + 0.25);
  } catch (e) { /* no audio output: the visual alert stays */ }
}

function followHref(id) { return withToken("/team/calls/" + id); }

function rowNode(r) {
  const last = r.last_cue;
  const tr = el("tr", { class: "call " + (r.alerts.length ? "alerting" : ""), dataset: { id: r.call_id },
    onclick: () => { location.href = followHref(r.call_id); } },
    el("td", {}, el("a", { href: followHref(r.call_id), class: "agent-name", text: r.agent }),
      r.speaking.agent ? el("span", { class: "talking", title: "speaking now", text: "●" }) : null),
    el("td", { class: "num", text: fmtTime(r.duration_s, true) }),
    el("td", {}, last ? el("span", { class: "chip " + sevClass(last.severity), title: last.id },
      el("b", { text: last.title || last.id }), " at " + fmtTime(last.t, true)) : el("span", { class: "muted", text: "none yet" })),
    el("td", { class: "num warns" + (r.warn_count ? " some" : ""), text: String(r.warn_count) }),
    el("td", {}, shareBar(r)),
    el("td", { class: "num" }, paceText(r)),
    el("td", {}, el("span", { class: "conn conn-" + r.connection.replace(/ /g, "-") }, connectionText(r))),
    el("td", {}, ...r.alerts.map((k) => el("span", { class: "alert-chip", text: alertLabel(k) }))));
  return tr;
}

function alertLabel(kind) {
  return { "warn-cues": "warn cues", "frustration": "frustration", "supervisor-request": "asks for supervisor" }[kind] || kind;
}

function render() {
  const list = [...rows.values()].sort((a, b) => (b.alerts.length - a.alerts.length) ||
    a.agent.localeCompare(b.agent) || a.call_id.localeCompare(b.call_id));
  tbody.replaceChildren(...list.map(rowNode));
  document.getElementById("count").textContent = list.length ? `(${list.length})` : "";
  document.getElementById("empty").hidden = list.length > 0;
  const done = [...ended.values()].slice(-20).reverse();
  document.getElementById("none-ended").hidden = done.length > 0;
  endedBody.closest("table").hidden = done.length === 0;
  endedBody.replaceChildren(...done.map((r) => el("tr", {},
    el("td", { text: r.agent }), el("td", { class: "num", text: fmtTime(r.duration_s, true) }),
    el("td", { class: "num", text: String(r.warn_count) }),
    el("td", { class: "muted", text: r.ended_reason || "ended" }),
    el("td", {}, r.stored ? el("a", { href: withToken("/calls/" + r.call_id), text: "replay" })
      : el("span", { class: "muted", text: "on its way to the store" })))));
}

function showAlert(a, fresh) {
  if (seenAlerts.has(a.id)) return;
  seenAlerts.add(a.id);
  const node = el("a", { class: "alert" + (fresh ? " fresh" : ""), href: followHref(a.call_id) },
    el("b", { text: a.agent }), " — " + a.message + " (at " + fmtTime(a.t, true) + ")");
  alertsBox.prepend(node);
  while (alertsBox.children.length > 8) alertsBox.lastChild.remove();
  if (fresh && sound.checked) beep();
  if (fresh) setTimeout(() => node.classList.remove("fresh"), 6000);
}

function apply(r) {
  if (r.state === "ended") { rows.delete(r.call_id); ended.delete(r.call_id); ended.set(r.call_id, r); }
  else rows.set(r.call_id, r);
}

let renderPending = false;
function scheduleRender() {
  if (renderPending) return;
  renderPending = true;
  requestAnimationFrame(() => { renderPending = false; render(); });
}

connectWs("/team/ws/board", {
  onState(state, message) {
    linkState.textContent = state === "open" ? "live" : state === "refused" ? "refused" : "reconnecting…";
    linkState.className = "link-state " + state;
    errorBox.textContent = message || "";
    errorBox.classList.toggle("on", Boolean(message));
  },
  onMessage(m) {
    if (m.type === "board") {
      rows.clear(); ended.clear();
      for (const r of m.rows) rows.set(r.call_id, r);
      for (const r of [...m.ended].reverse()) ended.set(r.call_id, r);
      for (const a of m.alerts) showAlert(a, false);
      if (m.viewer) document.getElementById("viewer").textContent = m.viewer.name + " · " + m.viewer.role + (m.viewer.team ? " · " + m.viewer.team : "");
      if (m.sound && localStorage.getItem("coach-board-sound") === null) sound.checked = true;
      window.coachBoardReady = true;
    } else if (m.type === "row") {
      apply(m.row);
    } else if (m.type === "alert") {
      showAlert(m.alert, true);
    }
    scheduleRender();
  },
});
setInterval(scheduleRender, 1000);
void token;
