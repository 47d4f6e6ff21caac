"""The supervisor's board as state (pure): live calls from their events, and alerts.

:meth:`Board.apply` takes one stored event of a live call (in the agent's order; repeats
and stale ones are ignored by sequence number) and returns what changed for the board's
viewers: ``{"type": "row", "row": {...}}`` and ``{"type": "alert", "alert": {...}}``.
:meth:`Board.presence` records an agent's connection opening or closing, and
:meth:`Board.tick` (about once a second) notices calls gone quiet and gives up on calls
whose agent never came back. Times: ``t`` is audio time of the call; ``now``/``at`` are
the servers' Unix time (when an event was stored).

Every server process keeps its own board from the same events, so all boards agree.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Any

from coach.team.policy import AlertRules
from coach.team.signals import FRUSTRATION, SUPERVISOR_REQUEST

__all__ = ["Board", "LiveRow", "QUIET_S", "GIVE_UP_S"]

QUIET_S = 5.0  # no event for this long: "no signal" (agents send a status every second)
GIVE_UP_S = 120.0  # disconnected or silent this long: the call is over as far as the board knows
ENDED_KEPT = 50  # recently ended calls listed under the board
ALERTS_KEPT = 200
RECENT_EVENTS = 3000  # events kept per call for someone who starts following it


@dataclass
class LiveRow:
    call_id: str
    agent: str
    team: str | None
    started_at: float | None = None
    t: float = 0.0  # audio time reached
    state: str = "live"  # live | ended
    ended_reason: str | None = None
    connected: bool = True
    last_at: float = 0.0  # when the last event was stored
    last_seq: int = -1
    cues: list[dict[str, Any]] = field(default_factory=list)  # standing (not withdrawn)
    talk: dict[str, float] = field(default_factory=lambda: {"agent": 0.0, "customer": 0.0})
    speaking: dict[str, bool] = field(default_factory=lambda: {"agent": False,
                                                               "customer": False})
    pace_wpm: float | None = None
    pace_band: list[float] | None = None
    lag_s: float | None = None
    degraded: bool = False
    device_message: str | None = None
    frustration: collections.deque[tuple[float, int]] = field(
        default_factory=collections.deque)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    armed: dict[str, bool] = field(default_factory=lambda: {"warn": True, FRUSTRATION: True})
    stored: bool = False
    recent: collections.deque[dict[str, Any]] = field(
        default_factory=lambda: collections.deque(maxlen=RECENT_EVENTS))

    def warn_count(self) -> int:
        return sum(1 for c in self.cues if c["severity"] == "warn")

    def connection(self, now: float) -> str:
        if self.state == "ended":
            return "ended"
        if not self.connected:
            return "disconnected"
        if now - self.last_at > QUIET_S:
            return "no signal"
        return "degraded" if self.degraded else "live"

    def to_dict(self, now: float) -> dict[str, Any]:
        talk = self.talk["agent"] + self.talk["customer"]
        last = self.cues[-1] if self.cues else None
        return {
            "call_id": self.call_id, "agent": self.agent, "team": self.team,
            "started_at": self.started_at, "duration_s": round(self.t, 1),
            "state": self.state, "ended_reason": self.ended_reason,
            "connection": self.connection(now),
            "quiet_s": round(max(0.0, now - self.last_at), 1),
            "last_cue": last, "warn_count": self.warn_count(), "cue_count": len(self.cues),
            "talk_agent_s": round(self.talk["agent"], 1),
            "talk_customer_s": round(self.talk["customer"], 1),
            "agent_share": round(self.talk["agent"] / talk, 3) if talk > 0 else None,
            "speaking": dict(self.speaking), "pace_wpm": self.pace_wpm,
            "pace_band": self.pace_band, "lag_s": self.lag_s, "degraded": self.degraded,
            "device_message": self.device_message,
            "alerts": [a["kind"] for a in self.alerts], "stored": self.stored,
        }


class Board:
    """Live calls and alerts; see the module docstring."""

    def __init__(self, rules: AlertRules | None = None):
        self.rules = rules or AlertRules()
        self.rows: dict[str, LiveRow] = {}
        self.ended: collections.OrderedDict[str, LiveRow] = collections.OrderedDict()
        self.alerts: collections.deque[dict[str, Any]] = collections.deque(maxlen=ALERTS_KEPT)

    def row(self, call_id: str) -> LiveRow | None:
        return self.rows.get(call_id) or self.ended.get(call_id)

    # -- input ----------------------------------------------------------------------------
    def apply(self, call_id: str, agent: str, team: str | None, seq: int,
              event: dict[str, Any], at: float, *, quiet: bool = False
              ) -> list[dict[str, Any]]:
        """One event of a live call; returns the viewers' updates (``quiet``: rebuilding
        after a restart, alerts are recorded but not announced)."""
        row = self.rows.get(call_id) or self.ended.get(call_id)
        if row is None:
            row = self.rows[call_id] = LiveRow(call_id, agent, team, last_at=at)
        if seq <= row.last_seq:
            return []
        row.last_seq = seq
        row.last_at = max(row.last_at, at)
        if not row.connected and row.state == "live":
            row.connected = True  # events arrive: the agent is back (on some server)
        row.recent.append({"seq": seq, **event})
        alerts = self._event(row, event, at)
        out: list[dict[str, Any]] = []
        for a in alerts:
            self.alerts.append(a)
            if not quiet:
                out.append({"type": "alert", "alert": a})
        out.append({"type": "row", "row": row.to_dict(at)})
        return out

    def _event(self, row: LiveRow, e: dict[str, Any], at: float) -> list[dict[str, Any]]:
        kind = e.get("type")
        t = _num(e.get("t")) if kind not in ("turn", "word") else _num(e.get("end"))
        if t is not None:
            row.t = max(row.t, t)
        if kind == "call":
            if e.get("state") == "start":
                row.started_at = _num(e.get("started_at")) or row.started_at
                band = e.get("pace_band")
                if isinstance(band, list) and len(band) == 2:
                    row.pace_band = [_num(b) or 0.0 for b in band]
            elif e.get("state") == "end":
                self._end(row, "call ended")
                duration = _num(e.get("duration"))
                if duration is not None:
                    row.t = max(row.t, duration)
            return []
        if kind == "cue":
            row.cues.append({"id": e.get("id"), "t": _num(e.get("t")) or 0.0,
                             "severity": e.get("severity"), "title": e.get("title") or "",
                             "speaker": e.get("speaker")})
            return self._warn_alert(row, row.cues[-1]["t"], at) \
                if e.get("severity") == "warn" else []
        if kind == "retract":
            t0 = _num(e.get("t")) or 0.0
            match = [c for c in row.cues if c["id"] == e.get("id") and abs(c["t"] - t0) <= 0.05]
            if match:
                row.cues.remove(match[-1])
                if row.warn_count() < self.rules.warn_cues:
                    row.armed["warn"] = True
            return []
        if kind == "turn":
            sp = e.get("speaker")
            if sp in row.talk:
                start, end = _num(e.get("start")), _num(e.get("end"))
                if start is not None and end is not None and end > start:
                    row.talk[sp] += end - start
            return []
        if kind == "activity":
            if e.get("speaker") in row.speaking:
                row.speaking[e["speaker"]] = bool(e.get("speaking"))
            return []
        if kind == "prosody":
            if e.get("speaker") == "agent" and "pace_wpm" in e:
                row.pace_wpm = _num(e.get("pace_wpm"))
            return []
        if kind == "status":
            row.lag_s = _num(e.get("lag_s"))
            row.degraded = bool(e.get("degraded"))
            if e.get("state") == "lost":
                row.device_message = str(e.get("message") or "a device was lost")
            elif e.get("state") in ("ok", "restored"):
                row.device_message = None
            return []
        if kind == "signal":
            return self._signal(row, e, at)
        return []

    def _alert(self, row: LiveRow, kind: str, message: str, t: float, at: float
               ) -> dict[str, Any]:
        a = {"id": f"{row.call_id}:{kind}:{row.last_seq}", "call_id": row.call_id,
             "agent": row.agent, "team": row.team, "kind": kind, "message": message,
             "t": round(t, 1), "at": at}
        row.alerts.append(a)
        return a

    def _warn_alert(self, row: LiveRow, t: float, at: float) -> list[dict[str, Any]]:
        r = self.rules
        recent = [c for c in row.cues if c["severity"] == "warn"
                  and t - r.warn_window_s <= c["t"] <= t]
        if len(recent) >= r.warn_cues and row.armed["warn"]:
            row.armed["warn"] = False
            minutes = r.warn_window_s / 60
            span = f"{minutes:g} min" if minutes >= 1 else f"{r.warn_window_s:g} s"
            return [self._alert(row, "warn-cues", f"{len(recent)} warn cues within {span}", t,
                                at)]
        if len(recent) < r.warn_cues:
            row.armed["warn"] = True
        return []

    def _signal(self, row: LiveRow, e: dict[str, Any], at: float) -> list[dict[str, Any]]:
        r = self.rules
        kind = e.get("kind")
        t = _num(e.get("t")) or row.t
        if kind == SUPERVISOR_REQUEST and r.supervisor_request:
            return [self._alert(row, SUPERVISOR_REQUEST,
                                "the customer asked for a supervisor or a manager", t, at)]
        if kind == FRUSTRATION:
            n = e.get("n") if isinstance(e.get("n"), int) and e.get("n") > 0 else 1
            row.frustration.append((t, n))
            while row.frustration and row.frustration[0][0] < t - r.frustration_window_s:
                row.frustration.popleft()
            total = sum(k for _, k in row.frustration)
            if total >= r.frustration and row.armed[FRUSTRATION]:
                row.armed[FRUSTRATION] = False
                return [self._alert(row, FRUSTRATION, "the customer's frustration is rising "
                                    f"({total} frustrated phrases within "
                                    f"{r.frustration_window_s:g} s)", t, at)]
            if total < r.frustration:
                row.armed[FRUSTRATION] = True
        return []

    def presence(self, call_id: str, agent: str, team: str | None, connected: bool,
                 at: float) -> list[dict[str, Any]]:
        row = self.rows.get(call_id)
        if row is None:
            if not connected or call_id in self.ended:
                return []
            row = self.rows[call_id] = LiveRow(call_id, agent, team, last_at=at)
        row.connected = connected
        return [{"type": "row", "row": row.to_dict(at)}]

    def stored(self, call_id: str, at: float) -> list[dict[str, Any]]:
        """The finished call reached the store: the board links to its replay."""
        row = self.row(call_id)
        if row is None:
            return []
        row.stored = True
        if row.state != "ended":
            self._end(row, "call ended")
        return [{"type": "row", "row": row.to_dict(at)}]

    def tick(self, now: float) -> list[dict[str, Any]]:
        """Calls whose connection state changed with time (quiet, given up)."""
        out = []
        for row in list(self.rows.values()):
            quiet = now - row.last_at
            if quiet > GIVE_UP_S:
                self._end(row, "the agent's coach stopped sending (disconnected)")
                out.append({"type": "row", "row": row.to_dict(now)})
            elif QUIET_S < quiet <= QUIET_S + 1.5 or (not row.connected and quiet <= 1.5):
                out.append({"type": "row", "row": row.to_dict(now)})
        return out

    def _end(self, row: LiveRow, reason: str) -> None:
        row.state = "ended"
        row.ended_reason = row.ended_reason or reason
        self.rows.pop(row.call_id, None)
        self.ended[row.call_id] = row
        self.ended.move_to_end(row.call_id)
        while len(self.ended) > ENDED_KEPT:
            self.ended.popitem(last=False)

    # -- output ---------------------------------------------------------------------------
    def snapshot(self, now: float, visible: Any = None) -> dict[str, Any]:
        """The whole board for a viewer who just connected (``visible(row) -> bool``)."""
        ok = visible or (lambda r: True)
        return {"type": "board", "now": now,
                "rows": [r.to_dict(now) for r in self.rows.values() if ok(r)],
                "ended": [r.to_dict(now) for r in reversed(self.ended.values()) if ok(r)],
                "alerts": [a for a in self.alerts
                           if ok(self.row(a["call_id"]) or _Stub(a))][-50:]}


@dataclass
class _Stub:
    agent: str
    team: str | None

    def __init__(self, a: dict[str, Any]):
        self.agent, self.team = a["agent"], a.get("team")


def _num(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    return float(x) if x == x and abs(x) != float("inf") else None
