"""Events: what the pipeline emits and the cue engine consumes.

Times are seconds of call audio (0 = the first sample of the call), never wall clock.
``to_dict()`` gives the JSON object of the event contract in DESIGN.md.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = [
    "AGENT",
    "CUSTOMER",
    "Activity",
    "CallEvent",
    "Cue",
    "Event",
    "Prosody",
    "Retraction",
    "Speaker",
    "Turn",
    "Word",
]

Speaker = Literal["agent", "customer"]
AGENT: Speaker = "agent"
CUSTOMER: Speaker = "customer"


def _round(x: float | None, nd: int = 3) -> float | None:
    return None if x is None else round(float(x), nd)


@dataclass(frozen=True, slots=True)
class Word:
    """A transcribed word. ``final`` words are committed and never change again;
    non-final words are the partial tail of the current utterance and may be revised."""

    speaker: Speaker
    text: str
    start: float
    end: float
    final: bool
    probability: float = 1.0

    type = "word"

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "word",
            "speaker": self.speaker,
            "text": self.text,
            "start": _round(self.start),
            "end": _round(self.end),
            "final": self.final,
            "probability": _round(self.probability),
        }


@dataclass(frozen=True, slots=True)
class Activity:
    """Voice activity of one speaker changed at time ``t`` (speech started or stopped)."""

    speaker: Speaker
    t: float
    speaking: bool

    type = "activity"

    def to_dict(self) -> dict[str, Any]:
        return {"type": "activity", "speaker": self.speaker, "t": _round(self.t),
                "speaking": self.speaking}


@dataclass(frozen=True, slots=True)
class Turn:
    """A finished stretch of one speaker's speech (VAD segment), start and end in call time."""

    speaker: Speaker
    start: float
    end: float

    type = "turn"

    @property
    def duration(self) -> float:
        return self.end - self.start

    def to_dict(self) -> dict[str, Any]:
        return {"type": "turn", "speaker": self.speaker, "start": _round(self.start),
                "end": _round(self.end)}


@dataclass(frozen=True, slots=True)
class Prosody:
    """Delivery readings for one speaker over the second ending at ``t``.

    ``f0_hz``: median pitch of voiced frames in that second (None if none voiced);
    ``f0_sd_st``: pitch spread in semitones over the voiced frames of that second;
    ``loudness_db``: speech level in dBFS (None if silent);
    ``wpm``: words per minute over the speaker's recent speech (None until enough words);
    ``voiced_s``: seconds of voiced frames in that second;
    ``speaking``: the VAD says the speaker is talking at ``t``;
    ``pace_wpm``: the speaking rate the pace cue judges (words per minute within the
    current stretch of talk; None outside a stretch long enough to judge), so a pace
    gauge shows the same figure as the cue.
    """

    speaker: Speaker
    t: float
    f0_hz: float | None
    loudness_db: float | None
    wpm: float | None
    f0_sd_st: float | None = None
    voiced_s: float = 0.0
    speaking: bool = False
    pace_wpm: float | None = None

    type = "prosody"

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "prosody",
            "speaker": self.speaker,
            "t": _round(self.t),
            "f0_hz": _round(self.f0_hz, 1),
            "loudness_db": _round(self.loudness_db, 1),
            "wpm": _round(self.wpm, 1),
            "f0_sd_st": _round(self.f0_sd_st, 2),
            "voiced_s": _round(self.voiced_s, 2),
            "speaking": self.speaking,
            "pace_wpm": _round(self.pace_wpm, 1),
        }


@dataclass(frozen=True, slots=True)
class Cue:
    """A coaching cue. ``evidence`` holds the triggering words (text, start, end) and/or
    measured figures, as plain JSON-able values."""

    id: str
    t: float
    speaker: Speaker
    severity: Literal["info", "nudge", "warn"]
    title: str
    advice: str
    evidence: dict[str, Any] = field(default_factory=dict)

    type = "cue"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["t"] = _round(self.t)
        return {"type": "cue", **d}


@dataclass(frozen=True, slots=True)
class Retraction:
    """A cue withdrawn because the words that followed it showed it was wrong (the agent
    went on "...but let me fix that right now"). ``id`` and ``t`` name the cue withdrawn
    (its id and its ``t``); ``at`` is the audio time the engine decided; ``reason`` is
    one line a person reads. Overlays remove the cue; stores keep both, so retractions
    can be counted."""

    id: str
    t: float
    at: float
    reason: str

    type = "retract"

    def to_dict(self) -> dict[str, Any]:
        return {"type": "retract", "id": self.id, "t": _round(self.t), "at": _round(self.at),
                "reason": self.reason}


@dataclass(frozen=True, slots=True)
class CallEvent:
    """Start or end of a call. ``info`` carries metadata (source, channels, duration...)."""

    state: Literal["start", "end"]
    t: float
    info: dict[str, Any] = field(default_factory=dict)

    type = "call"

    def to_dict(self) -> dict[str, Any]:
        return {"type": "call", "state": self.state, "t": _round(self.t), **self.info}


Event = Word | Activity | Turn | Prosody | Cue | Retraction | CallEvent


def _same(self, memo):  # events are immutable: a copied engine state may share them
    return self


for _cls in (Word, Activity, Turn, Prosody, Cue, Retraction, CallEvent):
    _cls.__deepcopy__ = _same  # type: ignore[attr-defined]
