"""Speaking rate from committed word times, over a window of the speaker's own speech.

Counting wall time would make a speaker who pauses to listen look slow; counting only the
words' own durations would make anyone look fast. Speech time here is the words' durations
plus the short gaps between them (breaths, commas); a longer pause is listening or thinking
and does not count.
"""

from __future__ import annotations

from collections import deque

from .events import Word

__all__ = ["SpeakingRate", "StretchRate"]

DEFAULT_WINDOW_S = 15.0
DEFAULT_MIN_WORDS = 8
# Whisper's word times hug the voiced part of each word, so commas, breaths and short
# hesitations show up as gaps; up to a second they are part of speaking (measured on the
# SpokenWOZ calls: with 0.5 s the agents' rates came out ~20 % above their turn-level rate).
DEFAULT_MAX_GAP_S = 1.0
# Below this much speech a rate is mostly noise from the first word's timing.
_MIN_SPEECH_S = 2.0


class SpeakingRate:
    """Words per minute over the last ``window_s`` seconds of one speaker's speech time.

    Feed committed words of one speaker in time order with :meth:`add`; :meth:`wpm` is
    ``None`` until at least ``min_words`` words fall in the window.
    """

    def __init__(
        self,
        window_s: float = DEFAULT_WINDOW_S,
        min_words: int = DEFAULT_MIN_WORDS,
        *,
        max_gap_s: float = DEFAULT_MAX_GAP_S,
    ):
        if window_s <= 0:
            raise ValueError("window_s must be positive")
        self.window_s = float(window_s)
        self.min_words = int(min_words)
        self.max_gap_s = float(max_gap_s)
        # (start, end) of recent words; bounded by how many could fit in the window.
        self._words: deque[tuple[float, float]] = deque()
        self._speech_s = 0.0  # speech time covered by self._words

    def add(self, word: Word) -> None:
        """Add one committed word (words out of order or overlapping are tolerated)."""
        start, end = float(word.start), max(float(word.end), float(word.start))
        if self._words and start < self._words[-1][0]:
            return  # a late duplicate from a re-commit; counting it would inflate the rate
        self._words.append((start, end))
        self._speech_s += self._span(len(self._words) - 1)
        self._trim()

    def _span(self, i: int) -> float:
        """Speech time contributed by word ``i`` including the gap before it."""
        start, end = self._words[i]
        if i == 0:
            return end - start
        prev_end = self._words[i - 1][1]
        gap = start - prev_end
        if gap < 0:
            return max(0.0, end - prev_end)
        return (end - start) + (gap if gap < self.max_gap_s else 0.0)

    def _trim(self) -> None:
        # Drop the oldest words while the rest still fill the window.
        while len(self._words) > 1:
            first_alone = self._words[0][1] - self._words[0][0]
            gap_after = self._span(1) - (self._words[1][1] - self._words[1][0])
            if self._speech_s - first_alone - gap_after < self.window_s:
                break
            self._speech_s -= first_alone + gap_after
            self._words.popleft()

    def speech_s(self) -> float:
        """Speech time currently in the window, in seconds."""
        return self._speech_s

    def wpm(self) -> float | None:
        """Words per minute over the window, or ``None`` with too few words to tell."""
        if len(self._words) < self.min_words or self._speech_s < _MIN_SPEECH_S:
            return None
        return len(self._words) * 60.0 / self._speech_s


class StretchRate:
    """The rate the pace cue judges: words per minute within the current stretch of talk.

    Quick short replies ("okay, anything else?") are naturally fast; rushing is a matter of
    a longer stretch of talk (measured on real calls: short-turn agents were flagged all call
    long otherwise). A stretch is speech whose pauses are shorter than ``stretch_gap_s``
    (one reading a second, :meth:`reading`); its rate counts the committed words of its last
    ``window_s`` seconds, and is None until the stretch has lasted ``min_stretch_s`` with at
    least ``min_words`` words. The live gauge and the pace cue both read this figure.
    """

    def __init__(self, *, window_s: float = 15.0, min_stretch_s: float = 6.0,
                 stretch_gap_s: float = 2.0, min_words: int = 12):
        self.window_s = float(window_s)
        self.min_stretch_s = float(min_stretch_s)
        self.stretch_gap_s = float(stretch_gap_s)
        self.min_words = int(min_words)
        self._words: deque[tuple[float, float]] = deque(maxlen=400)
        self._run_start: float | None = None
        self._quiet = 0
        self.words_in_window = 0
        self.span_s = 0.0

    def add(self, word: Word) -> None:
        self._words.append((float(word.start), float(word.end)))

    @property
    def stretch_start(self) -> float | None:
        return self._run_start

    def reading(self, t: float, speaking: bool) -> float | None:
        """One reading a second: update the stretch and return its rate (or None)."""
        if speaking:
            if self._run_start is None or self._quiet >= self.stretch_gap_s:
                self._run_start = t - 1.0
            self._quiet = 0
        else:
            self._quiet += 1
        self.words_in_window, self.span_s = 0, 0.0
        if self._run_start is None or t - self._run_start < self.min_stretch_s:
            return None
        lo = max(self._run_start, t - self.window_s) - 0.5
        ws = [(a, b) for a, b in self._words if a >= lo and b <= t + 0.5]
        span = ws[-1][1] - ws[0][0] if ws else 0.0
        self.words_in_window, self.span_s = len(ws), span
        if len(ws) < self.min_words or span < self.min_stretch_s:
            return None
        return len(ws) * 60.0 / span
