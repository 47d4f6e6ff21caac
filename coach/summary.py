"""What a finished call adds up to: transcript lines, cue counts, delivery figures (pure)."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from coach.events import (
    AGENT,
    CUSTOMER,
    Cue,
    Event,
    Prosody,
    Retraction,
    Speaker,
    Turn,
    Word,
)

__all__ = ["CallSummary", "Line", "transcript_lines"]


@dataclass(frozen=True, slots=True)
class Line:
    speaker: Speaker
    start: float
    end: float
    text: str


def transcript_lines(words: Iterable[Word], *, gap_s: float = 1.2) -> list[Line]:
    """Committed words grouped into lines: one speaker, no pause longer than ``gap_s``."""
    lines: list[Line] = []
    for sp in (AGENT, CUSTOMER):
        cur: list[Word] = []
        for w in sorted((w for w in words if w.final and w.speaker == sp),
                        key=lambda w: w.start):
            if cur and w.start - cur[-1].end > gap_s:
                lines.append(_line(cur))
                cur = []
            cur.append(w)
        if cur:
            lines.append(_line(cur))
    return sorted(lines, key=lambda ln: (ln.start, ln.speaker))


def _line(ws: list[Word]) -> Line:
    return Line(ws[0].speaker, ws[0].start, ws[-1].end, " ".join(w.text for w in ws))


@dataclass
class CallSummary:
    duration_s: float = 0.0
    words: list[Word] = field(default_factory=list)
    cues: list[Cue] = field(default_factory=list)
    talk_s: dict[str, float] = field(default_factory=lambda: {AGENT: 0.0, CUSTOMER: 0.0})
    turns: dict[str, int] = field(default_factory=lambda: {AGENT: 0, CUSTOMER: 0})
    _f0: dict[str, list[float]] = field(default_factory=lambda: {AGENT: [], CUSTOMER: []})
    _loud: dict[str, list[float]] = field(default_factory=lambda: {AGENT: [], CUSTOMER: []})
    _wpm: dict[str, list[float]] = field(default_factory=lambda: {AGENT: [], CUSTOMER: []})

    def add(self, e: Event) -> None:
        if isinstance(e, Word):
            if e.final:
                self.words.append(e)
        elif isinstance(e, Cue):
            self.cues.append(e)
        elif isinstance(e, Retraction):  # a withdrawn cue is not held against the call
            self.cues = [c for c in self.cues if not (c.id == e.id and abs(c.t - e.t) < 1e-3)]
        elif isinstance(e, Turn):
            self.talk_s[e.speaker] += e.duration
            self.turns[e.speaker] += 1
        elif isinstance(e, Prosody):
            if e.f0_hz is not None:
                self._f0[e.speaker].append(e.f0_hz)
            if e.loudness_db is not None:
                self._loud[e.speaker].append(e.loudness_db)
            if e.wpm is not None and e.speaking:
                self._wpm[e.speaker].append(e.wpm)

    def cue_counts(self) -> Counter[str]:
        return Counter(c.id for c in self.cues)

    def faults_per_agent_minute(self) -> float | None:
        faults = sum(1 for c in self.cues if c.severity in ("nudge", "warn"))
        minutes = self.talk_s[AGENT] / 60
        return faults / minutes if minutes > 0 else None

    def delivery(self) -> dict[str, float | int | None]:
        def med(xs: list[float]) -> float | None:
            return round(statistics.median(xs), 1) if xs else None

        agent_words = sum(1 for w in self.words if w.speaker == AGENT)
        talk = self.talk_s[AGENT] + self.talk_s[CUSTOMER]
        return {
            "agent_talk_s": round(self.talk_s[AGENT], 1),
            "customer_talk_s": round(self.talk_s[CUSTOMER], 1),
            "agent_talk_share": round(self.talk_s[AGENT] / talk, 2) if talk else None,
            "agent_words": agent_words,
            "agent_wpm_median": med(self._wpm[AGENT]),
            "agent_f0_median_hz": med(self._f0[AGENT]),
            "agent_loudness_median_db": med(self._loud[AGENT]),
            "customer_f0_median_hz": med(self._f0[CUSTOMER]),
        }
