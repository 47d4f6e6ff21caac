"""The QA report's charts, as inline SVG for :mod:`coach.qa.report_html`: the score
distribution, the most frequent faults and how often each rubric step is met.

Drawn with matplotlib's SVG backend through its object API, so no global pyplot state, and
matplotlib is imported only when a chart is drawn. Glyphs are paths and ids are salted, so
the same report gives the same bytes wherever it is made and opened.
"""

from __future__ import annotations

import io
import re
from typing import Any

from coach.rubric import STEP_TITLES, STEPS

__all__ = ["draw_charts"]

_COLOURS = {"met": "#2e9d61", "missed": "#d9a21b", "violated": "#d64545", "n/a": "#b9c0c8",
            "bad": "#d64545", "fair": "#e6a23c", "good": "#2e9d61", "ink": "#26303b",
            "muted": "#6b7683", "grid": "#e3e7ec"}


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


def draw_charts(summary: dict[str, Any]) -> tuple[str, str, str]:
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
