"""What every live audio source shares, and the sound devices one can read.

Every source has the same shape (``Source``): ``start(on_block, on_status)`` hands 16 kHz
``Block``s to ``on_block`` from a worker thread, roughly every ``block_s`` seconds, with
``t`` counted in samples on the call's timeline (never read off the wall clock); a change
in its health is a ``SourceStatus``. The sources are ``DeviceSource`` (capture.py, the
headset and call line) and ``FileSource`` (filesource.py, a recording).

sounddevice is imported on first use (``_sounddevice``), so a missing package or PortAudio
library is one ``CoachError`` line; ``list_devices`` and ``format_devices`` are
``coach devices``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from typing import Any, Literal, Protocol

import numpy as np

from coach.audio import BLOCK_S  # how often on_block is called: the pipeline's own step
from coach.errors import CoachError, MissingDependency

__all__ = [
    "BLOCK_S",
    "Block",
    "DeviceInfo",
    "Source",
    "SourceStatus",
    "format_devices",
    "list_devices",
]


Role = Literal["agent", "customer", "both"]
State = Literal["ok", "lost", "restored"]


@dataclass(frozen=True, slots=True)
class Block:
    """16 kHz float32 mono audio of both speakers; ``t`` is the audio time of sample 0."""

    agent: np.ndarray
    customer: np.ndarray | None
    t: float


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """A change in a source's health, for the overlay and the log."""

    device: str
    role: Role
    state: State
    message: str
    t: float


class Source(Protocol):
    """What ``coach live`` reads audio from."""

    started_at: float | None  # Unix time of audio time 0, set when the first samples arrive
    customer_channel: bool

    def start(self, on_block: Callable[[Block], None],
              on_status: Callable[[SourceStatus], None]) -> None: ...

    def stop(self) -> None: ...

    def describe(self) -> str: ...


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    id: int
    name: str
    hostapi: str
    max_input_channels: int
    max_output_channels: int
    default_samplerate: float
    is_default_input: bool
    is_default_output: bool = False


# --- sounddevice loading ------------------------------------------------------------------

def _sounddevice() -> Any:
    """Import sounddevice, mapping its absence or PortAudio's to one-line CoachErrors."""
    try:
        return import_module("sounddevice")
    except ImportError as exc:
        raise MissingDependency(
            "live capture needs the sounddevice package: pip install sounddevice") from exc
    except OSError as exc:  # sounddevice raises OSError when libportaudio cannot be loaded
        raise CoachError(
            f"live capture needs the PortAudio library ({exc}); on Debian/Ubuntu: "
            "apt-get install libportaudio2") from exc


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


# --- listing devices ----------------------------------------------------------------------

def list_devices() -> list[DeviceInfo]:
    """Every PortAudio device, with the host API name and default flags."""
    sd = _sounddevice()
    try:
        devices = sd.query_devices()
        hostapis = sd.query_hostapis()
    except sd.PortAudioError as exc:
        raise CoachError(f"cannot list audio devices: {_one_line(exc)}") from exc
    default_in = _default_index(sd, "input")
    default_out = _default_index(sd, "output")
    return [DeviceInfo(id=int(d["index"]), name=str(d["name"]),
                       hostapi=str(hostapis[d["hostapi"]]["name"]),
                       max_input_channels=int(d["max_input_channels"]),
                       max_output_channels=int(d["max_output_channels"]),
                       default_samplerate=float(d["default_samplerate"]),
                       is_default_input=int(d["index"]) == default_in,
                       is_default_output=int(d["index"]) == default_out)
            for d in devices]


def _default_index(sd: Any, kind: str) -> int | None:
    try:
        return int(sd.query_devices(kind=kind)["index"])
    except (sd.PortAudioError, ValueError, KeyError, TypeError):
        return None


def format_devices(devices: list[DeviceInfo] | None = None) -> str:
    """The text of ``coach devices``: inputs first, defaults marked, with what to pass."""
    devices = list_devices() if devices is None else devices
    inputs = [d for d in devices if d.max_input_channels > 0]
    outputs = [d for d in devices if d.max_input_channels == 0 and d.max_output_channels > 0]
    lines = ["Input devices (* = default):"]
    if not inputs:
        lines.append("  (none: no microphone or loopback input is visible to PortAudio)")
    for d in inputs:
        mark = "*" if d.is_default_input else " "
        lines.append(f" {mark}{d.id:>3}  {d.name}  [{d.hostapi}, {d.max_input_channels} in, "
                     f"{d.default_samplerate:.0f} Hz]{_hint(d)}")
    if outputs:
        lines.append("Output-only devices (cannot be captured directly; use a monitor of them):")
        for d in outputs:
            mark = "*" if d.is_default_output else " "
            lines.append(f" {mark}{d.id:>3}  {d.name}  [{d.hostapi}, "
                         f"{d.max_output_channels} out]")
    lines.append("Use: --mic ID (headset microphone) and --line ID (the softphone's output, "
                 "through a loopback or 'Monitor of ...' input), or --device ID for one "
                 "stereo device (agent left unless --agent-channel right). Names work too.")
    if any(d.name in ("pulse", "default") and d.hostapi == "ALSA" for d in inputs):
        lines.append("PulseAudio/PipeWire: 'pulse' records the source named by PULSE_SOURCE "
                     "(see `pactl list short sources`); for --mic and --line from two sources, "
                     "define ALSA devices in ~/.asoundrc, e.g. "
                     "pcm.coach_line { type pulse device \"<sink>.monitor\" }.")
    return "\n".join(lines)


def _hint(d: DeviceInfo) -> str:
    name = d.name.lower()
    if "monitor" in name or "loopback" in name:
        return "  <- loopback of an output: use as --line"
    if d.max_input_channels >= 2 and "stereo mix" in name:
        return "  <- mix of the output: use as --line"
    return ""
