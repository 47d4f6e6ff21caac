"""`coach qa` throughput and word error rate, in one run.

    python bench/qa_bench.py [--json OUT] [--repeat N] [--no-dask] [--quick]

Throughput, in audio hours per wall-clock hour, of the same batch (every call in
../shared/data/calls plus the demo calls, ``--repeat`` times: later copies are re-encoded
FLAC <-> WAV, so their bytes and keys differ but the audio is the same) analysed in fast
mode by ``run_qa``:

- single: one process using every core (``--workers 1 --threads <cores>``);
- pool: one worker process per core, one model thread each (the default);
- dask: a real ``dask scheduler`` and ``dask worker --nworkers <cores> --nthreads 1``
  started as separate processes on this machine (``--executor dask://...``).

Wall time covers the whole run (hashing, worker start-up and model loading included);
the cluster's own start-up is not (it is an existing cluster to coach).

Word error rate of every mode against an offline faster-whisper run of the same model on
the same audio (beam 5, 30 s windows), after Whisper's English normaliser: fast (greedy,
the pool run's transcripts), fast with ``--beam 5``, and live (the streaming pipeline),
on the SpokenWOZ calls and on every call with a reference. The machine's load average is
recorded with each figure: other work on the machine lowers throughput.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import soundfile as sf  # noqa: E402

from bench.asr_bench import channel_audio, wer  # noqa: E402
from bench.common import DATA, SAMPLES, SPOKENWOZ, sample_reference, spokenwoz_reference, table  # noqa: E402
from coach.qa.analyse_call import analyse_one  # noqa: E402
from coach.qa.runner import QaOptions, run_qa  # noqa: E402
from coach.qa.sources import parse_sample  # noqa: E402
from coach.qa.workers import cores  # noqa: E402

LCA = sorted((DATA / "calls" / "lca").glob("*.flac"))


class _Done(Exception):
    """Throughput only (--no-wer): skip the WER part."""


def build_set(root: Path, repeat: int, quick: bool) -> dict[str, Path]:
    """The batch under ``root``; returns {call name of the first copy: original path}."""
    originals: list[tuple[Path, str, Path | None]] = []  # (audio, name in the set, manifest)
    originals += [(p, f"{p.stem}_R-agent", None) for p in SPOKENWOZ]  # agent on the right
    if not quick:
        originals += [(p, p.stem, None) for p in LCA]  # the name says R-agent
        originals += [(p, p.stem, p.with_suffix(".json")) for p in sorted(SAMPLES.glob("*.flac"))]
    names: dict[str, Path] = {}
    for i in range(repeat):
        d = root / f"copy{i}"
        d.mkdir(parents=True)
        for src, name, manifest in originals:
            if i == 0:
                dest = d / f"{name}{src.suffix}"
                os.symlink(src, dest)
                names[name] = src
            else:  # same samples, other container: other bytes, other key
                data, rate = sf.read(src, dtype="int16", always_2d=True)
                ext = ".wav" if src.suffix == ".flac" else ".flac"
                sf.write(d / f"{name}{ext}", data, rate, subtype="PCM_16")
            if manifest is not None:
                os.symlink(manifest, d / f"{name}.json")
    return names


def throughput(label: str, source: Path, out: Path, **kw) -> dict:
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    s = run_qa(QaOptions(source=str(source), out_dir=out, sample=parse_sample("100%"), **kw))
    wall = time.perf_counter() - t0
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    ok = [r for r in rows if r["status"] == "ok"]
    audio = sum(float(r["duration_s"]) for r in ok)
    busy = sum(float(r["seconds"]) for r in ok)
    fig = {"label": label, "calls": len(ok), "skipped": len(rows) - len(ok),
           "audio_s": round(audio, 1), "wall_s": round(wall, 1),
           "x_realtime": round(audio / wall, 1),
           "per_call_x_realtime": round(audio / busy, 1) if busy else None,
           "load_before": round(load0, 2), "load_after": round(os.getloadavg()[0], 2)}
    print(f"  {label}: {fig['calls']} calls, {audio / 60:.1f} min in {wall:.0f} s = "
          f"{fig['x_realtime']}x real time (load {load0:.1f})", file=sys.stderr)
    assert s.analysed == len(ok)
    return fig


def offline_text(path: Path, channel: str, model) -> dict[str, str]:
    out = {}
    for sp, y in channel_audio(path, channel).items():
        segs, _ = model.transcribe(y, language="en")
        out[sp] = " ".join(s.text.strip() for s in segs)
    return out


def result_text(r: dict) -> dict[str, str]:
    return {sp: " ".join(ln["text"] for ln in r["transcript"] if ln["speaker"] == sp)
            for sp in ("agent", "customer")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--repeat", type=int, default=2, help="copies of the call set (default 2)")
    ap.add_argument("--runs", default="pool,single,dask",
                    help="throughput runs, comma-separated (default pool,single,dask)")
    ap.add_argument("--no-dask", action="store_true", help="skip the Dask run")
    ap.add_argument("--no-wer", action="store_true", help="throughput only")
    ap.add_argument("--quick", action="store_true", help="SpokenWOZ calls only, once")
    args = ap.parse_args()
    if not SPOKENWOZ:
        print("no calls found: ../shared/data is missing", file=sys.stderr)
        return 1
    repeat = 1 if args.quick else max(1, args.repeat)
    n = cores()
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")  # as in the QA workers: same features
    tmp = Path(tempfile.mkdtemp(prefix="coach-qa-bench-"))
    figures: dict = {"cores": n, "repeat": repeat, "throughput": {}, "wer": {}}
    try:
        names = build_set(tmp / "calls", repeat, args.quick)
        print(f"QA bench: {len(names)} calls x {repeat} on {n} cores", file=sys.stderr)
        tp = figures["throughput"]
        runs = {r.strip() for r in args.runs.split(",")} - ({"dask"} if args.no_dask else set())
        if "pool" in runs or not args.no_wer:  # the WER of fast mode comes from this run
            tp["pool"] = throughput("pool", tmp / "calls", tmp / "out-pool", workers=n,
                                    threads=1)
        if "single" in runs:
            tp["single"] = throughput("single", tmp / "calls", tmp / "out-single", workers=1,
                                      threads=n)
        if "dask" in runs:
            from coach.qa.dask_executor import spawn_cluster

            with spawn_cluster(n, 1) as address:
                tp["dask"] = throughput("dask", tmp / "calls", tmp / "out-dask",
                                        executor=address)
        figures["audio_s"] = next(iter(tp.values()))["audio_s"] if tp else 0.0
        if args.no_wer:
            raise _Done

        # word error rate: every mode against the offline reference, same model
        pool_rows = {r["call"]: r for r in map(json.loads, (
            tmp / "out-pool" / "results.jsonl").read_text().splitlines())
            if Path(r["path"]).parent.name == "copy0"}
        refs: dict[str, tuple[Path, str, dict[str, str]]] = {}
        for name, src in names.items():
            if src in SPOKENWOZ:
                refs[name] = (src, "right", spokenwoz_reference(src))
            elif src.parent == SAMPLES:
                refs[name] = (src, "left", sample_reference(src.with_suffix(".json")))
        from coach.io.whisper import WhisperTranscriber

        model = WhisperTranscriber(cpu_threads=n).model
        modes = ("offline", "fast", "fast_beam5", "live")
        pooled = {scope: {m: [0, 0] for m in modes} for scope in ("spokenwoz", "all")}
        speed = {m: [0.0, 0.0] for m in ("fast_beam5", "live")}
        rows = []
        for name, (src, ch, ref) in refs.items():
            hyp = {"offline": offline_text(src, ch, model),
                   "fast": result_text(pool_rows[name])}
            for mode, kw in (("fast_beam5", {"beam": 5}), ("live", {"fast": False})):
                r = analyse_one(src, agent_channel=ch, threads=n, **kw)
                assert r["status"] == "ok", r["reason"]
                hyp[mode] = result_text(r)
                speed[mode][0] += r["duration_s"]
                speed[mode][1] += r["seconds"]
            rec = [name]
            for mode in modes:
                e = k = 0
                for sp in ("agent", "customer"):
                    de, dk = wer(ref[sp], hyp[mode].get(sp, ""))
                    e, k = e + de, k + dk
                for scope in ("all", "spokenwoz") if src in SPOKENWOZ else ("all",):
                    pooled[scope][mode][0] += e
                    pooled[scope][mode][1] += k
                rec.append(e / k if k else 0.0)
            rows.append(rec)
            print(f"  WER {name}: done", file=sys.stderr)
        for scope, p in pooled.items():
            w = {m: (v[0] / v[1] if v[1] else 0.0) for m, v in p.items()}
            figures["wer"][scope] = {m: round(x, 4) for m, x in w.items()}
            figures["wer"][scope]["words"] = p["offline"][1]
            figures["wer"][scope]["ratio_vs_offline"] = {
                m: round(w[m] / w["offline"], 3) if w["offline"] else None
                for m in modes if m != "offline"}
            rows.append([f"**{scope} pooled**", *(w[m] for m in modes)])
        figures["single_process_x_realtime"] = {
            m: round(v[0] / v[1], 1) for m, v in speed.items() if v[1]}
    except _Done:
        pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    tp = figures["throughput"]
    print(table(["run", "calls", "audio min", "wall s", "x real time (audio h / wall h)",
                 "per-call x RT", "load avg"],
                [[v["label"], v["calls"], v["audio_s"] / 60, v["wall_s"], v["x_realtime"],
                  v["per_call_x_realtime"], f"{v['load_before']}-{v['load_after']}"]
                 for v in tp.values()]))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    if args.no_wer:
        return 0
    print()
    print(table(["call", "offline WER", "fast WER", "fast --beam 5 WER", "live WER"], rows))
    print()
    for scope in ("spokenwoz", "all"):
        r = figures["wer"][scope]["ratio_vs_offline"]
        print(f"WER ratio vs offline ({scope}, {figures['wer'][scope]['words']} words): "
              + ", ".join(f"{m} {v}" for m, v in r.items()))
    print(f"Single process, {n} threads, one call at a time: "
          + ", ".join(f"{m} {v}x" for m, v in figures["single_process_x_realtime"].items()))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
