"""Streaming transcription vs offline faster-whisper, same model, same run.

    python bench/asr_bench.py [--json OUT] [--quick] [--model tiny.en|base]
                              [--modes early,early-partials,agreement,sure,finals-only]
                              (also early-ctx20, early-ctx0, early-bare: shorter prompts)

For each SpokenWOZ call (agent on the right) and each demo call: the words the streaming
pipeline commits (exactly what ``coach analyze`` does) under each streaming policy —
"agreement" (LocalAgreement-2, beam 5, 1 s steps), "early" (the same commits on the
agent's side, plus greedy look passes there for early cues, and one pass per utterance on
the customer's side; "early-partials" is early with the customer's side streamed too),
"sure" (one-pass commits of sure words, agreement for the rest, 0.5 s steps) and
finals-only — and an offline faster-whisper
``transcribe`` of each channel (beam 5, 30 s windows, its Silero VAD filter, no
conditioning on previous text: the reference the issue names), all scored
against the reference after Whisper's English normaliser. Also, per policy, how long after
its end in the audio each final word is committed (audio time: the pipeline is fed in
0.1 s blocks as live capture does; live adds the compute time of the pass), the analysis
speed (x real time) and the peak memory of a ``coach analyze`` process.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jiwer  # noqa: E402
from whisper_normalizer.english import EnglishTextNormalizer  # noqa: E402

from bench.common import ROOT, SAMPLES, SPOKENWOZ, sample_reference, spokenwoz_reference, table  # noqa: E402
from coach.analyze import analyze_file  # noqa: E402
from coach.asr import StreamingOptions  # noqa: E402
from coach.io.audiofile import open_call  # noqa: E402
from coach.io.vad import SileroVad  # noqa: E402
from coach.io.whisper import WhisperTranscriber  # noqa: E402
from coach.pipeline import PipelineOptions  # noqa: E402
from coach.playbook import load_playbook  # noqa: E402

_norm = EnglishTextNormalizer()


def wer(ref: str, hyp: str) -> tuple[int, int]:
    """(errors, reference words) after normalisation, so calls can be pooled."""
    r, h = _norm(ref), _norm(hyp)
    if not r.split():
        return len(h.split()), 0
    out = jiwer.process_words(r, h if h.strip() else "")
    return out.substitutions + out.deletions + out.insertions, len(r.split())


def channel_audio(path: Path, agent_channel: str) -> dict[str, object]:
    import numpy as np

    call = open_call(path, agent_channel=agent_channel)
    a, c = [], []
    for b in call.blocks(5.0):
        a.append(b.agent)
        if b.customer is not None:
            c.append(b.customer)
    out = {"agent": np.concatenate(a)}
    if c:
        out["customer"] = np.concatenate(c)
    return out


def peak_rss_mb(path: Path, agent_channel: str, extra: list[str]) -> float:
    cmd = [sys.executable, "-m", "coach.cli", "analyze", str(path), "--agent-channel",
           agent_channel, "--format", "jsonl", "--progress", "off", *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd} failed")
    return usage.ru_maxrss / 1024


def pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def run_stream(path: Path, ch: str, tx, vad, playbook, sopts: StreamingOptions):
    """``coach analyze`` on one call, with the audio time at which each final word came."""
    lat: list[float] = []
    pending: list = []

    def on_event(e) -> None:
        if getattr(e, "type", "") == "word" and e.final:
            pending.append(e)

    def progress(now: float) -> None:
        lat.extend(now - w.end for w in pending)
        pending.clear()

    t0 = time.perf_counter()
    res = analyze_file(path, transcriber=tx, make_vad=vad.shared, playbook=playbook,
                       agent_channel=ch, options=PipelineOptions(streaming=sopts),
                       on_event=on_event, progress=progress, block_s=0.1)
    return res, time.perf_counter() - t0, lat


MODES = {"early": StreamingOptions.for_policy("early"),
         # early as it was before the customer's side went finals-only (side by side)
         "early-partials": StreamingOptions.for_policy("early", customer_finals_only=False),
         "sure": StreamingOptions.for_policy("sure"),
         "sure-nohot": StreamingOptions.for_policy("sure", hotwords=()),
         "sure-greedy": StreamingOptions.for_policy("sure", partial_beam=1),
         # the prompt's cost: under beam 5 every pass pays for the prompt tokens
         "early-ctx20": StreamingOptions.for_policy("early", prompt_words=20),
         "early-ctx0": StreamingOptions.for_policy("early", prompt_words=0),
         "early-bare": StreamingOptions.for_policy("early", prompt_words=0, hotwords=()),
         "agreement": StreamingOptions.for_policy("agreement"),
         "finals-only": StreamingOptions(finals_only=True)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--quick", action="store_true", help="first SpokenWOZ call only")
    ap.add_argument("--spokenwoz-only", action="store_true", help="no demo calls")
    ap.add_argument("--model", default="tiny.en")
    ap.add_argument("--modes", default="early,agreement,sure,finals-only")
    ap.add_argument("--no-rss", action="store_true", help="skip the peak-memory runs")
    args = ap.parse_args()

    calls = [(p, "right", spokenwoz_reference(p)) for p in SPOKENWOZ]
    if args.quick:
        calls = calls[:1]
    elif not args.spokenwoz_only:
        calls += [(p, "left", sample_reference(p.with_suffix(".json")))
                  for p in sorted(SAMPLES.glob("*.flac"))]
    if not calls:
        print("no calls found: ../shared/data is missing", file=sys.stderr)
        return 1

    tx = WhisperTranscriber(args.model)
    vad = SileroVad()
    playbook = load_playbook()
    modes = {m: MODES[m] for m in args.modes.split(",")}
    first = next(iter(modes))
    names = [*modes, "offline"]
    rows, figures = [], {"model": args.model, "calls": []}
    pooled = {k: [0, 0] for k in names}
    pooled_wozz = {k: [0, 0] for k in names}
    neg = {"faults": [], "agent_min": 0.0}
    speed = {k: [0.0, 0.0] for k in names}
    lat_all: dict[str, list[float]] = {m: [] for m in modes}
    for path, ch, ref in calls:
        rec = {"call": path.name}
        hyp: dict[str, dict[str, str]] = {}
        for mode, sopts in modes.items():
            res, dt, lat = run_stream(path, ch, tx, vad, playbook, sopts)
            speed[mode][0] += dt
            speed[mode][1] += res.duration_s
            rec[f"{mode}_x_realtime"] = res.duration_s / dt
            rec[f"{mode}_word_lat_p50"] = pct(lat, .5)
            rec[f"{mode}_word_lat_p95"] = pct(lat, .95)
            lat_all[mode] += lat
            hyp[mode] = {sp: " ".join(w.text for w in res.summary.words if w.speaker == sp)
                         for sp in ("agent", "customer")}
            if mode == first and path in SPOKENWOZ:
                faults = [c.id for c in res.summary.cues if c.severity in ("nudge", "warn")]
                neg["faults"] += faults
                neg["agent_min"] += res.summary.talk_s["agent"] / 60
        audio = channel_audio(path, ch)
        t0 = time.perf_counter()
        hyp["offline"] = {}
        for sp, y in audio.items():
            segs, _ = tx.model.transcribe(y, language="en", beam_size=5, vad_filter=True,
                                          condition_on_previous_text=False)
            hyp["offline"][sp] = " ".join(s.text.strip() for s in segs)
        dt = time.perf_counter() - t0
        speed["offline"][0] += dt
        speed["offline"][1] += len(audio["agent"]) / 16000
        for mode in names:
            e = n = 0
            for sp in ("agent", "customer"):
                de, dn = wer(ref[sp], hyp[mode].get(sp, ""))
                e += de
                n += dn
            rec[f"{mode}_wer"] = e / n if n else 0.0
            pooled[mode][0] += e
            pooled[mode][1] += n
            if path in SPOKENWOZ:
                pooled_wozz[mode][0] += e
                pooled_wozz[mode][1] += n
        figures["calls"].append(rec)
        off = rec["offline_wer"]
        rows.append([path.name, off] + [x for m in modes for x in (
            rec[f"{m}_wer"], rec[f"{m}_wer"] / off if off else 0.0,
            rec[f"{m}_word_lat_p95"] if rec[f"{m}_word_lat_p95"] is not None else "—",
            rec[f"{m}_x_realtime"])])
        print(f"  {path.name}: done", file=sys.stderr)

    def pooled_row(label: str, p: dict) -> list:
        w = {k: v[0] / v[1] if v[1] else 0.0 for k, v in p.items()}
        return [label, w["offline"]] + [x for m in modes for x in (
            w[m], w[m] / w["offline"] if w["offline"] else 0.0, "", "")]

    rows.append(pooled_row("**SpokenWOZ pooled**", pooled_wozz))
    rows.append(pooled_row("**all pooled**", pooled))
    print(f"model {args.model}")
    print(table(["call", "offline WER"] + [h for m in modes for h in (
        f"{m} WER", f"{m} ratio", f"{m} final-word p95 s (audio)", f"{m} x RT")], rows))
    xrt = {k: v[1] / v[0] for k, v in speed.items() if v[0]}
    mem = {} if args.no_rss else {
        mode: peak_rss_mb(calls[0][0], calls[0][1], flags + ["--model", args.model])
        for mode, flags in ((first, ["--policy", first] if first in ("sure", "agreement")
                             else ["--finals-only"]),)}
    print()
    print(table(["mode", "x real time (all calls)", "final word p50 / p95 s (audio time)"],
                [[m, xrt[m], f"{pct(lat_all[m], .5) or 0:.2f} / {pct(lat_all[m], .95) or 0:.2f}"]
                 for m in modes] + [["offline faster-whisper (reference)", xrt["offline"], ""]]))
    if mem:
        print(f"peak RSS of coach analyze ({calls[0][0].name}, {first}): "
              f"{next(iter(mem.values())):.0f} MB")
    per_min = len(neg["faults"]) / neg["agent_min"] if neg["agent_min"] else 0.0
    print()
    print(f"Negative (nudge/warn) cues on the SpokenWOZ calls: {len(neg['faults'])} in "
          f"{neg['agent_min']:.1f} agent-minutes = {per_min:.2f} per agent-minute "
          f"{sorted(neg['faults'])}")
    figures["spokenwoz_negative_cues"] = {"count": len(neg["faults"]), "ids": neg["faults"],
                                          "agent_minutes": neg["agent_min"],
                                          "per_agent_minute": per_min}
    figures.update({"spokenwoz_wer": {k: v[0] / v[1] if v[1] else 0.0
                                      for k, v in pooled_wozz.items()},
                    "all_wer": {k: v[0] / v[1] if v[1] else 0.0 for k, v in pooled.items()},
                    "x_realtime": xrt, "peak_rss_mb": mem,
                    "word_lat_audio": {m: {"p50": pct(v, .5), "p95": pct(v, .95)}
                                       for m, v in lat_all.items()}})
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
