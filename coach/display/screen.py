"""The display policy's value types: options, decisions and the screen it asks for,
and the words the overlays show when there is no cue."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "CALL_ENDED_TEXT",
    "CONNECTING_TEXT",
    "DISCONNECTED_TEXT",
    "FLAGGED_TEXT",
    "IDLE_TEXT",
    "NO_CALL_TEXT",
    "PROTOCOL",
    "REFUSED_TEXT",
    "Connection",
    "Decision",
    "DisplayOptions",
    "Pace",
    "Screen",
    "ShownCue",
    "severity_rank",
]

PROTOCOL = 1

IDLE_TEXT = "Listening…"
CONNECTING_TEXT = "Connecting…"
DISCONNECTED_TEXT = "Disconnected — reconnecting…"
REFUSED_TEXT = "Connection refused — retrying…"
NO_CALL_TEXT = "Waiting for a call…"
CALL_ENDED_TEXT = "Call ended"
FLAGGED_TEXT = "Flagged as wrong — thanks"

RANK = {"info": 1, "nudge": 2, "warn": 3}

Connection = Literal["connecting", "connected", "disconnected", "refused"]


def severity_rank(severity: str) -> int:
    """warn 3, nudge 2, info 1 (anything else counts as info)."""
    return RANK.get(severity, 1)


@dataclass(frozen=True, slots=True)
class DisplayOptions:
    """Display times in seconds."""

    display_s: float = 6.0  # a cue stays at full strength this long...
    fade_s: float = 1.0  # ...then fades out over this
    min_show_s: float = 2.0  # a cue as severe does not replace one shown for less than this
    max_wait_s: float = 3.0  # a less severe cue waits at most this long for the slot
    forget_after_s: float = 18.0  # a cue older than this when it arrives is not shown
    withdrawn_s: float = 1.5  # a retracted cue is shown struck through this long
    lag_warn_s: float = 1.5  # coaching this far behind the call is said on screen
    status_every_s: float = 1.0  # the service sends a status about this often
    clock_tolerance_s: float = 2.0  # wall clock and stream estimate agree within this
    note_s: float = 2.5  # short confirmations ("Flagged as wrong")
    message_s: float = 5.0  # a service message without a device state stays this long

    @property
    def late_after_s(self) -> float:
        return self.display_s


@dataclass(frozen=True, slots=True)
class Decision:
    """What the policy did with a cue, for logs and tests: ``shown``, ``late`` (shown as
    late), ``waiting``, ``replaced``, ``dropped``, ``expired``, ``retracted``, ``ignored``
    (a retraction for a cue not on screen), ``dismissed``, ``flagged``, ``cleared`` (by
    another overlay's feedback)."""

    action: str
    id: str
    t: float | None
    at: float
    age_s: float | None = None
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"decision": self.action, "cue_id": self.id, "t": self.t,
                "age_s": None if self.age_s is None else round(self.age_s, 2),
                "reason": self.reason}


@dataclass(frozen=True, slots=True)
class ShownCue:
    id: str
    t: float | None
    severity: str
    title: str
    advice: str
    fade: float  # 0 = full strength, 1 = gone
    late_s: float | None  # shown late: its age when it arrived
    withdrawn: bool  # retracted: struck through until it goes


@dataclass(frozen=True, slots=True)
class Pace:
    wpm: float | None  # Prosody.pace_wpm: None outside a stretch long enough to judge
    band: tuple[float, float] | None
    zone: Literal["slow", "ok", "fast"] | None
    far: bool  # more than a fifth of the band's width outside it


@dataclass(frozen=True, slots=True)
class Screen:
    connection: Connection
    cue: ShownCue | None
    headline: str  # the big line when no cue is shown
    tag: str  # a short mark beside the cue's title: "9 s late", "withdrawn" ("" if none)
    status: str  # the bottom line ("" when there is nothing to say)
    alert: bool  # the status is a warning
    lag_s: float | None  # how far behind coaching runs, when it is over lag_warn_s
    degraded: bool
    pace: Pace
    talk: str | None  # "You 63% · Them 37%"
