"""When does each cue appear on the overlay, against the sentence that caused it?

Plays `make demo`'s call through `coach live --source` in real time (the real service and
model) with the desktop overlay on a virtual display (Xvfb), screenshots the overlay the
moment each cue appears, and reports for every cue, in audio time: the end of its trigger
word (the cue's ``t``), when it reached a websocket client, when the overlay showed it, and
the end of the sentence it is about — so "the cue shows while the sentence is still being
spoken" is measured, not assumed.

Sentence ends come from the call's script (``audio_samples/NAME.json``: each turn's text,
start and end): the turn is split at sentence ends and timed in proportion to its
characters (espeak-ng speaks at an even rate; expect ±0.3 s). Cues that fire because
something did *not* happen (no fix offered, no follow-up, a feeling left unnamed) wait on
purpose; they are listed with their wait but not judged against a sentence.

The overlay here is started beside ``coach live --no-overlay`` with a state log (the same
program ``coach live`` starts, with the same defaults). Needs Debian's ``xvfb`` and
``imagemagick``. Usage::

    python bench/overlay_timing.py [--call audio_samples/02_every_apology_wrong.flac]
                                   [--out bench/out/overlay] [--json FILE]
                                   [--policy early --policy agreement]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CALL = ROOT / "audio_samples" / "02_every_apology_wrong.flac"
SCREEN = "800x400x24"
WINDOW = (380, 150)
DISPLAY_S = 6.0  # the overlay's default display time, and so its "late" threshold


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _xvfb() -> tuple[subprocess.Popen, str]:
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(write_fd), "-screen", "0", SCREEN,
                             "-nolisten", "tcp"], pass_fds=(write_fd,),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_fd)
    with os.fdopen(read_fd) as f:
        number = f.readline().strip()
    if not number:
        raise SystemExit("Xvfb did not start")
    return proc, f":{number}"


def sentence_spans(turn: dict[str, Any]) -> list[tuple[float, float, str]]:
    """The turn's sentences with start and end times, in proportion to their characters."""
    text = turn["text"].strip()
    parts = [p for p in re.split(r"(?<=[.?!])\s+", text) if p]
    total = sum(len(p) for p in parts) + max(0, len(parts) - 1)
    span = turn["end"] - turn["start"]
    out, pos = [], 0
    for p in parts:
        a = turn["start"] + span * pos / total
        pos += len(p) + 1
        b = turn["start"] + span * min(1.0, (pos - 1) / total)
        out.append((a, b, p))
    return out


def sentence_of(script: dict[str, Any], speaker: str, t: float
                ) -> tuple[float, float, str] | None:
    """The sentence of ``speaker`` being spoken at audio time ``t`` (or just ended)."""
    for turn in script["turns"]:
        if turn["speaker"] != speaker or not turn["start"] - 0.2 <= t <= turn["end"] + 0.6:
            continue
        spans = sentence_spans(turn)
        for a, b, text in spans:
            if t <= b + 0.3:
                return a, b, text
        return spans[-1]
    return None


def is_word_cue(cue: dict[str, Any]) -> bool:
    """A cue about words just said: its ``t`` is the end of its last evidence word."""
    words = (cue.get("evidence") or {}).get("words") or []
    return bool(words) and abs(float(words[-1]["end"]) - float(cue["t"])) < 0.05


class Listener(threading.Thread):
    """A websocket client noting every message with its arrival (Unix time)."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.messages: list[tuple[float, dict[str, Any]]] = []
        self.ended = threading.Event()

    def run(self) -> None:
        from websockets.sync.client import connect

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with connect(self.url, open_timeout=2, proxy=None) as ws:
                    for raw in ws:
                        msg = json.loads(raw)
                        self.messages.append((time.time(), msg))
                        if msg.get("type") == "call" and msg.get("state") == "end":
                            self.ended.set()
                            return
            except OSError:
                time.sleep(0.2)
            except Exception:  # noqa: BLE001 - the service went away
                return


def run(call: Path, out: Path, policy: str | None = None) -> dict[str, Any]:
    script = json.loads(call.with_suffix(".json").read_text("utf-8"))
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.png"):
        old.unlink()
    xvfb, display = _xvfb()
    tmp = Path(tempfile.mkdtemp(prefix="coach-overlay-timing-"))
    env = dict(os.environ, DISPLAY=display, XDG_CONFIG_HOME=str(tmp / "config"))
    port = _free_port()
    log = tmp / "overlay.jsonl"
    live = subprocess.Popen(
        [sys.executable, "-m", "coach.cli", "live", "--source", str(call), "--no-overlay",
         "--no-record", "--port", str(port), *(["--policy", policy] if policy else [])],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    listener = Listener(f"ws://127.0.0.1:{port}/ws")
    listener.start()
    overlay = subprocess.Popen(
        [sys.executable, "-m", "coach.io.overlay", "--url", f"ws://127.0.0.1:{port}/ws",
         "--geometry", f"{WINDOW[0]}x{WINDOW[1]}+0+0", "--state-log", str(log)],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    shots: dict[str, str] = {}
    seen = 0
    current = None
    try:
        deadline = time.monotonic() + 180
        ended_at: float | None = None
        while time.monotonic() < deadline:
            if listener.ended.is_set():
                ended_at = ended_at or time.monotonic()
                if time.monotonic() > ended_at + 2.0:  # the last cue's time on screen
                    break
            lines = log.read_text("utf-8").splitlines() if log.exists() else []
            for line in lines[seen:]:
                entry = json.loads(line)
                if "shown" in entry and entry["cue_id"] != current:
                    current = entry["cue_id"]
                    if current is not None and current not in shots:
                        name = f"{len(shots) + 1:02d}-{current}.png"
                        subprocess.run(["import", "-window", "root", "-crop",
                                        f"{WINDOW[0]}x{WINDOW[1]}+0+0", str(out / name)],
                                       env=env, check=True, timeout=10)
                        # a busy machine: the next cue may have taken its place meanwhile
                        after = [json.loads(x) for x in log.read_text("utf-8").splitlines()]
                        on_screen = next((e["cue_id"] for e in reversed(after) if "shown" in e),
                                         None)
                        shots[current] = name if on_screen == current else (
                            f"{name} (may show {on_screen or 'no cue'}: replaced during the shot)")
            seen = len(lines)
            if live.poll() is not None and not listener.ended.is_set():
                raise SystemExit(f"coach live stopped: {live.stderr.read()[-2000:]}")
            time.sleep(0.02)
    finally:
        overlay.terminate()
        live.terminate()
        for p in (overlay, live):
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        xvfb.terminate()
        xvfb.wait(timeout=5)
    entries = [json.loads(line) for line in log.read_text("utf-8").splitlines()]
    shutil.rmtree(tmp, ignore_errors=True)
    return report(script, listener.messages, entries, shots)


def report(script: dict[str, Any], messages: list[tuple[float, dict[str, Any]]],
           entries: list[dict[str, Any]], shots: dict[str, str]) -> dict[str, Any]:
    start = next(m for _, m in messages if m.get("type") == "call" and m.get("state") == "start")
    started_at = float(start["started_at"])
    shown_at: dict[str, float] = {}
    late_tag: dict[str, float | None] = {}
    for e in entries:
        if "shown" in e and e.get("cue_id") and e["cue_id"] not in shown_at:
            shown_at[e["cue_id"]] = float(e["wall"]) - started_at
            late_tag[e["cue_id"]] = e.get("late_s")
    decided: dict[tuple[str, float], list[str]] = {}
    for e in entries:
        if "decision" in e and e.get("t") is not None:
            decided.setdefault((e["cue_id"], round(float(e["t"]), 3)), []).append(e["decision"])
    rows = []
    for wall, m in messages:
        if m.get("type") != "cue":
            continue
        t = float(m["t"])
        row: dict[str, Any] = {
            "id": m["id"], "severity": m["severity"], "title": m["title"], "t": t,
            "arrived": round(wall - started_at, 2),
            "shown": None if m["id"] not in shown_at else round(shown_at[m["id"]], 2),
            "decisions": decided.get((m["id"], round(t, 3)), []),
            "screenshot": shots.get(m["id"]),
            "word_cue": is_word_cue(m),
        }
        if row["shown"] is not None:
            row["shown_after_t"] = round(row["shown"] - t, 2)
            row["shown_as_late"] = late_tag.get(m["id"]) is not None
        sentence = sentence_of(script, m.get("speaker", "agent"), t) if row["word_cue"] else None
        if sentence is not None:
            a, b, text = sentence
            row["sentence"] = text
            row["sentence_end"] = round(b, 2)
            if row["shown"] is not None:
                row["before_sentence_end"] = round(b - row["shown"], 2)
        rows.append(row)
    retractions = [m for _, m in messages if m.get("type") == "retract"]
    statuses = [m.get("lag_s") for _, m in messages if m.get("type") == "status"
                and isinstance(m.get("lag_s"), int | float)]
    word_rows = [r for r in rows if r["word_cue"] and r["shown"] is not None and "sentence_end" in r]
    # the rule: a cue older than its display time (6 s) when it arrives is never fresh
    stale_as_fresh = [r["id"] for r in rows if r["shown"] is not None
                      and r["arrived"] - r["t"] > DISPLAY_S + 0.5 and not r["shown_as_late"]]
    return {"call": script["name"], "started_at": started_at, "cues": rows,
            "stale_shown_as_fresh": stale_as_fresh,
            "retractions": retractions, "max_lag_s": max(statuses, default=None),
            "word_cues_shown": len(word_rows),
            "shown_while_sentence_spoken": sum(r["before_sentence_end"] >= 0 for r in word_rows)}


def print_table(res: dict[str, Any], out: Path) -> None:
    print(f"call {res['call']}: cues in audio time (s); max lag {res['max_lag_s']} s; "
          f"{len(res['retractions'])} retraction(s); screenshots in {out}")
    print("| cue | severity | trigger end | at a client | on the overlay | after trigger "
          "| sentence ends | shown before its end | overlay's decision |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    for r in res["cues"]:
        shown = "—" if r["shown"] is None else f"{r['shown']:.2f}"
        after = "—" if r["shown"] is None else f"{r['shown_after_t']:.2f}"
        if "sentence_end" in r:
            end = f"{r['sentence_end']:.2f}"
            margin = ("—" if "before_sentence_end" not in r else
                      f"{'yes' if r['before_sentence_end'] >= 0 else 'no'} "
                      f"({r['before_sentence_end']:+.2f})")
        else:
            end, margin = "(waits on purpose)", ""
        print(f"| {r['id']} | {r['severity']} | {r['t']:.2f} | {r['arrived']:.2f} | {shown} "
              f"| {after} | {end} | {margin} | {', '.join(r['decisions']) or '—'} |")
    print(f"word cues shown while their sentence was still being spoken: "
          f"{res['shown_while_sentence_spoken']} of {res['word_cues_shown']}; cues more than "
          f"{DISPLAY_S:.0f} s old shown as fresh: {len(res['stale_shown_as_fresh'])}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--call", type=Path, default=DEFAULT_CALL)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "overlay")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--policy", action="append", choices=("early", "agreement", "sure"), default=None,
                    help="coach live's streaming policy; give it twice to run both, one "
                         "after the other (default: coach live's default)")
    args = ap.parse_args(argv)
    missing = [t for t in ("Xvfb", "import") if shutil.which(t) is None]
    if missing:
        print(f"needs {', '.join(missing)} (Debian: apt-get install xvfb imagemagick)",
              file=sys.stderr)
        return 2
    results = {}
    for policy in args.policy or [None]:
        out = args.out / policy if policy else args.out
        res = run(args.call, out, policy)
        res["policy"] = policy or "default"
        print(f"\nstreaming policy: {res['policy']}")
        print_table(res, out)
        results[res["policy"]] = res
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
