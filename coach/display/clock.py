"""Time for the display policy: the call's audio time now, and the service's status
(lag, degraded recognition, lost devices)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Clock", "ServiceStatus", "cue_key", "number"]


def number(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def cue_key(cue_id: Any, t: Any) -> tuple[str, float | None]:
    v = number(t)
    return str(cue_id), None if v is None else round(v, 3)


@dataclass(slots=True)
class Clock:
    """The call's audio time now, from the service's clock or from the stream."""

    tolerance_s: float
    started_at: float | None = None
    latest_t: float | None = None  # the latest prosody reading's audio time
    lag_s: float = 0.0  # the latest reported lag
    anchor_at: float = 0.0  # when the later of the two arrived

    def audio_now(self, now: float, wall: float | None) -> float | None:
        # a reading's t is about what the pipeline had processed when it was sent; the
        # live edge was the lag ahead of that, and has moved on since
        stream = (None if self.latest_t is None
                  else self.latest_t + self.lag_s + max(0.0, now - self.anchor_at))
        by_wall = None if wall is None or self.started_at is None else wall - self.started_at
        if by_wall is None:
            return stream
        if stream is None or abs(by_wall - stream) <= self.tolerance_s:
            return by_wall
        return stream


@dataclass(slots=True)
class ServiceStatus:
    lag_s: float | None = None
    at: float = 0.0
    degraded: bool = False
    devices: dict[str, str] = field(default_factory=dict)  # role -> "... disconnected"
    message: str | None = None
    message_until: float = 0.0
