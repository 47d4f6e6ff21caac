"""QA reports: ``results.csv`` and ``results.json`` for tools, ``report.html`` for people.

This module sums the results up for the team (:func:`summarise`), lays out one CSV row per
call and writes the three files, each whole or not at all; the page is drawn by
:mod:`coach.qa.report_html`.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import statistics
import tempfile
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from coach.errors import CoachError
from coach.playbook import CUE_IDS
from coach.qa.report_common import is_no_speech, is_scored, number, step_status
from coach.qa.report_html import render_html
from coach.rubric import DELIVERY_ASPECTS, STEPS

__all__ = ["CSV_COLUMNS", "summarise", "write_reports"]

_HEAD = ["call", "score", "status", "problem", "duration_s"]
_TAIL = ["agent_channel", "kind", "model", "store_id", "path", "key", "reason", "analysed_at",
         "seconds", "mode"]
CSV_COLUMNS: tuple[str, ...] = (*_HEAD, *STEPS, *DELIVERY_ASPECTS, *CUE_IDS, *_TAIL)
"""The columns of results.csv: the call, its score and status, one column per rubric step
(met/missed/violated/n/a), one per delivery aspect (ok/fault), one count per cue id."""

_PRAISE = {"empathy-shown"}  # cues that are not faults


# --- data ----------------------------------------------------------------------------------


def _order(results: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Worst first; calls that could not be scored last."""
    return sorted(results, key=lambda r: (
        0 if is_scored(r) else 1, number(r.get("score")) or 0.0, str(r.get("call", ""))))


def summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Team figures over the results: counts, audio hours, score statistics, fault and
    rubric-step frequencies."""
    scored = [r for r in results if is_scored(r)]
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
        step: {status: sum(1 for r in problem if step_status(r, step) == status)
               for status in ("met", "missed", "violated")}
        for step in STEPS
    }
    bins = [0] * 10
    for s in scores:
        bins[min(9, int(s // 10))] += 1
    return {
        "calls": len(results),
        "scored": len(scored),
        "no_speech": sum(1 for r in results if is_no_speech(r)),
        "scored_from": dict(Counter(str(r.get("mode")) for r in scored if r.get("mode"))
                            .most_common()),
        "skipped": sum(1 for r in results if not is_scored(r) and not is_no_speech(r)),
        "problem_calls": len(problem),
        "audio_hours": round(sum(number(r.get("duration_s")) or 0.0 for r in scored) / 3600, 3),
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
    scored = is_scored(r)
    for step in STEPS:
        row[step] = step_status(r, step) if scored else ""
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
            row[cid] = int((r.get("cue_counts") or {}).get(cid, 0) or 0) if is_scored(r) else ""
        writer.writerow(row)
    doc = {"title": title, "generated_at": generated, "replay_url": replay_url,
           "summary": summary, "calls": ordered}
    page = render_html(ordered, summary, title=title, replay_url=replay_url,
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
