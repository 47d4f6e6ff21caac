"""Render benchmark calls: text to speech with several synthetic voices (espeak-ng and
flite), stereo call layout (agent left, customer right) and the phone line (300–3400 Hz,
8 kHz, μ-law).

Used by ``bench/judge_bench.py --audio`` and the voice-cue audio test. Deterministic: the
same texts and voices give the same samples, so rendered calls can be cached by a hash.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

SAMPLE_RATE = 16000
PHONE_RATE = 8000
PHONE_BAND_HZ = (300.0, 3400.0)
PEAK = 0.25  # speech peaks near -12 dBFS, as audio_samples/make_calls.py renders them
_EDGE = 1e-3  # |x| below this at a turn's edges is trimmed
# espeak-ng's -s speaks ~1.19x faster than asked (measured in audio_samples/make_calls.py).
_ESPEAK_SPEED_FACTOR = 1.19


class RenderError(RuntimeError):
    """A synthesiser is missing or produced nothing (one line says which)."""


@dataclass(frozen=True, slots=True)
class Voice:
    """One synthetic voice. ``engine`` is ``espeak`` (``name`` an espeak-ng voice such as
    ``en-us+m3``; ``pitch`` is -p 0..99) or ``flite`` (``name`` one of kal, slt, rms, awb;
    ``pitch`` is the target mean F0 in Hz, 0 for the voice's own). ``gain_db`` scales the
    rendered speech relative to the common peak level."""

    engine: str
    name: str
    wpm: int = 150
    pitch: int = 0
    gain_db: float = 0.0

    @property
    def label(self) -> str:
        bits = [f"{self.engine} {self.name}", f"{self.wpm} wpm"]
        if self.pitch:
            bits.append(f"pitch {self.pitch}" + (" Hz" if self.engine == "flite" else ""))
        if self.gain_db:
            bits.append(f"{self.gain_db:+.0f} dB")
        return ", ".join(bits)


# Agent and customer voices for the corpus calls: two espeak-ng variants and two or more
# flite voices (when Debian's flite is installed), each call pairing two different ones.
AGENT_VOICES = (
    Voice("espeak", "en-us+m3", 150, 45),
    Voice("flite", "slt", 150),
    Voice("espeak", "en-gb+f3", 155, 60),
    Voice("flite", "rms", 145),
    Voice("flite", "awb", 150),
    Voice("espeak", "en-us+m7", 145, 35),
)
CUSTOMER_VOICES = (
    Voice("flite", "kal", 160),
    Voice("espeak", "en-gb+m3", 160, 40),
    Voice("flite", "awb", 160),
    Voice("espeak", "en-us+f4", 165, 65),
)


def available(voice: Voice) -> bool:
    return shutil.which("espeak-ng" if voice.engine == "espeak" else "flite") is not None


def _resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    if sr_in == sr_out:
        return x
    import soxr  # a dependency of the coach package

    return soxr.resample(x, sr_in, sr_out, quality="HQ")


def synthesise(text: str, voice: Voice) -> np.ndarray:
    """``text`` spoken by ``voice``: float32 mono at 16 kHz, edges trimmed, peak-levelled."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "turn.wav"
        if voice.engine == "espeak":
            exe = shutil.which("espeak-ng")
            if exe is None:
                raise RenderError("espeak-ng is not installed (apt-get install espeak-ng)")
            speed = max(80, int(round(voice.wpm / _ESPEAK_SPEED_FACTOR)))
            cmd = [exe, "-v", voice.name, "-s", str(speed), "-w", str(wav)]
            if voice.pitch:
                cmd += ["-p", str(voice.pitch)]
            subprocess.run(cmd, input=text.encode("utf-8"), check=True, capture_output=True)
        elif voice.engine == "flite":
            exe = shutil.which("flite")
            if exe is None:
                raise RenderError("flite is not installed (apt-get install flite)")
            src = Path(tmp) / "turn.txt"
            src.write_text(text, encoding="utf-8")
            # flite speaks ~190 wpm at stretch 1 (measured); a longer stretch is slower speech.
            cmd = [exe, "-voice", voice.name, "--setf", f"duration_stretch={190 / voice.wpm:.3f}"]
            if voice.pitch:
                cmd += ["--setf", f"int_f0_target_mean={voice.pitch}"]
            subprocess.run([*cmd, "-f", str(src), "-o", str(wav)], check=True,
                           capture_output=True)
        else:
            raise RenderError(f"unknown speech engine {voice.engine!r}")
        x, sr = sf.read(wav, dtype="float32", always_2d=False)
    if x.ndim > 1:
        x = x.mean(axis=1)
    x = _resample(x.astype(np.float64), sr, SAMPLE_RATE)
    loud = np.flatnonzero(np.abs(x) > _EDGE * max(1e-9, float(np.abs(x).max())))
    if loud.size == 0:
        raise RenderError(f"{voice.label} produced silence for {text!r}")
    x = x[loud[0]: loud[-1] + 1]
    x = x / float(np.abs(x).max()) * PEAK * 10 ** (voice.gain_db / 20)
    return np.clip(x, -1.0, 1.0).astype(np.float32)


def lay_out(turns: list[tuple[str, np.ndarray, float]], *, lead_in_s: float = 0.5,
            tail_s: float = 1.5) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Place ``(speaker, audio, gap_before_s)`` turns one after another: agent on the left
    channel, customer on the right. Returns float32 ``[n, 2]`` and each turn's (start, end)."""
    spans: list[tuple[float, float]] = []
    cursor = lead_in_s
    for _, audio, gap in turns:
        start = cursor + gap
        spans.append((start, start + len(audio) / SAMPLE_RATE))
        cursor = spans[-1][1]
    n = int(round((cursor + tail_s) * SAMPLE_RATE))
    out = np.zeros((n, 2), dtype=np.float32)
    for (speaker, audio, _), (start, _end) in zip(turns, spans, strict=True):
        i = int(round(start * SAMPLE_RATE))
        out[i: i + len(audio), 0 if speaker == "agent" else 1] += audio
    return out, spans


def phone_line(x: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """``x`` (mono or ``[n, ch]``) as a phone line carries it: band-limited to 300–3400 Hz
    and resampled to 8 kHz (write it as μ-law with :func:`write_phone`)."""
    from scipy.signal import butter, sosfilt

    sos = butter(6, PHONE_BAND_HZ, btype="bandpass", fs=sr, output="sos")
    y = sosfilt(sos, x.astype(np.float64), axis=0)
    y = _resample(y, sr, PHONE_RATE)
    return np.clip(y, -1.0, 1.0).astype(np.float32)


def write_phone(path: Path, x: np.ndarray, sr: int = SAMPLE_RATE) -> None:
    """Write ``x`` through :func:`phone_line` as an 8 kHz μ-law WAV."""
    sf.write(path, phone_line(x, sr), PHONE_RATE, subtype="ULAW", format="WAV")


def mulaw_roundtrip(path_in: Path, x: np.ndarray, sr: int) -> np.ndarray:
    """``x`` after the phone line and μ-law coding, decoded back to float at 8 kHz."""
    write_phone(path_in, x, sr)
    y, _ = sf.read(path_in, dtype="float32", always_2d=False)
    return y


def cache_key(payload: object) -> str:
    """A short stable hash of anything JSON-able (texts, voices, layout settings)."""
    def enc(o):
        return asdict(o) if isinstance(o, Voice) else str(o)

    blob = json.dumps(payload, sort_keys=True, default=enc).encode("utf-8")
    return hashlib.sha1(blob).hexdigest()[:12]
