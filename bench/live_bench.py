"""Live cue latency, CPU share and memory of `coach live` on recordings played in real time.

    python bench/live_bench.py [CALL ...] [--json OUT]

Each call is played through the live path (`coach live --source CALL --no-overlay`) as a
subprocess, while a websocket client records when every message arrives. Latency of a
message = its arrival (wall clock) minus the wall-clock moment its trigger ended in the
audio: `started_at` + the cue's `t` (for final words, + the word's `end`). CPU share is the
subprocess's CPU time over wall time on this machine's cores; memory is its peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import DATA, ROOT, SAMPLES, table  # noqa: E402

VOICE_CUES = {"pace-fast", "tone-tense", "volume-loud", "tone-flat"}
TIMING_CUES = {"dead-air", "talk-over", "monologue"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def run_call(path: Path, agent_channel: str) -> dict:
    from websockets.sync.client import connect

    port = free_port()
    cmd = [sys.executable, "-m", "coach.cli", "live", "--source", str(path), "--no-overlay",
           "--no-record", "--port", str(port), "--agent-channel", agent_channel]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    t_start = time.time()
    ws = None
    for _ in range(200):
        try:
            ws = connect(f"ws://127.0.0.1:{port}/ws", open_timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    if ws is None:
        proc.kill()
        raise RuntimeError(f"coach live did not start: {proc.stderr.read().decode()}")
    started_at = None
    word_lat, word_cue_lat, voice_cue_lat, timing_cue_lat, lags = [], [], [], [], []
    cues = []
    with ws:
        for raw in ws:
            now = time.time()
            m = json.loads(raw)
            if m["type"] == "call" and m["state"] == "start":
                started_at = m["started_at"]
            elif m["type"] == "call" and m["state"] == "end":
                break
            elif started_at is None:
                continue
            elif m["type"] == "word" and m["final"]:
                word_lat.append(now - (started_at + m["end"]))
            elif m["type"] == "status":
                lags.append(m["lag_s"])
            elif m["type"] == "cue":
                lat = now - (started_at + m["t"])
                cues.append((m["id"], round(lat, 2)))
                (voice_cue_lat if m["id"] in VOICE_CUES else
                 timing_cue_lat if m["id"] in TIMING_CUES else word_cue_lat).append(lat)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.time() - t_start
    cpu = usage.ru_utime + usage.ru_stime
    return {"call": path.name, "wall_s": wall, "cpu_share": cpu / wall / (os.cpu_count() or 1),
            "rss_mb": usage.ru_maxrss / 1024, "word_lat": word_lat,
            "word_cue_lat": word_cue_lat, "voice_cue_lat": voice_cue_lat,
            "timing_cue_lat": timing_cue_lat, "max_lag_s": max(lags) if lags else None,
            "cues": cues}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("calls", nargs="*", type=Path)
    ap.add_argument("--json")
    args = ap.parse_args()
    calls = [(p, "left") for p in args.calls] or [(p, "left") for p in sorted(SAMPLES.glob("*.flac"))]
    lca = DATA / "calls" / "lca" / "auto_repairs_49_L-caller_R-agent.flac"
    if not args.calls and lca.exists():
        calls.append((lca, "right"))
    results = []
    for path, ch in calls:
        r = run_call(path, ch)
        results.append(r)
        print(f"  {path.name}: {len(r['cues'])} cues, max lag {r['max_lag_s']}", file=sys.stderr)
    rows = []
    pooled = {k: [] for k in ("word_lat", "word_cue_lat", "voice_cue_lat", "timing_cue_lat")}
    for r in results:
        for k in pooled:
            pooled[k] += r[k]
        rows.append([r["call"], pct(r["word_lat"], .5), pct(r["word_lat"], .95),
                     pct(r["word_cue_lat"], .5), pct(r["word_cue_lat"], .95),
                     pct(r["voice_cue_lat"], .95), r["cpu_share"] * 100, r["rss_mb"],
                     r["max_lag_s"]])
    rows.append(["**pooled**", pct(pooled["word_lat"], .5), pct(pooled["word_lat"], .95),
                 pct(pooled["word_cue_lat"], .5), pct(pooled["word_cue_lat"], .95),
                 pct(pooled["voice_cue_lat"], .95),
                 statistics.mean(r["cpu_share"] for r in results) * 100,
                 max(r["rss_mb"] for r in results), max((r["max_lag_s"] or 0) for r in results)])
    print(table(["call", "final word p50 s", "final word p95 s", "word cue p50 s",
                 "word cue p95 s", "voice cue p95 s", "CPU % of machine", "peak RSS MB",
                 "max lag s"], [["—" if x is None else x for x in row] for row in rows]))
    print(f"\ncues: {sum(len(pooled[k]) for k in pooled if k != 'word_lat')} "
          f"(word {len(pooled['word_cue_lat'])}, voice {len(pooled['voice_cue_lat'])}, "
          f"timing {len(pooled['timing_cue_lat'])})")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
