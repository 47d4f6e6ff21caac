"""A shift of back-to-back calls through `coach live`'s session: memory, lag, open files.

    python bench/shift_bench.py [--hours 8] [--speed 3] [--policy early] [--json OUT]

Calls (the demo calls, the SpokenWOZ calls and the LCA call, in turn) are played one after
another through the live session (`LiveSession` with a `FileSource`, as `coach live
--source` does, `--speed` times faster than real time), recorded to a folder and imported
into a SQLite call store at each call's end, as `coach live` does, until `--hours` of audio
have been played. After every call: the process's resident memory, its open files, the
call's maximum lag and whether it degraded, and the number of calls in the store. Memory
and open files must stay flat (the figures after the first few calls against the last),
and every call must land in the store.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import DATA, SAMPLES, SPOKENWOZ, table  # noqa: E402


def shift_calls() -> list[tuple[Path, str]]:
    calls = [(p, "left") for p in sorted(SAMPLES.glob("*.flac"))]
    calls += [(p, "right") for p in SPOKENWOZ]
    lca = DATA / "calls" / "lca" / "auto_repairs_49_L-caller_R-agent.flac"
    if lca.exists():
        calls.append((lca, "right"))
    return calls


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


def unique_copy(path: Path, k: int, folder: Path) -> Path:
    """The call with a dither no one hears (-90 dBFS, seeded by ``k``): the store keys a
    recording by its audio bytes, and no two real calls of a shift are the same bytes."""
    import numpy as np
    import soundfile as sf

    y, sr = sf.read(path, dtype="float32", always_2d=True)
    y += np.random.default_rng(k).normal(0, 3e-5, y.shape).astype(np.float32)
    out = folder / f"call{k % 2}.flac"
    sf.write(out, y, sr, format="FLAC", subtype="PCM_16")
    return out


def run_shift(calls, *, total_s: float, speed: float, store, record_dir: Path, transcriber,
              make_vad, playbook, pipeline_options=None, on_call=None) -> list[dict]:
    """Play ``calls`` in turn until ``total_s`` seconds of audio; one dict per call."""
    import tempfile

    from coach.io.filesource import FileSource
    from coach.live import LiveSession
    from coach.store.importer import import_recording

    played, out, k = 0.0, [], 0
    tmp = Path(tempfile.mkdtemp(prefix="coach-shift-"))
    while played < total_s:
        path, ch = calls[k % len(calls)]
        k += 1
        src = FileSource(str(unique_copy(path, k, tmp)), agent_channel=ch, realtime=True,
                         speed=speed)
        t0 = time.time()
        session = LiveSession(src, transcriber=transcriber, make_vad=make_vad,
                              playbook=playbook, publish=lambda m: None,
                              record_dir=record_dir, meta={"agent": "shift"},
                              pipeline_options=pipeline_options)
        session.run()
        call_id = import_recording(store, session.recorder.dir, agent="shift", idle_s=0.0,
                                   playbook=playbook)
        played += session.pipeline.now
        rec = {"n": k, "call": path.name, "audio_s": round(session.pipeline.now, 1),
               "wall_s": round(time.time() - t0, 1), "max_lag_s": round(session.max_lag_s, 2),
               "degraded": any("falling behind" in (s.get("message") or "")
                               for s in session.statuses),
               "stored": call_id is not None, "rss_mb": round(rss_mb(), 1),
               "open_files": open_files(), "played_h": round(played / 3600, 3)}
        out.append(rec)
        if on_call is not None:
            on_call(rec)
    for f in tmp.iterdir():
        f.unlink()
    tmp.rmdir()
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hours", type=float, default=8.0)
    ap.add_argument("--speed", type=float, default=3.0)
    ap.add_argument("--policy", default="early")
    ap.add_argument("--json")
    args = ap.parse_args()

    from coach.asr import StreamingOptions
    from coach.io.vad import SileroVad
    from coach.io.whisper import WhisperTranscriber
    from coach.pipeline import PipelineOptions
    from coach.playbook import load_playbook
    from coach.store import open_store

    calls = shift_calls()
    tx, vad, pb = WhisperTranscriber(), SileroVad(), load_playbook()
    opts = PipelineOptions(streaming=StreamingOptions.for_policy(args.policy))
    with tempfile.TemporaryDirectory() as tmp, \
            open_store(f"sqlite:///{Path(tmp) / 'coach.db'}") as store:
        t0 = time.time()
        recs = run_shift(calls, total_s=args.hours * 3600, speed=args.speed, store=store,
                         record_dir=Path(tmp) / "live", transcriber=tx, make_vad=vad.shared,
                         playbook=pb, pipeline_options=opts,
                         on_call=lambda r: print(f"  {r}", file=sys.stderr))
        stored = store.list_calls(limit=1)[1]
        wall = time.time() - t0
    early = recs[min(len(recs) - 1, len(calls))]  # after one round of every call
    last = recs[-1]
    rows = [["calls", len(recs)], ["audio played", f"{last['played_h']:.2f} h"],
            ["wall time", f"{wall / 3600:.2f} h ({last['played_h'] * 3600 / wall:.1f}x real time)"],
            ["calls in the store", stored],
            ["resident memory after one round / at the end",
             f"{early['rss_mb']:.0f} / {last['rss_mb']:.0f} MB"],
            ["open files after one round / at the end",
             f"{early['open_files']} / {last['open_files']}"],
            ["max lag, first round / last round (s of wall time)",
             f"{max(r['max_lag_s'] for r in recs[:len(calls)]):.2f} / "
             f"{max(r['max_lag_s'] for r in recs[-len(calls):]):.2f}"],
            ["calls that degraded", sum(r["degraded"] for r in recs)]]
    print(table(["shift", f"{args.policy} policy, {args.speed:g}x real time"], rows))
    if args.json:
        Path(args.json).write_text(json.dumps(recs, indent=2))
    return 0 if stored == len(recs) else 1


if __name__ == "__main__":
    sys.exit(main())
