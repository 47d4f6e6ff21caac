"""Pure audio helpers: channel roles, streaming resampling to 16 kHz, level measures."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import soxr

__all__ = ["BLOCK_S", "SAMPLE_RATE", "ChannelMap", "Resampler", "choose_channels", "db_fs"]

SAMPLE_RATE = 16_000  # the pipeline's one internal rate (Whisper and Silero VAD both want it)
# Live capture hands the pipeline blocks of this length, and the pipeline works in steps of
# this length whatever block size it is fed, so an analysis of a file gives exactly what
# live coaching gave.
BLOCK_S = 0.1


@dataclass(frozen=True, slots=True)
class ChannelMap:
    """Which input channel carries the agent and which (if any) the customer."""

    agent: int
    customer: int | None
    n_channels: int

    def describe(self) -> str:
        if self.customer is None:
            return f"agent = channel {self.agent + 1} of {self.n_channels}"
        return (f"agent = channel {self.agent + 1}, customer = channel {self.customer + 1}"
                f" of {self.n_channels}")


def choose_channels(n_channels: int, agent_channel: str = "left") -> ChannelMap:
    """Map an input layout to speaker roles.

    Mono is the agent alone. Stereo: the agent is ``left`` (our convention) or ``right``;
    the other side is the customer. More channels: the first two are taken as left/right
    (front pair in WAV/FLAC channel order) and the rest ignored; ``agent_channel`` may also
    be a 1-based channel number, in which case the customer is the other of the first two
    or channel 1.
    """
    if n_channels < 1:
        raise ValueError("audio has no channels")
    if n_channels == 1:
        return ChannelMap(0, None, 1)
    choice = str(agent_channel).strip().lower()
    if choice == "left":
        agent = 0
    elif choice == "right":
        agent = 1
    elif choice.isdigit() and 1 <= int(choice) <= n_channels:
        agent = int(choice) - 1
    else:
        raise ValueError(
            f"--agent-channel must be left, right or a channel number 1-{n_channels}, "
            f"not {agent_channel!r}")
    customer = 1 if agent == 0 else 0
    return ChannelMap(agent, customer, n_channels)


class Resampler:
    """Streaming resampler of one channel to 16 kHz (soxr keeps filter state between calls)."""

    def __init__(self, in_rate: int, out_rate: int = SAMPLE_RATE):
        self.in_rate = int(in_rate)
        self.out_rate = int(out_rate)
        self._stream = (None if self.in_rate == self.out_rate else
                        soxr.ResampleStream(self.in_rate, self.out_rate, 1, dtype="float32",
                                            quality="HQ"))

    def feed(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        if self._stream is None:
            return x
        return self._stream.resample_chunk(x)

    def flush(self) -> np.ndarray:
        if self._stream is None:
            return np.zeros(0, np.float32)
        return self._stream.resample_chunk(np.zeros(0, np.float32), last=True)


def db_fs(x: np.ndarray) -> float | None:
    """RMS level in dB relative to full scale, or None for an empty block."""
    if x.size == 0:
        return None
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    return 20.0 * np.log10(max(rms, 1e-10))
