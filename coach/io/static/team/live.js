// Shared by the board and the follow page: the websocket with reconnection, and the
// small renderings of a live call's figures.
import { el, token } from "/static/replay/common.js";

/** Connect to a team websocket (token as ?token=), reconnecting after a drop; a refusal
 * (close 1008) is shown and not retried. */
export function connectWs(path, { onMessage, onState }) {
  let delay = 500;
  function open() {
    const url = new URL(path, location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    if (token) url.searchParams.set("token", token);
    const ws = new WebSocket(url);
    ws.onopen = () => { delay = 500; onState("open", ""); };
    ws.onmessage = (ev) => {
      let m; try { m = JSON.parse(ev.data); } catch (e) { return; }
      onMessage(m);
    };
    ws.onclose = (ev) => {
      if (ev.code === 1008) { onState("refused", ev.reason || "the server refused this page"); return; }
      onState("closed", ev.code === 1013 ? "this page fell behind; reconnecting" : "");
      setTimeout(open, delay);
      delay = Math.min(8000, delay * 2);
    };
  }
  open();
}

export function connectionText(r) {
  switch (r.connection) {
    case "live": return r.lag_s != null && r.lag_s >= 0.5 ? `live, ${r.lag_s.toFixed(1)} s behind` : "live";
    case "degraded": return `behind by ${r.lag_s != null ? r.lag_s.toFixed(1) : "?"} s (reduced)`;
    case "no signal": return `no signal for ${Math.round(r.quiet_s)} s`;
    case "disconnected": return "disconnected — the agent's coach keeps the call";
    case "ended": return "ended";
    default: return r.connection;
  }
}

export function paceText(r) {
  if (r.pace_wpm == null) return el("span", { class: "muted", text: "—" });
  const top = r.pace_band ? r.pace_band[1] : 175;
  return el("span", { class: r.pace_wpm > top ? "pace fast" : "pace", text: Math.round(r.pace_wpm) + " wpm" });
}

export function shareBar(r) {
  if (r.agent_share == null) return el("span", { class: "muted", text: "—" });
  const pct = Math.round(r.agent_share * 100);
  return el("span", { class: "split", title: `agent ${pct} %, customer ${100 - pct} %` },
    el("span", { class: "bar" }, el("i", { class: "agent", style: `width:${pct}%` }), el("i", { class: "customer", style: `width:${100 - pct}%` })),
    el("span", { class: "num", text: `${pct} / ${100 - pct}` }));
}
