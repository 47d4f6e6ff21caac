"""Value types and protocols at the boundary between the streaming policy and the models."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

__all__ = ["AsrResult", "AsrWord", "Transcriber", "VoiceDetector"]


@dataclass(frozen=True, slots=True)
class AsrWord:
    """A word from one recognition pass; times are seconds from the start of the pass's audio."""

    text: str
    start: float
    end: float
    probability: float = 1.0


@dataclass(frozen=True, slots=True)
class AsrResult:
    words: tuple[AsrWord, ...]
    no_speech_prob: float = 0.0
    avg_logprob: float = 0.0
    compression_ratio: float = 1.0

    @property
    def text(self) -> str:
        return "".join(w.text for w in self.words).strip()


class Transcriber(Protocol):
    """Recognises one buffer of 16 kHz mono audio.

    ``prompt``: earlier committed text, as context only. ``prefix``: words already committed
    in this very buffer; the model must continue from them (they are returned too).
    """

    def transcribe(self, audio: np.ndarray, *, prompt: str = "", prefix: str = "",
                   beam_size: int | None = None) -> AsrResult:
        ...


class VoiceDetector(Protocol):
    """Speech probability per frame of ``frame_samples`` at 16 kHz; stateful, one per channel."""

    frame_samples: int

    def probs(self, audio: np.ndarray) -> np.ndarray:
        """Probabilities for ``len(audio) // frame_samples`` consecutive frames."""
        ...
