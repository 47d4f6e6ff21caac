"""Paths and helpers shared by the benchmarks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy  # noqa: F401  (loaded first, so the limit below reaches its BLAS)
from threadpoolctl import threadpool_limits

# One BLAS thread, as `coach` itself runs (coach/cli.py): numpy's BLAS sums differ with the
# thread count, enough to change a word now and then, so a benchmark would otherwise
# measure slightly different words than `coach analyze` gives
threadpool_limits(limits=1, user_api="blas")

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SAMPLES = ROOT / "audio_samples"
SPOKENWOZ = sorted((DATA / "calls" / "spokenwoz").glob("*.wav"))


def spokenwoz_reference(wav: Path) -> dict[str, str]:
    """Reference text per speaker: A is the caller (left), B the agent (right)."""
    words = json.loads(wav.with_suffix(".words.json").read_text())
    ref = {"agent": [], "customer": []}
    for w in sorted(words, key=lambda w: w["start"]):
        ref["agent" if w["speaker"] == "B" else "customer"].append(w["word"])
    return {k: " ".join(v) for k, v in ref.items()}


def sample_reference(manifest: Path) -> dict[str, str]:
    m = json.loads(manifest.read_text())
    ref = {"agent": [], "customer": []}
    for t in m["turns"]:
        if t.get("speaker") in ref:
            ref[t["speaker"]].append(t["text"])
    return {k: " ".join(v) for k, v in ref.items()}


def table(headers: list[str], rows: list[list[object]]) -> str:
    def cell(x: object) -> str:
        if isinstance(x, float):
            return f"{x:.3g}" if abs(x) < 100 else f"{x:.0f}"
        return str(x)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(x) for x in r) + " |" for r in rows]
    return "\n".join(lines)
