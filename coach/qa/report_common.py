"""What the QA reports read off one call's result dict: a number, whether the call was scored
or held no agent speech, the status of a rubric step.

Shared by :mod:`coach.qa.report` (the figures and CSV rows) and :mod:`coach.qa.report_html`
(the page), so neither imports the other's helpers.
"""

from __future__ import annotations

from typing import Any

from coach.rubric import NO_SPEECH  # a call that held no agent speech: analysed, no score

__all__ = ["NO_SPEECH", "is_no_speech", "number", "is_scored", "step_status"]



def number(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) else None


def is_scored(r: dict[str, Any]) -> bool:
    return r.get("status") == "ok" and number(r.get("score")) is not None


def is_no_speech(r: dict[str, Any]) -> bool:
    """Analysed, but no agent speech to score: reported as such, kept out of the figures."""
    return r.get("status") == NO_SPEECH


def step_status(r: dict[str, Any], step: str) -> str:
    st = (r.get("steps") or {}).get(step) or {}
    return str(st.get("status", "")) if isinstance(st, dict) else str(st)
