"""Score F0 trackers against the laryngograph references in ``data/pitch/``.

    python bench/pitch_bench.py [--data DIR] [--band wide|phone|both] [--json OUT]

Runs coach.pitch_track, Praat (parselmouth, default ``to_pitch``), librosa.pyin and
librosa.yin on every ``*.wav`` with a ``.f0ref`` beside it, in the same run, and
prints a Markdown table of gross pitch error, voicing decision error, median
absolute error in cents and real-time factor (best of 3 timings), pooled over the
clips, with each method's ratio to Praat.

The phone band (``--band phone``, in ``both`` by default) scores coach.pitch_track and
Praat on the same clips as a phone line carries them — band-limited to 300–3400 Hz,
resampled to 8 kHz and coded as μ-law (``bench.render.write_phone``) — the audio the
customer's side of a call always is.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from bench.pitch_metrics import Counts, align_to_grid, load_f0ref, score  # noqa: E402
from coach.pitch import pitch_track  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "pitch"
FMIN, FMAX = 60.0, 500.0  # the same search range for every method that takes one
HOP_S = 0.01

Tracker = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]


def run_coach(y: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    return pitch_track(y, sr, fmin=FMIN, fmax=FMAX, hop_s=HOP_S)


def run_praat(y: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    import parselmouth

    pitch = parselmouth.Sound(y, sampling_frequency=sr).to_pitch()  # Praat's defaults
    f0 = pitch.selected_array["frequency"].astype(np.float64)
    return np.asarray(pitch.xs()), np.where(f0 > 0, f0, np.nan)


def _librosa_frame(sr: int) -> int:
    # 40 ms, Praat's window for its 75 Hz floor; librosa's default 2048 samples is
    # tuned for music (~93 ms at 22 kHz) and smears voicing edges in speech.
    return int(round(0.04 * sr))


def _librosa_times(n: int, sr: int, hop: int) -> np.ndarray:
    return np.arange(n) * hop / sr  # center=True: frame k is centred at k * hop


def run_pyin(y: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    import librosa

    hop = int(round(HOP_S * sr))
    f0, _, _ = librosa.pyin(y, fmin=FMIN, fmax=FMAX, sr=sr, frame_length=_librosa_frame(sr),
                            hop_length=hop)
    return _librosa_times(f0.size, sr, hop), f0


def run_yin(y: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    import librosa

    hop = int(round(HOP_S * sr))
    # librosa.yin makes no voicing decision: every frame gets an F0, so its VDE is
    # the share of unvoiced reference frames. That is the method as shipped.
    f0 = librosa.yin(y, fmin=FMIN, fmax=FMAX, sr=sr, frame_length=_librosa_frame(sr),
                     hop_length=hop)
    return _librosa_times(f0.size, sr, hop), f0


METHODS: dict[str, Tracker] = {
    "coach.pitch_track": run_coach,
    "praat (to_pitch)": run_praat,
    "librosa.pyin": run_pyin,
    "librosa.yin": run_yin,
}


def best_of(fn: Tracker, y: np.ndarray, sr: int, repeats: int = 3):
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn(y, sr)
        best = min(best, time.perf_counter() - t0)
    return out, best


PHONE_METHODS = ("coach.pitch_track", "praat (to_pitch)")


def phone_audio(y: np.ndarray, sr: int) -> tuple[np.ndarray, int]:
    """``y`` through the phone line: 300–3400 Hz, 8 kHz, μ-law coded and decoded."""
    import tempfile

    from bench.render import PHONE_RATE, write_phone

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "phone.wav"
        write_phone(path, y, sr)
        x, got = sf.read(path, dtype="float64")
    assert got == PHONE_RATE
    return x, got


def evaluate(data: Path, band: str = "wide") -> dict:
    clips = sorted(p for p in data.glob("*.wav") if p.with_suffix(".f0ref").exists())
    if not clips:
        raise SystemExit(f"no *.wav with a .f0ref beside it in {data}")
    audio = {p.stem: sf.read(p, dtype="float64") for p in clips}
    methods = METHODS
    if band == "phone":
        audio = {stem: phone_audio(y, sr) for stem, (y, sr) in audio.items()}
        methods = {name: METHODS[name] for name in PHONE_METHODS}
    refs = {p.stem: load_f0ref(p.with_suffix(".f0ref")) for p in clips}
    for fn in methods.values():  # warm-up: imports, JIT, caches are not the method's speed
        fn(*audio[clips[0].stem])
    results: dict = {}
    for name, fn in methods.items():
        pooled, secs, dur, per_clip = Counts(), 0.0, 0.0, {}
        for stem, (y, sr) in audio.items():
            (times, f0), took = best_of(fn, y, sr)
            c = score(refs[stem], align_to_grid(times, f0, refs[stem].size))
            pooled = pooled + c
            secs += took
            dur += y.size / sr
            per_clip[stem] = {**c.summary(), "rtf": took / (y.size / sr)}
        results[name] = {**pooled.summary(), "rtf": secs / dur, "clips": per_clip}
    return results


def _ratio(a: float, b: float) -> str:
    if not np.isfinite(a) or not np.isfinite(b):
        return "n/a"
    if b == 0:
        return "0/0" if a == 0 else "inf"
    return f"{a / b:.2f}"


def markdown(results: dict) -> str:
    praat = results["praat (to_pitch)"]
    lines = [
        "| method | GPE % | VDE % | median abs error (cents) | RTF | GPE / Praat | VDE / Praat "
        "| cents / Praat | RTF / Praat |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['gpe_pct']:.2f} | {r['vde_pct']:.2f} | {r['median_abs_cents']:.1f} "
            f"| {r['rtf']:.4f} | {_ratio(r['gpe_pct'], praat['gpe_pct'])} "
            f"| {_ratio(r['vde_pct'], praat['vde_pct'])} "
            f"| {_ratio(r['median_abs_cents'], praat['median_abs_cents'])} "
            f"| {_ratio(r['rtf'], praat['rtf'])} |"
        )
    any_r = next(iter(results.values()))
    lines.append("")
    lines.append(
        f"Pooled over {len(any_r['clips'])} clips, {any_r['frames']} reference frames (15 ms). "
        "GPE: share of frames voiced in both with > 20 % error; VDE: share of all frames "
        "whose voicing differs; RTF: compute time / audio duration, best of 3."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of *.wav + *.f0ref")
    ap.add_argument("--band", choices=("wide", "phone", "both"), default="both",
                    help="the clips as recorded, through the phone line, or both")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)
    bands = ("wide", "phone") if args.band == "both" else (args.band,)
    out = {}
    for band in bands:
        out[band] = evaluate(args.data, band)
        title = ("Wideband (the clips as recorded)" if band == "wide" else
                 "Phone line (300-3400 Hz, 8 kHz, mu-law)")
        print(f"{title}\n")
        print(markdown(out[band]))
        print()
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
