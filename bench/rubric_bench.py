"""QA rubric on the phrasing corpus: do exchanges written to hold a fault score as faulty?

Each corpus exchange (``tests/corpus/``) is scored as a call at text level: its turns as
committed words (``coach.scripted``), the cue engine's cues, then the rubric. An exchange
written to raise a word cue holds a fault, so it should score below every clean call (a
clean call scores 100, a faulty one at most 84 x 0.92 = 77.3 by construction); the
figure that counts is how many of those the rubric scores as faulty, per split (held-out
counts). Exchanges written to be innocent are short fragments, not whole calls (a single
"I'm sorry we took the payment twice, I've refunded it" expects a follow-up on a real
failure), so for them the bench only reports how many score clean.

Usage::

    python bench/rubric_bench.py [--json OUT] [--show-misses]
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

from bench.corpus import load_corpus  # noqa: E402
from coach.events import Word  # noqa: E402
from coach.playbook import load_playbook  # noqa: E402
from coach.rubric import score_call  # noqa: E402
from coach.scripted import run_engine, script_events  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", metavar="OUT", help="write the figures as JSON here")
    ap.add_argument("--show-misses", action="store_true",
                    help="list the fault exchanges scored clean")
    args = ap.parse_args(argv)
    pb = load_playbook()
    counts: Counter[tuple[str, str, str]] = Counter()
    misses: list[str] = []
    lowest_clean, highest_faulty = None, None
    for item in load_corpus():
        events = script_events(item.script())
        words = [e for e in events if isinstance(e, Word)]
        r = score_call(words, run_engine(events, pb), pb,
                       duration_s=max((w.end for w in words), default=0.0))
        if r.score is None:
            continue
        clean = r.faults == 0
        kind = "fault" if item.expect else "innocent"
        counts[(kind, item.split, "clean" if clean else "faulty")] += 1
        if clean:
            lowest_clean = r.score if lowest_clean is None else min(lowest_clean, r.score)
        else:
            highest_faulty = r.score if highest_faulty is None else max(highest_faulty, r.score)
        if item.expect and clean:
            misses.append(item.id)
    out = {"lowest_clean_score": lowest_clean, "highest_faulty_score": highest_faulty,
           "ranking_holds": lowest_clean is None or highest_faulty is None
           or highest_faulty < lowest_clean, "splits": {}}
    for split in ("tune", "heldout"):
        faulty = counts[("fault", split, "faulty")]
        total = faulty + counts[("fault", split, "clean")]
        inn = counts[("innocent", split, "clean")] + counts[("innocent", split, "faulty")]
        out["splits"][split] = {"fault_exchanges": total, "scored_faulty": faulty,
                                "innocent_exchanges": inn,
                                "innocent_scored_clean": counts[("innocent", split, "clean")]}
        print(f"{split:8s} fault exchanges scored faulty: {faulty}/{total}   innocent scored "
              f"clean: {counts[('innocent', split, 'clean')]}/{inn}")
    print(f"lowest clean score {lowest_clean}, highest faulty score {highest_faulty}: "
          f"ranking {'holds' if out['ranking_holds'] else 'BROKEN'}")
    if args.show_misses:
        print("fault exchanges scored clean:", ", ".join(misses) or "none")
    out["misses"] = misses
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
