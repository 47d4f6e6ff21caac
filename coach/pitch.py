"""Fundamental-frequency (F0) tracking for speech.

``pitch_track`` follows the shape of Praat's autocorrelation tracker (Boersma 1993),
vectorised over all frames:

1. resample to a small working rate (F0 of speech needs no more than ~8 kHz) and
   remove rumble below the pitch range;
2. per frame, the normalised cross-correlation function (NCCF, as in RAPT) over the
   lags of the pitch range, computed for all frames at once with FFTs;
3. per frame, a few interpolated NCCF peaks as voiced candidates plus one unvoiced
   candidate whose strength grows with low level (relative to the clip) and
   noise-like zero-crossing rate;
4. a Viterbi path through the candidates that charges for octave jumps and for
   voiced/unvoiced switches, which suppresses octave errors and one-frame blips.

``f0_summary`` reduces a track to (median Hz, robust spread in semitones).
"""

from __future__ import annotations

from functools import lru_cache
from math import gcd

import numpy as np
from scipy import fft as sfft
from scipy import signal

__all__ = ["f0_summary", "pitch_track"]

# Working rate: ample bandwidth for the low harmonics that carry the period of
# speech, the native rate of phone audio, and cheap FFTs.
_WORK_SR = 8000
# Correlation window: 15 ms, i.e. 2+ periods of most voices and 3/4 of the longest
# period (60 Hz); 3/4 of the longest period if fmin is set lower.
# The NCCF, unlike a plain autocorrelation, needs no whole number of periods in the
# window, and a short window keeps voicing edges sharp.
_WIN_PERIODS = 0.75
_MIN_WIN_S = 0.015
_N_CAND = 5  # voiced candidates per frame: the true period is almost always in the top 3
_PEAK_MIN = 0.25  # NCCF peaks below this are noise, never worth a candidate

# Path costs, Praat's defaults (per 10 ms), on the NCCF scale of the strengths.
_OCTAVE_COST = 0.02  # per octave: favours the shorter of two equally strong periods
_OCTAVE_JUMP_COST = 0.35  # per octave of F0 change between consecutive voiced frames
_VUV_COST = 0.14  # per voiced/unvoiced switch: the hysteresis against 1-frame blips
# The unvoiced candidate's base strength: the NCCF a loud, low-ZCR frame must beat.
_VOICING_THRESHOLD = 0.45
# Level term (Praat's silence threshold, on frame RMS): a frame at _SILENCE_DB below
# the clip's loud level gets +1 on its unvoiced strength, 6 dB louder gets nothing.
_SILENCE_DB = -25.0
_LEVEL_WIN_S = 0.010  # level from the central 10 ms: sharper than the NCCF span
_LEVEL_PCT = 95  # the clip's "loud level": a high percentile, robust to clicks
_ABS_FLOOR_DB = -70.0  # dBFS: digital silence/dither is unvoiced, whatever the clip
# Zero-crossing rate per sample at 8 kHz: above 0.3 (1200 crossings/s) a frame is
# dominated by frication or noise, which can still show a spurious NCCF peak.
_ZCR_VOICED_MAX = 0.30
_ZCR_SLOPE = 2.0

_BLOCK_FRAMES = 2048  # frames per FFT batch: bounds memory on long files


def pitch_track(
    y: np.ndarray,
    sr: int,
    *,
    fmin: float = 60.0,
    fmax: float = 500.0,
    hop_s: float = 0.01,
) -> tuple[np.ndarray, np.ndarray]:
    """Track F0 of a mono signal.

    Returns ``(times_s, f0_hz)``: frame k is centred at ``k * hop_s`` seconds and
    ``f0_hz`` is NaN where the frame is unvoiced. Integer input is scaled to
    [-1, 1). Empty input gives two empty arrays.
    """
    x = np.asarray(y)
    if x.ndim != 1:
        raise ValueError(f"pitch_track needs a 1-D mono signal, got shape {x.shape}")
    if not sr or sr <= 0:
        raise ValueError(f"sample rate must be positive, got {sr}")
    if not 0 < fmin < fmax:
        raise ValueError(f"need 0 < fmin < fmax, got fmin={fmin}, fmax={fmax}")
    if hop_s <= 0:
        raise ValueError(f"hop_s must be positive, got {hop_s}")
    if fmax >= sr / 2:
        raise ValueError(f"fmax={fmax} Hz is not below the Nyquist rate of {sr} Hz audio")
    if x.size == 0:
        return np.zeros(0), np.zeros(0)

    n_frames = 1 + int(np.floor((x.size - 1) / sr / hop_s + 1e-9))
    times = np.arange(n_frames) * hop_s
    f0 = np.full(n_frames, np.nan)

    x = _to_float(x)
    x, wsr = _prepare(x, int(sr), fmin, fmax)
    lag_min = max(2, int(np.floor(wsr / fmax)))
    lag_max = int(np.ceil(wsr / fmin))
    win = int(round(wsr * max(_WIN_PERIODS / fmin, _MIN_WIN_S)))
    if x.size < win:  # shorter than one analysis window: nothing to correlate
        return times, f0

    feats = _frame_features(x, wsr, n_frames, hop_s, win, lag_min, lag_max)
    lags, strength, level_db, zcr = feats
    freqs = wsr / lags  # NaN where a frame has fewer candidates
    with np.errstate(invalid="ignore"):
        bias = _OCTAVE_COST * np.log2(freqs / fmin)
        strength = np.where(np.isfinite(freqs), strength + bias, -np.inf)

    unvoiced = _unvoiced_strength(level_db - _clip_level_db(level_db), zcr)
    unvoiced[level_db < _ABS_FLOOR_DB] = 10.0  # digital silence / dither: beats any NCCF

    choice = _viterbi(freqs, strength, unvoiced, hop_s)
    rows = np.flatnonzero(choice >= 0)
    f0[rows] = freqs[rows, choice[rows]]
    return times, f0


def f0_summary(f0: np.ndarray, min_voiced: int = 10) -> tuple[float | None, float | None]:
    """Median F0 (Hz) and spread (semitones, robust std) of the voiced values.

    The spread is 1.4826 x the median absolute deviation of the semitone values,
    which equals the standard deviation for normally distributed pitch but ignores
    the odd octave error. Each is None with fewer than ``min_voiced`` voiced frames.
    """
    v = np.asarray(f0, dtype=np.float64).ravel()
    v = v[np.isfinite(v) & (v > 0)]
    if v.size < max(1, min_voiced):
        return None, None
    st = 12.0 * np.log2(v)
    med_st = float(np.median(st))
    spread = 1.4826 * float(np.median(np.abs(st - med_st)))
    return float(2.0 ** (med_st / 12.0)), spread


# --------------------------------------------------------------------------- helpers


def _to_float(x: np.ndarray) -> np.ndarray:
    """Float64 copy; integers scaled to [-1, 1), non-finite samples zeroed."""
    if np.issubdtype(x.dtype, np.integer):
        info = np.iinfo(x.dtype)
        scale = float(info.max) + 1.0
        x = (x.astype(np.float64) - (0.0 if info.min < 0 else scale / 2)) / (
            scale if info.min < 0 else scale / 2
        )
    elif np.issubdtype(x.dtype, np.bool_):
        x = x.astype(np.float64)
    else:
        x = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        x = np.where(np.isfinite(x), x, 0.0)
    return x


@lru_cache(maxsize=16)
def _resample_plan(sr: int, fmax: float) -> tuple[int, int, int, np.ndarray | None]:
    """Working rate and polyphase anti-alias filter for ``sr`` (cached per rate)."""
    # Keep at least 4x fmax so a user asking for high F0 still has harmonics.
    target = max(_WORK_SR, int(np.ceil(4 * fmax / 1000.0)) * 1000)
    if sr <= target:
        return sr, 1, 1, None
    g = gcd(sr, target)
    up, down = target // g, sr // g
    # Same Kaiser design as scipy's resample_poly default, built once per rate.
    max_rate = max(up, down)
    half_len = 10 * max_rate
    taps = signal.firwin(2 * half_len + 1, 1.0 / max_rate, window=("kaiser", 5.0))
    return target, up, down, taps * up


@lru_cache(maxsize=16)
def _highpass(wsr: int, fmin: float) -> np.ndarray:
    """2nd-order high-pass under the pitch range: removes DC, hum and rumble."""
    return signal.butter(2, 0.5 * fmin, btype="highpass", fs=wsr, output="sos")


def _prepare(x: np.ndarray, sr: int, fmin: float, fmax: float) -> tuple[np.ndarray, int]:
    """Resample to the working rate and high-pass; returns (signal, working rate)."""
    wsr, up, down, taps = _resample_plan(sr, float(fmax))
    if taps is not None:
        x = signal.resample_poly(x, up, down, window=taps)
    return signal.sosfilt(_highpass(wsr, float(fmin)), x), wsr


def _frame_features(
    x: np.ndarray, wsr: int, n_frames: int, hop_s: float, win: int, lag_min: int, lag_max: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Candidate lags/strengths, level (dBFS) and zero-crossing rate per frame."""
    # Each frame correlates a central window with copies shifted forward AND
    # backward by each lag and averages the two NCCFs: the analysed region is then
    # symmetric about the frame time for every lag, so voicing edges are not skewed.
    o = lag_max + 1
    span = win + 2 * o
    nfft = sfft.next_fast_len(span, real=True)
    pad = span
    xp = np.concatenate([np.zeros(pad), x, np.zeros(pad)])
    starts = np.round(np.arange(n_frames) * hop_s * wsr).astype(np.int64) + pad - span // 2
    lags_out = np.full((n_frames, _N_CAND), np.nan)
    str_out = np.full((n_frames, _N_CAND), -np.inf)
    level = np.empty(n_frames)
    zcr = np.empty(n_frames)
    offs = np.arange(span)
    tau = np.arange(lag_min - 1, lag_max + 2)  # one extra lag each side for peak tests
    fwd, bwd = o + tau, o - tau
    lw = max(1, int(_LEVEL_WIN_S * wsr))
    lv0 = span // 2 - lw // 2
    for b0 in range(0, n_frames, _BLOCK_FRAMES):
        b1 = min(n_frames, b0 + _BLOCK_FRAMES)
        fr = xp[starts[b0:b1, None] + offs]
        spec_all = sfft.rfft(fr, nfft, axis=1)
        spec_head = sfft.rfft(fr[:, o : o + win], nfft, axis=1)
        r = sfft.irfft(np.conj(spec_head) * spec_all, nfft, axis=1)
        csum = np.concatenate([np.zeros((b1 - b0, 1)), np.cumsum(fr * fr, axis=1)], axis=1)
        e0 = (csum[:, o + win] - csum[:, o])[:, None]
        tiny = (1e-12 * win) ** 2  # keeps all-zero (padded) frames at NCCF 0, not NaN
        n_f = r[:, fwd] / np.sqrt(e0 * (csum[:, fwd + win] - csum[:, fwd]) + tiny)
        n_b = r[:, bwd] / np.sqrt(e0 * (csum[:, bwd + win] - csum[:, bwd]) + tiny)
        nccf = 0.5 * (n_f + n_b)
        _pick_peaks(nccf, tau, lags_out[b0:b1], str_out[b0:b1])
        # Level over the central 10 ms (sharp at voicing edges); ZCR over the central
        # correlation window, enough crossings for a stable rate.
        seg = fr[:, lv0 : lv0 + lw]
        mid = fr[:, o : o + win]
        level[b0:b1] = 10.0 * np.log10(np.mean(seg * seg, axis=1) + 1e-20)
        zcr[b0:b1] = np.mean(np.signbit(mid[:, 1:]) != np.signbit(mid[:, :-1]), axis=1)
    return lags_out, str_out, level, zcr


def _pick_peaks(nccf: np.ndarray, tau: np.ndarray, lags_out: np.ndarray, str_out: np.ndarray) -> None:
    """Top local maxima of each NCCF row, refined by parabolic interpolation."""
    c = nccf[:, 1:-1]
    left, right = nccf[:, :-2], nccf[:, 2:]
    is_peak = (c > left) & (c >= right) & (c > _PEAK_MIN)
    # Rank with the octave cost already applied: a periodic signal has equally strong
    # peaks at every multiple of its period, and the shortest must not be crowded out.
    rank = np.where(is_peak, c - _OCTAVE_COST * np.log2(tau[1:-1]), -np.inf)
    k = min(_N_CAND, rank.shape[1])
    idx = np.argpartition(-rank, k - 1, axis=1)[:, :k]
    val = np.where(np.isfinite(np.take_along_axis(rank, idx, axis=1)),
                   np.take_along_axis(c, idx, axis=1), -np.inf)
    ok = np.isfinite(val)
    lv = np.take_along_axis(left, idx, axis=1)
    rv = np.take_along_axis(right, idx, axis=1)
    denom = lv - 2.0 * val + rv
    with np.errstate(invalid="ignore", divide="ignore"):
        delta = np.where(ok & (denom < 0), 0.5 * (lv - rv) / denom, 0.0)
    delta = np.clip(delta, -0.5, 0.5)
    lags_out[:, :k] = np.where(ok, tau[1:-1][idx] + delta, np.nan)
    peak = val - 0.25 * (lv - rv) * delta
    str_out[:, :k] = np.where(ok, np.minimum(peak, 1.0), -np.inf)


def _unvoiced_strength(rel_db: np.ndarray, zcr: np.ndarray) -> np.ndarray:
    """Strength of the unvoiced candidate, on the NCCF scale of the voiced ones."""
    # Praat's form: linear in amplitude, so it only bites near and below the threshold.
    quiet = np.maximum(0.0, 2.0 - 10.0 ** ((rel_db - _SILENCE_DB) / 20.0))
    noisy = _ZCR_SLOPE * np.maximum(0.0, zcr - _ZCR_VOICED_MAX)
    return _VOICING_THRESHOLD + quiet + noisy


def _clip_level_db(level_db: np.ndarray) -> float:
    """Loud-speech level of the clip: a high percentile, robust to clicks."""
    return float(np.percentile(level_db, _LEVEL_PCT))


def _viterbi(freqs: np.ndarray, strength: np.ndarray, unvoiced: np.ndarray, hop_s: float) -> np.ndarray:
    """Best candidate per frame (-1 = unvoiced), maximising strength minus path costs."""
    n, k = freqs.shape
    scale = 0.01 / hop_s  # Praat's time-step correction: costs are per 10 ms
    # State 0 is unvoiced, states 1..k the candidates (strength -inf where absent).
    local = np.concatenate([unvoiced[:, None], strength], axis=1)
    logf = np.log2(np.where(np.isfinite(freqs), freqs, 1.0))
    # All transition costs at once: trans[t, i, j] from state i at t to j at t+1.
    trans = np.empty((max(n - 1, 0), k + 1, k + 1))
    trans[:, 0, 0] = 0.0
    trans[:, 0, 1:] = _VUV_COST * scale
    trans[:, 1:, 0] = _VUV_COST * scale
    trans[:, 1:, 1:] = (_OCTAVE_JUMP_COST * scale) * np.abs(logf[:-1, :, None] - logf[1:, None, :])
    back = np.zeros((n, k + 1), dtype=np.intp)
    cols = np.arange(k + 1)
    score = local[0]
    for t in range(1, n):
        tot = score[:, None] - trans[t - 1]
        bi = tot.argmax(axis=0)
        back[t] = bi
        score = tot[bi, cols] + local[t]
    path = np.empty(n, dtype=np.intp)
    path[-1] = int(score.argmax())
    for t in range(n - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path - 1
