"""A team server for real: uvicorn on a free port, a real store (SQLite, and PostgreSQL
started by the tests), agents' coaches publishing through the real client code over
websockets, a supervisor's board read over its websocket."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from coach.store import open_store
from coach.store.team import TeamData
from coach.team.client import TeamPublisher, new_call_id, upload_recording
from coach.team.ingest import IngestOptions
from tests.conftest import ROOT
from tests.replay_data import manifest_events, noise_flac
from tests.team_helpers import BoardWatcher, http, team_server, tokens


@pytest.fixture
def team(store_url, tmp_path):
    store = open_store(store_url)
    toks = tokens(store)
    st, ts = team_server(store, spool_dir=tmp_path / "spool",
                         ingest_options=IngestOptions(recheck_s=0.3))
    env = {"store": store, "tokens": toks, "server": st, "team": ts, "tmp": tmp_path}
    yield env
    env["server"].stop()
    store.close()


def _steady(n: int, *, every_s: float = 0.0) -> list[dict]:
    """A call's events: start, n prosody readings a second apart with a cue every 10th."""
    out: list[dict] = [{"type": "call", "state": "start", "t": 0.0, "started_at": time.time(),
                        "pace_band": [120, 175]}]
    for i in range(1, n + 1):
        out.append({"type": "prosody", "speaker": "agent", "t": float(i), "f0_hz": 120.0,
                    "loudness_db": -20.0, "wpm": 150.0, "pace_wpm": 150.0 + i % 7})
        if i % 10 == 0:
            out.append({"type": "cue", "id": "sorry-but", "t": float(i), "speaker": "agent",
                        "severity": "warn", "title": "Avoid the but", "advice": "...",
                        "evidence": {"words": [{"text": "but", "start": i - 0.3, "end": i}]}})
    return out


def _seqs(store, call_id: str) -> list[int]:
    return [e.seq for e in TeamData(store).live_events(call_id)]


def test_a_live_call_reaches_the_board_as_the_policy_allows(team) -> None:
    base = team["server"].url
    board = BoardWatcher(base, team["tokens"]["coach_north"])
    pub = TeamPublisher(base, team["tokens"]["dana"], call_id=new_call_id(),
                        retry_s=(0.1, 0.5)).start()
    events = _steady(30)
    events.append({"type": "word", "speaker": "agent", "text": "secret", "start": 1.0,
                   "end": 1.2, "final": True})
    events.append({"type": "cue", "id": "tone-tense", "t": 12.0, "speaker": "agent",
                   "severity": "nudge", "title": "Relax", "advice": "", "evidence": {}})
    for e in events:
        pub.offer(e)
    assert pub.finish(15)
    assert board.wait(lambda b: pub.call_id in b.rows and b.rows[pub.call_id]["duration_s"]
                      >= 30)
    row = board.rows[pub.call_id]
    assert row["agent"] == "Dana" and row["warn_count"] == 3 and row["pace_wpm"] is not None
    assert row["last_cue"]["id"] == "sorry-but"
    assert [a["kind"] for a in board.alerts] == ["warn-cues"]
    stored = [e.data for e in TeamData(team["store"]).live_events(pub.call_id)]
    # the default policy: no words, no voice readings, no private cue, no evidence words
    assert not [e for e in stored if e["type"] == "word"]
    assert not [e for e in stored if e.get("id") == "tone-tense"]
    assert all("f0_hz" not in e and "loudness_db" not in e for e in stored
               if e["type"] == "prosody")
    assert all(e["evidence"] == {} for e in stored if e["type"] == "cue")
    board.stop()
    # a coach of another team sees none of it
    other = BoardWatcher(base, team["tokens"]["coach_all"])
    assert other.wait(lambda b: pub.call_id in b.rows)
    other.stop()


def test_the_server_going_away_loses_nothing_and_duplicates_nothing(team) -> None:
    """A network cut as the agent sees it: the server stops mid-call and comes back (a
    new process on the same port); coaching never waits, and afterwards the store holds
    every event of the call exactly once."""
    base, port = team["server"].url, team["server"].port
    pub = TeamPublisher(base, team["tokens"]["dana"], call_id=new_call_id(),
                        retry_s=(0.1, 0.4)).start()
    events = _steady(400)
    offered = threading.Event()

    def agent() -> None:
        for i, e in enumerate(events):
            pub.offer(e)
            if i % 4 == 0:
                time.sleep(0.01)
        offered.set()

    threading.Thread(target=agent, daemon=True).start()
    deadline = time.monotonic() + 10
    while pub.acked < 50 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert pub.acked >= 50
    team["server"].stop()  # the cut: everything in flight is lost on the wire
    time.sleep(0.8)
    assert pub.state == "offline"
    st, _ = team_server(team["store"], port=port, spool_dir=team["tmp"] / "spool")
    team["server"] = st
    assert offered.wait(20)
    assert pub.finish(20), (pub.acked, pub.pending)
    seqs = _seqs(team["store"], pub.call_id)
    assert seqs == list(range(len(events)))  # all of them, once each, in order
    # the restarted server rebuilt its board from the store
    s, body, _ = http(st.url, "GET", "/api/team/board", team["tokens"]["admin"])
    rows = {r["call_id"]: r for r in body["rows"]}
    assert rows[pub.call_id]["warn_count"] == 40 and rows[pub.call_id]["duration_s"] == 400


def _raw_agent(url: str, token: str, frames: list, *, read_s: float = 1.5) -> tuple[list, tuple]:
    """Send frames as an agent; (the server's replies, (close code, reason))."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    async def run():  # type: ignore[no-untyped-def]
        replies, closed = [], (0, "")
        try:
            async with connect(url.replace("http://", "ws://") + "/team/ws/agent",
                               additional_headers={"Authorization": f"Bearer {token}"}) as ws:
                replies.append(json.loads(await ws.recv()))
                for f in frames:
                    await ws.send(f if isinstance(f, str) else json.dumps(f))
                deadline = time.monotonic() + read_s
                while time.monotonic() < deadline:
                    try:
                        replies.append(json.loads(await asyncio.wait_for(ws.recv(), 0.2)))
                    except TimeoutError:
                        continue
        except ConnectionClosed as e:
            closed = (e.rcvd.code, e.rcvd.reason) if e.rcvd else (1006, "")
        return replies, closed

    return asyncio.run(run())


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_malformed_messages_are_answered_and_dropped(team) -> None:
    base = team["server"].url
    call = new_call_id()
    sam = TeamPublisher(base, team["tokens"]["sam"], call_id=new_call_id()).start()
    good = {"seq": 0, "type": "call", "state": "start", "t": 0.0}
    replies, closed = _raw_agent(base, team["tokens"]["dana"], [
        "this is not json",
        {"type": "hello"},
        {"type": "events", "call": "short", "events": [good]},
        {"type": "events", "call": call, "events": [
            good, {"seq": 1, "type": "cue", "id": "x", "t": float("1e9"), "severity": "warn"},
            {"seq": 2, "type": "bogus"}, {"seq": -3, "type": "turn"},
            {"seq": 4, "type": "turn", "speaker": "robot", "start": 0, "end": 1},
            {"seq": 5, "type": "activity", "speaker": "agent", "t": 1.0, "speaking": True}]},
    ])
    assert closed == (0, "")  # still connected
    errors = [r["message"] for r in replies if r["type"] == "error"]
    assert errors[:3] == [
        "a message that is not JSON was dropped",
        "unknown message 'hello' (expected type \"events\")",
        "an events message needs \"call\": 32 lower-case hex digits"]
    assert any("is not a time within a call" in e for e in errors)
    assert any("unknown event type 'bogus'" in e for e in errors)
    assert any("seq" in e for e in errors) and any("speaker must be" in e for e in errors)
    assert {"type": "ack", "call": call, "seq": 5} in replies
    assert _seqs(team["store"], call) == [0, 5]
    for i in range(3):
        sam.offer({"type": "status", "lag_s": 0.1, "degraded": False, "message": None, "i": i})
    assert sam.finish(10)  # another agent was served all along
    # a call id already used by another agent is not theirs to write to
    replies, _ = _raw_agent(base, team["tokens"]["dana"], [
        {"type": "events", "call": sam.call_id, "events": [good | {"seq": 9}]}])
    assert any("another agent's" in r.get("message", "") for r in replies)
    assert _seqs(team["store"], sam.call_id) == [0, 1, 2]


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_a_revoked_agent_is_refused_and_disconnected(team) -> None:
    base = team["server"].url
    pub = TeamPublisher(base, team["tokens"]["dana"], call_id=new_call_id(),
                        retry_s=(0.1, 0.3)).start()
    pub.offer({"type": "call", "state": "start", "t": 0.0})
    deadline = time.monotonic() + 5
    while pub.acked < 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert pub.state == "connected"
    s, _, _ = http(base, "DELETE", "/api/team/tokens/1", team["tokens"]["admin"])  # Dana's
    assert s == 200
    deadline = time.monotonic() + 5
    while pub.refusal is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pub.refusal.startswith("forbidden: this token was revoked")
    assert pub.state == "refused"
    replies, closed = _raw_agent(base, team["tokens"]["dana"], [])
    assert closed[0] == 1008 and "revoked" in closed[1]
    pub.stop()


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_a_flooding_client_is_dropped_and_others_carry_on(team, tmp_path) -> None:
    team["server"].stop()
    st, _ = team_server(team["store"], ingest_options=IngestOptions(rate=50, burst=300))
    team["server"] = st
    sam = TeamPublisher(st.url, team["tokens"]["sam"], call_id=new_call_id()).start()
    call = new_call_id()
    frames = [{"type": "events", "call": call, "events": [
        {"seq": i * 100 + j, "type": "activity", "speaker": "agent", "t": 1.0,
         "speaking": True} for j in range(100)]} for i in range(20)]
    _, closed = _raw_agent(st.url, team["tokens"]["dana"], frames, read_s=3)
    assert closed[0] == 1008 and closed[1].startswith("flooding: more than 50 events a second")
    assert len(_seqs(team["store"], call)) <= 300
    for _ in range(5):
        sam.offer({"type": "status", "lag_s": 0.1, "degraded": False, "message": None})
    assert sam.finish(10) and len(_seqs(team["store"], sam.call_id)) == 5


def _recording(folder: Path, call_id: str, *, finished: bool = True) -> Path:
    folder.mkdir(parents=True)
    noise_flac(folder / "audio.flac", 2)
    events = manifest_events()
    (folder / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    (folder / "call.json").write_text(json.dumps({
        "agent": "whoever", "started_at": 1_763_700_000.0, "finished": finished,
        "duration": 60.0, "team_call": call_id, "channels": ["agent", "customer"]}))
    return folder


def test_the_finished_call_goes_into_the_team_store_once(team) -> None:
    base, store = team["server"].url, team["store"]
    board = BoardWatcher(base, team["tokens"]["admin"])
    pub = TeamPublisher(base, team["tokens"]["dana"], call_id=new_call_id()).start()
    for e in _steady(3) + [{"type": "call", "state": "end", "t": 3.0, "duration": 3.0}]:
        pub.offer(e)
    assert pub.finish(10)
    folder = _recording(team["tmp"] / "rec" / "20250101-090000", pub.call_id)
    assert upload_recording(folder, base, team["tokens"]["dana"]) == pub.call_id
    assert upload_recording(folder, base, team["tokens"]["dana"]) == pub.call_id  # again
    rows, total = store.list_calls()
    assert total == 1 and rows[0]["id"] == pub.call_id and rows[0]["agent"] == "Dana"
    call = store.get_call(pub.call_id)
    assert call["audio_bytes"] > 0 and call["score"] is not None and call["words"]
    assert (folder / "team-upload.json").is_file()
    assert board.wait(lambda b: b.rows.get(pub.call_id, {}).get("stored") is True)
    board.stop()
    # a coach's token cannot send calls, and Sam cannot overwrite Dana's
    s, body, _ = http(base, "POST", f"/api/team/calls/{pub.call_id}", team["tokens"]["sam"],
                      {"meta": {"source_key": "0" * 64}, "events": []})
    assert s == 403 and body["detail"] == "forbidden: this call is another agent's"


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_an_agent_process_killed_mid_call(team, tmp_path) -> None:
    """`python -m coach.team.simulate` (the client code in its own process) is killed
    mid-call: the board shows the call disconnected, and what reached the server is
    there once, in order, without gaps."""
    base = team["server"].url
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(e) + "\n" for e in _steady(60)))
    board = BoardWatcher(base, team["tokens"]["admin"])
    proc = subprocess.Popen(
        [sys.executable, "-m", "coach.team.simulate", str(events), "--team", base,
         "--speed", "10"], cwd=ROOT, env={**os.environ, "COACH_TEAM_TOKEN":
                                              team["tokens"]["dana"]})
    try:
        assert board.wait(lambda b: any(r["duration_s"] >= 15 for r in b.rows.values()), 30)
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
        assert board.wait(lambda b: any(r["connection"] == "disconnected"
                                        for r in b.rows.values()), 10)
    finally:
        if proc.poll() is None:
            proc.kill()
    (call_id,) = board.rows
    seqs = _seqs(team["store"], call_id)
    assert seqs == list(range(len(seqs))) and len(seqs) >= 15
    board.stop()


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_the_voice_baseline_is_learned_from_stored_calls(team) -> None:
    from coach.team.baselines import learn_baseline

    store, base = team["store"], team["server"].url

    def call(f0: float, day: int) -> None:
        store.add_call(meta={"agent": "Dana", "started_at": f"2025-03-0{day}T09:00:00Z",
                             "source": f"{day}.flac"},
                       events=[{"type": "prosody", "speaker": "agent", "t": float(i),
                                "f0_hz": f0, "loudness_db": -21.0, "wpm": 140.0 + day}
                               for i in range(1, 31)], audio_path=None)

    call(118.0, 1)
    call(124.0, 2)
    assert learn_baseline(store, "Dana") is None  # a new agent: calls calibrate themselves
    s, body, _ = http(base, "GET", "/api/team/agents/Dana/baseline", team["tokens"]["dana"])
    assert s == 200 and body["calls"] == 0 and "each call calibrates itself" in body["message"]
    call(190.0, 3)  # one tense call does not move the baseline much: medians of medians
    learned = learn_baseline(store, "Dana")
    assert learned.calls == 3 and learned.baseline.f0_hz == 124.0
    assert learned.baseline.wpm == 142.0 and learned.baseline.loudness_db == -21.0
    s, body, _ = http(base, "GET", "/api/team/agents/Dana/baseline",
                      team["tokens"]["coach_north"])
    assert s == 200 and body["f0_hz"] == 124.0 and body["message"] == (
        "voice baseline from 3 earlier calls: pace 142 wpm, pitch 124 Hz, level -21 dBFS")
    assert http(base, "GET", "/api/team/agents/Dana/baseline", team["tokens"]["sam"])[0] == 403


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_an_agent_disputes_a_cue_and_the_coach_resolves_it(team) -> None:
    store, base, t = team["store"], team["server"].url, team["tokens"]
    call = store.add_call(meta={"agent": "Dana", "started_at": time.time() - 3600,
                                "source": "a.flac", "score": 41}, events=manifest_events(),
                          audio_path=None)
    other = store.add_call(meta={"agent": "Dana", "started_at": time.time() - 7200,
                                 "source": "b.flac"}, events=manifest_events(), audio_path=None)
    s, r, _ = http(base, "GET", f"/api/calls/{call}/review", t["dana"])
    assert s == 200 and set(r["rubric"]["steps"]) >= {"ownership", "empathy"}
    assert [c["id"] for c in r["cues"]][:1] == ["qualified-apology"]
    s, body, _ = http(base, "POST", f"/api/calls/{call}/reviews", t["dana"],
                      {"kind": "dispute", "target": "cue", "cue_idx": 0, "comment": ""})
    assert s == 422 and "needs a comment" in body["detail"]
    s, d1, _ = http(base, "POST", f"/api/calls/{call}/reviews", t["dana"],
                    {"kind": "dispute", "target": "cue", "cue_idx": 0,
                     "comment": "I said sorry, but then I fixed it at once"})
    assert s == 201 and d1["status"] == "open" and d1["cue_id"] == "qualified-apology"
    s, d2, _ = http(base, "POST", f"/api/calls/{other}/reviews", t["dana"],
                    {"kind": "dispute", "target": "cue", "cue_idx": 0, "comment": "wrong"})
    s, _, _ = http(base, "POST", f"/api/calls/{call}/reviews", t["dana"], {"kind": "ack"})
    assert s == 201
    assert http(base, "POST", f"/api/calls/{call}/reviews", t["coach_north"],
                {"kind": "ack"})[0] == 403
    s, open_, _ = http(base, "GET", "/api/team/reviews", t["coach_north"])
    assert sorted(x["id"] for x in open_) == sorted([d1["id"], d2["id"]])
    assert http(base, "GET", "/api/team/reviews", t["sam"])[1] == []  # not his
    # the coach resolves: one overturned (the cue was wrong), one upheld
    s, done, _ = http(base, "PUT", f"/api/team/reviews/{d1['id']}", t["coach_north"],
                      {"status": "overturned", "resolution": "Agreed, the fix came at once."})
    assert s == 200 and done["status"] == "overturned" and done["resolved_by"] == "Nia"
    http(base, "PUT", f"/api/team/reviews/{d2['id']}", t["coach_north"],
         {"status": "upheld", "resolution": "The but undid the apology."})
    assert http(base, "GET", "/api/team/reviews", t["coach_north"])[1] == []
    s, rates, _ = http(base, "GET", "/api/team/false-cues", t["coach_north"])
    by_id = {r["cue_id"]: r for r in rates}
    assert by_id["qualified-apology"] == {"cue_id": "qualified-apology", "fired": 2, "wrong": 1,
                                          "rate": 0.5}
    assert by_id["pace-fast"]["wrong"] == 0  # dismissed is not "wrong"
    s, summary, _ = http(base, "GET", "/api/team/agents/Dana/summary", t["dana"])
    assert summary["calls"] == 2 and summary["cue_rates"][0]["count"] == 2
    assert summary["worst"][0]["id"] == call and len(summary["reviews"]) == 3
