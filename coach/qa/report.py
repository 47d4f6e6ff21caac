"""QA reports: ``results.csv`` and ``results.json`` for tools, ``report.html`` for people.

The HTML is a team summary a QA lead reads top to bottom: how many calls and how they
scored, which faults are most common, how often each rubric step is met, then the calls
worst first with the evidence behind their score (quoted words with their times, cue
titles), links to the replay pages, and the files that could not be analysed.

It is one self-contained file, to be mailed or archived: charts are inline SVG drawn with
matplotlib's SVG backend (its object API, so no global pyplot state), CSS is inline, there
is no script and nothing is fetched. Every piece of text from a call is HTML-escaped.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import json
import os
import re
import statistics
import tempfile
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from coach.errors import CoachError
from coach.evidence import clock, figures
from coach.playbook import CUE_IDS
from coach.rubric import (
    DELIVERY_ASPECT_CAP,
    DELIVERY_ASPECTS,
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

__all__ = ["CSV_COLUMNS", "summarise", "write_reports"]

NO_SPEECH = "no speech"  # a result's status when the call held no agent speech

_HEAD = ["call", "score", "status", "problem", "duration_s"]
_TAIL = ["agent_channel", "kind", "model", "store_id", "path", "key", "reason", "analysed_at",
         "seconds", "mode"]
# The path that produced a call's score (a result's "mode"), as the report says it.
SCORED_FROM = {"stored": "scored from its stored words and cues",
               "fast": "scored from a fast analysis of the audio",
               "live": "scored from the live pipeline run on the audio",
               "text": "scored from the transcript"}
CSV_COLUMNS: tuple[str, ...] = (*_HEAD, *STEPS, *DELIVERY_ASPECTS, *CUE_IDS, *_TAIL)
"""The columns of results.csv: the call, its score and status, one column per rubric step
(met/missed/violated/n/a), one per delivery aspect (ok/fault), one count per cue id."""

_PRAISE = {"empathy-shown"}  # cues that are not faults
_DETAILED = 100  # calls shown with their evidence; the rest in a compact table
_TRANSCRIPT_LINES = 400
_STEP_SHORT = {"ownership": "Owned", "specific": "Specific", "empathy": "Empathy",
               "solution": "Solution", "follow_up": "Follow-up"}
_ASPECT_TITLES = {"pace": "Pace", "tone": "Tone", "over_apology": "Over-apologising",
                  "dead_air": "Dead air", "talk_over": "Talk-over", "monologue": "Monologue"}
_COLOURS = {"met": "#2e9d61", "missed": "#d9a21b", "violated": "#d64545", "n/a": "#b9c0c8",
            "bad": "#d64545", "fair": "#e6a23c", "good": "#2e9d61", "ink": "#26303b",
            "muted": "#6b7683", "grid": "#e3e7ec"}


# --- data ----------------------------------------------------------------------------------


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) else None


def _scored(r: dict[str, Any]) -> bool:
    return r.get("status") == "ok" and _num(r.get("score")) is not None


def _no_speech(r: dict[str, Any]) -> bool:
    """Analysed, but no agent speech to score: reported as such, kept out of the figures."""
    return r.get("status") == NO_SPEECH


def _order(results: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Worst first; calls that could not be scored last."""
    return sorted(results, key=lambda r: (
        0 if _scored(r) else 1, _num(r.get("score")) or 0.0, str(r.get("call", ""))))


def _step_status(r: dict[str, Any], step: str) -> str:
    st = (r.get("steps") or {}).get(step) or {}
    return str(st.get("status", "")) if isinstance(st, dict) else str(st)


def summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Team figures over the results: counts, audio hours, score statistics, fault and
    rubric-step frequencies."""
    scored = [r for r in results if _scored(r)]
    scores = [float(r["score"]) for r in scored]
    problem = [r for r in scored if r.get("problem")]
    faults: Counter[str] = Counter()
    calls_with: Counter[str] = Counter()
    for r in scored:
        for cid, n in (r.get("cue_counts") or {}).items():
            if cid in _PRAISE or not isinstance(n, int) or n <= 0:
                continue
            faults[cid] += n
            calls_with[cid] += 1
    steps = {
        step: {status: sum(1 for r in problem if _step_status(r, step) == status)
               for status in ("met", "missed", "violated")}
        for step in STEPS
    }
    bins = [0] * 10
    for s in scores:
        bins[min(9, int(s // 10))] += 1
    return {
        "calls": len(results),
        "scored": len(scored),
        "no_speech": sum(1 for r in results if _no_speech(r)),
        "scored_from": dict(Counter(str(r.get("mode")) for r in scored if r.get("mode"))
                            .most_common()),
        "skipped": sum(1 for r in results if not _scored(r) and not _no_speech(r)),
        "problem_calls": len(problem),
        "audio_hours": round(sum(_num(r.get("duration_s")) or 0.0 for r in scored) / 3600, 3),
        "mean_score": round(statistics.fmean(scores), 1) if scores else None,
        "median_score": round(statistics.median(scores), 1) if scores else None,
        "score_bins": bins,
        "fault_counts": dict(faults.most_common()),
        "calls_with_fault": dict(calls_with.most_common()),
        "steps": steps,
    }


# --- CSV and JSON ----------------------------------------------------------------------------


def _csv_row(r: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {k: r.get(k) for k in (*_HEAD, *_TAIL)}
    row["problem"] = "" if r.get("problem") is None else bool(r.get("problem"))
    scored = _scored(r)
    for step in STEPS:
        row[step] = _step_status(r, step) if scored else ""
    delivery = r.get("delivery") or {}
    for aspect in DELIVERY_ASPECTS:
        d = delivery.get(aspect)
        row[aspect] = d.get("status", "") if scored and isinstance(d, dict) else ""
    counts = r.get("cue_counts") or {}
    for cid in CUE_IDS:
        row[cid] = int(counts.get(cid, 0) or 0) if scored else ""
    return {k: ("" if v is None else v) for k, v in row.items()}


def _atomic_write(path: Path, text: str) -> None:
    """Write whole or not at all: a run killed mid-write leaves the previous report."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_reports(results: list[dict[str, Any]], out_dir: Path, *,
                  replay_url: str | None = None, title: str = "coach QA") -> dict[str, Path]:
    """Write results.csv, results.json and report.html into ``out_dir`` (created if need
    be) and return their paths by kind (``csv``, ``json``, ``html``)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise CoachError(f"{out_dir}: not a directory")
    ordered = _order(results)
    summary = summarise(ordered)
    generated = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    extra = sorted({cid for r in ordered for cid in (r.get("cue_counts") or {})} - set(CUE_IDS))

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=[*CSV_COLUMNS, *extra], extrasaction="ignore",
                            lineterminator="\n")
    writer.writeheader()
    for r in ordered:
        row = _csv_row(r)
        for cid in extra:
            row[cid] = int((r.get("cue_counts") or {}).get(cid, 0) or 0) if _scored(r) else ""
        writer.writerow(row)
    doc = {"title": title, "generated_at": generated, "replay_url": replay_url,
           "summary": summary, "calls": ordered}
    page = _render_html(ordered, summary, title=title, replay_url=replay_url,
                       generated=generated)
    paths = {"csv": out_dir / "results.csv", "json": out_dir / "results.json",
             "html": out_dir / "report.html"}
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        _atomic_write(paths["csv"], buf.getvalue())
        _atomic_write(paths["json"], json.dumps(doc, ensure_ascii=False, indent=1) + "\n")
        _atomic_write(paths["html"], page)
    except OSError as exc:
        raise CoachError(f"cannot write reports to {out_dir}: {exc.strerror or exc}") from exc
    return paths


# --- charts ----------------------------------------------------------------------------------


def _svg(fig: Any, name: str) -> str:
    """A matplotlib figure as an inline <svg> element with ids private to this chart."""
    out = io.StringIO()
    fig.savefig(out, format="svg", metadata={"Date": None}, transparent=True,
                bbox_inches="tight", pad_inches=0.04)
    text = out.getvalue()
    text = text[text.index("<svg"):]
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)
    # Several charts share one page: keep their ids (clip paths, markers) apart.
    text = re.sub(r'id="([^"]+)"', rf'id="{name}-\1"', text)
    text = re.sub(r'(url\(#|href="#)([^")]+)', rf"\1{name}-\2", text)
    return text.replace("<svg ", f'<svg class="chart" role="img" aria-label="{name}" ', 1)


_RC = {
    # Glyphs as paths: the chart looks the same wherever the file is opened, fonts or not.
    "svg.fonttype": "path",
    "svg.hashsalt": "coach-qa",  # the same report gives the same file
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica"],
}


def _charts(summary: dict[str, Any]) -> tuple[str, str, str]:
    """The three charts, drawn with our settings without touching matplotlib's globals."""
    from matplotlib import rc_context

    with rc_context(_RC):
        return _chart_scores(summary), _chart_faults(summary), _chart_steps(summary)


def _figure(width_in: float, height_in: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width_in, height_in), dpi=96)


def _style(ax: Any) -> None:
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.spines["bottom"].set_color(_COLOURS["grid"])
    ax.tick_params(colors=_COLOURS["muted"], labelsize=9, length=0)


def _score_colour(score: float) -> str:
    return _COLOURS["bad"] if score < 50 else _COLOURS["fair"] if score < 80 else _COLOURS["good"]


def _chart_scores(summary: dict[str, Any]) -> str:
    fig = _figure(4.4, 2.5)
    ax = fig.add_axes((0.1, 0.18, 0.88, 0.74))
    bins = summary["score_bins"]
    xs = [i * 10 + 5 for i in range(10)]
    bars = ax.bar(xs, bins, width=8.6, color=[_score_colour(x) for x in xs])
    for bar, n in zip(bars, bins, strict=True):
        if n:
            ax.annotate(str(n), (bar.get_x() + bar.get_width() / 2, n), ha="center",
                        va="bottom", fontsize=9, color=_COLOURS["ink"],
                        xytext=(0, 2), textcoords="offset points")
    ax.set_xlim(0, 100)
    ax.set_xticks(range(0, 101, 10))
    ax.set_ylim(0, max(1, max(bins)) * 1.2)
    ax.yaxis.set_visible(False)
    ax.set_xlabel("score", fontsize=9, color=_COLOURS["muted"])
    _style(ax)
    return _svg(fig, "scores")


def _chart_faults(summary: dict[str, Any], limit: int = 10) -> str:
    items = list(summary["calls_with_fault"].items())[:limit]
    fig = _figure(4.4, 0.34 * max(3, len(items)) + 0.5)
    ax = fig.add_axes((0.45, 0.08, 0.5, 0.88))
    if not items:
        ax.text(0.5, 0.5, "no faults", ha="center", va="center", color=_COLOURS["muted"],
                transform=ax.transAxes)
        ax.set_axis_off()
        return _svg(fig, "faults")
    items.reverse()
    scored = max(1, summary["scored"])
    labels = [cid for cid, _ in items]
    values = [n for _, n in items]
    ax.barh(range(len(items)), values, height=0.62, color="#5b7db1")
    for i, n in enumerate(values):
        total = summary["fault_counts"].get(items[i][0], n)
        ax.annotate(f"{n} call{'s' if n != 1 else ''} · {100 * n / scored:.0f}%"
                    + (f" · ×{total}" if total != n else ""),
                    (n, i), xytext=(4, 0), textcoords="offset points", va="center",
                    fontsize=8.5, color=_COLOURS["ink"])
    ax.set_yticks(range(len(items)), labels, fontsize=8.5)
    ax.set_xlim(0, max(values) * 1.55)
    ax.xaxis.set_visible(False)
    _style(ax)
    return _svg(fig, "faults")


def _chart_steps(summary: dict[str, Any]) -> str:
    fig = _figure(4.4, 2.5)
    ax = fig.add_axes((0.3, 0.2, 0.66, 0.76))
    rows = list(reversed(STEPS))
    left = [0.0] * len(rows)
    total = [max(1, sum(summary["steps"][s].values())) for s in rows]
    for status in ("met", "missed", "violated"):
        share = [100 * summary["steps"][s][status] / t for s, t in zip(rows, total, strict=True)]
        ax.barh(range(len(rows)), share, left=left, height=0.6, color=_COLOURS[status],
                label=status)
        for i, (x0, w) in enumerate(zip(left, share, strict=True)):
            if w >= 9:
                ax.text(x0 + w / 2, i, f"{w:.0f}%", ha="center", va="center", fontsize=8,
                        color="white")
        left = [a + b for a, b in zip(left, share, strict=True)]
    ax.set_yticks(range(len(rows)), [STEP_TITLES[s] for s in rows], fontsize=8.5)
    ax.set_xlim(0, 100)
    ax.xaxis.set_visible(False)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=3, frameon=False,
              fontsize=8.5, handlelength=1, labelcolor=_COLOURS["muted"])
    _style(ax)
    ax.spines["bottom"].set_visible(False)
    return _svg(fig, "steps")


# --- HTML ------------------------------------------------------------------------------------


def _e(x: Any) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def _ts(t: Any) -> str:
    v = _num(t)
    return "" if v is None else clock(v)  # the same m:ss as the evidence text


def _length(seconds: Any) -> str:
    v = _num(seconds)
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
        return f'<a class="at" href="{_e(link)}#t={_num(t):.1f}">{label}</a>'
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
    cues = [c for c in r.get("cues") or [] if isinstance(c, dict) and _num(c.get("t")) is not None]
    if not cues:
        return r

    def worded(ev: Any) -> Any:
        t = _num(ev.get("t")) if isinstance(ev, dict) and ev.get("cue") else None
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
        loss = _num(st.get("loss")) or 0.0
        if st.get("status") == "violated":
            for ev in st.get("evidence") or []:
                if ev.get("cue"):
                    out.append((loss, STEP_TITLES[step], ev))
        elif st.get("status") == "missed":
            out.append((loss, STEP_TITLES[step], {"detail": st.get("note", "")}))
    for aspect, d in (r.get("delivery") or {}).items():
        if isinstance(d, dict) and d.get("status") == "fault":
            for ev in d.get("evidence") or []:
                out.append((_num(d.get("loss")) or 0.0, _ASPECT_TITLES.get(aspect, aspect), ev))
    out.sort(key=lambda x: (-x[0], _num((x[2] or {}).get("start", (x[2] or {}).get("t")))
                            or 0.0))
    return out


def _pills(r: dict[str, Any]) -> str:
    cells = []
    for step in STEPS:
        st = (r.get("steps") or {}).get(step) or {}
        status = _step_status(r, step) or "n/a"
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
    wpm = _num(((r.get("delivery") or {}).get("pace") or {}).get("wpm_median"))
    if wpm:
        chips.append(f'<span class="chip plain">{wpm:.0f} wpm</span>')
    return "".join(chips)


def _score_badge(score: Any) -> str:
    v = _num(score)
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
        start, end = _num(ln.get("start")) or 0.0, _num(ln.get("end")) or 0.0
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
        hits += [t for ev in evs if (t := _num(ev.get("start"))) is not None]
        items = "".join(f"<li>{_evidence_html(ev, link)}</li>" for ev in evs)
        loss = _num(st.get("loss")) or 0.0
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
            hits += [t for ev in evs if (t := _num(ev.get("start"))) is not None]
            items = "".join(f"<li>{_evidence_html(ev, link)}</li>" for ev in evs)
            loss = _num(d.get("loss")) or 0.0
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


def _render_html(ordered: list[dict[str, Any]], summary: dict[str, Any], *, title: str,
                replay_url: str | None, generated: str) -> str:
    """The report page (``ordered``: results worst first, as write_reports sorts them)."""
    scored = [r for r in ordered if _scored(r)]
    silent = [r for r in ordered if _no_speech(r)]
    skipped = [r for r in ordered if not _scored(r) and not _no_speech(r)]
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
        scores_svg, faults_svg, steps_svg = _charts(summary)
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
<style>{_CSS}</style></head>
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


_CSS = """
:root { --ink:#26303b; --muted:#6b7683; --line:#e3e7ec; --bg:#f5f7fa; --card:#fff;
  --good:#2e9d61; --fair:#d9a21b; --bad:#d64545; --na:#b9c0c8; --accent:#3f6db3; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans",
  sans-serif; color:var(--ink); background:var(--bg); }
header { background:#1f2a37; color:#fff; padding:20px 32px; }
header h1 { margin:0; font-size:22px; font-weight:600; }
header .sub { margin:4px 0 0; color:#c3ccd6; font-size:13px; }
main { max-width:1280px; margin:0 auto; padding:20px 32px 40px; }
h2 { font-size:18px; margin:28px 0 6px; }
h3 { font-size:14px; margin:0 0 8px; }
.muted { color:var(--muted); font-size:12.5px; margin:4px 0; }
.kpis { display:grid; grid-template-columns:repeat(6, 1fr); gap:12px; }
.kpi { background:var(--card); border:1px solid var(--line); border-radius:8px;
  padding:12px 14px; }
.kpi .v { font-size:26px; font-weight:650; }
.kpi .l { color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.04em; }
.charts { display:grid; grid-template-columns:repeat(3, 1fr); gap:12px; margin-top:12px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:8px;
  padding:14px 16px; }
svg.chart { width:100%; max-width:480px; height:auto; display:block; margin:0 auto; }
table { border-collapse:collapse; width:100%; }
th, td { text-align:left; padding:5px 8px; border-bottom:1px solid var(--line);
  vertical-align:top; }
th { font-size:12px; color:var(--muted); font-weight:600; }
table.rates { margin-top:8px; font-size:12.5px; }
table.rates td:not(:first-child), table.rates th:not(:first-child) { text-align:right; }
.callcard { background:var(--card); border:1px solid var(--line); border-radius:8px;
  padding:12px 16px; margin:10px 0; }
.callcard .head { display:flex; align-items:center; gap:12px; flex-wrap:wrap; }
.rank { color:var(--muted); font-size:12px; min-width:1.5em; }
.score { display:inline-block; min-width:44px; text-align:center; font-weight:700;
  font-size:18px; color:#fff; border-radius:6px; padding:4px 6px; }
.score.bad { background:var(--bad); } .score.fair { background:var(--fair); }
.score.good { background:var(--good); } .score.none { background:var(--na); }
.title { flex:1 1 220px; min-width:0; }
.call { font-weight:600; font-size:15px; color:var(--ink); word-break:break-all; }
a.call, a.replay, a.at { color:var(--accent); text-decoration:none; }
a.call:hover, a.replay:hover, a.at:hover { text-decoration:underline; }
.meta { color:var(--muted); font-size:12px; }
.pills { display:flex; gap:4px; flex-wrap:wrap; }
.pill { display:inline-block; font-size:11.5px; padding:2px 7px; border-radius:10px;
  color:#fff; white-space:nowrap; }
.pill.met { background:var(--good); } .pill.missed { background:var(--fair); }
.pill.violated { background:var(--bad); } .pill.na { background:var(--na); }
.replay { font-size:13px; white-space:nowrap; }
.chips { margin:6px 0 0 60px; }
.chip { display:inline-block; font-size:11.5px; padding:1px 7px; margin-right:4px;
  border-radius:4px; background:#fdecec; color:#a83232; border:1px solid #f3c7c7; }
.chip.plain { background:#f0f3f6; color:var(--muted); border-color:var(--line); }
ul.why { margin:8px 0 4px 60px; padding:0; list-style:none; }
ul.why li { margin:3px 0; display:grid; grid-template-columns:150px 1fr; gap:8px; }
ul.why li.ok { display:block; }
.step { color:var(--muted); font-size:12.5px; padding-top:1px; }
.at { font-variant-numeric:tabular-nums; font-size:12.5px; color:var(--muted); }
.cue { font-weight:600; }
q { font-style:italic; }
mark { background:#fff0b3; color:inherit; font-weight:600; padding:0 1px; border-radius:2px; }
li.ok { color:var(--good); }
.tick { color:var(--good); font-weight:700; }
.bands { display:flex; gap:8px; margin-top:8px; }
.band { flex:1; border-radius:6px; padding:6px 8px; font-size:12.5px; }
.band b { font-size:18px; display:block; }
.band.bad { background:#fdecec; color:#a83232; } .band.fair { background:#fdf3dc; color:#8a6100; }
.band.good { background:#e6f4ec; color:#1f6e43; }
q::before { content:"“"; } q::after { content:"”"; }
.who { font-size:11px; color:var(--muted); border:1px solid var(--line); border-radius:3px;
  padding:0 4px; }
.detail { color:var(--muted); }
details { margin:6px 0 0 60px; }
summary { cursor:pointer; color:var(--accent); font-size:13px; }
.steps { display:grid; grid-template-columns:repeat(auto-fill, minmax(300px, 1fr)); gap:8px;
  margin-top:6px; }
.stepbox { border:1px solid var(--line); border-radius:6px; padding:8px 10px; }
.stepbox h4 { margin:0; font-size:13px; }
.stepbox .note { margin:2px 0; color:var(--muted); font-size:12.5px; }
.stepbox ul { margin:4px 0 0; padding-left:16px; font-size:13px; }
.loss { color:var(--bad); font-weight:600; font-size:12px; }
.transcript table { font-size:13px; margin-top:6px; }
.transcript tr.hit { background:#fff6d9; }
.transcript td.sp { color:var(--muted); width:80px; }
.transcript td.sp.customer { color:#8a5a00; }
table.compact, table.skipped { background:var(--card); border:1px solid var(--line); }
table.compact .call { white-space:nowrap; word-break:normal; font-size:14px; }
table.compact .score { font-size:14px; min-width:36px; padding:2px 4px; }
table.compact td.pills { display:table-cell; white-space:nowrap; }
table.compact .pill { font-size:11px; padding:1px 6px; }
td.path { font-family:ui-monospace, "DejaVu Sans Mono", monospace; font-size:12px;
  word-break:break-all; }
footer { margin-top:32px; padding-top:12px; border-top:1px solid var(--line);
  color:var(--muted); }
footer p { max-width:900px; }
@media (max-width: 1000px) { .charts { grid-template-columns:1fr; }
  .kpis { grid-template-columns:repeat(3, 1fr); } }
"""
