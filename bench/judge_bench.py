"""Judgement benchmark: word-cue precision, recall and F1 on the phrasing corpus.

The corpus (``tests/corpus/``) holds short exchanges written from what each cue means, not
from the playbook's patterns, and split once into a tuning half and a held-out half. The
held-out figure is the one that counts; tune on the other half only.

Text level (default): each item's turns become committed words with plausible times
(``coach.scripted``, punctuation as written) fed to a fresh ``CueEngine`` — ``feed`` for
each event, ``advance`` to each event's audio time, ``flush`` at the end. A word cue that
fires on an item and is expected there is a true positive, an expected cue that does not
fire a false negative, and any other word cue that fires a false positive (so every cue
on an innocent item is a false positive). Cues withdrawn by a retraction do not count.
Only the word cues are scored (``bench.corpus.WORD_CUES``); delivery cues are ignored.

Audio level (``--audio``): the chosen half (default: held-out) rendered as calls with
several synthetic voices and analysed by the ``coach analyze`` pipeline, at 16 kHz and on
a phone line (``bench/judge_audio.py``), plus negative cues per agent-minute on the real
SpokenWOZ calls. Slow: the streaming recogniser runs at about 3x real time on 2 cores.

Usage::

    python bench/judge_bench.py [--split tune|heldout|both] [--json OUT] [--show-errors]
                                [--playbook FILE] [--corpus DIR]
                                [--audio [--band 16k|phone|both] [--parts corpus,voice,real]
                                         [--finals-only]]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.corpus import CORPUS_DIR, SPLITS, WORD_CUES, CorpusError, Item, load_corpus  # noqa: E402
from coach.cues import CueEngine  # noqa: E402
from coach.playbook import load_playbook  # noqa: E402
from coach.scripted import event_time, script_events  # noqa: E402


def surviving(outputs: Iterable[object]) -> list[object]:
    """The cues in ``outputs`` minus those a later retraction withdrew."""
    cues: list[object] = []
    for ev in outputs:
        if getattr(ev, "type", None) == "retract":
            for i, c in enumerate(cues):
                if c.id == ev.id and abs(c.t - ev.t) < 1e-6:
                    del cues[i]
                    break
        elif getattr(ev, "type", None) == "cue":
            cues.append(ev)
    return cues


def text_fired(item: Item, playbook, lag_s: float = 0.0) -> set[str]:
    """Word cues a fresh engine raises on the item's words. ``lag_s`` delays every
    committed word's arrival (its times unchanged), as the recogniser does live."""
    engine = CueEngine(playbook)
    out: list[object] = []
    last = 0.0
    lag = {"agent": lag_s, "customer": lag_s} if lag_s else None
    for ev in script_events(item.script(), lag_s=lag):
        t = event_time(ev)
        if t > last:
            out += engine.advance(t)
            last = t
        out += engine.feed(ev)
    out += engine.flush(last + 1.0)
    return {c.id for c in surviving(out)} & set(WORD_CUES)


def _ratio(num: int, den: int) -> float | None:
    return None if den == 0 else num / den


def _f1(p: float | None, r: float | None) -> float | None:
    if p is None or r is None or p + r == 0:
        return None if p is None or r is None else 0.0
    return 2 * p * r / (p + r)


def score(results: list[tuple[Item, set[str]]]) -> dict:
    """Per-cue and pooled (micro) precision/recall/F1 over ``(item, fired)`` pairs."""
    tp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    errors = []
    innocent_hit = 0
    for item, fired in results:
        for cue in WORD_CUES:
            if cue in item.expect:
                (tp if cue in fired else fn)[cue] += 1
            elif cue in fired:
                fp[cue] += 1
        if not item.expect and fired:
            innocent_hit += 1
        missed, extra = sorted(item.expect - fired), sorted(fired - item.expect)
        if missed or extra:
            errors.append({"id": item.id, "split": item.split, "missed": missed,
                           "false": extra, "turns": [list(t) for t in item.turns]})

    def row(a: int, b: int, c: int) -> dict:
        p, r = _ratio(a, a + c), _ratio(a, a + b)
        return {"tp": a, "fn": b, "fp": c, "precision": p, "recall": r, "f1": _f1(p, r)}

    per_cue = {cue: row(tp[cue], fn[cue], fp[cue]) for cue in WORD_CUES}
    pooled = row(sum(tp.values()), sum(fn.values()), sum(fp.values()))
    return {
        "items": len(results),
        "innocent_items": sum(1 for it, _ in results if not it.expect),
        "innocent_items_with_a_cue": innocent_hit,
        "per_cue": per_cue,
        "pooled": pooled,
        "errors": errors,
    }


def run(items: list[Item], splits: tuple[str, ...], fire) -> dict:
    by_split = {}
    for split in splits:
        chosen = [it for it in items if it.split == split]
        by_split[split] = score([(it, fire(it)) for it in chosen])
    return by_split


def _fmt(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}"


def markdown(by_split: dict, level: str = "text") -> str:
    splits = list(by_split)
    head = " | ".join(f"{s} P | {s} R | {s} F1" for s in splits)
    lines = [f"Word cues on the phrasing corpus ({level} level)", "",
             f"| cue | {head} |", "|---|" + "---:|" * (3 * len(splits))]
    for cue in [*WORD_CUES, "pooled"]:
        cells = []
        for s in splits:
            r = by_split[s]["pooled"] if cue == "pooled" else by_split[s]["per_cue"][cue]
            cells += [_fmt(r["precision"]), _fmt(r["recall"]), _fmt(r["f1"])]
        name = "**pooled**" if cue == "pooled" else cue
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
    for s in splits:
        r = by_split[s]
        lines.append(f"{s}: {r['items']} items, {r['innocent_items']} innocent, "
                     f"{r['innocent_items_with_a_cue']} innocent items raised a word cue")
    return "\n".join(lines)


def error_lines(by_split: dict) -> str:
    lines = []
    for s, r in by_split.items():
        for e in r["errors"]:
            what = []
            if e["missed"]:
                what.append("missed " + ", ".join(e["missed"]))
            if e["false"]:
                what.append("false " + ", ".join(e["false"]))
            talk = " / ".join(f"{sp[0].upper()}: {tx}" for sp, tx in e["turns"])
            lines.append(f"[{s}] {e['id']}: {'; '.join(what)}\n    {talk}")
    return "\n".join(lines) if lines else "no errors"


def real_lines(rows: list[dict]) -> str:
    minutes = sum(r["agent_minutes"] for r in rows)
    neg = sum(r["negative_cues"] for r in rows)
    lines = ["Real SpokenWOZ calls (agent on the right)", "",
             "| call | agent minutes | negative cues | which |", "|---|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['call']} | {r['agent_minutes']:.2f} | {r['negative_cues']} | "
                     f"{', '.join(r['cues']) or 'none'} |")
    rate = neg / minutes if minutes else 0.0
    lines.append(f"| **all** | {minutes:.2f} | {neg} | {rate:.2f} per agent-minute |")
    return "\n".join(lines)


def voice_lines(rows: list[dict]) -> str:
    want = {"pitch": "tone-tense", "loud": "volume-loud", "calm": None}
    lines = ["Voice cues on calls whose agent's voice rises after a calm start", "",
             "| engine | rise | band | rise at | voice cues (time) | as expected |",
             "|---|---|---|---:|---|---|"]
    for r in rows:
        got = ", ".join(f"{c['id']} ({c['t']:.1f} s)" for c in r["cues"]) or "none"
        ids = {c["id"] for c in r["cues"]}
        early = any(c["t"] < r["rise_s"] for c in r["cues"])
        target = want[r["kind"]]
        ok = (ids == {target} if target else not ids) and not early
        lines.append(f"| {r['engine']} | {r['kind']} | {r['band']} | {r['rise_s']:.1f} s | "
                     f"{got} | {'yes' if ok else 'no'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=("tune", "heldout", "both"), default=None,
                    help="which half to score (held-out is the figure that counts; "
                         "default both, or heldout with --audio)")
    ap.add_argument("--playbook", help="a team playbook to use instead of the default")
    ap.add_argument("--corpus", default=str(CORPUS_DIR), help="corpus directory")
    ap.add_argument("--json", metavar="OUT", help="also write the results as JSON")
    ap.add_argument("--show-errors", action="store_true",
                    help="list every item with a missed or a false cue")
    ap.add_argument("--lag", type=float, default=0.0, metavar="SECONDS",
                    help="text level: committed words arrive this late (recognition lag)")
    ap.add_argument("--audio", action="store_true",
                    help="also render the items as calls and run the analysis pipeline")
    ap.add_argument("--band", choices=("16k", "phone", "both"), default="both",
                    help="with --audio: 16 kHz wideband, the phone line, or both")
    ap.add_argument("--parts", default="corpus,voice,real",
                    help="with --audio, comma-separated: corpus (the rendered corpus), "
                         "voice (rising-voice calls), real (the SpokenWOZ calls)")
    ap.add_argument("--resume", action="store_true",
                    help="with --audio: reuse the per-call results an interrupted run saved")
    ap.add_argument("--finals-only", action="store_true",
                    help="with --audio: one recognition pass per utterance (faster, not "
                         "the live policy)")
    args = ap.parse_args(argv)
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    unknown = parts - {"corpus", "voice", "real"}
    if unknown:
        print(f"judge_bench: unknown part(s) {', '.join(sorted(unknown))}; "
              "expected corpus, voice, real", file=sys.stderr)
        return 2
    try:
        items = load_corpus(args.corpus)
        playbook = load_playbook(args.playbook)
    except (CorpusError, OSError, ValueError) as exc:
        print(f"judge_bench: {exc}", file=sys.stderr)
        return 2
    split = args.split or ("heldout" if args.audio else "both")
    splits = SPLITS if split == "both" else (split,)
    result: dict = {"text": {"lag_s": args.lag, "splits": run(
        items, splits, lambda it: text_fired(it, playbook, args.lag))}}
    print(markdown(result["text"]["splits"],
                   "text" if not args.lag else f"text, words {args.lag:g} s late"))
    if args.show_errors:
        print()
        print(error_lines(result["text"]["splits"]))
    if args.audio:
        from bench.judge_audio import BANDS, Analyser, real_calls, run_bands, voice_rows

        bands = BANDS if args.band == "both" else (args.band,)
        analyser = Analyser(playbook, finals_only=args.finals_only)
        chosen = [it for it in items if it.split in splits]
        audio = {}
        if "corpus" in parts:
            audio = run_bands(chosen, analyser, bands, resume=args.resume,
                              log=lambda m: print(m, file=sys.stderr, flush=True))
        result["audio"] = {}
        for band, pairs in audio.items():
            by_split = {s: score([(it, f) for it, f in pairs if it.split == s]) for s in splits}
            result["audio"][band] = by_split
            print()
            print(markdown(by_split, f"audio, {band}"))
            if args.show_errors:
                print()
                print(error_lines(by_split))
        if "voice" in parts:
            result["voice"] = voice_rows(analyser, bands)
            print()
            print(voice_lines(result["voice"]))
        if "real" in parts:
            result["real"] = real_calls(analyser)
            print()
            print(real_lines(result["real"]))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
