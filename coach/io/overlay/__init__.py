"""The desktop overlay: a small always-on-top Tk window showing the live coaching cue.

It connects to the coach service's websocket (``ws://127.0.0.1:8765/ws``) and shows what
:mod:`coach.display` decides: one cue at a time by severity (title, advice, a colour band),
fading after its display time; late cues muted and labelled; withdrawn cues struck through;
a pace gauge (``pace_wpm`` against the call's pace band); the talk-time split; and, plainly,
when coaching runs behind the call. The agent dismisses a cue (``d`` / Escape) or flags it
as wrong (``f``), drags the window anywhere and resizes it from its corner; its place is
remembered (:mod:`.prefs`). It shows when the service is unreachable and reconnects by
itself.

The parts: :mod:`.client` (the websocket thread), :mod:`.view` (the Tk window),
:mod:`.prefs` (``--geometry`` and the remembered place); the decisions are in the pure
:mod:`coach.display`.
"""

from __future__ import annotations

import argparse
import os
import queue
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from coach.display import DisplayOptions, DisplayPolicy
from coach.errors import CoachError, MissingDependency

from .client import Client, with_token
from .prefs import Geometry, clamp, load_prefs, parse_geometry

__all__ = ["DEFAULT_URL", "main", "run_overlay"]

DEFAULT_URL = "ws://127.0.0.1:8765/ws"
DEFAULT_FADE_S = 6.0

_with_token = with_token  # the name the tests have always used


def _check_display() -> None:
    if sys.platform in ("win32", "darwin"):
        return
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        raise CoachError("no display: DISPLAY is not set (run the overlay in a desktop session)")


def _merge(given: Geometry | None, saved: Geometry | None) -> Geometry:
    """What ``--geometry`` names wins; the remembered place fills in the rest."""
    if given is None:
        return saved or Geometry()
    if saved is None:
        return given
    size = (given.width, given.height) if given.width is not None else (saved.width,
                                                                         saved.height)
    if given.x is not None:
        return Geometry(*size, given.x, given.y, given.from_right, given.from_bottom)
    return Geometry(*size, saved.x, saved.y)


def run_overlay(url: str = DEFAULT_URL, *, token: str | None = None,
                fade_s: float = DEFAULT_FADE_S, geometry: Geometry | None = None,
                remember: bool = True, prefs_file: Path | None = None,
                state_log: TextIO | None = None) -> int:
    """Show the overlay until its window is closed; returns 0.

    ``geometry`` (from ``--geometry``) wins over the remembered place; ``remember=False``
    neither reads nor writes it. Raises :class:`CoachError` when there is no display,
    :class:`MissingDependency` when ``websockets`` or ``tkinter`` is missing.
    """
    _check_display()
    try:
        import tkinter as tk
    except ImportError as exc:  # Python built without Tk
        raise MissingDependency("the overlay needs tkinter (Debian: python3-tk)") from exc
    try:
        import websockets.sync.client  # noqa: F401
    except ImportError as exc:
        raise MissingDependency("the overlay needs websockets: pip install websockets") from exc
    saved, note = load_prefs(prefs_file) if remember else (None, None)
    if note:
        print(f"coach: note: {note}", file=sys.stderr)
    try:
        root = tk.Tk(className="coach")
    except tk.TclError as exc:
        raise CoachError(f"no display: {exc}") from exc
    place = clamp(_merge(geometry, saved), (root.winfo_screenwidth(), root.winfo_screenheight()))

    where = urlsplit(url).netloc.rsplit("@", 1)[-1] or url
    policy = DisplayPolicy(DisplayOptions(display_s=fade_s), where=where)
    client = Client(with_token(url, token), queue.Queue(), queue.Queue())
    from .view import OverlayWindow

    window = OverlayWindow(root, policy, inbox=client.inbox, outbox=client.outbox,
                           geometry=place, remember=remember, prefs_file=prefs_file,
                           state_log=state_log)
    closed = False

    def close() -> None:
        nonlocal closed
        if not closed:
            closed = True
            window.save_place()
            root.destroy()

    client.start()
    root.protocol("WM_DELETE_WINDOW", close)
    previous = _quit_on_signals(root, close)
    try:
        root.mainloop()
    finally:
        client.stop()
        client.join(timeout=2)
        if not closed:
            try:
                close()
            except tk.TclError:
                pass  # already destroyed
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _quit_on_signals(root: Any, close: Any) -> dict[int, Any]:
    """Ctrl+C in the terminal and SIGTERM close the window like its close button does.

    (Python runs signal handlers between Tk callbacks; the 50 ms poll keeps that prompt.)
    """
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, lambda _s, _f: root.after_idle(close))
    return previous


def add_options(parser: argparse.ArgumentParser) -> None:
    """The overlay's own options (``coach overlay`` and ``python -m coach.io.overlay``)."""
    parser.add_argument("--url", default=DEFAULT_URL,
                        help=f"the service's websocket (default {DEFAULT_URL})")
    parser.add_argument("--token", default=None,
                        help="access token, when the service needs one (default: none)")
    parser.add_argument("--geometry", default=None, metavar="WxH+X+Y",
                        help="the window's size and place in pixels, e.g. 380x150+40+40 "
                             "(default: where it was last left, else 380x150)")
    parser.add_argument("--fade", type=float, default=DEFAULT_FADE_S, metavar="SECONDS",
                        help="how long a cue stays before it fades; a cue arriving longer "
                             "than this after its words is shown as late (default 6)")


def options_from(args: argparse.Namespace) -> dict[str, Any]:
    """``run_overlay`` keyword arguments from parsed :func:`add_options` options;
    CoachError for a bad value."""
    if not args.fade >= 1:
        raise CoachError(f"--fade {args.fade:g}: a cue needs at least 1 second on screen")
    geometry = parse_geometry(args.geometry) if args.geometry is not None else None
    return {"token": args.token, "fade_s": args.fade, "geometry": geometry}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="coach overlay",
                                     description="Always-on-top window showing live coaching cues.")
    add_options(parser)
    parser.add_argument("--state-log", metavar="FILE",
                        help="append one JSON line per visible state change (for tests)")
    args = parser.parse_args(argv)
    log = None
    try:
        options = options_from(args)
        if args.state_log:
            try:
                log = open(args.state_log, "a", encoding="utf-8")  # noqa: SIM115
            except OSError as exc:
                raise CoachError(f"{args.state_log}: {exc.strerror}") from exc
        return run_overlay(args.url, state_log=log, **options)
    except CoachError as exc:
        print(f"coach: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        if log is not None:
            log.close()
