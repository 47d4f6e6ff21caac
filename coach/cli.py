"""The ``coach`` command. The argparse namespace never leaves this module."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from coach.errors import CoachError

__all__ = ["main"]

# One BLAS thread (set before numpy loads): numpy's OpenBLAS (the Whisper features) keeps
# its idle threads spinning, a fifth more CPU for nothing on a 2-core machine (measured on
# `coach analyze` of the demo call: 36 s of CPU against 28 s), and its sums differ with
# the thread count, so one thread is also what QA's workers use (coach.qa.analyse_call).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def _analyze(args: argparse.Namespace) -> int:
    from coach.analyze import analyze_file, format_text, jsonl_line
    from coach.asr import DEFAULT_POLICY, StreamingOptions
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
    options = PipelineOptions(streaming=StreamingOptions.for_policy(
        args.policy or DEFAULT_POLICY, finals_only=args.finals_only,
        **({"step_s": args.step} if args.step else {})))
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
    store = _open_store(args) if args.save else None
    kept: list[dict] = []

    def on_event(e) -> None:
        if args.format == "jsonl":
            out.write(jsonl_line(e) + "\n")
        if store is not None:
            kept.append(e.to_dict())

    try:
        res = analyze_file(args.file, transcriber=transcriber, make_vad=vad.shared,
                           playbook=playbook, agent_channel=args.agent_channel,
                           options=options,
                           on_event=on_event if (args.format == "jsonl" or store) else None,
                           progress=progress if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()
    if args.format == "text":
        format_text(res, out)
    else:
        for n in res.notices:
            print(f"coach: note: {n}", file=sys.stderr)
    if store is not None:
        from coach.store.cli import replay_url
        from coach.store.importer import save_analysis

        with store:
            from coach.store.importer import _sha256

            # the same recording saved again keeps the stored call (and its coach notes)
            existing = store.has_source(_sha256(Path(args.file)))
            if existing:
                call_id = existing
                print(f"coach: already stored as call {existing[:8]}… (the same recording); "
                      "kept as it is, with its notes", file=sys.stderr)
            else:
                call_id = save_analysis(store, args.file, kept,
                                        {"agent": args.agent, "model": transcriber.name,
                                         "agent_channel": args.agent_channel,
                                         "playbook": playbook})
                print(f"coach: saved as call {call_id[:8]}… in {store.url}", file=sys.stderr)
            print(f"coach: replay: {replay_url(call_id)} (while `coach serve` runs)",
                  file=sys.stderr)
    return 0


def _open_store(args: argparse.Namespace):
    """The call store named by --db / $COACH_DB, else SQLite in the data directory."""
    import os

    from coach.store import open_store

    return open_store(getattr(args, "db", None) or os.environ.get("COACH_DB") or None)


def _data_dir() -> Path:
    import os

    base = os.environ.get("COACH_DATA") or os.path.join(
        os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share"), "coach")
    return Path(base)


def _live(args: argparse.Namespace) -> int:
    import os
    import subprocess

    from coach.asr import DEFAULT_POLICY, StreamingOptions
    from coach.io.capture import DeviceSource
    from coach.io.filesource import FileSource
    from coach.io.hub import Hub
    from coach.io.server import ServerThread, check_bind, create_app
    from coach.io.vad import SileroVad
    from coach.io.whisper import WhisperTranscriber
    from coach.live import LiveSession
    from coach.pipeline import PipelineOptions
    from coach.playbook import load_playbook

    check_bind(args.host, args.token)
    if args.geometry is not None:
        from coach.io.overlay.prefs import parse_geometry

        parse_geometry(args.geometry)  # a bad value fails before the model loads
    playbook = load_playbook(args.playbook)
    if args.source:
        source = FileSource(args.source, agent_channel=args.agent_channel, realtime=True,
                            audible=args.audible, speed=args.speed)
    else:
        source = DeviceSource(mic=args.mic, line=args.line, device=args.device,
                              agent_channel=args.agent_channel)
    record_dir = None if args.no_record else Path(args.record_dir or _data_dir() / "live")
    store = None
    if record_dir is not None and not args.no_store:
        from coach.store.importer import recover

        store = _open_store(args)
        recovered = recover(store, record_dir)
        if recovered:
            print(f"coach: stored {len(recovered)} earlier recording(s) from {record_dir} "
                  "(a call cut off by a crash included)", file=sys.stderr)
    team = None
    transcriber = WhisperTranscriber(args.model, cpu_threads=args.threads)
    vad = SileroVad()
    holder: dict = {}
    hub = Hub(on_feedback=lambda m: holder["session"].feedback(m) if "session" in holder
              else None)
    server = ServerThread(create_app(hub, token=args.token, store=store), args.host, args.port)
    server.start()
    if args.team:
        from coach.team.cli import LiveTeam

        team = LiveTeam(args.team, playbook=playbook, hub=hub, record_dir=record_dir)
    url = f"ws://{args.host}:{args.port}/ws"
    print(f"coach: live on {url} (browser overlay: http://{args.host}:{args.port}/overlay)",
          file=sys.stderr)
    printer = _TerminalPrinter(sys.stdout)
    overlay = None
    if not args.no_overlay:
        if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
            cmd = [sys.executable, "-m", "coach.io.overlay", "--url", url]
            if args.token:
                cmd += ["--token", args.token]
            if args.geometry is not None:
                cmd += ["--geometry", args.geometry]
            overlay = subprocess.Popen(cmd)
        else:
            print("coach: no display for the overlay; cues are printed here", file=sys.stderr)
    if store is not None:
        print(f"coach: replay pages: http://{args.host}:{args.port}/", file=sys.stderr)
    session = LiveSession(
        source, transcriber=transcriber, make_vad=vad.shared, playbook=playbook,
        publish=team.publish(hub.publish_threadsafe) if team else hub.publish_threadsafe,
        record_dir=record_dir,
        meta={"agent": args.agent, "model": transcriber.name,
              "pace_band": [120, playbook.cue("pace-fast").thresholds.get("wpm", 175)],
              **(team.meta if team else {})},
        pipeline_options=PipelineOptions(streaming=StreamingOptions.for_policy(
            args.policy or DEFAULT_POLICY, **({"step_s": args.step} if args.step else {}))),
        on_event=printer, agent_baseline=_agent_baseline(team, store, args.agent))
    holder["session"] = session
    try:
        session.run()
    except KeyboardInterrupt:
        session.stop()
        print("coach: stopped; the call so far is kept", file=sys.stderr)
    finally:
        time.sleep(0.3)  # let clients receive the call end
        server.stop()
        if overlay is not None:
            overlay.terminate()
    if team is not None:
        team.finish(session.recorder.dir if session.recorder is not None else None)
    if session.recorder is not None:
        print(f"coach: recorded to {session.recorder.dir}", file=sys.stderr)
        if store is not None:
            from coach.store.importer import import_recording

            call_id = import_recording(store, session.recorder.dir, agent=args.agent,
                                       idle_s=0.0, playbook=playbook)
            if call_id:
                print(f"coach: stored as call {call_id} (replay: http://{args.host}:"
                      f"{args.port}/calls/{call_id} while `coach serve` runs)", file=sys.stderr)
    if store is not None:
        store.close()
    return 0


def _agent_baseline(team, store, agent):  # type: ignore[no-untyped-def]
    """The agent's voice baseline from earlier calls (the team server's, else the local
    store's), so this call is judged from its first second; None: it calibrates itself."""
    if team is not None:
        return team.baseline()
    if store is None or not agent:
        return None
    from coach.team.baselines import learn_baseline

    learned = learn_baseline(store, agent)
    if learned is not None:
        print(f"coach: {learned.describe()}", file=sys.stderr)
    return learned.baseline if learned is not None else None


def _serve(args: argparse.Namespace) -> int:
    import os

    from coach.io.replay import run_serve

    if args.team:
        from coach.team.cli import run_team_serve

        return run_team_serve(args.host, args.port, args.db or os.environ.get("COACH_DB"),
                              policy=args.policy, playbook=args.playbook)
    return run_serve(args.host, args.port, args.token,
                     args.db or os.environ.get("COACH_DB") or None)


class _TerminalPrinter:
    """Committed words as lines per turn, and cues as they fire, in call time. A cue
    first prints the committed words heard so far, so it sits below them; the rest of the
    turn follows on a line of its own. (An early cue may come before its own words are
    committed; its evidence line quotes them.)"""

    def __init__(self, out):
        self.out = out
        self.words: dict[str, list] = {"agent": [], "customer": []}

    def _line(self, speaker: str) -> None:
        ws = self.words[speaker]
        if not ws:
            return
        self.words[speaker] = []
        m, s = divmod(ws[0].start, 60)
        self.out.write(f"[{int(m):02d}:{s:04.1f}] {speaker.upper():<8} "
                       + " ".join(w.text for w in ws) + "\n")

    def __call__(self, e) -> None:
        from coach.events import Cue, Retraction, Turn, Word
        from coach.evidence import describe

        if isinstance(e, Word) and e.final:
            self.words[e.speaker].append(e)
        elif isinstance(e, Turn) and self.words[e.speaker]:
            self._line(e.speaker)
            self.out.flush()
        elif isinstance(e, Cue):
            for speaker in sorted((s for s in self.words if self.words[s]),
                                  key=lambda s: self.words[s][0].start):
                self._line(speaker)
            m, s = divmod(e.t, 60)
            mark = {"warn": "!!", "nudge": "! ", "info": "+ "}.get(e.severity, "  ")
            self.out.write(f"           {mark} {e.title} - {e.advice}  ({e.id} at "
                           f"{int(m):02d}:{s:04.1f})\n")
            ev = describe(e.evidence, cue_id=e.id)
            if ev:
                self.out.write(f"              {ev}\n")
            self.out.flush()
        elif isinstance(e, Retraction):
            m, s = divmod(e.t, 60)
            self.out.write(f"           -- withdrawn: the {e.id} cue at {int(m):02d}:{s:04.1f}"
                           f" ({e.reason})\n")
            self.out.flush()


def _cues(args: argparse.Namespace) -> int:
    from coach.playbook import load_playbook

    pb = load_playbook(args.playbook)
    rows = [(c.id, c.severity + ("" if c.enabled else ", off"), c.title)
            for c in pb.cues.values()]
    if args.json:
        import json

        print(json.dumps([{"id": c.id, "title": c.title, "severity": c.severity,
                           "enabled": c.enabled} for c in pb.cues.values()],
                         ensure_ascii=False))
        return 0
    w0 = max(len(r[0]) for r in [("ID",), *rows])
    w1 = max(len(r[1]) for r in [("", "SEVERITY"), *rows])
    print(f"{'ID':<{w0}}  {'SEVERITY':<{w1}}  TITLE")
    for cid, sev, title in rows:
        print(f"{cid:<{w0}}  {sev:<{w1}}  {title}")
    source = args.playbook or "the built-in playbook"
    print(f"\n{len(rows)} cues in {source}; ids go to --cue filters and team playbooks")
    return 0


def _devices(args: argparse.Namespace) -> int:
    from coach.io.source import format_devices, list_devices

    print(format_devices(list_devices()))
    return 0


def _overlay(args: argparse.Namespace) -> int:
    from coach.io.overlay import options_from, run_overlay

    return run_overlay(args.url, **options_from(args))


_HOST_HELP = ("address to listen on (default: 127.0.0.1, this machine only; any other "
              "needs --token)")
_PORT_HELP = "port of the pages, API and websocket (default: 8765)"
_TOKEN_HELP = ("access token clients must give; required to listen beyond this machine "
               "(default: none)")
_PLAYBOOK_HELP = ("a team playbook (YAML) that overrides parts of the built-in one "
                  "(default: the built-in playbook; see `coach cues`)")
_MODEL_HELP = ("speech model: tiny.en (default, installed with coach), base or small (the "
               "optional extras), or a CTranslate2 Whisper folder")
_DEFAULT_THREADS = min(2, os.cpu_count() or 1)  # coach.io.whisper.DEFAULT_THREADS (lazy)
_THREADS_HELP = ("CPU threads for the speech model (default: 2, or 1 on a one-core machine); "
                 "the words are the same with any number")
_POLICIES = ("early", "agreement", "sure")  # coach.asr.POLICIES (kept lazy: no numpy here)
_POLICY_HELP = ("streaming policy: early (words committed when two passes agree; word cues "
                "from the words a pass is sure of, before they are committed, withdrawn if "
                "the committed words disagree; the customer's side one pass per "
                "utterance), agreement (the same agent transcript, cues from "
                "committed words only) or sure (words also committed from one pass when the "
                "model is sure of them: faster words, more errors) (default: early)")


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
    a.add_argument("--format", choices=("text", "jsonl"), default="text",
                   help="text: the transcript with each cue and a summary, for people; "
                        "jsonl: one event per line, for tools (default: text)")
    a.add_argument("--playbook", default=None, help=_PLAYBOOK_HELP)
    a.add_argument("--model", default="tiny.en", help=_MODEL_HELP)
    a.add_argument("--threads", type=int, default=_DEFAULT_THREADS, help=_THREADS_HELP)
    a.add_argument("--step", type=float, default=None,
                   help="seconds of new audio between recognition passes (default: the "
                        "policy's: 0.5 for sure, 1.0 for agreement and early)")
    a.add_argument("--policy", choices=_POLICIES, default=None,
                   help=_POLICY_HELP)
    a.add_argument("--finals-only", action="store_true",
                   help="one recognition pass per utterance: faster, no partial words")
    a.add_argument("--progress", choices=("auto", "on", "off"), default="auto",
                   help="progress bar on stderr (default auto: on when stderr is a terminal "
                        "and the file is over a minute)")
    a.add_argument("--save", action="store_true",
                   help="store the call (audio, transcript, prosody, cues) for replay and QA")
    a.add_argument("--agent", default=None,
                   help="with --save: the agent's name (default: none recorded)")
    a.add_argument("--db", default=None,
                   help="with --save: the store's URL (default: $COACH_DB, else SQLite in "
                        "the data directory)")
    a.set_defaults(func=_analyze)

    lv = sub.add_parser("live", help="coach a call live: capture, service, overlay",
                        description="Capture the headset (or play a recording in real time), "
                                    "coach it live, serve events on a websocket and show "
                                    "the overlay.")
    src = lv.add_argument_group("audio source")
    src.add_argument("--source", help="play this recording through the live path in real "
                                      "time instead of capturing devices (default: capture "
                                      "the devices below)")
    src.add_argument("--audible", action="store_true", help="with --source: also play it out loud")
    src.add_argument("--speed", type=float, default=1.0, help=argparse.SUPPRESS)
    src.add_argument("--mic", help="the agent's microphone, id or name from `coach devices` "
                                   "(default: the system's default input)")
    src.add_argument("--line", help="the customer's side: the softphone's output through a "
                                    "loopback or monitor input (default: none, agent only)")
    src.add_argument("--device", help="one stereo input device carrying both sides, instead "
                                      "of --mic and --line (default: not used)")
    lv.add_argument("--agent-channel", default="left",
                    help="stereo source: which channel is the agent: left (default), right "
                         "or a channel number")
    lv.add_argument("--host", default="127.0.0.1", help=_HOST_HELP)
    lv.add_argument("--port", type=int, default=8765, help=_PORT_HELP)
    lv.add_argument("--token", help=_TOKEN_HELP)
    lv.add_argument("--no-overlay", action="store_true", help="do not open the desktop overlay")
    lv.add_argument("--geometry", default=None, metavar="WxH+X+Y",
                    help="the desktop overlay's size and place in pixels, e.g. 380x150+40+40 "
                         "(default: where it was last left, else 380x150)")
    lv.add_argument("--agent", default=None,
                    help="agent name stored with the call (default: none recorded)")
    lv.add_argument("--record-dir", help="where calls are recorded (default: $COACH_DATA/live "
                                         "or ~/.local/share/coach/live)")
    lv.add_argument("--no-record", action="store_true", help="do not record the call")
    lv.add_argument("--no-store", action="store_true",
                    help="record to files only; do not put the call in the store")
    lv.add_argument("--db", default=None,
                    help="the store's URL (default: $COACH_DB, else SQLite in the data "
                         "directory)")
    lv.add_argument("--team", default=os.environ.get("COACH_TEAM"), metavar="URL",
                    help="share the call with a team server (its policy decides what is "
                         "sent; the agent's token in $COACH_TEAM_TOKEN; default: $COACH_TEAM, "
                         "else not shared)")
    lv.add_argument("--playbook", default=None, help=_PLAYBOOK_HELP)
    lv.add_argument("--model", default="tiny.en", help=_MODEL_HELP)
    lv.add_argument("--threads", type=int, default=_DEFAULT_THREADS, help=_THREADS_HELP)
    lv.add_argument("--step", type=float, default=None, help=argparse.SUPPRESS)
    lv.add_argument("--policy", choices=_POLICIES, default=None, help=_POLICY_HELP)
    lv.set_defaults(func=_live)

    sv = sub.add_parser("serve", help="the replay pages and API over the call store",
                        description="Serve the replay pages (call list, one call with audio, "
                                    "waveforms, curves, transcript, cues, notes) and their "
                                    "JSON API, without live capture.")
    sv.add_argument("--host", default="127.0.0.1", help=_HOST_HELP)
    sv.add_argument("--port", type=int, default=8765, help=_PORT_HELP)
    sv.add_argument("--token", help=_TOKEN_HELP)
    sv.add_argument("--db", default=None,
                    help="the store's URL (default: $COACH_DB, else SQLite in the data "
                         "directory)")
    sv.add_argument("--team", action="store_true",
                    help="a team server: agents' live calls, the board, role tokens "
                         "(`coach team token create`) instead of --token")
    sv.add_argument("--policy", default=None,
                    help="with --team: the team's policy file (`coach team policy` prints "
                         "the default)")
    sv.add_argument("--playbook", default=None, help="with --team: the playbook calls are "
                                                     "scored with (default: the built-in one)")
    sv.set_defaults(func=_serve)

    from coach.store.cli import add_parsers as add_store_parsers

    add_store_parsers(sub)
    from coach.team.cli import add_parsers as add_team_parsers

    add_team_parsers(sub)
    try:
        from coach.qa.cli import add_parser as add_qa_parser
    except ImportError:  # the QA runner is optional while it is being built
        add_qa_parser = None
    if add_qa_parser is not None:
        add_qa_parser(sub)

    cu = sub.add_parser("cues", help="list the playbook's cues: ids, severities, titles",
                        description="List the cues of the built-in playbook, or of a team "
                                    "playbook over it: the ids used by --cue filters, "
                                    "exports and team playbooks, each with its severity "
                                    "(info, nudge, warn; 'off' when disabled) and the title "
                                    "the overlay shows.")
    cu.add_argument("--playbook", default=None, help=_PLAYBOOK_HELP)
    cu.add_argument("--json", action="store_true", help="JSON for machines: a list of "
                                                        "{id, title, severity, enabled}")
    cu.set_defaults(func=_cues)

    dv = sub.add_parser("devices", help="list audio devices for --mic / --line / --device")
    dv.set_defaults(func=_devices)

    from coach.io.overlay import add_options as add_overlay_options

    ov = sub.add_parser("overlay", help="the desktop overlay, connected to a running service")
    add_overlay_options(ov)
    ov.set_defaults(func=_overlay)
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
