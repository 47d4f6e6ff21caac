"""Fakes for the two model boundaries, so the streaming policy is tested without models."""

from __future__ import annotations

import numpy as np

from coach.asr_types import AsrResult, AsrWord

SR = 16_000


class EnergyVad:
    """Speech probability 1 where a frame is louder than -40 dBFS, else 0."""

    frame_samples = 512

    def probs(self, audio: np.ndarray) -> np.ndarray:
        n = len(audio) // 512
        f = np.asarray(audio[: n * 512], dtype=np.float64).reshape(n, 512)
        db = 10 * np.log10(np.mean(f**2, axis=1) + 1e-12)
        return (db > -40).astype(np.float32)


class ScriptedTranscriber:
    """Says one word per 0.3 s of loud audio in the buffer, named by its absolute index.

    The buffer's absolute position is unknown to a transcriber, so the fake is told the
    whole signal and locates the buffer in it. The last word of a non-final-looking pass
    flickers (changes spelling with the buffer length) like a real partial hypothesis.
    """

    def __init__(self, signal: np.ndarray, *, flicker: bool = True, hallucinate: bool = False,
                 replay_prompt: int = 0):
        self.signal = np.asarray(signal, dtype=np.float32)
        self.calls: list[tuple[int, str, str]] = []
        self.beams: list[int | None] = []
        self.flicker = flicker
        self.hallucinate = hallucinate
        # like the real decoder after a buffer trim or at a new utterance: with a prompt and
        # no prefix, it first reads the prompt's last words again, squeezed at the start
        self.replay_prompt = replay_prompt

    def _locate(self, audio: np.ndarray) -> int:
        loud = np.flatnonzero(np.abs(audio) > 0.01)
        j = int(loud[0]) if loud.size else 0
        probe = audio[j:j + 256]
        hits = np.flatnonzero(self.signal == probe[0])
        for start in hits:
            if np.array_equal(self.signal[start:start + probe.size], probe):
                return int(start) - j
        raise AssertionError("buffer not found in the signal")

    def transcribe(self, audio, *, prompt="", prefix="", beam_size=None):
        audio = np.asarray(audio, dtype=np.float32)
        self.calls.append((len(audio), prompt, prefix))
        self.beams.append(beam_size)
        if self.hallucinate:
            return AsrResult((AsrWord(" Thank", 0.0, 0.2), AsrWord(" you.", 0.2, 0.4)),
                             no_speech_prob=0.9, avg_logprob=-1.5)
        off = self._locate(audio)
        loud = np.abs(audio) > 0.01
        words = []
        step = int(0.3 * SR)
        for i in range(0, len(audio) - step + 1, step):
            if loud[i:i + step].mean() > 0.8:
                k = (off + i) // step
                words.append(AsrWord(f" w{k}", i / SR, (i + step) / SR))
        if self.flicker and words and len(audio) % 3 == 0:
            last = words[-1]  # a partial that changes is one the model is unsure of
            words[-1] = AsrWord(last.text + "x", last.start, last.end, 0.3)
        if self.replay_prompt and prompt and not prefix:
            again = prompt.split()[-self.replay_prompt:]
            words = [AsrWord(" " + t, 0.01 * k, 0.01 * (k + 1)) for k, t in enumerate(again)] \
                + words
        return AsrResult(tuple(words))


def speechy(segments: list[tuple[float, float]], total_s: float) -> np.ndarray:
    """A signal with loud tones during the given (start, end) seconds, silence elsewhere."""
    y = np.zeros(int(total_s * SR), np.float32)
    t = np.arange(y.size) / SR
    # noise, not a tone: every stretch of it is unique, so the fake can locate buffers
    noise = np.random.default_rng(7).uniform(0.2, 0.4, y.size).astype(np.float32)
    sign = np.where(np.random.default_rng(8).random(y.size) < 0.5, -1.0, 1.0)
    for a, b in segments:
        m = (t >= a) & (t < b)
        y[m] = (noise * sign)[m]
    return y
