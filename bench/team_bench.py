"""Team server benchmark: N agents publishing live calls to one `coach serve --team` on a
PostgreSQL store (started here), a supervisor's board open over its websocket.

Measures, in one run:
- board update latency: from a cue leaving an agent's coach (the simulator logs the Unix
  time it offered the cue to the client) to the board's websocket message showing it;
- the server process's CPU (% of one core) and memory, idle and with N agents, per agent;
- store growth per call-hour of live events (PostgreSQL relation sizes before/after);
- the per-agent page's data (``/api/team/agents/NAME/summary``) with 10,000 stored calls.

The agents are `python -m coach.team.simulate` processes replaying a demo call's events
(built from its manifest, no model, plus a cue every 4 s) in real time through the same client code as
`coach live --team`.

    python bench/team_bench.py [--agents 20] [--seconds 60] [--calls 10000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for p in (ROOT, ROOT / "tests"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import psutil  # noqa: E402

from coach.store import NewCall, open_store  # noqa: E402
from coach.store.team import TeamData  # noqa: E402


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def _cpu_mem(proc: psutil.Process, seconds: float) -> tuple[float, float]:
    """(CPU % of one core over ``seconds``, RSS MB at the end) of the server process."""
    t0 = proc.cpu_times()
    time.sleep(seconds)
    t1 = proc.cpu_times()
    cpu = (t1.user + t1.system - t0.user - t0.system) / seconds * 100
    return cpu, proc.memory_info().rss / 1e6


def _sizes(url: str) -> int:
    import psycopg

    from coach.store import open_store as _open

    with _open(url) as s:
        dsn = s._engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn) as c:
        return int(c.execute("SELECT pg_total_relation_size('live_events') + "
                             "pg_total_relation_size('live_calls')").fetchone()[0])


def _events_files(tmp: Path) -> list[Path]:
    from replay_data import manifest_events

    evs = [e for e in manifest_events() if e["type"] not in ("call", "dismiss")]
    # a cue every 4 s besides the call's own, so each call gives a dozen latency samples
    evs += [{"type": "cue", "id": "pace-fast", "t": float(t) + 0.5, "speaker": "agent",
             "severity": "nudge", "title": "Slow down", "advice": "", "evidence": {}}
            for t in range(2, 60, 4)]
    f = tmp / "call.jsonl"
    f.write_text("".join(json.dumps(e) + "\n" for e in evs))
    return [f]


def live_run(url: str, agents: int, seconds: float) -> dict:
    from team_helpers import BoardWatcher

    tmp = Path(tempfile.mkdtemp(prefix="coach-team-bench-"))
    with open_store(url) as store:
        td = TeamData(store)
        coach, _ = td.create_token("Bench Coach", "coach", None)
        toks = [td.create_token(f"Agent {i:02d}", "agent", "floor")[0] for i in range(agents)]
    port = _port()
    server = subprocess.Popen([sys.executable, "-m", "coach.cli", "serve", "--team", "--db", url,
                               "--port", str(port)], cwd=ROOT, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        proc = psutil.Process(server.pid)
        idle_cpu, idle_mb = _cpu_mem(proc, 5)
        size0 = _sizes(url)
        board = BoardWatcher(base, coach)
        files = _events_files(tmp)
        sims = []
        for i, tok in enumerate(toks):
            log = open(tmp / f"sim{i}.log", "w")
            sims.append((subprocess.Popen(
                [sys.executable, "-m", "coach.team.simulate", str(files[i % len(files)]),
                 "--team", base, "--log", "--max-seconds", str(seconds)],
                cwd=ROOT, stdout=log, env={**os.environ, "COACH_TEAM_TOKEN": tok}), log))
            time.sleep(seconds / agents / 4)  # staggered starts, as calls are
        time.sleep(min(10, seconds / 4))
        busy_cpu, busy_mb = _cpu_mem(proc, seconds / 2)
        for p, log in sims:
            p.wait(seconds * 3)
            log.close()
        time.sleep(1.0)
        board.stop()
        size1 = _sizes(url)
        offered = {}
        for i in range(agents):
            for line in (tmp / f"sim{i}.log").read_text().splitlines():
                d = json.loads(line)
                offered[(d["call"], round(d["t"], 3))] = d["offered_at"]
        seen: dict[tuple[str, float], float] = {}
        for at, m in board.messages:
            if m["type"] == "row" and m["row"]["last_cue"]:
                key = (m["row"]["call_id"], round(m["row"]["last_cue"]["t"], 3))
                seen.setdefault(key, at)
        lat = [seen[k] - v for k, v in offered.items() if k in seen]
        live_rows = len({m["row"]["call_id"] for _, m in board.messages if m["type"] == "row"})
        call_hours = agents * seconds / 3600
        return {
            "agents": agents, "seconds": seconds, "calls_on_board": live_rows,
            "cues": len(offered), "cues_seen": len(lat),
            "latency_p50_s": round(_pct(lat, 0.5), 3) if lat else None,
            "latency_p95_s": round(_pct(lat, 0.95), 3) if lat else None,
            "latency_max_s": round(max(lat), 3) if lat else None,
            "server_cpu_idle_pct": round(idle_cpu, 1), "server_cpu_busy_pct": round(busy_cpu, 1),
            "server_cpu_per_agent_pct": round((busy_cpu - idle_cpu) / agents, 2),
            "server_rss_idle_mb": round(idle_mb, 1), "server_rss_busy_mb": round(busy_mb, 1),
            "server_rss_per_agent_mb": round((busy_mb - idle_mb) / agents, 2),
            "live_events_mb_per_call_hour": round((size1 - size0) / 1e6 / call_hours, 2),
        }
    finally:
        server.terminate()
        server.wait(10)


def page_run(url: str, n_calls: int, requests: int = 30) -> dict:
    """10,000 stored calls (one agent holds a tenth), then the per-agent summary."""
    from team_helpers import http, team_server

    rng = random.Random(7)
    cue_ids = ["qualified-apology", "pace-fast", "dead-air", "name-frustration", "talk-over"]
    now = datetime.now(UTC)
    with open_store(url) as store:
        batch = []
        t0 = time.monotonic()
        for i in range(n_calls):
            agent = "Dana Reyes" if i % 10 == 0 else f"Agent {i % 37:02d}"
            started = now - timedelta(minutes=i * 13)
            events = [{"type": "cue", "id": rng.choice(cue_ids), "t": float(10 + k * 20),
                       "speaker": "agent", "severity": rng.choice(["nudge", "warn"]),
                       "title": "", "advice": "", "evidence": {}} for k in range(rng.randint(0, 6))]
            if i < 400:  # the latest calls carry prosody (the baseline reads 20 of them)
                events += [{"type": "prosody", "speaker": "agent", "t": float(s),
                            "f0_hz": 120.0 + rng.random() * 10, "loudness_db": -21.0,
                            "wpm": 150.0 + rng.random() * 20} for s in range(1, 300)]
            batch.append(NewCall({"agent": agent, "started_at": started, "source": f"b{i}",
                                  "duration_s": 240.0 + rng.random() * 300,
                                  "score": round(rng.uniform(20, 100), 1)}, events))
            if len(batch) == 500:
                store.add_calls(batch)
                batch = []
        if batch:
            store.add_calls(batch)
        fill_s = time.monotonic() - t0
        token, _ = TeamData(store).create_token("Page Coach", "coach", None)
        st, _ = team_server(store)
        try:
            times = []
            for k in range(requests + 3):
                t = time.perf_counter()
                s, body, _ = http(st.url, "GET", "/api/team/agents/Dana%20Reyes/summary?since="
                                  + (now - timedelta(days=400)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                                  token)
                dt = time.perf_counter() - t
                assert s == 200, body
                if k >= 3:
                    times.append(dt * 1000)
            calls_in_summary = body["calls"]
        finally:
            st.stop()
    return {"stored_calls": n_calls, "agent_calls": calls_in_summary,
            "fill_s": round(fill_s, 1), "summary_p50_ms": round(statistics.median(times), 1),
            "summary_p95_ms": round(_pct(times, 0.95), 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--agents", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--calls", type=int, default=10_000)
    ap.add_argument("--json", default=None)
    ap.add_argument("--page-only", action="store_true", help="only the per-agent page")
    args = ap.parse_args()
    from pgserver import PgServer

    load = os.getloadavg()[0]
    with PgServer(fast=False) as pg:
        live = None if args.page_only else live_run(pg.create_database("live"), args.agents,
                                                       args.seconds)
        page = page_run(pg.create_database("page"), args.calls)
    out = {"load_average_1min_at_start": round(load, 2), "live": live, "page": page}
    print(json.dumps(out, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
