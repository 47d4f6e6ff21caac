"""Key-phrase recall with and without the playbook's hotwords, on the demo calls.

    python bench/hotword_bench.py [--words "sorry,my fault,..."] [--policy sure]
                                  [--finals-only] [--json OUT]

For each demo call, the words of ``coach analyze`` (live-identical streaming) with the
hotwords given to the model and without them; a key phrase is a hotword, and its recall is how many of its occurrences in the script's reference text
were recognised (after Whisper's English normaliser), pooled over the calls. The same
run gives the WER of both, so a gain in recall is never bought with other words.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.asr_bench import _norm, run_stream, wer  # noqa: E402
from bench.common import SAMPLES, sample_reference, table  # noqa: E402

WORDS = ["sorry", "apologise", "my fault", "our fault", "policy", "guarantee", "frustrating",
         "inconvenience", "oops", "whoops", "my bad", "bummer"]


def count(phrase: str, text: str) -> int:
    return len(re.findall(rf"\b{re.escape(phrase)}\b", text))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--policy", default="sure")
    ap.add_argument("--finals-only", action="store_true", help="one pass per utterance (faster)")
    ap.add_argument("--words", default=",".join(WORDS), help="comma-separated hotwords")
    ap.add_argument("--json")
    args = ap.parse_args()

    from coach.asr import StreamingOptions
    from coach.io.vad import SileroVad
    from coach.io.whisper import WhisperTranscriber
    from coach.playbook import load_playbook

    tx, vad, pb = WhisperTranscriber(), SileroVad(), load_playbook()
    words = tuple(w.strip() for w in args.words.split(",") if w.strip())
    phrases = [_norm(h) for h in words]
    modes = {"with hotwords": words, "without": ()}
    tot = {m: {"hit": 0, "ref": 0, "err": 0, "n": 0} for m in modes}
    rows = []
    for path in sorted(SAMPLES.glob("*.flac")):
        ref = sample_reference(path.with_suffix(".json"))
        ref_text = _norm(" ".join(ref.values()))
        row = [path.name]
        for m, hot in modes.items():
            o = StreamingOptions.for_policy(args.policy, hotwords=hot,
                                            finals_only=args.finals_only)
            res, _, _ = run_stream(path, "left", tx, vad, pb, o)
            hyp = {sp: " ".join(w.text for w in res.summary.words if w.speaker == sp)
                   for sp in ("agent", "customer")}
            hyp_text = _norm(" ".join(hyp.values()))
            hit = sum(min(count(p, hyp_text), count(p, ref_text)) for p in phrases)
            n_ref = sum(count(p, ref_text) for p in phrases)
            e = n = 0
            for sp in ("agent", "customer"):
                de, dn = wer(ref[sp], hyp[sp])
                e, n = e + de, n + dn
            for k, v in (("hit", hit), ("ref", n_ref), ("err", e), ("n", n)):
                tot[m][k] += v
            row += [f"{hit}/{n_ref}", e / n if n else 0.0]
        rows.append(row)
        print(f"  {path.name}: done", file=sys.stderr)
    rows.append(["**pooled**"] + [x for m in modes for x in (
        f"{tot[m]['hit']}/{tot[m]['ref']}", tot[m]["err"] / tot[m]["n"] if tot[m]["n"] else 0.0)])
    print(table(["call"] + [h for m in modes for h in (f"key phrases {m}", f"WER {m}")], rows))
    if args.json:
        Path(args.json).write_text(json.dumps(tot, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
