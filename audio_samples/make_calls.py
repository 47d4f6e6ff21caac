#!/usr/bin/env python3
"""Render call scripts (YAML) into stereo FLAC calls with espeak-ng.

Agent speech goes on the LEFT channel, customer speech on the RIGHT channel; each speaker is
silent on the other channel. Output is 16 kHz, 16-bit FLAC plus a JSON manifest holding the
script's ``expect``/``forbid`` cue ids and the measured start/end time of every turn.

Usage::

    python audio_samples/make_calls.py [SCRIPTS_DIR_OR_FILE ...] [--out DIR]

Defaults: scripts from ``audio_samples/scripts``, output to ``audio_samples``.
The same script always gives the same bytes (espeak-ng and the resampler are deterministic and
nothing random or time-dependent is written).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import yaml

HERE = Path(__file__).resolve().parent
SAMPLE_RATE = 16000
GAP_S = 0.4  # default silence between turns
LEAD_IN_S = 0.5  # silence before the first turn
TAIL_S = 0.8  # silence after the last turn
SILENCE_THRESHOLD = 1e-3  # |x| below this at the edges of a synthesised turn is trimmed
GAIN = 0.25  # espeak-ng peaks near full scale; this puts speech peaks around -12 dBFS
# espeak-ng's -s is nominal: measured on our scripts (text words over trimmed speech time,
# sentence pauses included) it speaks ~1.19x faster than asked. Script rates are real wpm.
ESPEAK_SPEED_FACTOR = 1.19

SPEAKERS = {
    # speaker: (channel index, espeak-ng voice, default real words per minute)
    "agent": (0, "en-us+m3", 140),
    "customer": (1, "en-gb+f3", 155),
}

TURN_KEYS = {"speaker", "text", "rate", "overlap", "pause"}


class ScriptError(ValueError):
    """A call script does not have the expected shape."""


def load_script(path: Path) -> dict:
    """Parse and validate one call script; returns the YAML mapping."""
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    if not isinstance(data, dict):
        raise ScriptError(f"{path}: top level must be a mapping")
    for key in ("title", "description", "turns"):
        if key not in data:
            raise ScriptError(f"{path}: missing '{key}'")
    for key in ("expect", "forbid"):
        value = data.get(key, [])
        if value is None:
            value = []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ScriptError(f"{path}: '{key}' must be a list of cue ids")
        data[key] = value
    overlap = set(data["expect"]) & set(data["forbid"])
    if overlap:
        raise ScriptError(f"{path}: cue(s) both expected and forbidden: {sorted(overlap)}")
    turns = data["turns"]
    if not isinstance(turns, list) or not turns:
        raise ScriptError(f"{path}: 'turns' must be a non-empty list")
    for i, turn in enumerate(turns):
        where = f"{path}: turn {i + 1}"
        if not isinstance(turn, dict):
            raise ScriptError(f"{where}: must be a mapping")
        unknown = set(turn) - TURN_KEYS
        if unknown:
            raise ScriptError(f"{where}: unknown key(s) {sorted(unknown)}")
        if "pause" in turn:
            if set(turn) != {"pause"}:
                raise ScriptError(f"{where}: a pause turn holds only 'pause'")
            if not isinstance(turn["pause"], (int, float)) or turn["pause"] < 0:
                raise ScriptError(f"{where}: 'pause' must be seconds >= 0")
            continue
        if turn.get("speaker") not in SPEAKERS:
            raise ScriptError(f"{where}: speaker must be one of {sorted(SPEAKERS)}")
        if not isinstance(turn.get("text"), str) or not turn["text"].strip():
            raise ScriptError(f"{where}: 'text' must be a non-empty string")
        if "rate" in turn and not (isinstance(turn["rate"], int) and 90 <= turn["rate"] <= 400):
            raise ScriptError(f"{where}: 'rate' must be words per minute in 90..400")
        if "overlap" in turn and not (
            isinstance(turn["overlap"], (int, float)) and turn["overlap"] > 0
        ):
            raise ScriptError(f"{where}: 'overlap' must be seconds > 0")
    return data


def _resample(x: np.ndarray, sr_in: int) -> np.ndarray:
    if sr_in == SAMPLE_RATE:
        return x
    import soxr  # a dependency of the coach package

    return soxr.resample(x, sr_in, SAMPLE_RATE, quality="HQ")


def espeak_speed(wpm: int) -> int:
    """The espeak-ng -s value that gives ``wpm`` real words per minute."""
    return max(80, int(round(wpm / ESPEAK_SPEED_FACTOR)))


def synthesise(text: str, voice: str, rate: int) -> np.ndarray:
    """Speak ``text`` at ``rate`` real wpm; returns float32 mono at 16 kHz, edges trimmed."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "turn.wav"
        # text goes in on stdin so that a leading '-' is never read as an option
        subprocess.run(
            [exe, "-v", voice, "-s", str(espeak_speed(rate)), "-w", str(wav)],
            input=text.encode("utf-8"),
            check=True,
            capture_output=True,
        )
        x, sr = sf.read(wav, dtype="float32", always_2d=False)
    if x.ndim > 1:
        x = x.mean(axis=1)
    x = (_resample(x.astype(np.float64), sr) * GAIN).astype(np.float32)
    loud = np.flatnonzero(np.abs(x) > SILENCE_THRESHOLD)
    if loud.size == 0:
        raise RuntimeError(f"espeak-ng produced silence for {text!r}")
    return x[loud[0] : loud[-1] + 1]


def render(script: dict) -> tuple[np.ndarray, list[dict]]:
    """Lay the turns out on a stereo timeline. Returns (int16 [n, 2], turn records)."""
    pieces: list[tuple[int, int, np.ndarray]] = []  # (start sample, channel, audio)
    records: list[dict] = []
    cursor = int(round(LEAD_IN_S * SAMPLE_RATE))  # end of the previous turn (or of a pause)
    pending_gap = 0  # silence still owed before the next turn
    first = True
    for turn in script["turns"]:
        if "pause" in turn:
            pending_gap = int(round(float(turn["pause"]) * SAMPLE_RATE))
            continue
        channel, voice, default_rate = SPEAKERS[turn["speaker"]]
        rate = int(turn.get("rate", default_rate))
        audio = synthesise(turn["text"], voice, rate)
        if "overlap" in turn and records:
            start = max(0, cursor - int(round(float(turn["overlap"]) * SAMPLE_RATE)))
        elif first:
            start = cursor + pending_gap
        else:
            start = cursor + (pending_gap if pending_gap else int(round(GAP_S * SAMPLE_RATE)))
        pending_gap = 0
        first = False
        end = start + len(audio)
        pieces.append((start, channel, audio))
        records.append(
            {
                "speaker": turn["speaker"],
                "channel": "left" if channel == 0 else "right",
                "start": round(start / SAMPLE_RATE, 3),
                "end": round(end / SAMPLE_RATE, 3),
                "text": turn["text"],
                "rate_wpm": rate,
                "measured_wpm": round(
                    len(turn["text"].split()) * 60.0 / (len(audio) / SAMPLE_RATE), 1
                ),
                "voice": voice,
            }
        )
        cursor = max(cursor, end)
    total = cursor + pending_gap + int(round(TAIL_S * SAMPLE_RATE))
    mix = np.zeros((total, 2), dtype=np.float32)
    for start, channel, audio in pieces:
        mix[start : start + len(audio), channel] += audio
    pcm = np.round(np.clip(mix, -1.0, 1.0) * 32767.0).astype(np.int16)
    return pcm, records


def render_file(path: Path, out_dir: Path) -> Path:
    """Render one script to ``out_dir/<stem>.flac`` and ``<stem>.json``; returns the FLAC."""
    script = load_script(path)
    pcm, records = render(script)
    out_dir.mkdir(parents=True, exist_ok=True)
    flac = out_dir / f"{path.stem}.flac"
    sf.write(flac, pcm, SAMPLE_RATE, format="FLAC", subtype="PCM_16", compression_level=1.0)
    manifest = {
        "name": path.stem,
        "title": script["title"],
        "description": script["description"],
        "expect": script["expect"],
        "forbid": script["forbid"],
        "audio": flac.name,
        "sample_rate": SAMPLE_RATE,
        "channels": {"left": "agent", "right": "customer"},
        "duration": round(len(pcm) / SAMPLE_RATE, 3),
        "turns": records,
    }
    with open(out_dir / f"{path.stem}.json", "w", encoding="utf-8") as fh:
        json.dump(manifest, fh, indent=2, ensure_ascii=False)
        fh.write("\n")
    return flac


def find_scripts(sources: list[Path]) -> list[Path]:
    found: list[Path] = []
    for src in sources:
        if src.is_dir():
            found.extend(sorted(p for p in src.iterdir() if p.suffix in (".yaml", ".yml")))
        elif src.is_file():
            found.append(src)
        else:
            raise FileNotFoundError(src)
    return found


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sources", nargs="*", type=Path, help="script files or directories")
    ap.add_argument("--out", type=Path, default=HERE, help="output directory")
    args = ap.parse_args(argv)
    sources = args.sources or [HERE / "scripts"]
    try:
        scripts = find_scripts(sources)
    except FileNotFoundError as exc:
        print(f"make_calls: no such file or directory: {exc}", file=sys.stderr)
        return 2
    if not scripts:
        print("make_calls: no .yaml scripts found", file=sys.stderr)
        return 2
    for path in scripts:
        try:
            flac = render_file(path, args.out)
        except (ScriptError, RuntimeError, yaml.YAMLError) as exc:
            print(f"make_calls: {exc}", file=sys.stderr)
            return 1
        info = sf.info(flac)
        print(f"{flac}  {info.duration:5.1f} s  {flac.stat().st_size / 1024:6.1f} kB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
