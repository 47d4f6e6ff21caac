"""Speaking rate from the audio alone: syllable nuclei counted as peaks of an onset-strength
envelope (pure: arrays in, numbers out).

A cross-check for the word-based rate (:mod:`coach.rate`), which needs committed words and
so lags, or goes blind when recognition falls behind or drops words. Each syllable has a
vowel nucleus, a local burst of energy in the voice band; librosa's onset strength (the
positive spectral flux of a mel spectrogram, here limited to 300-3400 Hz, the phone band)
rises at each one. Peaks of the smoothed envelope at least ``min_gap_s`` apart and above an
adaptive floor are taken as nuclei; frames quieter than ``floor_db`` under the clip's
loudest are not speech and carry none.

Measured by ``bench/syllable_bench.py`` against word-based rates and kept here, in the
benchmarks, rather than in the package: on real phone calls it follows the word rate too
loosely to judge pace (the README has the figures), so coach does not depend on librosa
at run time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SyllableOptions", "syllable_times", "rate_wpm"]


@dataclass(frozen=True, slots=True)
class SyllableOptions:
    hop_s: float = 0.01
    fmin_hz: float = 300.0
    fmax_hz: float = 3400.0
    smooth_s: float = 0.05        # moving average over the envelope
    min_gap_s: float = 0.12       # nuclei closer than this are one (syllables last ~0.2 s)
    floor_db: float = 35.0        # frames this far below the clip's loudest are silence
    prominence: float = 0.25      # a peak must rise this share of the local spread
    syllables_per_word: float = 1.45  # conversational English (function words are short)


def syllable_times(y: np.ndarray, sr: int, opts: SyllableOptions | None = None) -> np.ndarray:
    """Times (s) of the syllable nuclei in mono ``y`` at rate ``sr``."""
    import librosa  # imported here: only this estimate needs it
    import scipy.signal

    o = opts or SyllableOptions()
    y = np.asarray(y, dtype=np.float32)
    if y.size < sr * 0.1 or not np.any(y):
        return np.zeros(0)
    hop = max(1, int(round(sr * o.hop_s)))
    env = librosa.onset.onset_strength(y=y, sr=sr, hop_length=hop, n_mels=40,
                                       fmin=o.fmin_hz, fmax=min(o.fmax_hz, sr / 2 - 1),
                                       aggregate=np.median)
    rms = librosa.feature.rms(y=y, frame_length=4 * hop, hop_length=hop, center=True)[0]
    n = min(env.size, rms.size)
    env, rms = env[:n], rms[:n]
    level = 20 * np.log10(np.maximum(rms, 1e-10))
    speech = level >= level.max() - o.floor_db
    k = max(1, int(round(o.smooth_s / o.hop_s)))
    env = np.convolve(env, np.ones(k) / k, mode="same") * speech
    spread = float(np.percentile(env[speech], 90)) if speech.any() else 0.0
    if spread <= 0:
        return np.zeros(0)
    peaks, _ = scipy.signal.find_peaks(env, distance=max(1, int(o.min_gap_s / o.hop_s)),
                                       prominence=o.prominence * spread)
    return peaks * o.hop_s


def rate_wpm(times: np.ndarray, start: float, end: float,
             opts: SyllableOptions | None = None) -> float | None:
    """Words per minute implied by the nuclei between ``start`` and ``end`` (None when the
    span is empty)."""
    o = opts or SyllableOptions()
    span = end - start
    if span <= 0:
        return None
    n = int(np.count_nonzero((times >= start) & (times < end)))
    return n / o.syllables_per_word / span * 60.0
