from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bench.pitch_metrics import Counts, align_to_grid, load_f0ref, score
from coach.pitch import f0_summary, pitch_track

PITCH_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "pitch"


def harmonic(f0: float, sr: int, seconds: float = 1.0, amp: float = 0.3) -> np.ndarray:
    """A voice-like tone: 10 harmonics falling 6 dB/octave, scrambled phases."""
    t = np.arange(int(sr * seconds)) / sr
    y = sum((1.0 / k) * np.sin(2 * np.pi * f0 * k * t + 1.7 * k * k)
            for k in range(1, 11) if f0 * k < sr / 2)
    return amp * y / np.max(np.abs(y))


def interior(f0: np.ndarray, n: int = 3) -> np.ndarray:
    return f0[n:-n]  # edge frames see half a window of signal


@pytest.mark.parametrize("sr", [8000, 16000, 44100])
@pytest.mark.parametrize("f", [120.0, 220.0])
def test_harmonic_tone_within_one_percent(sr: int, f: float) -> None:
    times, f0 = pitch_track(harmonic(f, sr), sr)
    mid = interior(f0)
    assert np.isfinite(mid).all(), "a steady tone must be voiced throughout"
    assert np.max(np.abs(mid / f - 1.0)) < 0.01
    assert times.shape == f0.shape
    np.testing.assert_allclose(np.diff(times), 0.01)
    assert times[0] == 0.0 and times[-1] <= 1.0


def test_high_voice_is_not_halved() -> None:
    # every multiple of the period correlates equally well; the shortest must win
    _, f0 = pitch_track(harmonic(400.0, 16000), 16000)
    assert np.max(np.abs(interior(f0) / 400.0 - 1.0)) < 0.01


def test_glide_is_followed() -> None:
    sr, seconds = 16000, 1.0
    t = np.arange(int(sr * seconds)) / sr
    f_inst = 100.0 * 2.0 ** t  # one octave up in a second
    y = 0.3 * np.sin(2 * np.pi * np.cumsum(f_inst) / sr) + 0.1 * np.sin(4 * np.pi * np.cumsum(f_inst) / sr)
    times, f0 = pitch_track(y, sr)
    truth = 100.0 * 2.0 ** times
    assert np.nanmax(np.abs(interior(f0) / interior(truth) - 1.0)) < 0.02
    assert np.isfinite(interior(f0)).mean() > 0.95


def test_silence_is_unvoiced() -> None:
    times, f0 = pitch_track(np.zeros(16000), 16000)
    assert times.size == 100 and np.isnan(f0).all()  # frames up to the last sample


@pytest.mark.parametrize("sr", [8000, 16000])
def test_white_noise_is_mostly_unvoiced(sr: int) -> None:
    y = 0.1 * np.random.default_rng(1).standard_normal(2 * sr)
    _, f0 = pitch_track(y, sr)
    assert np.isfinite(f0).mean() < 0.05


def test_quiet_noise_between_tones_is_unvoiced() -> None:
    sr = 16000
    rng = np.random.default_rng(2)
    y = np.concatenate([harmonic(150.0, sr, 0.5), 0.003 * rng.standard_normal(sr // 2),
                        harmonic(150.0, sr, 0.5)])
    times, f0 = pitch_track(y, sr)
    gap = (times > 0.56) & (times < 0.94)
    assert np.isnan(f0[gap]).all()
    assert np.isfinite(f0[(times > 0.05) & (times < 0.45)]).all()


def test_empty_input_gives_empty_arrays() -> None:
    times, f0 = pitch_track(np.zeros(0), 16000)
    assert times.shape == (0,) and f0.shape == (0,)


@pytest.mark.parametrize("n", [1, 7, 100])
def test_input_shorter_than_a_frame(n: int) -> None:
    times, f0 = pitch_track(np.ones(n), 16000)
    assert times.size == f0.size >= 1
    assert np.isfinite(times).all() and np.isnan(f0).all()


def test_int16_matches_float() -> None:
    y = harmonic(180.0, 8000, 0.5)
    pcm = np.round(y * 32767).astype(np.int16)
    _, f_float = pitch_track(pcm / 32768.0, 8000)
    _, f_int = pitch_track(pcm, 8000)
    np.testing.assert_allclose(f_int, f_float, rtol=1e-6)
    assert np.isfinite(interior(f_int)).all()


def test_clipped_audio_keeps_its_pitch() -> None:
    y = np.clip(10.0 * harmonic(130.0, 16000), -1.0, 1.0)  # hard clipped, 20 dB over
    _, f0 = pitch_track(y, 16000)
    assert np.max(np.abs(interior(f0) / 130.0 - 1.0)) < 0.01


def test_non_finite_samples_do_not_leak() -> None:
    y = harmonic(150.0, 16000)
    y[4000:4100] = np.nan
    y[9000] = np.inf
    times, f0 = pitch_track(y, 16000)
    assert np.isfinite(times).all()
    assert np.all(np.isnan(f0) | ((f0 >= 60.0) & (f0 <= 500.0)))


@pytest.mark.parametrize("shape", [(2, 8000), (8000, 1), ()])
def test_non_mono_input_raises(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="1-D"):
        pitch_track(np.zeros(shape), 16000)


def test_bad_parameters_raise() -> None:
    y = np.zeros(1600)
    with pytest.raises(ValueError):
        pitch_track(y, 0)
    with pytest.raises(ValueError):
        pitch_track(y, 16000, fmin=300.0, fmax=200.0)
    with pytest.raises(ValueError):
        pitch_track(y, 16000, hop_s=0.0)
    with pytest.raises(ValueError):
        pitch_track(y, 800)  # fmax 500 Hz above Nyquist


def test_f0_summary() -> None:
    f0 = np.full(50, np.nan)
    assert f0_summary(f0) == (None, None)
    f0[:20] = 200.0
    med, spread = f0_summary(f0)
    assert med == pytest.approx(200.0) and spread == pytest.approx(0.0)
    # -1, 0, +1 semitones around 200 Hz, plus an octave error that must not move things
    f0[:21] = 200.0 * 2.0 ** ((np.arange(21) % 3 - 1.0) / 12.0)
    f0[21] = 400.0
    med, spread = f0_summary(f0)
    assert med == pytest.approx(200.0)
    assert spread == pytest.approx(1.4826, rel=0.01)
    assert f0_summary(np.array([150.0] * 3)) == (None, None)


def test_metrics_on_known_tracks() -> None:
    ref = np.array([np.nan, 100.0, 100.0, 100.0, np.nan])
    est = np.array([np.nan, 101.0, 130.0, np.nan, 90.0])
    c = score(ref, est)
    assert (c.frames, c.voicing_errors, c.voiced_both, c.gross_errors) == (5, 2, 2, 1)
    assert c.gpe == pytest.approx(50.0) and c.vde == pytest.approx(40.0)
    # a 10 ms track resampled onto the 15 ms grid
    times = np.arange(8) * 0.01
    f0 = np.array([np.nan, 100.0, 200.0, 200.0, 200.0, 200.0, np.nan, np.nan])
    grid = align_to_grid(times, f0, 5)
    assert np.isnan(grid[0]) and grid[1] == pytest.approx(100.0 * 2 ** 0.5)
    assert grid[2] == pytest.approx(200.0) and np.isnan(grid[4])


def test_accuracy_against_laryngograph_reference() -> None:
    if not PITCH_DATA.is_dir():
        pytest.skip(f"{PITCH_DATA} is absent: the shared pitch references are not beside the project")
    clips = sorted(p for p in PITCH_DATA.glob("*.wav") if p.with_suffix(".f0ref").exists())
    if not clips:
        pytest.skip(f"no *.wav with a .f0ref in {PITCH_DATA}")
    pooled = Counts()
    for clip in clips:
        y, sr = sf.read(clip, dtype="float64")
        ref = load_f0ref(clip.with_suffix(".f0ref"))
        times, f0 = pitch_track(y, sr)
        pooled = pooled + score(ref, align_to_grid(times, f0, ref.size))
    assert pooled.voiced_both > 150
    # Praat's default tracker scores 0.47 % / 3.94 % / 14 cents on the same clips
    assert pooled.gpe < 1.5, pooled.summary()
    assert pooled.vde < 5.0, pooled.summary()
    assert pooled.cents < 20.0, pooled.summary()
