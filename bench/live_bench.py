"""Live cue latency, CPU share and memory of `coach live` on recordings played in real time,
with the streaming policies side by side, on a quiet machine and under load.

    python bench/live_bench.py [CALL ...] [--policies early,agreement] [--model tiny.en]
                               [--base-calls N] [--load-calls N] [--json OUT]

Each call is played through the live path (`coach live --source CALL --no-overlay`) as a
subprocess, once per policy (policies alternate call by call, so drift on a shared machine
hits both alike), while a websocket client records when every message arrives. Latency of
a message = its arrival (wall clock) minus the wall-clock moment its trigger ended in the
audio: `started_at` + the cue's `t` (for final words, + the word's `end`). CPU share is the
subprocess's CPU time over wall time on this machine's cores; memory is its peak RSS.
Retractions are the `retract` events (cues withdrawn by the words after them).

`--base-calls N` also plays the first N calls with `--model base` (first policy); `--load-calls N` plays
the first N calls with another process keeping one core busy (a busy loop) to show the
service degrading (bigger steps, customer side finals-only) and recovering.
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
# cues judged at the end of a stretch or of the call, not at a trigger word
LATE_CUES = {"no-follow-up", "no-action", "name-frustration", "over-apology"}
HOG = "import time\nwhile True:\n    sum(i * i for i in range(10000))\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def run_call(path: Path, agent_channel: str, *, policy: str = "early", model: str = "tiny.en",
             load: bool = False, threads: int | None = None) -> dict:
    from websockets.sync.client import connect

    port = free_port()
    cmd = [sys.executable, "-m", "coach.cli", "live", "--source", str(path), "--no-overlay",
           "--no-record", "--port", str(port), "--agent-channel", agent_channel,
           "--policy", policy, "--model", model,
           *(["--threads", str(threads)] if threads else [])]
    hog = subprocess.Popen([sys.executable, "-c", HOG]) if load else None
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    t_start = time.time()
    ws = None
    for _ in range(600):
        try:
            ws = connect(f"ws://127.0.0.1:{port}/ws", open_timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    if ws is None:
        proc.kill()
        if hog:
            hog.kill()
        raise RuntimeError(f"coach live did not start: {proc.stderr.read().decode()}")
    started_at = None
    word_lat, word_cue_lat, voice_cue_lat, timing_cue_lat, lags = [], [], [], [], []
    cues, retractions, degraded_at, recovered_at = [], [], [], []
    degraded = False
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
                if m["degraded"] and not degraded:
                    degraded_at.append(round(now - started_at, 1))
                elif degraded and not m["degraded"]:
                    recovered_at.append(round(now - started_at, 1))
                degraded = m["degraded"]
            elif m["type"] == "retract":
                retractions.append(m["id"])
            elif m["type"] == "cue":
                lat = now - (started_at + m["t"])
                cues.append((m["id"], round(lat, 2)))
                if m["id"] in LATE_CUES:
                    continue
                (voice_cue_lat if m["id"] in VOICE_CUES else
                 timing_cue_lat if m["id"] in TIMING_CUES else word_cue_lat).append(lat)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.time() - t_start
    if hog:
        hog.kill()
        hog.wait()
    cpu = usage.ru_utime + usage.ru_stime
    return {"call": path.name, "policy": policy, "model": model, "load": load, "wall_s": wall,
            "cpu_share": cpu / wall / (os.cpu_count() or 1), "rss_mb": usage.ru_maxrss / 1024,
            "word_lat": word_lat, "word_cue_lat": word_cue_lat, "voice_cue_lat": voice_cue_lat,
            "timing_cue_lat": timing_cue_lat, "max_lag_s": max(lags) if lags else None,
            "cues": cues, "retractions": retractions, "degraded_at": degraded_at,
            "recovered_at": recovered_at, "degraded_at_end": degraded}


def summarise(label: str, results: list[dict]) -> list:
    if not results:
        return [label] + [None] * (len(HEAD) - 1)
    pooled = {k: [x for r in results for x in r[k]]
              for k in ("word_lat", "word_cue_lat", "voice_cue_lat")}
    n_cues = sum(len(r["cues"]) for r in results)
    n_retract = sum(len(r["retractions"]) for r in results)
    return [label, pct(pooled["word_lat"], .5), pct(pooled["word_lat"], .95),
            pct(pooled["word_cue_lat"], .5), pct(pooled["word_cue_lat"], .95),
            pct(pooled["voice_cue_lat"], .95), f"{n_retract} of {n_cues}",
            statistics.mean(r["cpu_share"] for r in results) * 100,
            max(r["rss_mb"] for r in results), max((r["max_lag_s"] or 0) for r in results)]


HEAD = ["run", "final word p50 s", "final word p95 s", "word cue p50 s", "word cue p95 s",
        "voice cue p95 s", "retracted", "CPU % of machine", "peak RSS MB", "max lag s"]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("calls", nargs="*", type=Path)
    ap.add_argument("--policies", default="early,agreement")
    ap.add_argument("--model", default="tiny.en")
    ap.add_argument("--threads", type=int, default=None,
                    help="the model's CPU threads (default: coach live's)")
    ap.add_argument("--base-calls", type=int, default=0,
                    help="also play the first N calls with --model base (sure policy)")
    ap.add_argument("--load-calls", type=int, default=0,
                    help="also play the first N calls with a busy process taking a core")
    ap.add_argument("--json")
    args = ap.parse_args()
    # the agent's channel: right for recordings named so (the LCA call), else left
    calls = [(p, "right" if "R-agent" in p.name else "left") for p in args.calls] \
        or [(p, "left") for p in sorted(SAMPLES.glob("*.flac"))]
    lca = DATA / "calls" / "lca" / "auto_repairs_49_L-caller_R-agent.flac"
    if not args.calls and lca.exists():
        calls.append((lca, "right"))
    policies = args.policies.split(",")
    results: list[dict] = []
    runs = [(p, ch, dict(policy=pol, model=args.model, threads=args.threads))
            for p, ch in calls for pol in policies]
    runs += [(p, ch, dict(policy=policies[0], model="base"))
             for p, ch in calls[:args.base_calls]]
    runs += [(p, ch, dict(policy=pol, model=args.model, load=True))
             for p, ch in calls[:args.load_calls] for pol in policies]
    for path, ch, kw in runs:
        r = run_call(path, ch, **kw)
        results.append(r)
        print(f"  {path.name} {kw}: {len(r['cues'])} cues, {len(r['retractions'])} retracted, "
              f"max lag {r['max_lag_s']}, CPU {r['cpu_share'] * 100:.0f} %, "
              f"degraded at {r['degraded_at']} recovered at {r['recovered_at']}",
              file=sys.stderr)

    def pick(**kw) -> list[dict]:
        return [r for r in results if all(r[k] == v for k, v in kw.items())]

    rows = []
    for pol in policies:
        for r in pick(policy=pol, model=args.model, load=False):
            rows.append(summarise(f"{r['call']} ({pol})", [r]))
    print(table(HEAD, [["—" if x is None else x for x in row] for row in rows]))
    print()
    rows = [summarise(f"**{pol}, {args.model}**", pick(policy=pol, model=args.model, load=False))
            for pol in policies]
    if args.base_calls:
        rows.append(summarise(f"{policies[0]}, base ({args.base_calls} calls)",
                              pick(model="base", load=False)))
        rows.append(summarise(f"{policies[0]}, {args.model}, same {args.base_calls} calls",
                              [r for r in pick(policy=policies[0], model=args.model, load=False)
                               if r["call"] in {x["call"] for x in pick(model="base")}]))
    for pol in policies if args.load_calls else ():
        got = pick(policy=pol, load=True)
        rows.append(summarise(f"{pol}, one core taken ({len(got)} calls)", got))
        degraded = sum(1 for r in got if r["degraded_at"])
        recovered = sum(1 for r in got if r["degraded_at"] and not r["degraded_at_end"])
        print(f"{pol} under load: degraded in {degraded} of {len(got)} calls, back to full "
              f"quality by the end in {recovered}", file=sys.stderr)
    print(table(HEAD, [["—" if x is None else x for x in row] for row in rows]))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
