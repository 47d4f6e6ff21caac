"""Past one server: two `coach serve --team` processes on one PostgreSQL store (started by
the tests) share live state through LISTEN/NOTIFY: an agent publishes to one, the board is
open on the other; when the first dies the agent moves to the second (as a load balancer
would send it) and nothing is lost or doubled."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

from coach.store import open_store
from coach.store.team import TeamData
from coach.team.client import TeamPublisher, new_call_id
from tests.conftest import ROOT
from tests.team_helpers import BoardWatcher, http, tokens


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(url: str, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "coach.cli", "serve", "--team", "--db", url,
                             "--port", str(port)], cwd=ROOT, env=dict(os.environ),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if http(f"http://127.0.0.1:{port}", "GET", "/health")[0] == 200:
                return proc
        except OSError:
            time.sleep(0.2)
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read())
    raise AssertionError("the server did not start")


def test_two_servers_share_the_board(pg_url) -> None:
    with open_store(pg_url) as store:
        toks = tokens(store)
    pa, pb = _port(), _port()
    a, b = _serve(pg_url, pa), _serve(pg_url, pb)
    base_a, base_b = f"http://127.0.0.1:{pa}", f"http://127.0.0.1:{pb}"
    board = BoardWatcher(base_b, toks["coach_north"])
    try:
        assert board.wait(lambda w: any(m["type"] == "board" for _, m in w.messages))
        call = new_call_id()
        pub = TeamPublisher(base_a, toks["dana"], call_id=call, retry_s=(0.1, 0.5)).start()
        sent: dict[float, float] = {}
        pub.offer({"type": "call", "state": "start", "t": 0.0, "started_at": time.time()})
        for i in range(1, 4):
            sent[float(i)] = time.time()
            pub.offer({"type": "cue", "id": "sorry-but", "t": float(i), "speaker": "agent",
                       "severity": "warn", "title": "Avoid the but", "evidence": {}})
            time.sleep(0.3)
        assert board.wait(lambda w: w.rows.get(call, {}).get("warn_count") == 3)
        assert [x["kind"] for x in board.alerts] == ["warn-cues"]
        # each cue reached the other server's board promptly (the 1 s p95 target is
        # measured by bench/team_bench.py; here a bound a busy CI machine keeps)
        arrivals = {}
        for at, m in board.messages:
            if m["type"] == "row" and m["row"]["call_id"] == call and m["row"]["last_cue"]:
                arrivals.setdefault(m["row"]["last_cue"]["t"], at)
        assert all(arrivals[t] - sent[t] < 2.0 for t in sent), (arrivals, sent)
        # the first server dies mid-call; the agent's coach comes back through the other
        a.kill()
        a.wait(5)
        pub.http_url, pub.ws_url = base_b, base_b.replace("http", "ws") + "/team/ws/agent"
        for i in range(4, 30):
            pub.offer({"type": "prosody", "speaker": "agent", "t": float(i), "pace_wpm": 150.0})
        pub.offer({"type": "call", "state": "end", "t": 30.0, "duration": 30.0})
        assert pub.finish(20)
        assert board.wait(lambda w: w.rows.get(call, {}).get("state") == "ended")
        with open_store(pg_url) as store:
            seqs = [e.seq for e in TeamData(store).live_events(call)]
        assert seqs == list(range(31))
        s, body, _ = http(base_b, "GET", "/api/team/board", toks["admin"])
        assert [r["duration_s"] for r in body["ended"] if r["call_id"] == call] == [30.0]
    finally:
        board.stop()
        for p in (a, b):
            if p.poll() is None:
                p.terminate()
                p.wait(10)
