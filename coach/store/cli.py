"""``coach import`` and ``coach calls list|export``: the store from the command line.

``add_parsers`` registers them on the ``coach`` command's subparsers; each handler takes
the parsed namespace, returns an exit code and raises ``CoachError`` subclasses (printed
by ``coach`` as one line, exit 2) on bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, TextIO

from coach.redact import RedactOptions
from coach.store.db import Store, default_data_dir, open_store
from coach.store.export import FORMATS, export
from coach.store.importer import ImportResult, import_path, recover
from coach.store.schema import StoreError

__all__ = ["add_parsers", "cmd_calls_delete", "cmd_calls_export", "cmd_calls_list",
           "cmd_calls_show", "cmd_import", "format_call", "replay_url"]

REPLAY_BASE = "http://127.0.0.1:8765"
"""Where ``coach serve`` (and ``coach live``) serve the replay pages by default."""


def replay_url(call_id: str, base: str = REPLAY_BASE) -> str:
    """The replay page of a stored call (open it while ``coach serve`` runs)."""
    return f"{base.rstrip('/')}/calls/{call_id}"

_DB_HELP = ("database URL: sqlite:///PATH or postgresql://USER@HOST/DB (default: $COACH_DB, "
            "else coach.db in $COACH_DATA or ~/.local/share/coach)")


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register ``import`` and ``calls`` on the ``coach`` command."""
    im = subparsers.add_parser(
        "import", help="import recorded calls into the call store",
        description="Import recording folders written by `coach live` (audio.flac, "
                    "events.jsonl, call.json), searching PATH recursively. Calls cut off by "
                    "a crash are recovered up to their last flush. Card numbers, long "
                    "digit runs and e-mail addresses are redacted from the stored "
                    "transcript unless --no-redact.")
    im.add_argument("path", help="a recording folder or a folder of them")
    im.add_argument("--db", default=None, help=_DB_HELP)
    im.add_argument("--agent", default=None, help="agent name for the imported calls "
                                                  "(default: as recorded)")
    im.add_argument("--no-redact", action="store_true",
                    help="store transcripts verbatim (no redaction of personal data)")
    im.add_argument("--min-digits", type=int, default=RedactOptions().min_digits,
                    help="shortest digit run redacted as a personal number (default 6)")
    im.set_defaults(func=cmd_import)

    ca = subparsers.add_parser("calls", help="list, show, export or delete stored calls",
                               description="Stored calls: list them (newest first), show "
                                           "one in the terminal, export or delete one.")
    ca.add_argument("--db", default=None, help=_DB_HELP)
    sub = ca.add_subparsers(dest="calls_command", required=True,
                            metavar="{list,show,export,delete}")
    ls = sub.add_parser("list", help="list calls, newest first",
                        description="List stored calls, newest first, with filters.")
    ls.add_argument("--db", default=argparse.SUPPRESS, help=_DB_HELP)
    ls.add_argument("--agent", help="only this agent's calls (default: every agent)")
    ls.add_argument("--since", help="started on or after (YYYY-MM-DD or ISO time; local time; "
                                    "default: no limit)")
    ls.add_argument("--until", help="started on or before (a date includes the whole day; "
                                    "default: no limit)")
    ls.add_argument("--cue", help="only calls with this cue id, e.g. qualified-apology "
                                  "(`coach cues` lists them; default: any)")
    ls.add_argument("--q", help="words of the transcript, each matching as a prefix "
                                "(default: no search)")
    ls.add_argument("--min-score", type=float, default=None, help=argparse.SUPPRESS)
    ls.add_argument("--max-score", type=float, default=None, help=argparse.SUPPRESS)
    ls.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    ls.add_argument("--offset", type=int, default=0,
                    help="skip this many first, to page on (default 0)")
    ls.add_argument("--json", action="store_true", help="JSON for machines: "
                                                        '{"total": N, "calls": [...]}')
    ls.set_defaults(func=cmd_calls_list)

    ex = sub.add_parser("export", help="export one call",
                        description="Export a call as JSON, a WebVTT or SRT transcript, or "
                                    "a CSV of its cues.")
    ex.add_argument("id", help="call id (or a unique prefix of at least 4 characters)")
    ex.add_argument("--db", default=argparse.SUPPRESS, help=_DB_HELP)
    ex.add_argument("--format", choices=tuple(FORMATS), default="json",
                    help="json: everything stored; vtt/srt: the transcript as subtitles; "
                         "csv: one row per cue (default: json)")
    ex.add_argument("-o", "--output", default=None, help="write to this file (default stdout)")
    ex.set_defaults(func=cmd_calls_export)

    sh = sub.add_parser("show", help="print one call: transcript, cues with evidence, notes",
                        description="Print a stored call in the terminal: who, when, how "
                                    "long, its score, the transcript with each cue and its "
                                    "evidence where it fired, and the coach notes.")
    sh.add_argument("id", help="call id (or a unique prefix of at least 4 characters)")
    sh.add_argument("--db", default=argparse.SUPPRESS, help=_DB_HELP)
    sh.set_defaults(func=cmd_calls_show)

    de = sub.add_parser("delete", help="delete one call and its audio",
                        description="Delete a stored call with everything kept with it "
                                    "(audio, transcript, cues, notes, score) and the "
                                    "recording folder `coach live` wrote for it. Asks first.")
    de.add_argument("id", help="call id (or a unique prefix of at least 4 characters)")
    de.add_argument("--db", default=argparse.SUPPRESS, help=_DB_HELP)
    de.add_argument("-y", "--yes", action="store_true",
                    help="delete without asking (needed when not at a terminal)")
    de.set_defaults(func=cmd_calls_delete)


def _open(args: argparse.Namespace) -> Store:
    url = getattr(args, "db", None) or os.environ.get("COACH_DB") or None
    return open_store(url)


def _recover(store: Store, err: TextIO) -> None:
    """Calls recorded on this machine and not yet stored (a crash included) come first."""
    live = default_data_dir() / "live"
    ids = recover(store, live)
    if ids:
        print(f"coach: stored {len(ids)} recorded call{'s' if len(ids) > 1 else ''} from "
              f"{live}", file=err)


def cmd_import(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    if args.min_digits < 2:
        raise StoreError(f"--min-digits {args.min_digits}: at least 2")
    redact = (RedactOptions.off() if args.no_redact
              else RedactOptions(min_digits=args.min_digits))

    def report(r: ImportResult) -> None:
        if r.outcome == "imported":
            out.write(f"imported {r.call_id}  {r.folder}  ({r.reason})\n"
                      f"  replay: {replay_url(r.call_id)}\n")
        else:
            out.write(f"{r.outcome} {r.folder}: {r.reason}\n")
        out.flush()

    with _open(args) as store:
        results = import_path(store, args.path, agent=args.agent, redact=redact,
                              on_result=report)
    n = {k: sum(r.outcome == k for r in results) for k in ("imported", "skipped", "failed")}
    print(f"coach: {n['imported']} imported, {n['skipped']} skipped, {n['failed']} failed",
          file=sys.stderr)
    return 1 if n["failed"] else 0


def _parse_when(s: str | None, *, opt: str, end_of_day: bool = False) -> datetime | None:
    """A command-line date or time; without a time zone it is local time."""
    if s is None:
        return None
    try:
        d = date.fromisoformat(s.strip())
    except ValueError:
        d = None
    if d is not None:
        dt = datetime.combine(d, time.min)
        if end_of_day:
            dt += timedelta(days=1) - timedelta(microseconds=1)
        return dt.astimezone()
    try:
        v = s.strip()
        dt = datetime.fromisoformat(v[:-1] + "+00:00" if v.endswith("Z") else v)
    except ValueError:
        raise StoreError(f"{opt} {s!r}: expected a date (2024-05-01) or a time "
                         "(2024-05-01T09:30)") from None
    return dt.astimezone() if dt.tzinfo is None else dt


def _duration(s: float | None) -> str:
    s = round(s or 0.0)
    h, rest = divmod(int(s), 3600)
    m, sec = divmod(rest, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def _cues(counts: dict[str, int], width: int = 40) -> str:
    parts = [f"{k} x{v}" if v > 1 else k
             for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    s = ", ".join(parts)
    return s if len(s) <= width else s[:width - 1] + "…"


def format_table(rows: list[dict[str, Any]]) -> str:
    """Calls as an aligned text table (local times, short ids: any unique prefix works
    with ``coach calls export``)."""
    head = ["ID", "STARTED", "LENGTH", "AGENT", "STATUS", "SCORE", "WORDS", "CUES"]
    body = []
    for r in rows:
        started = datetime.fromisoformat(r["started_at"]).astimezone()
        score = f"{r['score']:.0f}" if r.get("score") is not None else (
            "no speech" if not r.get("n_words") else "")
        body.append([r["id"][:8], started.strftime("%Y-%m-%d %H:%M"),
                     _duration(r.get("duration_s")), (r.get("agent") or "-")[:20],
                     r.get("status") or "", score, str(r.get("n_words") or 0),
                     _cues(r.get("cue_counts") or {}) or "-"])
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
    right = {2, 5, 6}
    lines = []
    for row in [head, *body]:
        cells = [c.rjust(w) if i in right else c.ljust(w)
                 for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def cmd_calls_list(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    since = _parse_when(args.since, opt="--since")
    until = _parse_when(args.until, opt="--until", end_of_day=True)
    if args.limit < 1:
        raise StoreError(f"--limit {args.limit}: at least 1")
    if args.offset < 0:
        raise StoreError(f"--offset {args.offset}: cannot be negative")
    with _open(args) as store:
        _recover(store, sys.stderr)
        rows, total = store.list_calls(agent=args.agent, since=since, until=until,
                                       cue=args.cue, q=args.q,
                                       min_score=getattr(args, "min_score", None),
                                       max_score=getattr(args, "max_score", None),
                                       limit=args.limit, offset=args.offset)
    if args.json:
        out.write(json.dumps({"total": total, "calls": rows}, ensure_ascii=False) + "\n")
        return 0
    if not rows:
        out.write("no calls match\n" if total == 0 or args.offset == 0 else
                  f"no calls past {args.offset} ({total} match)\n")
        return 0
    out.write(format_table(rows) + "\n")
    first = args.offset + 1
    out.write(f"\n{first}-{args.offset + len(rows)} of {total} call"
              f"{'s' if total != 1 else ''}\n")
    return 0


def cmd_calls_export(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    with _open(args) as store:
        _recover(store, sys.stderr)
        call = store.get_call(store.resolve_id(args.id))
    data = export(call, args.format)
    if args.output in (None, "-"):
        out.write(data)
        return 0
    dest = Path(args.output)
    if dest.is_dir():
        raise StoreError(f"{dest}: is a folder; give a file name")
    try:
        dest.write_text(data, encoding="utf-8")
    except OSError as exc:
        raise StoreError(f"{dest}: cannot write ({exc.strerror or exc})") from exc
    print(f"coach: wrote {dest}", file=sys.stderr)
    return 0


def _when_local(iso: str | None) -> str:
    if not iso:
        return "unknown time"
    try:
        return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return iso


def format_call(call: dict[str, Any]) -> str:
    """A stored call as text: a header, the transcript with each cue (title, id, severity,
    the agent's feedback, the evidence in words) where it fired, then the notes."""
    from coach.evidence import clock, describe
    from coach.store.export import lines

    head = [call.get("agent") or "unknown agent", _when_local(call.get("started_at")),
            _duration(call.get("duration_s"))]
    if call.get("score") is not None:
        head.append(f"score {call['score']:.0f}")
    if call.get("status") and call["status"] != "complete":
        head.append(str(call["status"]))
    out = [f"call {call['id']}: " + " · ".join(head)]
    extra = [f"source {call['source']}" if call.get("source") else None,
             f"model {call['model']}" if call.get("model") else None]
    if any(extra):
        out.append(" · ".join(x for x in extra if x))
    out.append(f"replay: {replay_url(call['id'])} (while `coach serve` runs)")
    out.append("")
    items: list[tuple[float, int, Any]] = [(ln.start, 0, ln) for ln in lines(call)]
    items += [(float(c.get("t") or 0.0), 1, c) for c in call.get("cues") or []]
    items.sort(key=lambda x: (x[0], x[1]))
    if not call.get("words"):
        out.append("(no words were recognised in this call)")
    marks = {"warn": "!!", "nudge": "! ", "info": "+ "}
    for _, kind, item in items:
        if kind == 0:
            out.append(f"[{clock(item.start)}] {item.speaker.upper():<8} {item.text}")
            continue
        c = item
        fb = {"dismissed": " — the agent dismissed it",
              "flagged": " — the agent flagged it as wrong"}.get(c.get("feedback") or "", "")
        out.append(f"        {marks.get(c.get('severity'), '  ')} {c.get('title')} "
                   f"({c.get('id')}, {c.get('severity')}) at {clock(float(c.get('t') or 0))}{fb}")
        ev = describe(c.get("evidence"), cue_id=c.get("id"))
        if ev:
            out.append(f"           {ev}")
    notes = call.get("notes") or []
    if notes:
        out += ["", "Coach notes"]
        for n in notes:
            by = f"{n['author']}: " if n.get("author") else ""
            out.append(f"  [{clock(float(n.get('t') or 0))}] {by}{n.get('text', '')}")
    return "\n".join(out) + "\n"


def cmd_calls_show(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    with _open(args) as store:
        _recover(store, sys.stderr)
        call = store.get_call(store.resolve_id(args.id))
    out.write(format_call(call))
    return 0


def _recording_folders_of(call_id: str) -> list[Path]:
    """Folders `coach live` recorded this call into (their imported.json names it)."""
    live = default_data_dir() / "live"
    found = []
    for marker in live.glob("*/imported.json") if live.is_dir() else []:
        try:
            if json.loads(marker.read_text()).get("call_id") == call_id:
                found.append(marker.parent)
        except (OSError, ValueError, AttributeError):
            continue
    return found


def cmd_calls_delete(args: argparse.Namespace, out: TextIO | None = None,
                     ask: Any = None) -> int:
    """Delete a call after a confirmation (``--yes`` skips it; without a terminal it is
    required). The recording folder is removed too, or the next run would store it again."""
    import shutil

    out = out or sys.stdout
    with _open(args) as store:
        call_id = store.resolve_id(args.id)
        call = store.get_call(call_id)
        what = (f"call {call_id} ({call.get('agent') or 'unknown agent'}, "
                f"{_when_local(call.get('started_at'))}, {_duration(call.get('duration_s'))}, "
                f"{len(call.get('notes') or [])} notes)")
        if not args.yes:
            if ask is None:
                if not sys.stdin.isatty():
                    raise StoreError("not at a terminal to confirm: add --yes to delete "
                                     f"call {call_id}")
                ask = input
            answer = ask(f"Delete {what} and its audio? This cannot be undone. [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                out.write("kept: nothing was deleted\n")
                return 1
        folders = _recording_folders_of(call_id)
        store.delete_call(call_id)
    for folder in folders:
        try:
            shutil.rmtree(folder)
        except OSError as exc:
            raise StoreError(f"deleted call {call_id}, but not its recording folder {folder} "
                             f"({exc.strerror or exc}): remove it by hand, or the next "
                             "coach run stores it again") from exc
    out.write(f"deleted {what}" + (f" and its recording folder {folders[0]}" if folders else "")
              + "\n")
    return 0
