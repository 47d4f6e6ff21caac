"""The QA report page, ``report.html``, that :func:`coach.qa.report.write_reports` writes.

The HTML is a team summary a QA lead reads top to bottom: how many calls and how they
scored, which faults are most common, how often each rubric step is met, then the calls
worst first with the evidence behind their score (quoted words with their times, cue
titles), links to the replay pages, and the files that could not be analysed.

It is one self-contained file, to be mailed or archived: charts are inline SVG drawn with
matplotlib's SVG backend (:mod:`coach.qa.report_charts`), CSS is inline
(:mod:`coach.qa.report_css`), there is no script and nothing is fetched. Every piece of text
from a call is HTML-escaped.
"""

from __future__ import annotations

import datetime as dt
import html
from pathlib import Path
from typing import Any
from urllib.parse import quote

from coach.evidence import clock, figures
from coach.qa.report_charts import draw_charts
from coach.qa.report_common import is_no_speech, is_scored, number, step_status
from coach.qa.report_css import CSS
from coach.rubric import (
    DELIVERY_ASPECT_CAP,
    DELIVERY_DEDUCTION,
    DELIVERY_POINTS,
    FAULT_CEILING,
    PARTLY_MET_CREDIT,
    STEP_POINTS,
    STEP_TITLES,
    STEPS,
    VIOLATION_PENALTY,
    VIOLATION_PENALTY_CAP,
)

__all__ = ["SCORED_FROM", "render_html"]

# The path that produced a call's score (a result's "mode"), as the report says it.
SCORED_FROM = {"stored": "scored from its stored words and cues",
               "fast": "scored from a fast analysis of the audio",
               "live": "scored from the live pipeline run on the audio",
               "text": "scored from the transcript"}
_DETAILED = 100  # calls shown with their evidence; the rest in a compact table
_TRANSCRIPT_LINES = 400
_STEP_SHORT = {"ownership": "Owned", "specific": "Specific", "empathy": "Empathy",
               "solution": "Solution", "follow_up": "Follow-up"}
_ASPECT_TITLES = {"pace": "Pace", "tone": "Tone", "over_apology": "Over-apologising",
                  "dead_air": "Dead air", "talk_over": "Talk-over", "monologue": "Monologue"}


def _e(x: Any) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def _ts(t: Any) -> str:
    v = number(t)
    return "" if v is None else clock(v)  # the same m:ss as the evidence text


def _length(seconds: Any) -> str:
    v = number(seconds)
    if v is None:
        return "—"
    m, s = divmod(int(round(v)), 60)
    return f"{m}:{s:02d}"


def _replay(r: dict[str, Any], replay_url: str | None) -> str | None:
    sid = r.get("store_id")
    if not replay_url or sid in (None, ""):
        return None
    return f"{replay_url.rstrip('/')}/calls/{quote(str(sid), safe='')}"


def _at(t: Any, link: str | None) -> str:
    label = _ts(t)
    if not label:
        return ""
    if link:
        return f'<a class="at" href="{_e(link)}#t={number(t):.1f}">{label}</a>'
    return f'<span class="at">{label}</span>'


def _evidence_html(ev: dict[str, Any], link: str | None) -> str:
    parts = [] if ev.get("cue") or not ev.get("text") else ['<span class="tick">✓</span>']
    if ev.get("cue"):
        parts.append(f'<span class="cue" title="{_e(ev["cue"])}">{_e(ev.get("title") or ev["cue"])}'
                     "</span>")
    if ev.get("text"):
        who = ' <span class="who">customer</span>' if ev.get("speaker") == "customer" else ""
        parts.append(f"<q>{_quote(ev)}</q>{who}")
    if ev.get("detail"):
        parts.append(f'<span class="detail">{_e(ev["detail"])}</span>')
    when = _at(ev.get("start", ev.get("t")), link)
    return (when + " " if when else "") + " ".join(parts)


def _quote(ev: dict[str, Any]) -> str:
    """The quoted words, inside their sentence when the evidence carries it."""
    text, context = str(ev.get("text", "")), str(ev.get("context") or "")
    i = context.find(text) if context else -1
    if i < 0:
        return _e(text)
    return f"{_e(context[:i])}<mark>{_e(text)}</mark>{_e(context[i + len(text):])}"


def _worded(r: dict[str, Any]) -> dict[str, Any]:
    """The call with each cue's figures in its evidence worded by :mod:`coach.evidence`
    (labels and units) from the call's own cues; the rubric's phrase stays where the cue
    is not found or has no figures."""
    cues = [c for c in r.get("cues") or [] if isinstance(c, dict) and number(c.get("t")) is not None]
    if not cues:
        return r

    def worded(ev: Any) -> Any:
        t = number(ev.get("t")) if isinstance(ev, dict) and ev.get("cue") else None
        if t is None:
            return ev
        cue = next((c for c in cues if c.get("id") == ev["cue"]
                    and abs(float(c["t"]) - t) < 0.01), None)
        evidence = cue.get("evidence") if cue else None
        figs = figures(evidence, cue_id=ev["cue"], skip=("words", "downgraded_from")
                       ) if isinstance(evidence, dict) else []
        return {**ev, "detail": ", ".join(figs)} if figs else ev

    def section(d: Any) -> Any:
        if not isinstance(d, dict):
            return d
        return {k: ({**v, "evidence": [worded(e) for e in v.get("evidence") or []]}
                    if isinstance(v, dict) else v) for k, v in d.items()}

    return {**r, "steps": section(r.get("steps")), "delivery": section(r.get("delivery"))}


def _reasons(r: dict[str, Any]) -> list[tuple[float, str, dict[str, Any] | None]]:
    """What cost the call its points, biggest loss first: (loss, label, evidence)."""
    out: list[tuple[float, str, dict[str, Any] | None]] = []
    for step in STEPS:
        st = (r.get("steps") or {}).get(step)
        if not isinstance(st, dict):
            continue
        loss = number(st.get("loss")) or 0.0
        if st.get("status") == "violated":
            for ev in st.get("evidence") or []:
                if ev.get("cue"):
                    out.append((loss, STEP_TITLES[step], ev))
        elif st.get("status") == "missed":
            out.append((loss, STEP_TITLES[step], {"detail": st.get("note", "")}))
    for aspect, d in (r.get("delivery") or {}).items():
        if isinstance(d, dict) and d.get("status") == "fault":
            for ev in d.get("evidence") or []:
                out.append((number(d.get("loss")) or 0.0, _ASPECT_TITLES.get(aspect, aspect), ev))
    out.sort(key=lambda x: (-x[0], number((x[2] or {}).get("start", (x[2] or {}).get("t")))
                            or 0.0))
    return out


def _pills(r: dict[str, Any]) -> str:
    cells = []
    for step in STEPS:
        st = (r.get("steps") or {}).get(step) or {}
        status = step_status(r, step) or "n/a"
        mark = {"met": "✓", "missed": "○", "violated": "✗"}.get(status, "–")
        note = st.get("note", "") if isinstance(st, dict) else ""
        cells.append(
            f'<span class="pill {_e(status.replace("/", ""))}" '
            f'title="{_e(STEP_TITLES[step])}: {_e(status)}. {_e(note)}">'
            f"{mark} {_e(_STEP_SHORT[step])}</span>"
        )
    return "".join(cells)


def _delivery_chips(r: dict[str, Any]) -> str:
    chips = []
    for aspect, d in (r.get("delivery") or {}).items():
        if isinstance(d, dict) and d.get("status") == "fault":
            n = int(d.get("count") or 0)
            chips.append(f'<span class="chip">{_e(_ASPECT_TITLES.get(aspect, aspect))}'
                         f"{f' ×{n}' if n > 1 else ''}</span>")
    wpm = number(((r.get("delivery") or {}).get("pace") or {}).get("wpm_median"))
    if wpm:
        chips.append(f'<span class="chip plain">{wpm:.0f} wpm</span>')
    return "".join(chips)


def _score_badge(score: Any) -> str:
    v = number(score)
    if v is None:
        return '<span class="score none">—</span>'
    band = "bad" if v < 50 else "fair" if v < 80 else "good"
    return f'<span class="score {band}">{v:.0f}</span>'


def _call_name(r: dict[str, Any], link: str | None) -> str:
    name = _e(r.get("call") or Path(str(r.get("path", "?"))).stem)
    if link:
        return f'<a class="call" href="{_e(link)}">{name}</a>'
    return f'<span class="call">{name}</span>'


def _transcript(r: dict[str, Any], hits: list[float], link: str | None) -> str:
    lines = [ln for ln in (r.get("transcript") or []) if isinstance(ln, dict)]
    if not lines:
        return ""
    rows = []
    for ln in lines[:_TRANSCRIPT_LINES]:
        start, end = number(ln.get("start")) or 0.0, number(ln.get("end")) or 0.0
        hit = any(start - 0.05 <= t <= end + 0.05 for t in hits)
        speaker = str(ln.get("speaker", ""))
        rows.append(f'<tr class="{"hit" if hit else ""}"><td>{_at(start, link)}</td>'
                    f'<td class="sp {_e(speaker)}">{_e(speaker)}</td><td>{_e(ln.get("text"))}'
                    "</td></tr>")
    more = len(lines) - _TRANSCRIPT_LINES
    tail = f'<p class="muted">… {more} more lines in results.json</p>' if more > 0 else ""
    return (f'<details class="transcript"><summary>Transcript ({len(lines)} lines, evidence '
            f'highlighted)</summary><table>{"".join(rows)}</table>{tail}</details>')


def _call_card(rank: int, r: dict[str, Any], replay_url: str | None) -> str:
    r = _worded(r)
    link = _replay(r, replay_url)
    reasons = _reasons(r)
    why = "".join(
        f'<li><span class="step">{_e(label)}</span>'
        f"<span>{_evidence_html(ev or {}, link)}</span></li>"
        for _, label, ev in reasons[:3]
    ) or '<li class="ok">✓ nothing to flag</li>'
    steps_html = []
    hits: list[float] = []
    for step in STEPS:
        st = (r.get("steps") or {}).get(step)
        if not isinstance(st, dict):
            continue
        evs = st.get("evidence") or []
        hits += [t for ev in evs if (t := number(ev.get("start"))) is not None]
        items = "".join(f"<li>{_evidence_html(ev, link)}</li>" for ev in evs)
        loss = number(st.get("loss")) or 0.0
        status = str(st.get("status", ""))
        steps_html.append(
            f'<div class="stepbox"><h4><span class="pill {_e(status.replace("/", ""))}">'
            f"{_e(status)}</span> {_e(STEP_TITLES[step])}"
            f'{f" <span class=loss>−{loss:g}</span>" if loss else ""}</h4>'
            f'<p class="note">{_e(st.get("note", ""))}</p><ul>{items}</ul></div>'
        )
    for aspect, d in (r.get("delivery") or {}).items():
        if isinstance(d, dict) and d.get("status") == "fault":
            evs = d.get("evidence") or []
            hits += [t for ev in evs if (t := number(ev.get("start"))) is not None]
            items = "".join(f"<li>{_evidence_html(ev, link)}</li>" for ev in evs)
            loss = number(d.get("loss")) or 0.0
            steps_html.append(
                f'<div class="stepbox"><h4><span class="pill violated">fault</span> '
                f'{_e(_ASPECT_TITLES.get(aspect, aspect))}'
                f'{f" <span class=loss>−{loss:g}</span>" if loss else ""}</h4><ul>{items}</ul>'
                "</div>"
            )
    notes = "".join(f'<p class="muted">{_e(n)}</p>' for n in r.get("notes") or [])
    meta = [f"{_length(r.get('duration_s'))}"]
    meta.append("problem call" if r.get("problem") else "no problem raised")
    if r.get("agent_channel"):
        meta.append(f"agent {_e(r.get('agent_channel'))}")
    if r.get("mode") in SCORED_FROM:
        meta.append(SCORED_FROM[str(r["mode"])])
    replay = f'<a class="replay" href="{_e(link)}">Open replay ▸</a>' if link else ""
    return f"""
<article class="callcard" id="call-{rank}">
  <div class="head">
    <span class="rank">{rank}</span>{_score_badge(r.get("score"))}
    <div class="title">{_call_name(r, link)}<div class="meta">{" · ".join(meta)}</div></div>
    <div class="pills">{_pills(r)}</div>{replay}
  </div>
  <div class="chips">{_delivery_chips(r)}</div>
  <ul class="why">{why}</ul>
  <details class="all"><summary>All evidence</summary>{notes}
    <div class="steps">{"".join(steps_html)}</div></details>
  {_transcript(r, hits, link)}
</article>"""


def _compact_row(rank: int, r: dict[str, Any], replay_url: str | None) -> str:
    r = _worded(r)
    link = _replay(r, replay_url)
    first = _reasons(r)[:1]
    why = _evidence_html(first[0][2] or {}, link) if first else ""
    return (f"<tr><td>{rank}</td><td>{_score_badge(r.get('score'))}</td>"
            f"<td>{_call_name(r, link)}</td><td>{_length(r.get('duration_s'))}</td>"
            f'<td class="pills">{_pills(r)}</td><td>{why}</td></tr>')


def _when(iso: str) -> str:
    try:
        return dt.datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return iso


def _bands(scored: list[dict[str, Any]]) -> str:
    scores = [float(r["score"]) for r in scored]
    bands = (("bad", "under 50", sum(s < 50 for s in scores)),
             ("fair", "50 to 79", sum(50 <= s < 80 for s in scores)),
             ("good", "80 and up", sum(s >= 80 for s in scores)))
    return '<div class="bands">' + "".join(
        f'<div class="band {cls}"><b>{n}</b>{label}</div>' for cls, label, n in bands) + "</div>"


def _paths_line(summary: dict[str, Any]) -> str:
    """Which path produced the scores: "Scores: 3 from stored words and cues, 1 fast..."."""
    short = {"stored": "from stored words and cues", "fast": "from a fast analysis",
             "live": "from the live pipeline", "text": "from transcripts"}
    parts = [f"{n} {short.get(m, _e(m))}" for m, n in summary.get("scored_from", {}).items()]
    return f'<p class="muted paths">Scores: {", ".join(parts)}.</p>' if parts else ""


def _silent_why(r: dict[str, Any]) -> str:
    """The note after "no speech" when it says more (the customer side did speak)."""
    note = next((n for n in r.get("notes") or [] if "customer side" in str(n)), None)
    return f": {note}" if note else ""


def _kpi(value: str, label: str) -> str:
    return f'<div class="kpi"><div class="v">{value}</div><div class="l">{_e(label)}</div></div>'


def _step_table(summary: dict[str, Any]) -> str:
    rows = []
    for step in STEPS:
        c = summary["steps"][step]
        total = sum(c.values())

        def pct(n: int, total: int = total) -> str:
            return f"{100 * n / total:.0f}%" if total else "—"

        rows.append(f"<tr><td>{_e(STEP_TITLES[step])}</td><td>{pct(c['met'])}</td>"
                    f"<td>{pct(c['missed'])}</td><td>{pct(c['violated'])}</td></tr>")
    return ('<table class="rates"><tr><th>step</th><th>met</th><th>missed</th>'
            f'<th>violated</th></tr>{"".join(rows)}</table>')


def _formula() -> str:
    return (
        "A call with no fault scores 100. A fault is an apology step missed or violated, or "
        "a delivery cue; the steps expected depend on the problem: a minor one (a short "
        "wait, a small delay) needs an apology that names it and the fix, a real failure "
        "all five steps, and a voiced feeling needs empathy. The faults' loss: a step missed "
        f"{STEP_POINTS:g}, violated {STEP_POINTS:g} plus {VIOLATION_PENALTY:g} per fault (at "
        f"most +{VIOLATION_PENALTY_CAP:g}), {PARTLY_MET_CREDIT:g} back if the agent also got "
        f"it right elsewhere; delivery {DELIVERY_DEDUCTION:g} per cue (at most "
        f"{DELIVERY_ASPECT_CAP:g} per kind, {DELIVERY_POINTS:g} in all). A call with faults "
        f"scores {FAULT_CEILING:g} x (1 - loss/100), so it always ranks below every clean "
        "call. Calls with no problem are scored on delivery only; calls with no agent speech "
        "are not scored."
    )


def render_html(ordered: list[dict[str, Any]], summary: dict[str, Any], *, title: str,
                replay_url: str | None, generated: str) -> str:
    """The report page (``ordered``: results worst first, as write_reports sorts them)."""
    scored = [r for r in ordered if is_scored(r)]
    silent = [r for r in ordered if is_no_speech(r)]
    skipped = [r for r in ordered if not is_scored(r) and not is_no_speech(r)]
    hours = summary["audio_hours"]
    audio = f"{hours:.1f} h" if hours >= 1 else f"{hours * 60:.0f} min"
    mean = "—" if summary["mean_score"] is None else f"{summary['mean_score']:.0f}"
    median = "—" if summary["median_score"] is None else f"{summary['median_score']:.0f}"
    kpis = "".join([
        _kpi(str(summary["scored"]), "calls scored"),
        _kpi(str(summary["skipped"]), "skipped"),
        *([_kpi(str(len(silent)), "no speech")] if silent else []),
        _kpi(audio, "of audio"),
        _kpi(mean, "mean score"),
        _kpi(median, "median score"),
        _kpi(f"{summary['problem_calls']}", "calls with a problem"),
    ])
    n_faults = len(summary["calls_with_fault"])
    faults_note = "Calls with the cue at least once (× total times, when more)." + (
        f" Top 10 of {n_faults} kinds; every count is in results.csv." if n_faults > 10 else "")
    if scored:
        scores_svg, faults_svg, steps_svg = draw_charts(summary)
        charts = f"""
<section class="charts">
  <div class="card"><h3>Score distribution</h3>{scores_svg}{_bands(scored)}</div>
  <div class="card"><h3>Most frequent faults</h3>{faults_svg}
    <p class="muted">{faults_note}</p></div>
  <div class="card"><h3>Rubric steps</h3>{steps_svg}
    <p class="muted">Over the {summary['problem_calls']} calls with a problem.</p>
    {_step_table(summary)}</div>
</section>"""
    else:
        charts = '<section class="card"><p class="muted">No call could be scored.</p></section>'
    cards = "".join(_call_card(i + 1, r, replay_url) for i, r in enumerate(scored[:_DETAILED]))
    rest = ""
    if len(scored) > _DETAILED:
        rows = "".join(_compact_row(i + 1, r, replay_url)
                       for i, r in enumerate(scored) if i >= _DETAILED)
        rest = (f'<h2>The other {len(scored) - _DETAILED} calls</h2><table class="compact">'
                "<tr><th>#</th><th>score</th><th>call</th><th>length</th><th>steps</th>"
                f"<th>main reason</th></tr>{rows}</table>")
    skipped_html = ""
    if skipped:
        rows = "".join(
            f"<tr><td>{_e(r.get('call'))}</td><td class='path'>{_e(r.get('path'))}</td>"
            f"<td>{_e(r.get('reason') or 'not scored')}</td></tr>" for r in skipped
        )
        skipped_html = (f'<section><h2>Skipped files ({len(skipped)})</h2><table class="skipped">'
                        f"<tr><th>call</th><th>path</th><th>reason</th></tr>{rows}</table>"
                        "</section>")
    if silent:
        rows = "".join(
            f"<tr><td>{_call_name(r, _replay(r, replay_url))}</td>"
            f"<td class='path'>{_e(r.get('path'))}</td><td>{_length(r.get('duration_s'))}</td>"
            f"<td>no speech{_e(_silent_why(r))}</td></tr>" for r in silent)
        skipped_html = (f'<section><h2>No speech ({len(silent)})</h2><p class="muted">Analysed, '
                        "but no agent speech was recognised: not scored, and left out of the "
                        'figures above.</p><table class="skipped"><tr><th>call</th><th>path</th>'
                        f"<th>length</th><th>status</th></tr>{rows}</table></section>"
                        + skipped_html)
    replay_note = f" · replay: {_e(replay_url)}" if replay_url else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title>
<style>{CSS}</style></head>
<body>
<header><h1>{_e(title)}</h1>
<p class="sub">Apology rubric report · generated {_e(_when(generated))}{replay_note}</p></header>
<main>
<section class="kpis">{kpis}</section>
{_paths_line(summary)}
{charts}
<section><h2>Calls to listen to first</h2>
<p class="muted">Worst score first. Each call lists what cost it the most points; open
“All evidence” for every step.</p>
{cards or '<p class="muted">No scored calls.</p>'}
{rest}
</section>
{skipped_html}
<footer><h3>How the score works</h3><p>{_e(_formula())}</p>
<p class="muted">Steps: ✓ met · ○ missed · ✗ violated · – not applicable.
Files: results.csv (one row per call), results.json (with all evidence).</p></footer>
</main></body></html>
"""
