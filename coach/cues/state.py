"""What the cue engine knows about the call so far, shared by its rule families.

The engine owns one :class:`CallState`; the word rules add what the language layer found
(apologies, actions, empathy, follow-ups, problems), the timelines record who was talking
when, and every family reads from it. Nothing here decides a cue.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from typing import Any

from ..apology import Apology
from ..events import AGENT, CUSTOMER, Word
from ..language import Hit, Sentence
from ..playbook import Playbook

__all__ = ["Baseline", "CallState", "Frustration", "Timeline"]


@dataclass(frozen=True, slots=True)
class Baseline:
    """A speaker's own typical delivery: median pitch, loudness and speaking rate. Any field
    left ``None`` is calibrated from the first ``settings.baseline_s`` of their speech."""

    f0_hz: float | None = None
    loudness_db: float | None = None
    wpm: float | None = None


SRC_WORD, SRC_TURN, SRC_ACTIVITY = 1, 2, 3


class Timeline:
    """When one speaker was talking, from the best source available: Activity events, else
    Turn events, else committed words."""

    def __init__(self, word_merge_s: float):
        self.source = 0
        self.spans: list[list[float]] = []
        self.open_start: float | None = None
        self._word_merge_s = word_merge_s

    def _add(self, start: float, end: float, merge_s: float) -> None:
        i = bisect.bisect_left(self.spans, [start, end])
        self.spans.insert(i, [start, end])
        merged: list[list[float]] = []
        for s, e in self.spans:
            if merged and s <= merged[-1][1] + merge_s:
                merged[-1][1] = max(merged[-1][1], e)
            else:
                merged.append([s, e])
        self.spans = merged

    def activity(self, t: float, speaking: bool) -> None:
        self.source = SRC_ACTIVITY
        if speaking:
            if self.open_start is None:
                self.open_start = t
        elif self.open_start is not None:
            self._add(self.open_start, max(t, self.open_start), 0.0)
            self.open_start = None

    def turn(self, start: float, end: float) -> None:
        if self.source <= SRC_TURN:
            self.source = SRC_TURN
            self._add(start, end, 0.0)

    def word(self, start: float, end: float) -> None:
        if self.source <= SRC_WORD:
            self.source = SRC_WORD
            self._add(start, end, self._word_merge_s)

    def intervals(self, now: float, merge_s: float = 0.0) -> list[tuple[float, float, bool]]:
        """(start, end, still_open) spans, open one ending at ``now``; gaps < merge_s merged."""
        raw = [(s, e, False) for s, e in self.spans]
        if self.open_start is not None:
            raw.append((self.open_start, max(now, self.open_start), True))
        out: list[tuple[float, float, bool]] = []
        for s, e, o in raw:
            if out and s <= out[-1][1] + merge_s:
                ps, pe, po = out[-1]
                out[-1] = (ps, max(pe, e), po or o)
            else:
                out.append((s, e, o))
        return out

    def last_end(self) -> float | None:
        return self.spans[-1][1] if self.spans else None

    def __deepcopy__(self, memo: dict) -> Timeline:
        new = Timeline(self._word_merge_s)
        new.source, new.open_start = self.source, self.open_start
        new.spans = [list(s) for s in self.spans]
        return new


class Words:
    """One speaker's committed words with their speech clock (word time plus short gaps),
    as (start, end, clock before, clock after)."""

    def __init__(self, gap_s: float):
        self.gap_s = gap_s
        self.items: list[tuple[float, float, float, float]] = []
        self.ws: list[Word] = []
        self.clock = 0.0
        self.last: Word | None = None

    def add(self, w: Word) -> float:
        """Record ``w``; returns the speech clock before it."""
        gap = 0.0 if self.last is None else w.start - self.last.end
        clock0 = self.clock
        self.clock += max(0.0, w.end - w.start) + (gap if 0 < gap < self.gap_s else 0)
        self.last = w
        self.ws.append(w)
        self.items.append((w.start, w.end, clock0, self.clock))
        return clock0

    def __deepcopy__(self, memo: dict) -> Words:
        new = Words(self.gap_s)  # words and their times are immutable: share them
        new.items, new.ws, new.clock, new.last = list(self.items), list(self.ws), self.clock, self.last
        return new

    def index_after(self, t: float) -> int | None:
        """Index of the first word starting at or after ``t``."""
        i = bisect.bisect_left(self.items, (t, -math.inf, 0.0, 0.0))
        return i if i < len(self.items) else None

    def clock_end(self, start_index: int, clock0: float, span_s: float) -> float | None:
        """End time of the word at which ``span_s`` of speech after ``clock0`` is reached."""
        target = clock0 + span_s
        for j in range(start_index, len(self.items)):
            if self.items[j][3] >= target:
                return self.items[j][1]
        return None


@dataclass
class Frustration:
    """The customer voiced frustration (words, or a rise in pitch and loudness)."""

    start: float
    end: float
    words: list[Word]
    figures: dict[str, Any]
    decided: bool = False


@dataclass
class CallState:
    """The facts of the call so far."""

    playbook: Playbook
    customer_channel: bool = True
    now: float = 0.0
    ended: bool = False
    timeline: dict[str, Timeline] = field(default_factory=dict)
    words: dict[str, Words] = field(default_factory=dict)
    sentence: dict[str, Sentence] = field(default_factory=dict)
    # audio time up to which each speaker's words are all known (0: only what the words
    # themselves show); an early look at uncommitted words sets it (coach.cues.early)
    heard: dict[str, float] = field(default_factory=lambda: {AGENT: 0.0, CUSTOMER: 0.0})
    apologies: list[Apology] = field(default_factory=list)  # confirmed, any kind but request
    actions: list[Hit] = field(default_factory=list)
    empathy: list[Hit] = field(default_factory=list)
    follow_ups: list[Hit] = field(default_factory=list)
    problems: list[Hit] = field(default_factory=list)
    frustrations: list[Frustration] = field(default_factory=list)

    def __post_init__(self) -> None:
        s = self.playbook.settings
        for sp in (AGENT, CUSTOMER):
            self.timeline.setdefault(sp, Timeline(s.speech_gap_s))
            self.words.setdefault(sp, Words(s.speech_gap_s))
            self.sentence.setdefault(sp, Sentence())

    @property
    def agent(self) -> Words:
        return self.words[AGENT]

    def spans(self, speaker: str, merge_s: float = 0.0, *, hangover_s: float = 0.0
              ) -> list[tuple[float, float, bool]]:
        """(start, end, still_open) stretches of one speaker's speech; an open one is taken
        to end ``hangover_s`` before now (the voice detector's wait before it closes one)."""
        return [(a, max(a, self.now - hangover_s) if o else b, o)
                for a, b, o in self.timeline[speaker].intervals(self.now, merge_s=merge_s)]

    def customer_turns(self, *, hangover_s: float = 0.0) -> list[tuple[float, float, bool]]:
        """Customer turns longer than a backchannel (open ones included)."""
        s = self.playbook.settings
        return [(a, b, o) for a, b, o in self.spans(CUSTOMER, s.speech_gap_s,
                                                    hangover_s=hangover_s)
                if b - a > s.backchannel_s]

    def frustrated(self, start: float, end: float, words: list[Word], figures: dict) -> None:
        """Open (or extend) a window in which the agent should acknowledge the feeling."""
        for f in self.frustrations:
            # One pending window per outburst: more frustration before the agent has
            # answered extends the evidence instead of opening a second window.
            if not f.decided and self.agent.index_after(f.end) is None:
                f.words += words
                f.figures.update(figures)
                f.end = max(f.end, end)
                return
        self.frustrations.append(Frustration(start, end, list(words), dict(figures)))
