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

__all__ = ["add_parsers", "cmd_calls_export", "cmd_calls_list", "cmd_import"]

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

    ca = subparsers.add_parser("calls", help="list and export stored calls",
                               description="Stored calls: list them (newest first) or "
                                           "export one.")
    ca.add_argument("--db", default=None, help=_DB_HELP)
    sub = ca.add_subparsers(dest="calls_command", required=True, metavar="{list,export}")
    ls = sub.add_parser("list", help="list calls, newest first",
                        description="List stored calls, newest first, with filters.")
    ls.add_argument("--db", default=argparse.SUPPRESS, help=_DB_HELP)
    ls.add_argument("--agent", help="only this agent's calls")
    ls.add_argument("--since", help="started on or after (YYYY-MM-DD or ISO time; local time)")
    ls.add_argument("--until", help="started on or before (a date includes the whole day)")
    ls.add_argument("--cue", help="only calls with this cue id (e.g. sorry-but)")
    ls.add_argument("--q", help="words of the transcript (each word matches as a prefix)")
    ls.add_argument("--min-score", type=float, default=None, help=argparse.SUPPRESS)
    ls.add_argument("--max-score", type=float, default=None, help=argparse.SUPPRESS)
    ls.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    ls.add_argument("--offset", type=int, default=0, help="skip this many first")
    ls.add_argument("--json", action="store_true", help="JSON for machines: "
                                                        '{"total": N, "calls": [...]}')
    ls.set_defaults(func=cmd_calls_list)

    ex = sub.add_parser("export", help="export one call",
                        description="Export a call as JSON, a WebVTT or SRT transcript, or "
                                    "a CSV of its cues.")
    ex.add_argument("id", help="call id (or a unique prefix of at least 4 characters)")
    ex.add_argument("--db", default=argparse.SUPPRESS, help=_DB_HELP)
    ex.add_argument("--format", choices=tuple(FORMATS), default="json")
    ex.add_argument("-o", "--output", default=None, help="write to this file (default stdout)")
    ex.set_defaults(func=cmd_calls_export)


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
            out.write(f"imported {r.call_id}  {r.folder}  ({r.reason})\n")
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
