"""The overlays' display policy (coach.display), pure: priority, display time, retraction,
lag and late cues, the pace gauge; and that what it drops is still recorded."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from coach.display import (
    CONNECTING_TEXT,
    DISCONNECTED_TEXT,
    IDLE_TEXT,
    DisplayOptions,
    DisplayPolicy,
)

ROOT = Path(__file__).resolve().parents[1]
STARTED_AT = 1_000_000.0  # Unix time of the call's audio time 0 (the service's clock)


def cue(cid: str, t: float, severity: str = "nudge", title: str | None = None) -> dict:
    return {"type": "cue", "id": cid, "t": t, "speaker": "agent", "severity": severity,
            "title": title or cid, "advice": f"advice for {cid}", "evidence": {}}


class Call:
    """A policy on a call whose audio time runs with the overlay's clock: at ``now`` the
    call is at audio time ``now`` (the wall clock agrees with the service's)."""

    def __init__(self, options: DisplayOptions | None = None) -> None:
        self.p = DisplayPolicy(options)
        self.decisions: list = []
        self.p.connected(0.0)
        self.feed({"type": "hello", "protocol": 1}, 0.0)
        self.feed({"type": "call", "state": "start", "t": 0, "started_at": STARTED_AT,
                   "pace_band": [120, 175]}, 0.0)

    def feed(self, msg: dict, now: float, *, wall: float | None = None) -> list:
        out = self.p.feed(msg, now, STARTED_AT + now if wall is None else wall)
        self.decisions += out
        return out

    def tick(self, now: float) -> list:
        out = self.p.tick(now)
        self.decisions += out
        return out

    def shown(self, now: float) -> str | None:
        self.tick(now)
        c = self.p.screen(now).cue
        return None if c is None else c.id

    def actions(self, cid: str) -> list[str]:
        return [d.action for d in self.decisions if d.id == cid]


# --------------------------------------------------------------------------- priority


def test_a_warn_is_not_replaced_by_a_nudge_within_its_display_time():
    c = Call()
    c.feed(cue("but", 9.9, "warn"), 10.5)
    c.feed(cue("blame", 11.5, "nudge"), 12.0)  # the warn has 4.5 s left: too long to wait
    for now in (12.0, 14.0, 16.4):
        assert c.shown(now) == "but"
    assert c.actions("blame") == ["dropped"]
    assert [d.reason for d in c.decisions if d.id == "blame"] == ["a warn cue is on screen"]
    assert c.shown(17.6) is None  # 6 s shown + 1 s fade


def test_a_lesser_cue_waits_briefly_then_shows():
    c = Call()
    c.feed(cue("own-it", 22.1, "warn"), 22.5)
    c.feed(cue("no-action", 26.5, "nudge"), 26.8)  # the warn frees at 28.5: 1.7 s to wait
    assert c.actions("no-action") == ["waiting"]
    assert c.shown(28.4) == "own-it"
    assert c.shown(28.5) == "no-action"
    assert c.actions("own-it") == ["shown", "replaced"]  # cut at the start of its fade
    assert c.actions("no-action") == ["waiting", "shown"]


def test_a_waiting_cue_that_would_show_stale_is_dropped():
    c = Call(DisplayOptions(max_wait_s=5.0))
    c.feed(cue("own-it", 20.0, "warn"), 20.0)
    c.feed(cue("old", 16.0, "nudge"), 22.0)  # 6 s old when the warn's slot frees at 26
    assert c.actions("old") == ["waiting"]
    assert c.shown(26.0) is not None and c.p.screen(26.0).cue.id == "own-it"
    assert c.actions("old") == ["waiting", "dropped"]
    assert "stale" in [d for d in c.decisions if d.id == "old"][-1].reason


def test_a_more_severe_cue_replaces_at_once():
    c = Call()
    c.feed(cue("pace", 5.0, "nudge"), 5.2)
    c.feed(cue("but", 5.5, "warn"), 5.8)
    assert c.shown(5.8) == "but"
    assert c.actions("pace") == ["shown", "replaced"]


def test_info_praise_never_hides_a_warn():
    c = Call()
    c.feed(cue("but", 3.0, "warn"), 3.2)
    c.feed(cue("empathy-shown", 3.5, "info"), 3.6)
    c.feed(cue("empathy-shown", 8.0, "info"), 8.1)  # another, with 1 s of the warn left
    for now in (3.6, 5.0, 8.1, 9.1):
        assert c.shown(now) == "but"
    assert c.shown(9.2) == "empathy-shown"  # once the warn's display time is over
    assert c.actions("empathy-shown") == ["dropped", "waiting", "shown"]


def test_a_cue_as_severe_replaces_only_after_the_minimum_time():
    c = Call()
    c.feed(cue("a", 1.0, "warn"), 1.0)
    c.feed(cue("b", 1.5, "warn"), 1.5)
    assert c.actions("b") == ["waiting"]
    assert c.shown(2.9) == "a"
    assert c.shown(3.0) == "b"


def test_the_cue_fades_then_goes():
    c = Call()
    c.feed(cue("a", 1.0, "nudge"), 1.0)
    assert c.p.screen(6.9).cue.fade == 0
    assert c.p.screen(7.5).cue.fade == pytest.approx(0.5)
    assert c.shown(8.0) is None
    assert c.actions("a") == ["shown", "expired"]


def test_dismiss_and_flag_say_which_cue_and_free_the_slot():
    c = Call()
    c.feed(cue("a", 1.0, "warn"), 1.0)
    msg, _ = c.p.act("flag", 2.0)
    assert msg == {"type": "flag", "cue_id": "a", "t": 1.0}
    screen = c.p.screen(2.0)
    assert screen.cue is None and screen.headline == "Flagged as wrong — thanks"
    assert c.p.screen(5.0).headline == IDLE_TEXT
    assert c.p.act("dismiss", 5.0) == (None, [])  # nothing on screen, nothing sent


def test_feedback_from_another_overlay_clears_the_same_cue_only():
    c = Call()
    c.feed(cue("a", 1.0, "warn"), 1.0)
    c.feed({"type": "feedback", "action": "dismiss", "cue_id": "a", "t": 0.5}, 1.5)
    assert c.shown(1.5) == "a"
    c.feed({"type": "feedback", "action": "dismiss", "cue_id": "a", "t": 1.0}, 1.6)
    assert c.shown(1.6) is None


# --------------------------------------------------------------------------- retraction


def test_a_retracted_cue_is_struck_through_then_gone_and_never_comes_back():
    c = Call()
    c.feed(cue("qualified-apology", 9.9, "warn"), 10.2)
    c.feed({"type": "retract", "id": "qualified-apology", "t": 9.9, "at": 10.6,
            "reason": "the agent went on to fix it"}, 10.7)
    screen = c.p.screen(10.8)
    assert screen.cue.withdrawn and screen.cue.id == "qualified-apology"
    assert screen.tag == "withdrawn" and "Withdrawn" in screen.status
    assert c.shown(12.2) is None  # 1.5 s struck through
    c.feed(cue("qualified-apology", 9.9, "warn"), 12.5)  # the same cue again: not shown
    assert c.shown(12.5) is None
    assert c.actions("qualified-apology") == ["shown", "retracted", "dropped"]


def test_a_retraction_for_a_cue_not_shown_changes_nothing():
    c = Call()
    c.feed(cue("a", 1.0, "warn"), 1.0)
    before = c.p.screen(2.0)
    out = c.feed({"type": "retract", "id": "b", "t": 1.5, "at": 2.0, "reason": "x"}, 2.0)
    assert [d.action for d in out] == ["ignored"]
    assert c.p.screen(2.0) == before
    # ...and the same id at another time is another cue
    c.feed({"type": "retract", "id": "a", "t": 0.2, "at": 2.1, "reason": "x"}, 2.1)
    assert c.p.screen(2.1) == c.p.screen(2.1) and not c.p.screen(2.1).cue.withdrawn


def test_a_retraction_before_its_cue_arrives_keeps_it_off_screen():
    c = Call()
    c.feed({"type": "retract", "id": "a", "t": 1.0, "at": 1.8, "reason": "x"}, 2.0)
    c.feed(cue("a", 1.0, "warn"), 2.1)
    assert c.shown(2.1) is None


def test_a_retracted_waiting_cue_never_shows():
    c = Call()
    c.feed(cue("w", 1.0, "warn"), 1.0)
    c.feed(cue("n", 4.5, "nudge"), 4.5)
    assert c.actions("n") == ["waiting"]
    c.feed({"type": "retract", "id": "n", "t": 4.5, "at": 5.0, "reason": "x"}, 5.0)
    assert c.shown(7.0) == "w" and c.shown(8.0) is None
    assert c.actions("n") == ["waiting", "retracted"]


# --------------------------------------------------------------------------- lag, late


def test_running_late_is_said_plainly():
    c = Call()
    c.feed({"type": "status", "lag_s": 0.4, "degraded": False, "message": None}, 5.0)
    assert c.p.screen(5.0).lag_s is None and c.p.screen(5.0).status == ""
    c.feed({"type": "status", "lag_s": 2.34, "degraded": False, "message": None}, 6.0)
    screen = c.p.screen(6.0)
    assert screen.lag_s == pytest.approx(2.34) and screen.alert
    assert screen.status == "Coaching is 2.3 s behind the call"
    c.feed({"type": "status", "lag_s": 2.6, "degraded": True,
            "message": "falling behind by 2.6 s: fewer recognition passes"}, 7.0)
    assert c.p.screen(7.0).status == "Coaching is 2.6 s behind the call"
    assert c.p.screen(7.0).degraded
    c.feed({"type": "status", "lag_s": 0.8, "degraded": True, "message": None}, 7.5)
    assert c.p.screen(7.5).status == "Catching up: lighter recognition"
    c.feed({"type": "status", "lag_s": 0.3, "degraded": False, "message": None}, 8.0)
    assert c.p.screen(8.0).status == ""


def test_a_stalled_service_counts_as_lag():
    c = Call()
    c.feed({"type": "status", "lag_s": 0.2, "degraded": False, "message": None}, 5.0)
    assert c.p.screen(7.0).lag_s is None  # a status is due every second; 2 s grace
    assert c.p.screen(8.5).lag_s == pytest.approx(1.7)
    assert c.p.screen(8.5).status == "Coaching is 1.7 s behind the call"


def test_a_cue_older_than_its_display_time_is_shown_as_late():
    c = Call()
    c.feed(cue("but", 10.0, "warn"), 19.0)  # 9 s after its words
    screen = c.p.screen(19.0)
    assert screen.cue.id == "but" and screen.cue.late_s == pytest.approx(9.0)
    assert screen.tag == "9 s late" and screen.status == "Late: this came 9 s after the words"
    assert c.actions("but") == ["late"]
    c.feed(cue("pace", 19.5, "nudge"), 20.0)  # a fresh nudge beats a late warn
    assert c.shown(20.0) == "pace" and c.p.screen(20.0).cue.late_s is None
    c.feed(cue("old", 12.0, "warn"), 21.0)  # late, while a fresh cue is up: not shown
    assert c.actions("old") == ["dropped"]
    c.feed(cue("ancient", 1.0, "warn"), 40.0)  # 39 s old: never shown, even on a free slot
    assert c.shown(40.0) is None and c.actions("ancient") == ["dropped"]


def test_a_fresh_cue_is_not_late():
    c = Call()
    c.feed(cue("a", 10.0, "warn"), 15.9)
    assert c.p.screen(15.9).cue.late_s is None


def test_without_the_service_clock_the_stream_tells_the_audio_time():
    """Another machine's wall clock (a browser elsewhere) 40 s off: the prosody readings
    and the reported lag give the audio time instead."""
    c = Call()
    skew = 40.0
    for t in range(1, 21):
        c.feed({"type": "prosody", "speaker": "agent", "t": float(t), "f0_hz": None,
                "loudness_db": None, "wpm": None, "pace_wpm": None},
               t + 0.05, wall=STARTED_AT + t + skew)
    c.feed({"type": "status", "lag_s": 0.5, "degraded": False}, 20.1,
           wall=STARTED_AT + 20.1 + skew)
    c.feed(cue("fresh", 19.5, "warn"), 20.2, wall=STARTED_AT + 20.2 + skew)
    assert c.p.screen(20.2).cue.late_s is None
    c.feed({"type": "retract", "id": "fresh", "t": 19.5, "at": 20, "reason": "x"}, 20.3)
    c.tick(22.0)
    c.feed(cue("stale", 11.0, "warn"), 22.0, wall=STARTED_AT + 22.0 + skew)
    # audio now = 20 (the latest reading) + 0.5 (lag) + (22.0 - 20.1) since the status: 22.4
    assert c.p.screen(22.0).cue.late_s == pytest.approx(11.4)


def test_a_new_call_clears_the_cue_and_retractions():
    c = Call()
    c.feed({"type": "retract", "id": "a", "t": 1.0, "at": 1.0, "reason": "x"}, 1.0)
    c.feed(cue("b", 1.0, "warn"), 1.0)
    c.feed({"type": "call", "state": "start", "t": 0, "started_at": STARTED_AT + 100,
            "pace_band": [120, 175]}, 2.0, wall=STARTED_AT + 102)
    assert c.p.screen(2.0).cue is None
    c.feed(cue("a", 1.0, "warn"), 2.5, wall=STARTED_AT + 101.5)
    assert c.shown(2.5) == "a"


def test_the_call_end_leaves_the_last_cue_its_time():
    c = Call()
    c.feed(cue("no-follow-up", 52.0, "nudge"), 52.3)
    c.feed({"type": "call", "state": "end", "t": 52.3, "duration": 52.3}, 52.4)
    assert c.shown(55.0) == "no-follow-up"
    assert c.shown(60.0) is None and c.p.screen(60.0).headline == "Call ended"


# --------------------------------------------------------------------------- pace, status


def test_the_pace_gauge_shows_pace_wpm_and_is_idle_without_it():
    c = Call()
    prosody = {"type": "prosody", "speaker": "agent", "t": 3.0, "f0_hz": 180.0,
               "loudness_db": -20.0, "wpm": 192.0, "pace_wpm": None}
    c.feed(prosody, 3.0)
    pace = c.p.screen(3.0).pace
    assert pace.wpm is None and pace.zone is None and pace.band == (120, 175)
    c.feed({**prosody, "t": 9.0, "pace_wpm": 182.0}, 9.0)
    pace = c.p.screen(9.0).pace
    assert (pace.wpm, pace.zone, pace.far) == (182.0, "fast", False)
    c.feed({**prosody, "t": 10.0, "pace_wpm": 210.0}, 10.0)
    assert c.p.screen(10.0).pace.far
    c.feed({**prosody, "speaker": "customer", "t": 11.0, "pace_wpm": 100.0}, 11.0)
    assert c.p.screen(11.0).pace.wpm == 210.0  # the gauge is the agent's
    c.feed({**prosody, "t": 12.0, "pace_wpm": 150.0}, 12.0)
    assert c.p.screen(12.0).pace.zone == "ok"
    c.feed({**prosody, "t": 13.0, "pace_wpm": None}, 13.0)
    assert c.p.screen(13.0).pace.wpm is None


@pytest.mark.parametrize("band", [None, [175, 120], ["a", 3], [1], "x"])
def test_a_bad_pace_band_leaves_the_gauge_without_one(band):
    p = DisplayPolicy()
    p.connected(0)
    p.feed({"type": "call", "state": "start", "started_at": 1.0, "pace_band": band}, 0)
    p.feed({"type": "prosody", "speaker": "agent", "t": 1, "pace_wpm": 150}, 1)
    pace = p.screen(1).pace
    assert pace.band is None and pace.wpm == 150 and pace.zone is None


def test_a_lost_device_stays_said_until_it_returns():
    c = Call()
    lost = {"type": "status", "lag_s": 0.1, "degraded": False, "device": "USB headset",
            "role": "agent", "state": "lost", "message": "Headset microphone disconnected"}
    c.feed(lost, 3.0)
    for now in (3.0, 4.0, 5.0, 20.0):  # periodic statuses do not clear it
        c.feed({"type": "status", "lag_s": 0.1, "degraded": False, "message": None}, now)
        assert c.p.screen(now).status == "Headset microphone disconnected"
    c.feed({**lost, "state": "restored", "message": "USB headset reconnected"}, 21.0)
    assert c.p.screen(21.0).status == "USB headset reconnected"
    c.feed({"type": "status", "lag_s": 0.1, "degraded": False, "message": None}, 27.0)
    assert c.p.screen(27.0).status == ""


def test_connection_states():
    p = DisplayPolicy(where="127.0.0.1:8765")
    assert p.screen(0).headline == CONNECTING_TEXT
    p.disconnected(1, reason="ConnectionRefusedError")
    assert p.screen(1).headline == CONNECTING_TEXT  # never connected yet
    p.connected(2)
    p.feed({"type": "call", "state": "start", "started_at": 5.0}, 2)
    p.feed(cue("a", 1.0, "warn"), 2, 6.5)
    decisions = p.disconnected(3, reason="connection lost")
    screen = p.screen(3)
    assert screen.headline == DISCONNECTED_TEXT and screen.cue is None
    assert screen.status == "No connection to 127.0.0.1:8765"
    assert [d.action for d in decisions] == ["dropped"]
    p.disconnected(4, reason="unauthorized: wrong token", refused=True)
    assert p.screen(4).status == "Refused: unauthorized: wrong token (check --token)"


def test_odd_messages_are_taken_in_stride():
    c = Call()
    for msg in ({"type": "cue"}, {"type": "cue", "t": "x", "severity": "boom"},
                {"type": "retract"}, {"type": "status", "lag_s": "slow"},
                {"type": "prosody", "t": float("nan"), "speaker": "agent", "pace_wpm": "x"},
                {"type": "turn", "speaker": "agent", "start": 5, "end": 2},
                {"type": "word"}, {"type": None}, {}):
        c.feed(msg, 1.0)
    screen = c.p.screen(1.0)
    assert screen.cue is not None and screen.cue.title == "Cue" and screen.cue.severity == "info"


def test_the_display_policy_imports_nothing_of_the_io():
    code = ("import sys, coach.display; bad = [m for m in ('tkinter', 'websockets', "
            "'asyncio', 'socket', 'threading') if m in sys.modules]; print(bad); "
            "sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr


# --------------------------------------------------------------------------- shared cases


CASES = json.loads((Path(__file__).parent / "display_cases.json").read_text("utf-8"))


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_shared_display_cases(case):
    """The cases the browser overlay's display.js runs too (tests/test_overlay_browser.py):
    both overlays decide the same."""
    from tests.display_cases import run_case

    for got, want in run_case(case):
        assert got == want
