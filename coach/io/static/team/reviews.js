// A coach's disputes: the open ones to resolve, and the false-cue rate per cue id.
import { api, el, fmtDate, withToken } from "/static/replay/common.js";

document.getElementById("board-link").href = withToken("/team");

async function load() {
  try {
    const [open, rates] = await Promise.all([api("/api/team/reviews?status=open"), api("/api/team/false-cues")]);
    document.getElementById("open").replaceChildren(...(open.length ? open.map((r) => el("p", {},
      el("a", { href: withToken("/team/review/" + r.call_id), text: `${r.agent}, ${fmtDate(r.created_at)}` }),
      ` disputes ${r.target === "cue" ? "cue " + r.cue_id : r.target === "step" ? "step " + r.step : "the score"}: ${r.comment}`))
      : [el("p", { class: "muted", text: "No open disputes." })]));
    document.getElementById("rates").replaceChildren(
      el("tr", {}, el("th", { text: "Cue" }), el("th", { class: "num", text: "Fired" }), el("th", { class: "num", text: "Flagged or disputed" }), el("th", { class: "num", text: "False-cue rate" })),
      ...rates.map((r) => el("tr", {}, el("td", { text: r.cue_id }), el("td", { class: "num", text: String(r.fired) }),
        el("td", { class: "num", text: String(r.wrong) }), el("td", { class: "num", text: r.rate != null ? Math.round(r.rate * 100) + " %" : "—" }))));
    window.coachReviewsReady = true;
  } catch (e) { const b = document.getElementById("error"); b.textContent = e.message; b.classList.add("on"); }
}
load();
