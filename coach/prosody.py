"""Per-speaker delivery readings once a second: pitch, loudness, speaking rate (pure).

Pitch comes from ``coach.pitch.pitch_track`` on the last 1.5 s (so the Viterbi path has
context), summarised over the last second; loudness is the level of that second's speech
frames; speaking rate comes from committed words (``coach.rate.SpeakingRate``), the
syllable-free measure an agent understands ("words per minute").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from coach.audio import SAMPLE_RATE
from coach.events import Prosody, Speaker, Word
from coach.pitch import f0_summary, pitch_track
from coach.rate import SpeakingRate, StretchRate

__all__ = ["ProsodyOptions", "ProsodyTracker"]


@dataclass(frozen=True, slots=True)
class ProsodyOptions:
    period_s: float = 1.0  # one reading per second of audio
    context_s: float = 1.5  # audio given to the pitch tracker for each reading
    fmin: float = 60.0
    fmax: float = 500.0
    speech_floor_db: float = -60.0  # quieter 20 ms frames are not counted as speech
    loudness_range_db: float = 25.0  # frames this far below the second's peak are pauses
    rate_window_s: float = 15.0


class ProsodyTracker:
    """Feed one speaker's 16 kHz audio (and their committed words); get Prosody events."""

    def __init__(self, speaker: Speaker, *, options: ProsodyOptions | None = None,
                 pace: StretchRate | None = None):
        """``pace``: the pace figure the pace cue judges (``coach.cues.voice.
        stretch_rate_for(playbook)``), reported as ``Prosody.pace_wpm`` for the gauge."""
        self.speaker = speaker
        self._pace = pace
        self.options = options or ProsodyOptions()
        self._rate = SpeakingRate(window_s=self.options.rate_window_s)
        keep = int(self.options.context_s * SAMPLE_RATE)
        self._ring = np.zeros(keep, np.float32)
        self._period = int(self.options.period_s * SAMPLE_RATE)
        self._since = 0  # samples since the last reading
        self._pos = 0

    def add_word(self, word: Word) -> None:
        if word.final:
            self._rate.add(word)
            if self._pace is not None:
                self._pace.add(word)

    @property
    def wpm(self) -> float | None:
        return self._rate.wpm()

    def feed(self, audio: np.ndarray, *, speaking: bool) -> list[Prosody]:
        out: list[Prosody] = []
        audio = np.asarray(audio, dtype=np.float32)
        i = 0
        while i < audio.size:
            take = min(self._period - self._since, audio.size - i)
            chunk = audio[i:i + take]
            self._ring = np.concatenate([self._ring[chunk.size:], chunk])[-self._ring.size:]
            self._since += take
            self._pos += take
            i += take
            if self._since >= self._period:
                self._since = 0
                out.append(self._reading(speaking))
        return out

    def _reading(self, speaking: bool) -> Prosody:
        o = self.options
        t = self._pos / SAMPLE_RATE
        last = self._ring[-self._period:]
        frame = SAMPLE_RATE // 50
        n = last.size // frame
        level = 10 * np.log10(np.mean(
            last[: n * frame].reshape(n, frame).astype(np.float64) ** 2, axis=1) + 1e-12)
        loud = level[level >= max(o.speech_floor_db, level.max() - o.loudness_range_db)]
        loudness = (float(10 * np.log10(np.mean(10 ** (loud / 10))))
                    if loud.size and speaking else None)
        f0_hz = spread = None
        voiced_s = 0.0
        if speaking and loudness is not None:
            times, f0 = pitch_track(self._ring, SAMPLE_RATE, fmin=o.fmin, fmax=o.fmax)
            recent = f0[times >= (self._ring.size - self._period) / SAMPLE_RATE]
            voiced = recent[np.isfinite(recent)]
            if recent.size:
                voiced_s = float(voiced.size / recent.size * o.period_s)
            f0_hz, spread = f0_summary(recent)
        pace = None
        if self._pace is not None:
            # the same "speaking" the cue engine reads from this reading
            pace = self._pace.reading(t, speaking or voiced_s > 0)
        return Prosody(self.speaker, t, f0_hz, loudness, self._rate.wpm(), spread, voiced_s,
                       speaking, pace)
