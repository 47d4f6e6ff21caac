"""Audio-only speaking rate (bench/syllables.py, librosa onset strength) against the
word-based rate, on the same stretches of talk.

References: the SpokenWOZ calls' human word times (real phone speech, 8 kHz) and the demo
calls' manifests (each turn's words spread over its rendered audio). A stretch is one
speaker's words with no pause over 2 s, at least 6 s long (the pace cue's rule); its
word-based rate is words / duration. The audio estimate counts syllable nuclei on that
speaker's channel over the same span. Reported: Pearson r, the median and 90th percentile
of |audio - words| / words, and how often both sides agree on "over 175 wpm".

    .venv/bin/python bench/syllable_bench.py [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.syllables import rate_wpm, syllable_times  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "calls" / "spokenwoz"
SAMPLES = ROOT / "audio_samples"
GAP_S, MIN_S, FAST = 2.0, 6.0, 175.0


def stretches(words: list[tuple[float, float]]) -> list[tuple[float, float, int]]:
    """(start, end, n_words) of runs with no pause over GAP_S, at least MIN_S long."""
    out, cur = [], []
    for w in sorted(words):
        if cur and w[0] - cur[-1][1] > GAP_S:
            out.append(cur)
            cur = []
        cur.append(w)
    if cur:
        out.append(cur)
    return [(c[0][0], c[-1][1], len(c)) for c in out if c[-1][1] - c[0][0] >= MIN_S]


def spokenwoz() -> list[tuple[str, np.ndarray, int, dict[str, list]]]:
    calls = []
    for wav in sorted(DATA.glob("*.wav")):
        y, sr = sf.read(wav, dtype="float32", always_2d=True)
        words = json.loads(wav.with_suffix(".words.json").read_text())
        by = {"customer": [], "agent": []}
        for w in words:
            by["agent" if w["speaker"] == "B" else "customer"].append((w["start"], w["end"]))
        calls.append((f"SpokenWOZ {wav.stem}", y, sr, {"customer": (0, by["customer"]),
                                                     "agent": (1, by["agent"])}))
    return calls


def demos() -> list[tuple[str, np.ndarray, int, dict[str, list]]]:
    calls = []
    for man in sorted(SAMPLES.glob("0*.json")):
        m = json.loads(man.read_text())
        y, sr = sf.read(SAMPLES / m["audio"], dtype="float32", always_2d=True)
        by: dict[str, tuple[int, list]] = {}
        for t in m["turns"]:
            ch = 0 if t["channel"] == "left" else 1
            texts = t["text"].split()
            step = (t["end"] - t["start"]) / len(texts)
            ws = by.setdefault(t["speaker"], (ch, []))[1]
            ws += [(t["start"] + i * step, t["start"] + (i + 0.85) * step)
                   for i in range(len(texts))]
        calls.append((f"demo {man.stem[:2]}", y, sr, by))
    return calls


def measure(calls) -> tuple[list[dict], float, float]:
    rows, audio_s, cpu_s = [], 0.0, 0.0
    for name, y, sr, by in calls:
        for speaker, (ch, words) in by.items():
            t0 = time.process_time()
            nuclei = syllable_times(y[:, ch], sr)
            cpu_s += time.process_time() - t0
            audio_s += y.shape[0] / sr
            for a, b, n in stretches(words):
                rows.append({"call": name, "speaker": speaker, "start": round(a, 2),
                             "end": round(b, 2), "words_wpm": n / (b - a) * 60,
                             "audio_wpm": rate_wpm(nuclei, a, b)})
    return rows, audio_s, cpu_s


def summary(rows: list[dict]) -> dict:
    w = np.array([r["words_wpm"] for r in rows])
    a = np.array([r["audio_wpm"] for r in rows])
    rel = np.abs(a - w) / w
    return {"stretches": len(rows), "pearson_r": round(float(np.corrcoef(w, a)[0, 1]), 3),
            "median_rel_err": round(float(np.median(rel)), 3),
            "p90_rel_err": round(float(np.percentile(rel, 90)), 3),
            "fast_agree": round(float(np.mean((w > FAST) == (a > FAST))), 3),
            "words_fast": int(np.sum(w > FAST)), "audio_fast": int(np.sum(a > FAST)),
            "words_wpm_median": round(float(np.median(w)), 1),
            "audio_wpm_median": round(float(np.median(a)), 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    out = {}
    for label, calls in (("spokenwoz", spokenwoz() if DATA.is_dir() else []),
                         ("demo", demos())):
        if not calls:
            print(f"{label}: no calls (../shared/data absent)")
            continue
        rows, audio_s, cpu_s = measure(calls)
        s = summary(rows)
        s["rtf"] = round(cpu_s / audio_s, 4)
        out[label] = {"summary": s, "rows": rows}
        print(f"{label}: {s}")
        for r in rows:
            print(f"  {r['call']:<18} {r['speaker']:<8} {r['start']:7.1f}-{r['end']:7.1f}"
                  f"  words {r['words_wpm']:5.0f}  audio {r['audio_wpm']:5.0f}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
