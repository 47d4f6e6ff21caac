"""``coach qa``: score a sample of recorded calls offline and write QA reports.

``add_parser(subparsers)`` registers the command (coach/cli.py wires it in); ``main``
runs it alone (``python -m coach.qa``). The argparse namespace stays in this module.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from coach.errors import CoachError

__all__ = ["add_parser", "main", "run"]

_DESCRIPTION = """\
Analyse a sample of recorded calls (or transcripts from another system), score each on
the apology rubric and write results.csv, results.json and report.html into DIR.
DIR/results.jsonl is the run's log: rerun the same command to resume after Ctrl-C or a
crash; calls already in the log are not analysed again."""


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    q = subparsers.add_parser("qa", help="score a sample of recorded calls and report",
                              description=_DESCRIPTION,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    q.add_argument("source", help="a folder of calls (searched recursively), one file, or "
                                  "store: (calls already in the store)")
    q.add_argument("--sample", default="100%",
                   help="how many calls: a percentage (10%%) or a number (25) "
                        "(default: 100%%, every call)")
    q.add_argument("--seed", type=int, default=0,
                   help="sampling seed (default 0: the same command picks the same calls)")
    q.add_argument("--out", required=True, metavar="DIR", help="where the log and reports go")
    ch = q.add_argument_group("speakers")
    ch.add_argument("--agent-channel", default="left",
                    help="stereo files without a manifest, name hint or --channel-map "
                         "line: the agent's channel (left, right or a number; default left)")
    ch.add_argument("--channel-map", metavar="FILE",
                    help="CSV of 'glob,channel' lines giving the agent's channel per file "
                         "(default: none)")
    ch.add_argument("--transcript-agent", metavar="LABEL",
                    help="transcripts: the speaker label of the agent (e.g. B); default: "
                         "role names (Agent, Caller...), else B of A/B, else who talks most")
    run_g = q.add_argument_group("running")
    run_g.add_argument("--workers", type=int, default=None,
                       help="parallel analyses (default: one per core)")
    run_g.add_argument("--threads", type=int, default=None,
                       help="model threads per worker (default: cores / workers)")
    run_g.add_argument("--executor", default="local",
                       help="local (a process pool, default) or dask://HOST:PORT (an "
                            "existing Dask cluster whose workers can read the files)")
    run_g.add_argument("--mode", choices=("fast", "live"), default="fast",
                       help="fast (default): one recognition pass per stretch of speech, "
                            "same cue engine; live: the streaming pipeline, exactly what "
                            "the agent saw")
    run_g.add_argument("--beam", type=int, default=None,
                       help="fast mode: decoder beam size (default 1, greedy; 5 costs ~20 %% "
                            "more time for a few %% fewer word errors)")
    run_g.add_argument("--model", default="tiny.en",
                       help="tiny.en (embedded default), base, small, or a CTranslate2 dir")
    run_g.add_argument("--playbook", default=None,
                       help="a team playbook (YAML) over the built-in one (default: the "
                            "built-in playbook)")
    run_g.add_argument("--progress", choices=("auto", "on", "off"), default="auto",
                       help="progress bar on stderr (default auto: when stderr is a "
                            "terminal)")
    rep = q.add_argument_group("reports and store")
    rep.add_argument("--replay-url", metavar="URL",
                     help="base URL of the replay service: calls link to URL/calls/ID "
                          "(default: no links)")
    rep.add_argument("--title", default="coach QA", help="report title (default: coach QA)")
    rep.add_argument("--store", nargs="?", const="", default=None, metavar="URL",
                     help="save each analysed call and its score in the call store "
                          "(default store without URL); with SOURCE store: the store to read")
    rep.add_argument("--agent", help="SOURCE store: only this agent's calls (default: all)")
    rep.add_argument("--since", help="SOURCE store: only calls since this date, YYYY-MM-DD "
                                     "(default: all)")
    rep.add_argument("--cue", help="SOURCE store: only calls with this cue id, e.g. "
                                   "no-follow-up (default: all)")
    rep.add_argument("--reanalyse", action="store_true",
                     help="SOURCE store: analyse the stored audio again (default: score the "
                          "words and cues each call was stored with, so it keeps one score)")
    q.set_defaults(func=run)
    return q


def _options(args: argparse.Namespace):
    from coach.io.whisper import check_threads
    from coach.qa.runner import QaOptions
    from coach.qa.sources import check_channel, parse_sample

    if args.workers is not None and args.workers < 1:
        raise CoachError("--workers must be 1 or more")
    if args.threads is not None:
        check_threads(args.threads)  # the model's own wording, before any worker starts
    if args.beam is not None and not 1 <= args.beam <= 10:
        raise CoachError("--beam must be between 1 and 10")
    from_store = args.source.startswith("store:")
    filters = {k: getattr(args, k) for k in ("agent", "since", "cue") if getattr(args, k)}
    if getattr(args, "reanalyse", False) and not from_store:
        raise CoachError("--reanalyse is for SOURCE store: (other calls are always analysed)")
    if filters and not from_store:
        raise CoachError("--agent, --since and --cue filter calls in the store: use them "
                         "with SOURCE store:")
    progress = args.progress == "on" or (args.progress == "auto" and sys.stderr.isatty())
    return QaOptions(
        source=args.source, out_dir=Path(args.out), sample=parse_sample(args.sample),
        seed=args.seed, agent_channel=check_channel(args.agent_channel),
        channel_map=args.channel_map, workers=args.workers, threads=args.threads,
        executor=args.executor, model=args.model, playbook=args.playbook, mode=args.mode,
        beam=args.beam,
        replay_url=args.replay_url.rstrip("/") if args.replay_url else None,
        transcript_agent=args.transcript_agent, progress=progress, title=args.title,
        save_to_store=args.store is not None and not from_store,
        store_url=args.store or None, store_filters=filters,
        reanalyse=bool(getattr(args, "reanalyse", False)))


def _sigterm(signum, frame) -> None:  # pragma: no cover - exercised through a subprocess
    raise KeyboardInterrupt


def run(args: argparse.Namespace, err: TextIO | None = None) -> int:
    """The command's handler: returns the exit code (130 after Ctrl-C / SIGTERM)."""
    from coach.qa.runner import run_qa

    err = err or sys.stderr
    opts = _options(args)
    old = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, _sigterm)
    except ValueError:  # not the main thread (embedded use): leave SIGTERM alone
        old = None
    try:
        summary = run_qa(opts, err=err)
    except KeyboardInterrupt:
        print(f"coach: interrupted; what was done is in {opts.out_dir / 'results.jsonl'} "
              f"and the reports; run the same command again to go on", file=err)
        return 130
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)
    _print_summary(summary, opts, err)
    return 0


def _print_summary(s, opts, err: TextIO) -> None:
    parts = [f"{s.analysed} analysed"]
    if s.no_speech:
        parts.append(f"{s.no_speech} with no speech (not scored)")
    if s.skipped or s.failed:
        parts.append(f"{s.skipped + s.failed} skipped")
    if s.done_before:
        parts.append(f"{s.done_before} already done")
    if s.duplicates:
        parts.append(f"{s.duplicates} duplicate{'s' if s.duplicates != 1 else ''}")
    line = f"coach: {s.sampled} of {s.found} calls: " + ", ".join(parts)
    if s.x_realtime:
        line += (f"; {s.audio_s / 60:.1f} min of audio in {s.wall_s:.0f} s "
                 f"({s.x_realtime:.1f}x real time)")
    print(line, file=err)
    if s.ignored:
        print(f"coach: {s.ignored} file(s) in {opts.source} are neither audio nor "
              "transcripts and were not taken as calls", file=err)
    html = s.reports.get("html")
    if html is not None:
        print(f"coach: report: {html}", file=err)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m coach.qa ...``: the qa command on its own."""
    parser = argparse.ArgumentParser(prog="coach")
    sub = parser.add_subparsers(dest="command", required=True)
    add_parser(sub)
    args = parser.parse_args(["qa", *(sys.argv[1:] if argv is None else argv)])
    try:
        return args.func(args)
    except CoachError as exc:
        print(f"coach: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("coach: interrupted", file=sys.stderr)
        return 130
