"""Cue benchmark at text level: precision and recall of every cue over the call scripts.

Each script says which cues must fire (``expect``) and which must not (``forbid``). A cue
that fires and was expected is a true positive, an expected cue that did not fire a false
negative, and a forbidden cue that fired a false positive. Cues that fire on a script that
neither expects nor forbids them are counted apart ("unlisted"): they may be right.

With ``--audio`` each script is first rendered to a stereo call with espeak-ng
(``audio_samples/make_calls.py``) and run through the whole pipeline (streaming Whisper,
prosody, cues) exactly as ``coach analyze`` does, so ASR errors count too.

Usage::

    python bench/cue_bench.py [SCRIPT_OR_DIR ...] [--playbook FILE] [--audio] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from coach.playbook import CUE_IDS, load_playbook  # noqa: E402
from coach.scripted import load_script, run_engine, script_events  # noqa: E402

DEFAULT_DIRS = (ROOT / "tests" / "scripts", ROOT / "audio_samples" / "scripts")


def _scripts(paths: list[str]) -> list[Path]:
    out: list[Path] = []
    for p in [Path(x) for x in paths] or list(DEFAULT_DIRS):
        out += sorted(p.glob("*.yaml")) if p.is_dir() else [p]
    return out


def _ratio(num: int, den: int) -> float | None:
    return None if den == 0 else num / den


def _fmt(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}"


def _audio_firer(playbook):
    """fired(script, path) through rendered audio and the real pipeline."""
    import importlib.util
    import tempfile

    from coach.analyze import analyze_file
    from coach.io.vad import SileroVad
    from coach.io.whisper import WhisperTranscriber

    spec = importlib.util.spec_from_file_location("make_calls",
                                                  ROOT / "audio_samples" / "make_calls.py")
    make_calls = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_calls)
    tx, vad = WhisperTranscriber(), SileroVad()
    tmp = Path(tempfile.mkdtemp(prefix="coach-cue-bench-"))

    def fired(script, path: Path) -> set[str]:
        flac = make_calls.render_file(path, tmp)
        res = analyze_file(flac, transcriber=tx, make_vad=vad.shared, playbook=playbook)
        return {c.id for c in res.summary.cues}

    return fired


def run(paths: list[str], playbook_path: str | None = None, *, audio: bool = False) -> dict:
    playbook = load_playbook(playbook_path)
    if audio:
        fire = _audio_firer(playbook)
    else:
        def fire(script, path):
            return {c.id for c in run_engine(script_events(script), playbook)}
    tp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    unlisted: Counter[str] = Counter()
    failures = []
    for path in _scripts(paths):
        script = load_script(path)
        fired = fire(script, path)
        expect, forbid = set(script.expect), set(script.forbid)
        for cue in expect:
            (tp if cue in fired else fn)[cue] += 1
        for cue in fired & forbid:
            fp[cue] += 1
        for cue in fired - expect - forbid:
            unlisted[cue] += 1
        missed, wrong = sorted(expect - fired), sorted(fired & forbid)
        if missed or wrong:
            failures.append({"script": str(path.relative_to(ROOT) if path.is_absolute() and ROOT in path.parents else path),
                             "missed": missed, "forbidden_fired": wrong})
    rows = []
    for cue in CUE_IDS:
        rows.append({
            "cue": cue, "tp": tp[cue], "fn": fn[cue], "fp": fp[cue], "unlisted": unlisted[cue],
            "precision": _ratio(tp[cue], tp[cue] + fp[cue]),
            "recall": _ratio(tp[cue], tp[cue] + fn[cue]),
        })
    t_tp, t_fn, t_fp = sum(tp.values()), sum(fn.values()), sum(fp.values())
    return {
        "level": "audio" if audio else "text",
        "scripts": len(_scripts(paths)),
        "micro": {"tp": t_tp, "fn": t_fn, "fp": t_fp, "unlisted": sum(unlisted.values()),
                  "precision": _ratio(t_tp, t_tp + t_fp), "recall": _ratio(t_tp, t_tp + t_fn)},
        "per_cue": rows,
        "failures": failures,
    }


def markdown(result: dict) -> str:
    m = result["micro"]
    lines = [
        f"Cue benchmark over {result['scripts']} scripts ({result.get('level', 'text')} level)",
        "",
        "| cue | TP | FN | FP | unlisted | precision | recall |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["per_cue"]:
        lines.append(
            f"| {r['cue']} | {r['tp']} | {r['fn']} | {r['fp']} | {r['unlisted']} | "
            f"{_fmt(r['precision'])} | {_fmt(r['recall'])} |"
        )
    lines.append(
        f"| **micro** | {m['tp']} | {m['fn']} | {m['fp']} | {m['unlisted']} | "
        f"**{_fmt(m['precision'])}** | **{_fmt(m['recall'])}** |"
    )
    if result["failures"]:
        lines += ["", "Scripts not met:"]
        for f in result["failures"]:
            lines.append(f"- {f['script']}: missed {f['missed']}, forbidden fired {f['forbidden_fired']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="*", help="script files or directories")
    ap.add_argument("--playbook", help="a team playbook to use instead of the default")
    ap.add_argument("--audio", action="store_true",
                    help="render each script with espeak-ng and run the whole pipeline")
    ap.add_argument("--json", metavar="OUT", help="also write the results as JSON")
    args = ap.parse_args(argv)
    result = run(args.paths, args.playbook, audio=args.audio)
    print(markdown(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
