"""What an agent's coach and a team server say to each other on ``/team/ws/agent`` (pure).

Server -> agent:

- ``{"type": "hello", "protocol": 1, "agent", "team", "policy": {...}, "sharing": "..."}``
  first: who the token says the agent is, and the team's policy, which the agent's
  machine applies before anything leaves it;
- ``{"type": "ack", "call", "seq"}``: every event of ``call`` up to ``seq`` is stored;
- ``{"type": "error", "message"}``: one line about a message that was dropped.

Agent -> server: ``{"type": "events", "call": ID, "events": [{"seq": N, "type": ...}, ...]}``
with the call's events in order, numbered from 0 by the agent. A reconnecting agent
resends everything after the last ack; events the server already has are dropped, so a
resend never duplicates anything.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["EVENT_TYPES", "MAX_EVENTS_PER_FRAME", "MAX_FRAME_BYTES", "PROTOCOL",
           "FrameError", "RateLimit", "parse_frame"]

PROTOCOL = 1
MAX_EVENTS_PER_FRAME = 200
MAX_FRAME_BYTES = 60 * 1024  # under the server's websocket message limit (64 KiB)
MAX_EVENT_BYTES = 16 * 1024
EVENT_TYPES = ("call", "status", "cue", "retract", "activity", "turn", "prosody", "word",
               "signal")
CALL_ID = re.compile(r"^[0-9a-f]{32}$")
MAX_SEQ = 2**31 - 1

# Fields that must be finite numbers (or absent/null) in each event type.
_TIMES = {
    "call": ("t",), "status": ("lag_s",), "cue": ("t",), "retract": ("t", "at"),
    "activity": ("t",), "turn": ("start", "end"), "prosody": ("t",), "word": ("start", "end"),
    "signal": ("t",),
}
_REQUIRED = {
    "call": ("state",), "cue": ("id", "t", "severity"), "retract": ("id", "t"),
    "activity": ("speaker", "t"), "turn": ("speaker", "start", "end"),
    "prosody": ("speaker", "t"), "word": ("speaker", "text", "start", "end"),
    "signal": ("kind", "t"),
}
_SPEAKERS = ("agent", "customer")


class FrameError(ValueError):
    """A message from an agent that cannot be used; the text is the one-line reply."""


@dataclass(frozen=True, slots=True)
class Frame:
    call: str
    events: list[tuple[int, dict[str, Any]]]  # (seq, event without seq)
    rejected: list[str]  # one line per event dropped as malformed


def parse_frame(text: str | bytes) -> Frame:
    """An ``events`` frame, its malformed events listed in ``rejected`` (the rest kept);
    FrameError when the frame as a whole is unusable."""
    if isinstance(text, bytes):
        raise FrameError("binary messages are not understood (send JSON text)")
    if len(text) > MAX_FRAME_BYTES:
        raise FrameError(f"message of {len(text)} bytes is over the {MAX_FRAME_BYTES} limit")
    try:
        msg = json.loads(text)
    except ValueError:
        raise FrameError("a message that is not JSON was dropped") from None
    if not isinstance(msg, dict) or msg.get("type") != "events":
        kind = msg.get("type") if isinstance(msg, dict) else type(msg).__name__
        raise FrameError(f"unknown message {str(kind)[:40]!r} (expected type \"events\")")
    call = msg.get("call")
    if not isinstance(call, str) or not CALL_ID.match(call):
        raise FrameError("an events message needs \"call\": 32 lower-case hex digits")
    events = msg.get("events")
    if not isinstance(events, list) or not events:
        raise FrameError("an events message needs a non-empty \"events\" list")
    if len(events) > MAX_EVENTS_PER_FRAME:
        raise FrameError(f"{len(events)} events in one message, over the "
                         f"{MAX_EVENTS_PER_FRAME} limit")
    out: list[tuple[int, dict[str, Any]]] = []
    rejected: list[str] = []
    for i, e in enumerate(events):
        try:
            out.append(_event(e))
        except FrameError as err:
            rejected.append(f"event {i} of call {call[:8]}: {err}")
    return Frame(call, out, rejected)


def _event(e: Any) -> tuple[int, dict[str, Any]]:
    if not isinstance(e, dict):
        raise FrameError("not a JSON object")
    seq = e.get("seq")
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= MAX_SEQ:
        raise FrameError("\"seq\" must be a whole number from 0")
    kind = e.get("type")
    if kind not in EVENT_TYPES:
        raise FrameError(f"unknown event type {str(kind)[:40]!r}")
    for key in _REQUIRED.get(kind, ()):
        if e.get(key) is None:
            raise FrameError(f"a {kind} event needs {key!r}")
    for key in _TIMES.get(kind, ()):
        v = e.get(key)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise FrameError(f"{kind} {key!r} must be a finite number")
        if key != "lag_s" and not 0 <= v <= 86400:
            raise FrameError(f"{kind} {key!r} = {v} is not a time within a call")
    sp = e.get("speaker")
    if sp is not None and sp not in _SPEAKERS:
        raise FrameError(f"speaker must be agent or customer, not {str(sp)[:20]!r}")
    for key in ("id", "kind", "severity", "state", "text"):
        v = e.get(key)
        if v is not None and (not isinstance(v, str) or len(v) > 200):
            raise FrameError(f"{kind} {key!r} must be a short string")
    d = {k: v for k, v in e.items() if k != "seq"}
    if len(json.dumps(d)) > MAX_EVENT_BYTES:
        raise FrameError(f"event over {MAX_EVENT_BYTES} bytes")
    return seq, d


class RateLimit:
    """A token bucket: ``rate`` events a second on average, bursts up to ``burst`` (an
    agent catching up after a network cut sends its backlog at once)."""

    def __init__(self, rate: float, burst: float, now: float):
        self.rate, self.burst = rate, burst
        self.level = burst
        self.at = now

    def take(self, n: int, now: float) -> bool:
        self.level = min(self.burst, self.level + (now - self.at) * self.rate)
        self.at = now
        if n > self.level:
            return False
        self.level -= n
        return True
