"""An agent's voice baseline across calls: pace, pitch and loudness learned from their
stored calls, used by the cue engine from the first second of the next call.

Without it each call calibrates from its own first 30 s of speech, so an agent who is
tense (or rushed) from the start is measured against their tense self and never flagged.
The baseline here is the median, over the agent's latest calls, of each call's median
reading while they spoke: one tense call does not move it. An agent with fewer than
``MIN_CALLS`` usable calls has none, and calls calibrate as before.

``call_medians`` is pure; ``learn_baseline`` reads the store.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from coach.cues import Baseline

__all__ = ["MIN_CALLS", "AgentBaseline", "call_medians", "learn_baseline"]

MIN_CALLS = 3
MAX_CALLS = 20
MIN_READINGS = 10  # agent readings (seconds of speech) a call needs to count


@dataclass(frozen=True, slots=True)
class AgentBaseline:
    """A learned baseline and what it rests on."""

    baseline: Baseline
    calls: int  # calls it was learned from
    per_call: list[dict[str, Any]]  # each call's medians: {call_id, started_at, f0_hz, ...}

    def to_dict(self) -> dict[str, Any]:
        b = self.baseline
        return {"f0_hz": b.f0_hz, "loudness_db": b.loudness_db, "wpm": b.wpm,
                "calls": self.calls, "per_call": self.per_call}

    def describe(self) -> str:
        b = self.baseline
        parts = [f"pace {b.wpm:.0f} wpm" if b.wpm else None,
                 f"pitch {b.f0_hz:.0f} Hz" if b.f0_hz else None,
                 f"level {b.loudness_db:.0f} dBFS" if b.loudness_db is not None else None]
        return (f"voice baseline from {self.calls} earlier calls: "
                + ", ".join(p for p in parts if p))


def _median(xs: list[float]) -> float | None:
    return round(statistics.median(xs), 1) if xs else None


def call_medians(prosody: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """The agent's median pitch, loudness and rate over one call's stored readings (those
    with a pitch or a level: the seconds they spoke), or None if they spoke too little."""
    f0, loud, wpm = [], [], []
    n = 0
    for p in prosody:
        if p.get("speaker") != "agent":
            continue
        f, ld, w = p.get("f0_hz"), p.get("loudness_db"), p.get("wpm")
        if f is None and ld is None:
            continue
        n += 1
        if f is not None and f > 0:
            f0.append(float(f))
        if ld is not None:
            loud.append(float(ld))
        if w is not None and w > 0:
            wpm.append(float(w))
    if n < MIN_READINGS:
        return None
    return {"f0_hz": _median(f0), "loudness_db": _median(loud), "wpm": _median(wpm),
            "readings": n}


def learn_baseline(store: Any, agent: str, *, max_calls: int = MAX_CALLS,
                   min_calls: int = MIN_CALLS) -> AgentBaseline | None:
    """The baseline of ``agent`` from their latest stored calls, or None (a new agent)."""
    from coach.store.reviews import Reviews

    rows, _ = store.list_calls(agent=agent, limit=max_calls)
    readings = Reviews(store).agent_prosody([r["id"] for r in rows]) if rows else {}
    per_call = []
    for r in rows:
        m = call_medians(readings[r["id"]])
        if m is not None:
            per_call.append({"call_id": r["id"], "started_at": r["started_at"], **m})
    if len(per_call) < min_calls:
        return None

    def across(key: str) -> float | None:
        return _median([c[key] for c in per_call if c[key] is not None])

    return AgentBaseline(Baseline(f0_hz=across("f0_hz"), loudness_db=across("loudness_db"),
                                  wpm=across("wpm")), len(per_call), per_call)
