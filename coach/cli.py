"""The ``coach`` command. The argparse namespace never leaves this module."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from coach.errors import CoachError

__all__ = ["main"]


def _analyze(args: argparse.Namespace) -> int:
    from coach.analyze import analyze_file, format_text, jsonl_line
    from coach.asr import StreamingOptions
    from coach.io.vad import SileroVad
    from coach.io.whisper import WhisperTranscriber
    from coach.pipeline import PipelineOptions
    from coach.playbook import load_playbook

    playbook = load_playbook(args.playbook)
    # open the file before loading the model, so bad input fails fast
    from coach.io.audiofile import open_call
    info = open_call(args.file, agent_channel=args.agent_channel).info
    transcriber = WhisperTranscriber(args.model, cpu_threads=args.threads)
    vad = SileroVad()
    options = PipelineOptions(streaming=StreamingOptions(step_s=args.step,
                                                         finals_only=args.finals_only))
    bar = None
    show_progress = (args.progress == "on" or
                     (args.progress == "auto" and sys.stderr.isatty()
                      and info.duration_s > 60))
    if show_progress:
        from tqdm import tqdm
        bar = tqdm(total=round(info.duration_s, 1), unit="s", unit_scale=False,
                   desc="analysing", file=sys.stderr, leave=False,
                   bar_format="{desc} {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s "
                              "[{elapsed}<{remaining}, {rate_fmt}]")

    def progress(t: float) -> None:
        bar.update(round(t - bar.n, 1))

    out = sys.stdout

    def on_event(e) -> None:
        out.write(jsonl_line(e) + "\n")

    try:
        res = analyze_file(args.file, transcriber=transcriber, make_vad=vad.shared,
                           playbook=playbook, agent_channel=args.agent_channel,
                           options=options,
                           on_event=on_event if args.format == "jsonl" else None,
                           progress=progress if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()
    if args.format == "text":
        format_text(res, out)
    else:
        for n in res.notices:
            print(f"coach: note: {n}", file=sys.stderr)
    return 0


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="coach", description="A live voice coach for phone agents.")
    p.add_argument("--version", action="version", version="coach 0.1.0")
    sub = p.add_subparsers(dest="command", required=True)

    a = sub.add_parser("analyze", help="analyse a recorded call with the streaming pipeline",
                       description="Run a recording through the same streaming pipeline as "
                                   "live coaching, at full speed, and print the transcript "
                                   "with cues (text) or the event stream (jsonl).")
    a.add_argument("file", help="WAV, FLAC, MP3, Ogg/Opus or mu-law WAV; 8-192 kHz; "
                                "mono (agent only) or stereo")
    a.add_argument("--agent-channel", default="left",
                   help="stereo: which channel is the agent: left (default), right, or a "
                        "channel number")
    a.add_argument("--format", choices=("text", "jsonl"), default="text")
    a.add_argument("--playbook", default=None, help="a team playbook (YAML) over the default")
    a.add_argument("--model", default="tiny.en",
                   help="tiny.en (embedded default), base, small, or a CTranslate2 directory")
    a.add_argument("--threads", type=int, default=2, help="CPU threads for the model")
    a.add_argument("--step", type=float, default=1.0,
                   help="seconds of new audio between recognition passes (live default 1.0)")
    a.add_argument("--finals-only", action="store_true",
                   help="one recognition pass per utterance: faster, no partial words")
    a.add_argument("--progress", choices=("auto", "on", "off"), default="auto",
                   help="progress bar on stderr (auto: when stderr is a terminal)")
    a.set_defaults(func=_analyze)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except CoachError as exc:
        print(f"coach: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("coach: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
