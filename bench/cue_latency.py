"""Cue latency in audio time, per streaming policy, side by side in one run.

    python bench/cue_latency.py [CALL ...] [--policies early,agreement] [--model tiny.en]
                                [--heldout N] [--tune N] [--json OUT]

Calls: the demo calls and the LCA call, or the CALLs given; ``--heldout N`` adds the first
N calls rendered from the held-out half of the judgement corpus (``bench/judge_audio``,
16 kHz; rendered on first use): phrasings and voices the engine was not tuned on.
``--tune N`` runs the first N calls of the tuning half instead, and nothing else: that is
where a policy's settings are chosen, e.g. ``--policies early,early:look_s=0.3``
(a policy, then ``:`` and comma-free ``key=value`` settings joined by ``+``).

Each call goes through exactly the streaming code live coaching uses (``coach analyze``,
fed in 0.1 s blocks as live capture is), once per policy. A cue's latency is the audio
time at which the pipeline emitted it minus its ``t`` (the end of its trigger word, or
the moment its measure crossed): what the policy and the engine cost, independent of how
busy the machine is. Live adds the compute time of a pass on top (`bench/live_bench.py`
measures that on the wall clock). Also: final-word latency (over both sides, and for the
agent's and the customer's words apart), cues withdrawn, analysis speed.
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
    side_lat: dict[str, list[float]] = {"agent": [], "customer": []}
    now = [0.0]

    def on_event(e) -> None:
        pending.append(e)

    def progress(t: float) -> None:
        now[0] = t
        for e in pending:
            if isinstance(e, Word) and e.final:
                word_lat.append(t - e.end)
                side_lat[e.speaker].append(t - e.end)
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
    return {"call": path.name, "word_lat": word_lat, "agent_word_lat": side_lat["agent"],
            "customer_word_lat": side_lat["customer"], "word_cue_lat": cue_lat, "cues": cues,
            "retracted": retracted, "x_realtime": res.duration_s / dt}


def _p50_95(xs: list[float]) -> str:
    if not xs:
        return "—"
    return f"{pct(xs, .5):.2f} / {pct(xs, .95):.2f}"


def _rendered(split: str, n: int) -> list[tuple[Path, str]]:
    from bench.corpus import load_corpus
    from bench.judge_audio import render_all

    items = [it for it in load_corpus() if it.split == split]
    return [(Path(f"{stem}.16k.flac"), "left")
            for stem, _ in render_all(items, log=lambda m: print(m, file=sys.stderr), limit=n)]


def _options(spec: str) -> StreamingOptions:
    """``early`` or ``early:look_s=0.3+early_prob=0.9`` (or ``+customer_finals_only=false``)."""
    name, _, sets = spec.partition(":")
    if name not in POLICIES:
        raise SystemExit(f"unknown policy {name}")
    changes = {}
    for kv in filter(None, sets.split("+")):
        key, _, value = kv.partition("=")
        if key not in StreamingOptions.__dataclass_fields__:
            raise SystemExit(f"unknown streaming option {key}")
        default = getattr(StreamingOptions(), key)
        changes[key] = (None if value == "none" else value.lower() in ("1", "true", "yes")
                        if isinstance(default, bool) else type(default or 0.0)(value))
    return StreamingOptions.for_policy(name, **changes)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("calls", nargs="*", type=Path)
    ap.add_argument("--policies", default="early,agreement")
    ap.add_argument("--heldout", type=int, default=0,
                    help="also the first N held-out judgement calls, rendered (default: 0)")
    ap.add_argument("--tune", type=int, default=0,
                    help="only the first N calls of the tuning half, rendered")
    ap.add_argument("--model", default="tiny.en")
    ap.add_argument("--json")
    args = ap.parse_args()
    calls = [(p, "left") for p in args.calls] or [(p, "left") for p in sorted(SAMPLES.glob("*.flac"))]
    lca = DATA / "calls" / "lca" / "auto_repairs_49_L-caller_R-agent.flac"
    if not args.calls and lca.exists():
        calls.append((lca, "right"))
    if args.tune:
        calls = _rendered("tune", args.tune)
    elif args.heldout:
        calls += _rendered("heldout", args.heldout)
    tx = WhisperTranscriber(args.model)
    vad = SileroVad()
    playbook = load_playbook()
    results = {pol: [] for pol in args.policies.split(",")}
    options = {pol: _options(pol) for pol in results}
    for path, ch in calls:
        for pol in results:
            r = run(path, ch, tx, vad, playbook, options[pol])
            results[pol].append(r)
            print(f"  {path.name} {pol}: {[(c['id'], c['lat']) for c in r['cues']]}",
                  file=sys.stderr)
    head = ["policy", "final word p50 s", "final word p95 s", "agent's p50 / p95 s",
            "customer's p50 / p95 s", "word cue p50 s",
            "word cue p95 s", "word cues ≤ 1 s", "retracted", "x real time"]
    rows = []
    groups = list(results.items())
    if args.heldout and not args.tune:
        groups = [(f"{pol}, {name}", [r for r in rs if (".16k." in r["call"]) == held])
                  for held, name in ((False, "demo + LCA calls"), (True, "held-out calls"))
                  for pol, rs in results.items()]
    for label, rs in groups:
        wl = [x for r in rs for x in r["word_lat"]]
        cl = [x for r in rs for x in r["word_cue_lat"]]
        n = sum(len(r["cues"]) for r in rs)
        sides = [_p50_95([x for r in rs for x in r[f"{side}_word_lat"]])
                 for side in ("agent", "customer")]
        rows.append([label, pct(wl, .5), pct(wl, .95), *sides, pct(cl, .5), pct(cl, .95),
                     f"{sum(x <= 1.0 for x in cl)} of {len(cl)}",
                     f"{sum(len(r['retracted']) for r in rs)} of {n}",
                     sum(r["x_realtime"] for r in rs) / len(rs)])
    print(table(head, [["—" if x is None else x for x in row] for row in rows]))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
