"""Scoring of F0 tracks against the laryngograph references in ``data/pitch/``.

A reference ``.f0ref`` file holds one F0 value in Hz per line, frame k at
k * 15 ms, with 0 meaning unvoiced. Any estimated track ``(times_s, f0_hz)``
(NaN or <= 0 where unvoiced) is resampled onto that grid before scoring, so
trackers with different hops are compared on the same frames.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "REF_HOP_S",
    "Counts",
    "align_to_grid",
    "load_f0ref",
    "score",
]

REF_HOP_S = 0.015  # FDA laryngograph reference hop
GROSS_RATIO = 0.20  # a voiced-in-both frame is a gross error beyond +/-20 %


def load_f0ref(path: str | Path) -> np.ndarray:
    """Reference F0 per 15 ms frame, NaN where unvoiced (0 in the file)."""
    ref = np.loadtxt(path, dtype=np.float64, ndmin=1)
    return np.where(ref > 0, ref, np.nan)


def align_to_grid(times_s: np.ndarray, f0_hz: np.ndarray, n_frames: int,
                  hop_s: float = REF_HOP_S) -> np.ndarray:
    """Resample a track onto frames ``k * hop_s`` (k < n_frames).

    The voicing decision is the nearest estimated frame's (a voicing flag cannot be
    interpolated); the value is linearly interpolated when both neighbours are voiced,
    otherwise it is the nearest voiced neighbour's. Grid frames further than one
    estimated hop from any estimated frame are unvoiced.
    """
    grid = np.arange(n_frames) * hop_s
    times_s = np.asarray(times_s, dtype=np.float64)
    f0 = np.asarray(f0_hz, dtype=np.float64)
    out = np.full(n_frames, np.nan)
    if times_s.size == 0:
        return out
    f0 = np.where(np.isfinite(f0) & (f0 > 0), f0, np.nan)
    est_hop = float(np.median(np.diff(times_s))) if times_s.size > 1 else hop_s
    hi = np.clip(np.searchsorted(times_s, grid), 1, max(times_s.size - 1, 1))
    lo = hi - 1
    if times_s.size == 1:
        lo = hi = np.zeros(n_frames, dtype=int)
    d_lo = np.abs(grid - times_s[lo])
    d_hi = np.abs(times_s[hi] - grid)
    nearest = np.where(d_lo <= d_hi, lo, hi)
    near_ok = np.minimum(d_lo, d_hi) <= est_hop
    voiced = near_ok & np.isfinite(f0[nearest])
    both = np.isfinite(f0[lo]) & np.isfinite(f0[hi]) & (hi != lo)
    span = np.where(hi != lo, times_s[hi] - times_s[lo], 1.0)
    w = np.clip((grid - times_s[lo]) / span, 0.0, 1.0)
    # interpolate in log-frequency: pitch is perceived (and errs) multiplicatively
    interp = np.exp(np.log(np.where(both, f0[lo], 1.0)) * (1 - w)
                    + np.log(np.where(both, f0[hi], 1.0)) * w)
    out[voiced] = np.where(both, interp, f0[nearest])[voiced]
    return out


@dataclass
class Counts:
    """Frame counts from which GPE/VDE pool correctly over several clips."""

    frames: int = 0
    voicing_errors: int = 0
    voiced_both: int = 0
    gross_errors: int = 0
    cents_abs: list[float] | None = None

    def __post_init__(self) -> None:
        if self.cents_abs is None:
            self.cents_abs = []

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.frames + other.frames,
                      self.voicing_errors + other.voicing_errors,
                      self.voiced_both + other.voiced_both,
                      self.gross_errors + other.gross_errors,
                      list(self.cents_abs) + list(other.cents_abs))

    @property
    def gpe(self) -> float:
        """Gross pitch error, % of frames voiced in both."""
        return 100.0 * self.gross_errors / self.voiced_both if self.voiced_both else float("nan")

    @property
    def vde(self) -> float:
        """Voicing decision error, % of all frames."""
        return 100.0 * self.voicing_errors / self.frames if self.frames else float("nan")

    @property
    def cents(self) -> float:
        """Median absolute error in cents over frames voiced in both."""
        return float(np.median(self.cents_abs)) if self.cents_abs else float("nan")

    def summary(self) -> dict[str, float | int]:
        d = asdict(self)
        d.pop("cents_abs")
        d.update(gpe_pct=self.gpe, vde_pct=self.vde, median_abs_cents=self.cents)
        return d


def score(ref: np.ndarray, est: np.ndarray) -> Counts:
    """Compare two tracks on the same grid (NaN = unvoiced)."""
    ref = np.asarray(ref, dtype=np.float64)
    est = np.asarray(est, dtype=np.float64)
    if ref.shape != est.shape:
        raise ValueError(f"tracks differ in length: {ref.shape} vs {est.shape}")
    rv, ev = np.isfinite(ref), np.isfinite(est)
    both = rv & ev
    cents = 1200.0 * np.abs(np.log2(est[both] / ref[both]))
    gross = np.abs(est[both] / ref[both] - 1.0) > GROSS_RATIO
    return Counts(frames=int(ref.size), voicing_errors=int(np.sum(rv != ev)),
                  voiced_both=int(both.sum()), gross_errors=int(gross.sum()),
                  cents_abs=cents.tolist())
