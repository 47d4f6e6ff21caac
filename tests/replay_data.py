"""Calls for the replay tests: a demo call's real audio with events built from its manifest
(fast: no model), or with the events the real pipeline produces (slow: Whisper)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

SAMPLES = Path(__file__).resolve().parents[1] / "audio_samples"
DEMO = "02_every_apology_wrong"


def manifest_events(name: str = DEMO) -> list[dict[str, Any]]:
    """The event stream of a demo call from its manifest: each turn's words spread evenly
    over the turn, prosody once a second per speaker, and a few cues whose evidence words
    are transcript words (one cue about the customer's words, one with figures only, one
    the agent dismissed)."""
    manifest = json.loads((SAMPLES / f"{name}.json").read_text())
    events: list[dict[str, Any]] = [{"type": "call", "state": "start", "t": 0.0}]
    words: list[dict[str, Any]] = []
    for turn in manifest["turns"]:
        texts = turn["text"].split()
        step = (turn["end"] - turn["start"]) / len(texts)
        for i, text in enumerate(texts):
            start = round(turn["start"] + i * step, 3)
            words.append({"type": "word", "speaker": turn["speaker"], "text": text,
                          "start": start, "end": round(start + step * 0.85, 3),
                          "final": True, "probability": 0.9})
    words.sort(key=lambda w: w["start"])
    events += words
    duration = float(manifest["duration"])
    for t in range(1, int(duration) + 1):
        for speaker, f0, wpm in (("agent", 118.0 + (t % 7), 140.0), ("customer", 190.0, 155.0)):
            events.append({"type": "prosody", "speaker": speaker, "t": float(t),
                           "f0_hz": f0, "loudness_db": -22.0, "wpm": wpm})

    def find(speaker: str, first: str, n: int) -> list[dict[str, Any]]:
        for i, w in enumerate(words):
            if w["speaker"] == speaker and w["text"].lower().startswith(first):
                return [{"text": x["text"], "start": x["start"], "end": x["end"]}
                        for x in words[i:i + n]]
        raise AssertionError(f"no {first!r} in {name}")

    but = find("agent", "sorry", 2)
    ridiculous = find("customer", "ridiculous", 3)
    cues = [
        {"type": "cue", "id": "qualified-apology", "t": but[-1]["end"], "speaker": "agent",
         "severity": "warn", "title": "Avoid the \"but\"",
         "advice": "Let the apology stand alone.", "evidence": {"words": but}},
        {"type": "cue", "id": "name-frustration", "t": 25.4, "speaker": "agent",
         "severity": "nudge", "title": "Name their frustration",
         "advice": "Say the feeling out loud.", "evidence": {"words": ridiculous}},
        {"type": "cue", "id": "pace-fast", "t": 51.0, "speaker": "agent", "severity": "nudge",
         "title": "Slow down", "advice": "Ease off.",
         "evidence": {"wpm": 190.0, "threshold_wpm": 175.0}},
    ]
    events += cues
    events.append({"type": "dismiss", "cue_id": "pace-fast", "t": 51.0,
                   "received_at": 1_763_700_000.0})
    events.append({"type": "call", "state": "end", "t": duration, "duration": duration})
    return events


def noise_flac(path: Path, seconds: float, *, seed: int = 7) -> Path:
    """A stereo 16 kHz FLAC of white noise: it hardly compresses, so a few minutes make a
    file of several MB (for streaming and range tests across the store's 1 MiB chunks)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-0.5, 0.5, size=(int(seconds * 16000), 2)).astype(np.float32)
    sf.write(path, x, 16000, format="FLAC", subtype="PCM_16")
    return path


def pipeline_events(path: Path, transcriber, vad) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """The events the real pipeline (Whisper, Silero VAD, default playbook) gives for
    ``path``, as ``coach analyze --format jsonl`` writes them."""
    from coach.analyze import analyze_file
    from coach.playbook import load_playbook

    events: list[dict[str, Any]] = []
    analyze_file(path, transcriber=transcriber, make_vad=vad.shared, playbook=load_playbook(),
                 on_event=lambda e: events.append(e.to_dict()))
    return events
