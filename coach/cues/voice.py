"""Voice rules: pace, pitch, loudness and flatness of the agent's delivery.

Each compares the agent with an absolute band and with their own baseline: given (learned
from earlier calls) or calibrated from the first ``baseline_s`` readings of their speech in
this call. The pace figure is :class:`coach.rate.StretchRate`, the same one the live gauge
shows (``Prosody.pace_wpm``).
"""

from __future__ import annotations

import math
import statistics
from collections import deque

from ..events import AGENT, CUSTOMER, Cue, Prosody, Word
from ..playbook import Playbook
from ..rate import StretchRate
from .hygiene import Hygiene
from .state import Baseline, CallState

__all__ = ["Calibration", "Voice", "stretch_rate_for"]


def stretch_rate_for(playbook: Playbook) -> StretchRate:
    """The pace figure with the playbook's pace-fast windows."""
    spec = playbook.cue("pace-fast")
    return StretchRate(window_s=spec.windows.get("speech_s", 15.0),
                       min_stretch_s=spec.windows.get("min_stretch_s", 6.0),
                       stretch_gap_s=spec.windows.get("stretch_gap_s", 2.0),
                       min_words=int(spec.thresholds.get("min_words", 12)))


class Calibration:
    """Medians of a speaker's first seconds of speech."""

    def __init__(self, given: Baseline | None, need_s: float, min_readings: int):
        self.given = given or Baseline()
        self.need = need_s
        self.min = min_readings
        self.seen = 0
        self.f0: list[float] = []
        self.loud: list[float] = []
        self.wpm: list[float] = []
        self._fixed: Baseline | None = None

    def add(self, p: Prosody) -> None:
        if self._fixed is not None:
            return
        self.seen += 1
        if p.f0_hz is not None and p.f0_hz > 0:
            self.f0.append(p.f0_hz)
        if p.loudness_db is not None and math.isfinite(p.loudness_db):
            self.loud.append(p.loudness_db)
        if p.wpm is not None:
            self.wpm.append(p.wpm)
        if self.seen >= self.need:
            g = self.given
            self._fixed = Baseline(
                f0_hz=g.f0_hz if g.f0_hz is not None else self._median(self.f0),
                loudness_db=g.loudness_db if g.loudness_db is not None else self._median(self.loud),
                wpm=g.wpm if g.wpm is not None else self._median(self.wpm),
            )

    def _median(self, values: list[float]) -> float | None:
        return statistics.median(values) if len(values) >= self.min else None

    def value(self) -> Baseline:
        """The baseline: given values now, calibrated ones once enough speech was heard."""
        return self._fixed if self._fixed is not None else self.given


def speaking(p: Prosody) -> bool:
    return p.speaking or p.voiced_s > 0


class Voice:
    def __init__(self, state: CallState, hygiene: Hygiene, agent_baseline: Baseline | None):
        self.st = state
        self.h = hygiene
        self.pb = pb = state.playbook
        s = pb.settings
        self.calib = {
            AGENT: Calibration(agent_baseline, s.baseline_s, int(s.baseline_min_readings)),
            CUSTOMER: Calibration(None, s.baseline_s, int(s.baseline_min_readings)),
        }
        self.pace = stretch_rate_for(pb)
        self._pace_run = 0
        self._tense_run = 0
        self._loud_run = 0
        self._f0: deque[float] = deque()
        self._loud: deque[float] = deque()

    def word(self, w: Word) -> None:
        if w.speaker == AGENT:
            self.pace.add(w)

    def baseline(self, speaker: str) -> Baseline:
        return self.calib[speaker].value()

    def customer(self, p: Prosody) -> Baseline | None:
        """Calibrate on the customer's reading; their baseline before it (None if silent)."""
        if not speaking(p):
            return None
        base = self.calib[CUSTOMER].value()
        self.calib[CUSTOMER].add(p)
        return base

    def agent(self, p: Prosody) -> list[Cue]:
        wpm = self.pace.reading(p.t, speaking(p))
        if not speaking(p):
            return []
        base = self.calib[AGENT].value()
        self.calib[AGENT].add(p)
        out = self._pace(p, wpm, base)
        spec = self.pb.cue("tone-tense")
        n = int(max(spec.windows.get("speech_s", 10),
                    self.pb.cue("tone-flat").windows.get("speech_s", 20)))
        if p.f0_hz is not None and p.f0_hz > 0:
            self._f0.append(p.f0_hz)
            while len(self._f0) > n:
                self._f0.popleft()
        if p.loudness_db is not None and math.isfinite(p.loudness_db):
            self._loud.append(p.loudness_db)
            lw = int(self.pb.cue("volume-loud").windows.get("speech_s", 5))
            while len(self._loud) > lw:
                self._loud.popleft()
        out += self._tense(p, base)
        out += self._volume(p, base)
        out += self._flat(p)
        return out

    def _pace(self, p: Prosody, wpm: float | None, base: Baseline) -> list[Cue]:
        spec = self.pb.cue("pace-fast")
        th = spec.thresholds
        if wpm is None:
            self._pace_run = 0
            return []
        limit = th.get("wpm", 175.0)
        if base.wpm is not None:
            limit = min(limit, base.wpm * th.get("baseline_ratio", 1.2))
        apology_s = spec.windows.get("apology_s", 10.0)
        if any(p.t - apology_s <= a.end <= p.t + 0.5 for a in self.st.apologies[-5:]):
            limit = min(limit, th.get("apology_wpm", limit))
        if wpm <= limit:
            self._pace_run = 0
            return []
        self._pace_run += 1
        if self._pace_run < th.get("sustain_readings", 2):
            return []
        ev = {"wpm": round(wpm, 1), "word_count": self.pace.words_in_window,
              "over_s": round(self.pace.span_s, 1), "threshold_wpm": round(limit, 1)}
        if base.wpm is not None:
            ev["baseline_wpm"] = round(base.wpm, 1)
        return self.h.emit("pace-fast", p.t, ev)

    def _tense(self, p: Prosody, base: Baseline) -> list[Cue]:
        spec = self.pb.cue("tone-tense")
        th = spec.thresholds
        recent = list(self._f0)[-int(spec.windows.get("speech_s", 10)):]
        if base.f0_hz is None or p.f0_hz is None or len(recent) < th.get("min_voiced", 5):
            return []
        med = statistics.median(recent)
        if med < base.f0_hz * (1 + th.get("f0_rise", 0.25)):
            self._tense_run = 0
            return []
        self._tense_run += 1
        if self._tense_run < th.get("sustain_readings", 3):
            return []
        return self.h.emit("tone-tense", p.t, {
            "median_f0_hz": round(med, 1), "baseline_f0_hz": round(base.f0_hz, 1),
            "rise": round(med / base.f0_hz - 1, 3)})

    def _volume(self, p: Prosody, base: Baseline) -> list[Cue]:
        spec = self.pb.cue("volume-loud")
        th = spec.thresholds
        if (base.loudness_db is None or p.loudness_db is None
                or len(self._loud) < th.get("min_readings", 3)):
            return []
        med = statistics.median(self._loud)
        if med < base.loudness_db + th.get("loudness_rise_db", 6.0):
            self._loud_run = 0
            return []
        self._loud_run += 1
        if self._loud_run < th.get("sustain_readings", 3):
            return []
        return self.h.emit("volume-loud", p.t, {
            "median_loudness_db": round(med, 1),
            "baseline_loudness_db": round(base.loudness_db, 1)})

    def _flat(self, p: Prosody) -> list[Cue]:
        spec = self.pb.cue("tone-flat")
        if not spec.enabled or p.f0_hz is None:
            return []
        th = spec.thresholds
        recent = list(self._f0)[-int(spec.windows.get("speech_s", 20)):]
        if len(recent) < th.get("min_voiced", 15):
            return []
        ref = statistics.median(recent)
        sd = statistics.pstdev([12 * math.log2(f / ref) for f in recent])
        if sd >= th.get("max_sd_st", 1.0):
            return []
        return self.h.emit("tone-flat", p.t, {"f0_sd_st": round(sd, 2), "readings": len(recent)})
