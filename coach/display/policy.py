"""The display policy itself: what the overlays put on screen, message by message."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from .clock import Clock, ServiceStatus, cue_key, number
from .screen import (
    CALL_ENDED_TEXT,
    CONNECTING_TEXT,
    DISCONNECTED_TEXT,
    FLAGGED_TEXT,
    IDLE_TEXT,
    NO_CALL_TEXT,
    PROTOCOL,
    RANK,
    REFUSED_TEXT,
    Connection,
    Decision,
    DisplayOptions,
    Pace,
    Screen,
    ShownCue,
    severity_rank,
)

__all__ = ["DisplayPolicy"]


@dataclass(slots=True)
class _Cue:
    id: str
    t: float | None
    severity: str
    title: str
    advice: str

    @property
    def key(self) -> tuple[str, float | None]:
        return cue_key(self.id, self.t)

    @property
    def rank(self) -> int:
        return severity_rank(self.severity)


@dataclass(slots=True)
class _Slot:
    cue: _Cue
    shown_at: float
    late_s: float | None
    withdrawn_at: float | None = None


@dataclass(slots=True)
class _Waiting:
    cue: _Cue
    arrived_at: float
    age_s: float | None
    deadline: float


class DisplayPolicy:
    """The overlays' display state: feed it messages, ask it for the :class:`Screen`.

    ``feed``, ``tick`` and ``act`` return the :class:`Decision` list of what happened to
    cues (for logs and tests); they never change a message or hold one back from anyone.
    """

    def __init__(self, options: DisplayOptions | None = None, *, where: str = "the service"):
        self.o = options or DisplayOptions()
        self.where = where
        self.connection: Connection = "connecting"
        self._ever_connected = False
        self.refusal: str | None = None
        self.protocol_note: str | None = None
        # what this coach shares with a team server ("team" messages of coach live --team):
        # (line, is it a problem) — said on the status line when nothing is more pressing
        self.team_note: tuple[str, bool] | None = None
        self.in_call = False
        self.call_ended = False
        self.pace_band: tuple[float, float] | None = None
        self.pace_wpm: float | None = None
        self.talk = {"agent": 0.0, "customer": 0.0}
        self._talking: dict[str, float] = {}  # speaker -> start of the turn under way
        self._clock = Clock(self.o.clock_tolerance_s)
        self._status = ServiceStatus()
        self._slot: _Slot | None = None
        self._waiting: list[_Waiting] = []
        self._seen: set[tuple[str, float | None]] = set()
        self._retracted: set[tuple[str, float | None]] = set()
        self._note: str | None = None
        self._note_until = 0.0

    # ------------------------------------------------------------------ transport

    def connected(self, now: float) -> None:
        self.connection = "connected"
        self._ever_connected = True
        self.refusal = None
        self._status = ServiceStatus()  # a new connection: the service sends its own status

    def disconnected(self, now: float, *, reason: str = "", refused: bool = False
                     ) -> list[Decision]:
        self.connection = ("refused" if refused else
                           "disconnected" if self._ever_connected else "connecting")
        self.refusal = reason if refused else None
        out = self._clear(now, "dropped", "the connection to the service was lost")
        for w in self._waiting:
            out.append(Decision("dropped", w.cue.id, w.cue.t, now, w.age_s,
                                "the connection to the service was lost"))
        self._waiting = []
        self._status = ServiceStatus()
        return out

    # ------------------------------------------------------------------ messages

    def feed(self, msg: dict[str, Any], now: float, wall: float | None = None
             ) -> list[Decision]:
        """Take one message of the service, received at ``now`` (``wall``: Unix time)."""
        kind = msg.get("type")
        out: list[Decision] = []
        if kind == "hello":
            proto = msg.get("protocol")
            self.protocol_note = (None if proto == PROTOCOL else
                                  f"the service speaks protocol {proto}, "
                                  f"this overlay {PROTOCOL}")
        elif kind == "call":
            out += self._call(msg, now)
        elif kind == "cue":
            out += self._arrive(msg, now, wall)
        elif kind == "retract":
            out += self._retract(msg, now)
        elif kind == "feedback":
            out += self._feedback(msg, now)
        elif kind == "status":
            self._on_status(msg, now)
        elif kind == "team":
            self.team_note = team_line(msg)
        elif kind == "prosody":
            t = number(msg.get("t"))
            if t is not None and (self._clock.latest_t is None or t >= self._clock.latest_t):
                self._clock.latest_t, self._clock.anchor_at = t, now
            if msg.get("speaker") == "agent":
                wpm = number(msg.get("pace_wpm"))
                self.pace_wpm = wpm if wpm is not None and wpm > 0 else None
        elif kind == "turn":
            start, end = number(msg.get("start")), number(msg.get("end"))
            speaker = msg.get("speaker")
            if speaker in self.talk and start is not None and end is not None and end > start:
                self.talk[speaker] += end - start
                self._talking.pop(speaker, None)
        elif kind == "activity":
            # the turn under way counts too: "You 0 %" during the agent's first turn is wrong
            speaker, t = msg.get("speaker"), number(msg.get("t"))
            if speaker in self.talk and t is not None and msg.get("speaking") is True:
                self._talking[speaker] = t
        return out + self.tick(now)

    def tick(self, now: float) -> list[Decision]:
        """Let time pass: cues expire, waiting cues get the slot or give up."""
        out: list[Decision] = []
        slot = self._slot
        if slot is not None:
            if slot.withdrawn_at is not None:
                if now >= slot.withdrawn_at + self.o.withdrawn_s:
                    self._slot = None
            elif now >= slot.shown_at + self.o.display_s + self.o.fade_s:
                out.append(Decision("expired", slot.cue.id, slot.cue.t, now))
                self._slot = None
        keep: list[_Waiting] = []
        for w in self._waiting:
            age = None if w.age_s is None else w.age_s + (now - w.arrived_at)
            if now > w.deadline:
                out.append(Decision("dropped", w.cue.id, w.cue.t, now, age,
                                    "waited for a more important cue to go"))
            elif age is not None and age > self.o.late_after_s:
                out.append(Decision("dropped", w.cue.id, w.cue.t, now, age,
                                    "went stale while a more important cue was shown"))
            else:
                keep.append(w)
        self._waiting = keep
        if keep:
            best = max(keep, key=lambda w: (w.cue.rank, w.arrived_at))
            if self._can_take(best.cue, late=False, now=now):
                self._waiting.remove(best)
                age = None if best.age_s is None else best.age_s + (now - best.arrived_at)
                out += self._show(best.cue, now, age, late=False)
        return out

    def act(self, action: Literal["dismiss", "flag"], now: float
            ) -> tuple[dict[str, Any] | None, list[Decision]]:
        """The agent dismissed or flagged the cue on screen: the message to send the
        service (None when no cue is shown) and what happened."""
        slot = self._slot
        if slot is None or slot.withdrawn_at is not None or self.connection != "connected":
            return None, []
        msg = {"type": action, "cue_id": slot.cue.id, "t": slot.cue.t}
        self._slot = None
        out = [Decision("dismissed" if action == "dismiss" else "flagged", slot.cue.id,
                        slot.cue.t, now)]
        if action == "flag":
            self._note, self._note_until = FLAGGED_TEXT, now + self.o.note_s
        return msg, out + self.tick(now)

    # ------------------------------------------------------------------ cues

    def _call(self, msg: dict[str, Any], now: float) -> list[Decision]:
        out: list[Decision] = []
        if msg.get("state") == "start":
            started_at = number(msg.get("started_at"))
            if not self.in_call or started_at is None or started_at != self._clock.started_at:
                # a new call (the same call again after a reconnect keeps its talk split)
                self.talk = {"agent": 0.0, "customer": 0.0}
                self._talking.clear()
                self.pace_wpm = None
                self._seen.clear()
                self._retracted.clear()
                self._clock = Clock(self.o.clock_tolerance_s)
                out += self._clear(now, "dropped", "a new call started")
            self._clock.started_at = started_at
            self.in_call, self.call_ended = True, False
            band = msg.get("pace_band")
            lo = number(band[0]) if isinstance(band, list | tuple) and len(band) == 2 else None
            hi = number(band[1]) if lo is not None else None
            self.pace_band = (lo, hi) if lo is not None and hi is not None and lo < hi else None
        elif msg.get("state") == "end":
            # the cue on screen stays its time: the last cues of a call come with its end
            self.in_call, self.call_ended = False, True
            self.pace_wpm = None
        return out

    def _arrive(self, msg: dict[str, Any], now: float, wall: float | None) -> list[Decision]:
        severity = msg.get("severity")
        cue = _Cue(id=str(msg.get("id") or ""), t=number(msg.get("t")),
                   severity=severity if severity in RANK else "info",
                   title=str(msg.get("title") or msg.get("id") or "Cue"),
                   advice=str(msg.get("advice") or ""))
        audio_now = self._clock.audio_now(now, wall)
        age = None if audio_now is None or cue.t is None else max(0.0, audio_now - cue.t)

        def drop(reason: str) -> list[Decision]:
            return [Decision("dropped", cue.id, cue.t, now, age, reason)]

        if cue.key in self._retracted:
            return drop("it was withdrawn before it arrived")
        if cue.key in self._seen:
            return drop("it was already shown")
        self._seen.add(cue.key)
        if age is not None and age > self.o.forget_after_s:
            return drop(f"it arrived {age:.0f} s after its words")
        late = age is not None and age > self.o.late_after_s
        if self._can_take(cue, late=late, now=now):
            return self._show(cue, now, age, late=late)
        if late:
            return drop("it arrived late and another cue is on screen")
        slot = self._slot
        assert slot is not None
        frees = slot.shown_at + (self.o.min_show_s if cue.rank == slot.cue.rank
                                 else self.o.display_s)
        if frees - now <= self.o.max_wait_s:
            self._waiting.append(_Waiting(cue, now, age, now + self.o.max_wait_s))
            return [Decision("waiting", cue.id, cue.t, now, age,
                             f"a {slot.cue.severity} cue is on screen")]
        return drop(f"a {slot.cue.severity} cue is on screen")

    def _can_take(self, cue: _Cue, *, late: bool, now: float) -> bool:
        """Whether ``cue`` may go on screen now, over what is there."""
        slot = self._slot
        if slot is None or slot.withdrawn_at is not None:
            return True
        if now >= slot.shown_at + self.o.display_s:  # fading out: the slot is free
            return True
        if late:
            return False
        if slot.late_s is not None:  # a fresh cue always beats a late one
            return True
        if cue.rank != slot.cue.rank:
            return cue.rank > slot.cue.rank
        return now - slot.shown_at >= self.o.min_show_s

    def _show(self, cue: _Cue, now: float, age: float | None, *, late: bool) -> list[Decision]:
        out = self._clear(now, "replaced", f"by the {cue.severity} cue {cue.id}")
        self._slot = _Slot(cue, now, age if late else None)
        self._note = None
        out.append(Decision("late" if late else "shown", cue.id, cue.t, now, age))
        return out

    def _clear(self, now: float, action: str, reason: str) -> list[Decision]:
        slot, self._slot = self._slot, None
        if slot is None or slot.withdrawn_at is not None:
            return []
        if now >= slot.shown_at + self.o.display_s + self.o.fade_s:
            return [Decision("expired", slot.cue.id, slot.cue.t, now)]
        return [Decision(action, slot.cue.id, slot.cue.t, now, reason=reason)]

    def _retract(self, msg: dict[str, Any], now: float) -> list[Decision]:
        key = cue_key(msg.get("id"), msg.get("t"))
        self._retracted.add(key)
        reason = str(msg.get("reason") or "withdrawn")
        slot = self._slot
        out: list[Decision] = []
        if (slot is not None and slot.withdrawn_at is None and slot.cue.key == key
                and now < slot.shown_at + self.o.display_s + self.o.fade_s):
            slot.withdrawn_at = now
            out.append(Decision("retracted", key[0], key[1], now, reason=reason))
        for w in [w for w in self._waiting if w.cue.key == key]:
            self._waiting.remove(w)
            out.append(Decision("retracted", key[0], key[1], now, w.age_s, reason))
        if not out:
            out.append(Decision("ignored", key[0], key[1], now, reason="not on screen"))
        return out

    def _feedback(self, msg: dict[str, Any], now: float) -> list[Decision]:
        key = cue_key(msg.get("cue_id"), msg.get("t"))
        slot = self._slot
        out: list[Decision] = []
        if slot is not None and slot.withdrawn_at is None and (
                slot.cue.key == key or (key[1] is None and slot.cue.id == key[0])):
            self._slot = None
            out.append(Decision("cleared", slot.cue.id, slot.cue.t, now,
                                reason=f"{msg.get('action') or 'feedback'} from another overlay"))
        self._waiting = [w for w in self._waiting if w.cue.key != key]
        return out

    # ------------------------------------------------------------------ status and lag

    def _on_status(self, msg: dict[str, Any], now: float) -> None:
        st = self._status
        lag = number(msg.get("lag_s"))
        if lag is not None:
            st.lag_s = max(0.0, lag)
            self._clock.lag_s, self._clock.anchor_at = st.lag_s, now
        st.at = now
        st.degraded = bool(msg.get("degraded"))
        message = msg.get("message")
        role, state = msg.get("role"), msg.get("state")
        if state in ("lost", "restored", "ok") and isinstance(role, str):
            if state == "lost":
                st.devices[role] = str(message or f"the {role} audio is lost")
            else:
                st.devices.pop(role, None)
                if message:
                    st.message, st.message_until = str(message), now + self.o.message_s
        elif message and not st.degraded:  # when degraded, the overlay says it its own way
            st.message, st.message_until = str(message), now + self.o.message_s

    def lag(self, now: float) -> float | None:
        """How far coaching runs behind the call: the reported lag, plus the time since
        a status was due when none comes (a stalled pipeline reports nothing)."""
        st = self._status
        if st.lag_s is None or not self.in_call or self.connection != "connected":
            return None
        overdue = max(0.0, now - st.at - 2 * self.o.status_every_s)
        return st.lag_s + overdue

    # ------------------------------------------------------------------ the screen

    def screen(self, now: float) -> Screen:
        online = self.connection == "connected"
        slot = self._slot if online else None
        shown = None
        if slot is not None:
            if slot.withdrawn_at is not None:
                fade = min(1.0, (now - slot.withdrawn_at) / max(self.o.withdrawn_s, 1e-9))
            else:
                fade = (now - slot.shown_at - self.o.display_s) / max(self.o.fade_s, 1e-9)
            c = slot.cue
            shown = ShownCue(c.id, c.t, c.severity, c.title, c.advice,
                             min(1.0, max(0.0, fade)), slot.late_s,
                             slot.withdrawn_at is not None)
        lag = self.lag(now)
        late_lag = lag if lag is not None and lag > self.o.lag_warn_s else None
        status, alert = self._status_line(now, shown, late_lag)
        tag = ("" if shown is None else "withdrawn" if shown.withdrawn else
               "" if shown.late_s is None else f"{shown.late_s:.0f} s late")
        return Screen(connection=self.connection, cue=shown, headline=self._headline(now),
                      tag=tag, status=status, alert=alert, lag_s=late_lag,
                      degraded=online and self._status.degraded, pace=self._pace(),
                      talk=self._talk())

    def _headline(self, now: float) -> str:
        if self.connection == "refused":
            return REFUSED_TEXT
        if self.connection == "connecting":
            return CONNECTING_TEXT
        if self.connection == "disconnected":
            return DISCONNECTED_TEXT
        if self._note and now < self._note_until:
            return self._note
        if self.in_call:
            return IDLE_TEXT
        return CALL_ENDED_TEXT if self.call_ended else NO_CALL_TEXT

    def _status_line(self, now: float, cue: ShownCue | None, lag: float | None
                     ) -> tuple[str, bool]:
        if self.connection == "refused":
            return f"Refused: {self.refusal or 'by the service'} (check --token)", True
        if self.connection != "connected":
            return f"No connection to {self.where}", False
        st = self._status
        parts: list[str] = []
        if self.protocol_note:
            parts.append(self.protocol_note[0].upper() + self.protocol_note[1:])
        parts += list(st.devices.values())
        if lag is not None:
            parts.append(f"Coaching is {lag:.1f} s behind the call")
        elif st.degraded:  # back within the limit, still on lighter recognition
            parts.append("Catching up: lighter recognition")
        if st.message and now < st.message_until and st.message not in parts:
            parts.append(st.message)
        if self.team_note is not None and self.team_note[1]:
            parts.append(self.team_note[0])
        if parts:
            return " · ".join(parts), True
        # nothing more pressing to say: why the cue on screen looks the way it does
        if cue is not None and cue.withdrawn:
            return "Withdrawn: the words after it showed it was wrong", False
        if cue is not None and cue.late_s is not None:
            return f"Late: this came {cue.late_s:.0f} s after the words", False
        if self.team_note is not None:
            return self.team_note[0], False
        return "", False

    def _pace(self) -> Pace:
        wpm, band = self.pace_wpm, self.pace_band
        if not self.in_call or wpm is None or band is None:
            return Pace(wpm if self.in_call else None, band, None, False)
        lo, hi = band
        span = hi - lo
        zone: Literal["slow", "ok", "fast"] = "slow" if wpm < lo else "fast" if wpm > hi else "ok"
        far = wpm < lo - 0.2 * span or wpm > hi + 0.2 * span
        return Pace(wpm, band, zone, far)

    def _talk(self) -> str | None:
        talk = dict(self.talk)
        latest = self._clock.latest_t
        for speaker, start in self._talking.items():
            if latest is not None and latest > start:
                talk[speaker] += latest - start
        total = talk["agent"] + talk["customer"]
        if total <= 0:
            return None
        you = round(100 * talk["agent"] / total)
        return f"You {you}% · Them {100 - you}%"


def team_line(msg: dict[str, Any]) -> tuple[str, bool] | None:
    """The status line for a ``team`` message: what is shared, or that the team server is
    out of reach (coaching goes on here and catches up)."""
    state = msg.get("state")
    sharing = msg.get("sharing")
    if state == "connected":
        shared = sharing.get("shared") if isinstance(sharing, dict) else None
        if isinstance(shared, list) and shared:
            return "Team sees: " + ", ".join(str(x) for x in shared), False
        return "Connected to the team server", False
    if state == "offline":
        return "Team server out of reach: coaching goes on, it will catch up", True
    if state == "refused":
        return "The team server refused this coach", True
    return None
