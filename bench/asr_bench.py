"""Streaming transcription vs offline faster-whisper, same model, same run.

    python bench/asr_bench.py [--json OUT] [--quick]

For each SpokenWOZ call (agent on the right) and each demo call: the words the streaming
pipeline commits (exactly what ``coach analyze`` does) and an offline faster-whisper
``transcribe`` of each channel with its defaults (beam 5, 30 s windows), both scored
against the reference after Whisper's English normaliser. Also the analysis speed of each
stereo call (x real time) and the peak memory of a ``coach analyze`` process.
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


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--quick", action="store_true", help="first SpokenWOZ call only")
    args = ap.parse_args()

    calls = [(p, "right", spokenwoz_reference(p)) for p in SPOKENWOZ]
    if not args.quick:
        calls += [(p, "left", sample_reference(p.with_suffix(".json")))
                  for p in sorted(SAMPLES.glob("*.flac"))]
    else:
        calls = calls[:1]
    if not calls:
        print("no calls found: ../shared/data is missing", file=sys.stderr)
        return 1

    tx = WhisperTranscriber()
    vad = SileroVad()
    playbook = load_playbook()
    modes = {"stream": StreamingOptions(), "finals-only": StreamingOptions(finals_only=True)}
    rows, figures = [], {"calls": []}
    pooled = {k: [0, 0] for k in ("stream", "finals-only", "offline")}
    pooled_wozz = {k: [0, 0] for k in ("stream", "finals-only", "offline")}
    neg = {"faults": [], "agent_min": 0.0}
    speed = {"stream": [0.0, 0.0], "finals-only": [0.0, 0.0], "offline": [0.0, 0.0]}
    for path, ch, ref in calls:
        rec = {"call": path.name}
        hyp: dict[str, dict[str, str]] = {}
        for mode, sopts in modes.items():
            t0 = time.perf_counter()
            res = analyze_file(path, transcriber=tx, make_vad=vad.shared, playbook=playbook,
                               agent_channel=ch, options=PipelineOptions(streaming=sopts))
            dt = time.perf_counter() - t0
            speed[mode][0] += dt
            speed[mode][1] += res.duration_s
            rec[f"{mode}_x_realtime"] = res.duration_s / dt
            hyp[mode] = {sp: " ".join(w.text for w in res.summary.words if w.speaker == sp)
                         for sp in ("agent", "customer")}
            if mode == "stream" and path in SPOKENWOZ:
                faults = [c.id for c in res.summary.cues if c.severity in ("nudge", "warn")]
                neg["faults"] += faults
                neg["agent_min"] += res.summary.talk_s["agent"] / 60
        audio = channel_audio(path, ch)
        t0 = time.perf_counter()
        hyp["offline"] = {}
        for sp, y in audio.items():
            segs, _ = tx.model.transcribe(y, language="en")
            hyp["offline"][sp] = " ".join(s.text.strip() for s in segs)
        dt = time.perf_counter() - t0
        speed["offline"][0] += dt
        speed["offline"][1] += len(audio["agent"]) / 16000
        for mode in ("stream", "finals-only", "offline"):
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
        rows.append([path.name, rec["offline_wer"], rec["stream_wer"],
                     rec["stream_wer"] / rec["offline_wer"] if rec["offline_wer"] else 0.0,
                     rec["finals-only_wer"], rec["stream_x_realtime"],
                     rec["finals-only_x_realtime"]])
        print(f"  {path.name}: done", file=sys.stderr)

    def ratio(p: dict) -> tuple[float, float, float]:
        w = {k: v[0] / v[1] if v[1] else 0.0 for k, v in p.items()}
        return w["offline"], w["stream"], w["finals-only"]

    off, st, fo = ratio(pooled_wozz)
    rows.append(["**SpokenWOZ pooled**", off, st, st / off if off else 0.0, fo, "", ""])
    off_all, st_all, fo_all = ratio(pooled)
    rows.append(["**all pooled**", off_all, st_all, st_all / off_all if off_all else 0.0,
                 fo_all, "", ""])
    print(table(["call", "offline WER", "streaming WER", "ratio", "finals-only WER",
                 "stream x RT", "finals-only x RT"], rows))
    xrt = {k: v[1] / v[0] for k, v in speed.items() if v[0]}
    mem = {mode: peak_rss_mb(calls[0][0], calls[0][1], flags)
           for mode, flags in (("stream", []), ("finals-only", ["--finals-only"]))}
    print()
    print(table(["mode", "x real time (all calls)", "peak RSS MB (coach analyze, "
                 f"{calls[0][0].name})"],
                [["streaming (live policy)", xrt["stream"], mem["stream"]],
                 ["finals-only", xrt["finals-only"], mem["finals-only"]],
                 ["offline faster-whisper (reference)", xrt["offline"], ""]]))
    per_min = len(neg["faults"]) / neg["agent_min"] if neg["agent_min"] else 0.0
    print()
    print(f"Negative (nudge/warn) cues on the SpokenWOZ calls: {len(neg['faults'])} in "
          f"{neg['agent_min']:.1f} agent-minutes = {per_min:.2f} per agent-minute "
          f"{sorted(neg['faults'])}")
    figures["spokenwoz_negative_cues"] = {"count": len(neg["faults"]), "ids": neg["faults"],
                                          "agent_minutes": neg["agent_min"],
                                          "per_agent_minute": per_min}
    figures.update({"spokenwoz_wer": {"offline": off, "stream": st, "finals_only": fo},
                    "all_wer": {"offline": off_all, "stream": st_all, "finals_only": fo_all},
                    "x_realtime": xrt, "peak_rss_mb": mem})
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
