"""Cue latency in audio time, per streaming policy, side by side in one run.

    python bench/cue_latency.py [CALL ...] [--policies early,agreement] [--model tiny.en]
                                [--heldout N] [--json OUT]

Calls: the demo calls and the LCA call, or the CALLs given; ``--heldout N`` adds the first
N calls rendered from the held-out half of the judgement corpus (``bench/judge_audio``,
16 kHz; rendered on first use): phrasings and voices the engine was not tuned on.

Each call goes through exactly the streaming code live coaching uses (``coach analyze``,
fed in 0.1 s blocks as live capture is), once per policy. A cue's latency is the audio
time at which the pipeline emitted it minus its ``t`` (the end of its trigger word, or
the moment its measure crossed): what the policy and the engine cost, independent of how
busy the machine is. Live adds the compute time of a pass on top (`bench/live_bench.py`
measures that on the wall clock). Also: final-word latency, cues withdrawn, analysis
speed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import DATA, SAMPLES, table  # noqa: E402
from bench.live_bench import LATE_CUES, TIMING_CUES, VOICE_CUES, pct  # noqa: E402
from coach.analyze import analyze_file  # noqa: E402
from coach.asr import POLICIES, StreamingOptions  # noqa: E402
from coach.events import Cue, Retraction, Word  # noqa: E402
from coach.io.vad import SileroVad  # noqa: E402
from coach.io.whisper import WhisperTranscriber  # noqa: E402
from coach.pipeline import PipelineOptions  # noqa: E402
from coach.playbook import load_playbook  # noqa: E402


def run(path: Path, ch: str, tx, vad, playbook, sopts: StreamingOptions) -> dict:
    pending: list = []
    word_lat, cue_lat, cues, retracted = [], [], [], []
    now = [0.0]

    def on_event(e) -> None:
        pending.append(e)

    def progress(t: float) -> None:
        now[0] = t
        for e in pending:
            if isinstance(e, Word) and e.final:
                word_lat.append(t - e.end)
            elif isinstance(e, Cue):
                cues.append({"id": e.id, "t": round(e.t, 2), "lat": round(t - e.t, 2)})
                if e.id not in LATE_CUES | VOICE_CUES | TIMING_CUES:
                    cue_lat.append(t - e.t)
            elif isinstance(e, Retraction):
                retracted.append(e.id)
        pending.clear()

    t0 = time.perf_counter()
    res = analyze_file(path, transcriber=tx, make_vad=vad.shared, playbook=playbook,
                       agent_channel=ch, options=PipelineOptions(streaming=sopts),
                       on_event=on_event, progress=progress, block_s=0.1)
    dt = time.perf_counter() - t0
    return {"call": path.name, "word_lat": word_lat, "word_cue_lat": cue_lat, "cues": cues,
            "retracted": retracted, "x_realtime": res.duration_s / dt}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("calls", nargs="*", type=Path)
    ap.add_argument("--policies", default="early,agreement")
    ap.add_argument("--heldout", type=int, default=0,
                    help="also the first N held-out judgement calls, rendered (default: 0)")
    ap.add_argument("--model", default="tiny.en")
    ap.add_argument("--json")
    args = ap.parse_args()
    calls = [(p, "left") for p in args.calls] or [(p, "left") for p in sorted(SAMPLES.glob("*.flac"))]
    lca = DATA / "calls" / "lca" / "auto_repairs_49_L-caller_R-agent.flac"
    if not args.calls and lca.exists():
        calls.append((lca, "right"))
    if args.heldout:
        from bench.corpus import load_corpus
        from bench.judge_audio import render_all

        held = [it for it in load_corpus() if it.split == "heldout"]
        calls += [(Path(f"{stem}.16k.flac"), "left")
                  for stem, _ in render_all(held, log=lambda m: print(m, file=sys.stderr))
                  [:args.heldout]]
    tx = WhisperTranscriber(args.model)
    vad = SileroVad()
    playbook = load_playbook()
    results = {pol: [] for pol in args.policies.split(",")}
    for path, ch in calls:
        for pol in results:
            if pol not in POLICIES:
                raise SystemExit(f"unknown policy {pol}")
            r = run(path, ch, tx, vad, playbook, StreamingOptions.for_policy(pol))
            results[pol].append(r)
            print(f"  {path.name} {pol}: {[(c['id'], c['lat']) for c in r['cues']]}",
                  file=sys.stderr)
    head = ["policy", "final word p50 s", "final word p95 s", "word cue p50 s",
            "word cue p95 s", "word cues ≤ 1 s", "retracted", "x real time"]
    rows = []
    groups = list(results.items())
    if args.heldout:
        groups = [(f"{pol}, {name}", [r for r in rs if (".16k." in r["call"]) == held])
                  for held, name in ((False, "demo + LCA calls"), (True, "held-out calls"))
                  for pol, rs in results.items()]
    for label, rs in groups:
        wl = [x for r in rs for x in r["word_lat"]]
        cl = [x for r in rs for x in r["word_cue_lat"]]
        n = sum(len(r["cues"]) for r in rs)
        rows.append([label, pct(wl, .5), pct(wl, .95), pct(cl, .5), pct(cl, .95),
                     f"{sum(x <= 1.0 for x in cl)} of {len(cl)}",
                     f"{sum(len(r['retracted']) for r in rs)} of {n}",
                     sum(r["x_realtime"] for r in rs) / len(rs)])
    print(table(head, [["—" if x is None else x for x in row] for row in rows]))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
