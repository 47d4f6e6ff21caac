"""The team layer's pure parts: the policy, the agent protocol, customer signals, the
board's state and alerts. No sockets, no database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from coach.playbook import load_playbook
from coach.team.board import GIVE_UP_S, QUIET_S, Board
from coach.team.policy import AlertRules, PolicyError, TeamPolicy, load_policy
from coach.team.protocol import FrameError, RateLimit, parse_frame
from coach.team.signals import CustomerSignals

CALL = "a" * 32

# -- policy ---------------------------------------------------------------------------------


def test_the_policy_file_printed_for_admins_is_the_default() -> None:
    from coach.team.cli import POLICY_TEMPLATE

    assert load_policy(POLICY_TEMPLATE).to_dict() == TeamPolicy().to_dict()


def test_by_default_the_board_gets_facts_cues_and_counts_only() -> None:
    p = TeamPolicy()
    assert p.live_event({"type": "word", "speaker": "agent", "text": "hi", "final": True}) is None
    pr = p.live_event({"type": "prosody", "speaker": "agent", "t": 3.0, "f0_hz": 180.0,
                       "loudness_db": -20.0, "f0_sd_st": 2.1, "voiced_s": 0.8, "wpm": 150.0,
                       "pace_wpm": 160.0, "speaking": True})
    assert pr == {"type": "prosody", "speaker": "agent", "t": 3.0, "wpm": 150.0,
                  "pace_wpm": 160.0, "speaking": True}
    cue = p.live_event({"type": "cue", "id": "sorry-but", "t": 5.0, "severity": "warn",
                        "evidence": {"words": [{"text": "but", "start": 4, "end": 5}],
                                     "wpm": 190.0, "detail": {"gap_s": 6.5, "who": "x"}}})
    assert cue["evidence"] == {"wpm": 190.0, "detail": {"gap_s": 6.5}}
    assert p.live_event({"type": "cue", "id": "tone-tense", "t": 5.0, "severity": "nudge"}) \
        is None
    assert p.live_event({"type": "retract", "id": "tone-tense", "t": 5.0}) is None
    start = p.live_event({"type": "call", "state": "start", "recording": "/home/x",
                          "source": "/home/x/call.wav", "agent": "Dana"})
    assert start == {"type": "call", "state": "start", "agent": "Dana"}
    assert p.live_event({"type": "feedback", "action": "flag"}) is None
    assert p.sharing_line() == (
        "Shared live with your team: call facts (start, duration, connection), cues, talk "
        "split, pace, customer alerts. Not shared: words, voice readings, tone-tense, "
        "tone-flat cues.")


def test_a_team_can_share_more_or_less() -> None:
    p = TeamPolicy.from_dict({"live": {"words": True, "cues": False, "pace": False},
                              "stored": {"audio": False, "voice": False}})
    assert p.live_event({"type": "word", "final": True, "text": "hi"})["text"] == "hi"
    assert p.live_event({"type": "word", "final": False, "text": "hi"}) is None
    assert p.live_event({"type": "cue", "id": "sorry-but"}) is None
    assert p.live_event({"type": "prosody", "wpm": 1.0, "pace_wpm": 2.0}) is None
    assert p.stored_event({"type": "prosody", "f0_hz": 1.0, "wpm": 3.0}) == {
        "type": "prosody", "wpm": 3.0}
    assert p.stored_event({"type": "flag", "cue_id": "tone-tense"}) is None
    assert "words" in p.sharing()["shared"] and "cues" in p.sharing()["kept"]


@pytest.mark.parametrize("text,message", [
    ("live: [1, 2]", "live must be a mapping"),
    ("live: {words: yes please}", "live.words must be true or false"),
    ("live: {transcript: true}", "unknown setting live.transcript"),
    ("sharing: {}", "unknown section 'sharing'"),
    ("alerts: {warn_cues: 0}", "alerts.warn_cues must be a positive number"),
    ("alerts: {warn_cues: 2.5}", "alerts.warn_cues must be a whole number"),
    ("live: {private_cues: tone-tense}", "live.private_cues must be a list of cue ids"),
    ("version: 2", "version 2 is not known"),
    ("live: {words: true\n", "not valid YAML"),
    ("- a list", "expected a mapping"),
])
def test_a_bad_policy_file_is_one_clear_line(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "policy.yaml"
    f.write_text(text)
    with pytest.raises(PolicyError) as e:
        load_policy(f)
    assert message in str(e.value) and str(e.value).startswith(str(f)) and "\n" not in str(e.value)
    with pytest.raises(PolicyError, match="no such policy file"):
        load_policy(tmp_path / "missing.yaml")


# -- protocol -------------------------------------------------------------------------------


def frame(*events, call: str = CALL) -> str:
    return json.dumps({"type": "events", "call": call, "events": list(events)})


def test_frames_keep_good_events_and_name_bad_ones() -> None:
    f = parse_frame(frame({"seq": 0, "type": "call", "state": "start", "t": 0},
                          {"seq": 1, "type": "cue", "id": "x", "t": "soon", "severity": "warn"},
                          {"seq": 2, "type": "prosody", "speaker": "agent", "t": 1.0},
                          [1, 2], {"seq": True, "type": "turn"},
                          {"seq": 5, "type": "word", "speaker": "agent", "text": "x" * 300,
                           "start": 0, "end": 1}))
    assert [s for s, _ in f.events] == [0, 2]
    assert f.rejected == [
        f"event 1 of call {CALL[:8]}: cue 't' must be a finite number",
        f"event 3 of call {CALL[:8]}: not a JSON object",
        f"event 4 of call {CALL[:8]}: \"seq\" must be a whole number from 0",
        f"event 5 of call {CALL[:8]}: word 'text' must be a short string"]
    assert "seq" not in f.events[0][1]


@pytest.mark.parametrize("text,message", [
    (b"\x00", "binary messages"), ("x" * 70000, "over the 61440 limit"),
    ("[1]", "unknown message 'list'"), (json.dumps({"type": "events", "call": CALL}),
                                        "non-empty \"events\" list"),
    (frame(*[{"seq": i, "type": "turn"} for i in range(201)]), "201 events in one message"),
    (frame({"seq": 0, "type": "call", "state": "start"}, call="A" * 32), "32 lower-case hex"),
])
def test_unusable_frames(text, message) -> None:
    with pytest.raises(FrameError, match=message):
        parse_frame(text)


def test_rate_limit_allows_a_burst_then_the_rate() -> None:
    r = RateLimit(10, 100, now=0.0)
    assert r.take(100, 0.0) and not r.take(1, 0.0)
    assert r.take(10, 1.0) and not r.take(5, 1.2) and r.take(5, 1.5)


# -- customer signals -----------------------------------------------------------------------


def _say(sig: CustomerSignals, text: str, t0: float = 0.0, speaker: str = "customer") -> list:
    out = []
    for i, w in enumerate(text.split()):
        out += sig.feed({"type": "word", "speaker": speaker, "text": w, "start": t0 + i * 0.3,
                         "end": t0 + i * 0.3 + 0.25, "final": True})
    return out + sig.feed({"type": "turn", "speaker": speaker, "start": t0, "end": t0 + 3})


@pytest.mark.parametrize("text,kinds", [
    ("I want to speak to a manager.", {"supervisor-request"}),
    ("Can I talk to your supervisor please?", {"supervisor-request"}),
    ("Put me through to someone senior.", {"supervisor-request"}),
    ("Is your supervisor around?", {"supervisor-request"}),
    ("This is ridiculous, I'm fed up.", {"frustration"}),
    ("I'm not upset, honestly.", set()),
    ("My manager asked me to call about the bill.", set()),
    ("Thanks, that's great.", set()),
])
def test_customer_signals_from_the_playbook(text, kinds) -> None:
    got = _say(CustomerSignals(load_playbook()), text)
    assert {s["kind"] for s in got} >= kinds and (kinds or not got)
    if "supervisor-request" not in kinds:
        assert "supervisor-request" not in {s["kind"] for s in got}


def test_the_agent_asking_for_a_supervisor_is_not_a_signal() -> None:
    assert _say(CustomerSignals(load_playbook()), "let me get a supervisor", speaker="agent") \
        == []


def test_a_team_playbook_changes_the_phrases(tmp_path: Path) -> None:
    pb = tmp_path / "team.yaml"
    pb.write_text("lexicon:\n  supervisor_request+: ['(?:fetch|call) (?:the )?gaffer']\n")
    got = _say(CustomerSignals(load_playbook(pb)), "Call the gaffer now")
    assert [s["kind"] for s in got] == ["supervisor-request"]


# -- the board ------------------------------------------------------------------------------


def feed(board: Board, events: list[dict], call: str = CALL, at: float = 1000.0,
         start_seq: int = 0) -> list[dict]:
    out = []
    for i, e in enumerate(events):
        out += board.apply(call, "Dana", "north", start_seq + i, e, at + i * 0.1)
    return out


def cue(t: float, sev: str = "warn", cid: str = "sorry-but") -> dict:
    return {"type": "cue", "id": cid, "t": t, "severity": sev, "title": cid, "speaker": "agent"}


def test_the_board_row_follows_the_call() -> None:
    b = Board()
    feed(b, [{"type": "call", "state": "start", "t": 0, "started_at": 1.7e9,
              "pace_band": [120, 175]},
             {"type": "turn", "speaker": "agent", "start": 0.5, "end": 6.5},
             {"type": "turn", "speaker": "customer", "start": 7.0, "end": 9.0},
             {"type": "activity", "speaker": "agent", "t": 9.5, "speaking": True},
             {"type": "prosody", "speaker": "agent", "t": 10.0, "pace_wpm": 182.0},
             {"type": "status", "lag_s": 0.4, "degraded": False, "message": None},
             cue(10.5, "nudge", "pace-fast")])
    r = b.rows[CALL].to_dict(1001.0)
    assert r["agent"] == "Dana" and r["duration_s"] == 10.5
    assert r["agent_share"] == 0.75 and r["talk_agent_s"] == 6.0
    assert r["pace_wpm"] == 182.0 and r["pace_band"] == [120, 175]
    assert r["last_cue"]["id"] == "pace-fast" and r["warn_count"] == 0
    assert r["connection"] == "live" and r["speaking"]["agent"] is True
    assert r["lag_s"] == 0.4


def test_repeated_and_stale_events_change_nothing() -> None:
    b = Board()
    feed(b, [cue(1.0)])
    assert b.apply(CALL, "Dana", "north", 0, cue(1.0), 1000.0) == []
    assert b.rows[CALL].warn_count() == 1


def test_warn_cues_in_a_window_alert_once_and_withdrawn_ones_do_not_count() -> None:
    b = Board(AlertRules(warn_cues=3, warn_window_s=120))
    out = feed(b, [cue(10), cue(20), {"type": "retract", "id": "sorry-but", "t": 20.0,
                                      "at": 22.0, "reason": "fixed"}, cue(30)])
    assert not [m for m in out if m["type"] == "alert"]
    assert b.rows[CALL].warn_count() == 2
    out = feed(b, [cue(40), cue(50)], start_seq=4)
    alerts = [m["alert"] for m in out if m["type"] == "alert"]
    assert [a["message"] for a in alerts] == ["3 warn cues within 2 min"]
    assert alerts[0]["agent"] == "Dana" and alerts[0]["t"] == 40.0
    # old cues leave the window: below the count again, a new run alerts again
    out = feed(b, [cue(300), cue(310), cue(320)], start_seq=6)
    assert len([m for m in out if m["type"] == "alert"]) == 1
    assert b.rows[CALL].to_dict(0)["alerts"] == ["warn-cues", "warn-cues"]


def test_frustration_rising_and_a_supervisor_request_alert() -> None:
    b = Board(AlertRules(frustration=2, frustration_window_s=60))
    out = feed(b, [{"type": "signal", "kind": "frustration", "t": 5.0, "n": 1},
                   {"type": "signal", "kind": "frustration", "t": 100.0, "n": 1}])
    assert not [m for m in out if m["type"] == "alert"]  # a minute and a half apart
    out = feed(b, [{"type": "signal", "kind": "frustration", "t": 110.0, "n": 1},
                   {"type": "signal", "kind": "supervisor-request", "t": 112.0}], start_seq=2)
    msgs = [m["alert"]["message"] for m in out if m["type"] == "alert"]
    assert msgs == ["the customer's frustration is rising (2 frustrated phrases within 60 s)",
                    "the customer asked for a supervisor or a manager"]


def test_connection_states_with_time() -> None:
    b = Board()
    feed(b, [{"type": "status", "lag_s": 0.1, "degraded": False}], at=1000.0)
    assert b.rows[CALL].connection(1000.0 + QUIET_S + 1) == "no signal"
    b.presence(CALL, "Dana", "north", False, 1001.0)
    assert b.rows[CALL].connection(1001.0) == "disconnected"
    feed(b, [{"type": "status", "lag_s": 3.0, "degraded": True}], at=1002.0, start_seq=1)
    assert b.rows[CALL].connection(1002.0) == "degraded"  # back, and behind
    out = b.tick(1002.0 + GIVE_UP_S + 1)
    assert out[0]["row"]["state"] == "ended" and CALL not in b.rows and CALL in b.ended
    assert "stopped sending" in out[0]["row"]["ended_reason"]
    assert b.stored(CALL, 2000.0)[0]["row"]["stored"] is True


def test_a_device_message_stays_until_the_device_is_back() -> None:
    b = Board()
    feed(b, [{"type": "status", "state": "lost", "message": "Headset unplugged"},
             {"type": "status", "lag_s": 0.1, "message": None}])
    assert b.rows[CALL].device_message == "Headset unplugged"
    feed(b, [{"type": "status", "state": "restored", "message": "Headset back"}], start_seq=2)
    assert b.rows[CALL].device_message is None


def test_the_snapshot_shows_a_viewer_only_what_they_may_see() -> None:
    b = Board()
    feed(b, [cue(1), cue(2), cue(3)])
    b.apply("b" * 32, "Sam", "south", 0, cue(1), 1000.0)
    snap = b.snapshot(1000.0, lambda r: r.team == "north")
    assert [r["agent"] for r in snap["rows"]] == ["Dana"]
    assert [a["agent"] for a in snap["alerts"]] == ["Dana"]


# -- voice baselines across calls -------------------------------------------------------------


def _readings(f0: float, n: int = 40, *, loud: float = -20.0, wpm: float = 150.0) -> list:
    return [{"speaker": "agent", "t": float(i), "f0_hz": f0, "loudness_db": loud, "wpm": wpm}
            for i in range(1, n + 1)] + [{"speaker": "customer", "t": 1.0, "f0_hz": 220.0,
                                          "loudness_db": -10.0, "wpm": 200.0}]


def test_a_calls_medians_are_the_agents_speech_only() -> None:
    from coach.team.baselines import call_medians

    m = call_medians(_readings(118.0) + [{"speaker": "agent", "t": 99.0, "f0_hz": None,
                                          "loudness_db": None, "wpm": None}])
    assert m == {"f0_hz": 118.0, "loudness_db": -20.0, "wpm": 150.0, "readings": 40}
    assert call_medians(_readings(118.0, n=5)) is None  # too little speech to count


def test_an_agent_tense_from_the_start_is_flagged_with_a_learned_baseline() -> None:
    """Today a call calibrates on its first 30 s: an agent whose pitch is up from the
    first word is measured against that and never flagged. With the baseline of their
    earlier calls (120 Hz) the same readings (160 Hz) are flagged within seconds."""
    from coach.cues import Baseline, CueEngine
    from coach.events import Prosody

    def tense_cues(baseline: Baseline | None) -> list:
        engine = CueEngine(load_playbook(), agent_baseline=baseline)
        out = []
        for i in range(1, 61):
            out += engine.feed(Prosody("agent", float(i), 160.0, -20.0, 150.0, f0_sd_st=2.0,
                                       voiced_s=0.8, speaking=True))
            out += engine.advance(float(i))
        return [c for c in out if c.id == "tone-tense"]

    assert tense_cues(None) == []
    flagged = tense_cues(Baseline(f0_hz=120.0, loudness_db=-20.0, wpm=150.0))
    assert flagged and flagged[0].t <= 10.0
