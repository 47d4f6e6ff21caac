"""The desktop overlay: a small always-on-top Tk window showing the live coaching cue.

It connects to the coach service's websocket (``ws://127.0.0.1:8765/ws``), shows the
current cue (title, advice, a colour band by severity) and fades it after a few seconds,
draws a pace gauge (the agent's words per minute against the call's pace band) and the
talk-time split, and lets the agent dismiss a cue (``d`` / Escape) or flag it as wrong
(``f``). It shows plainly when the service is unreachable and reconnects by itself.

Threads: the websocket client runs in a background thread and hands what it receives to
Tk through a :class:`queue.Queue` that the main thread polls every 50 ms; what the agent
sends back goes the other way through a second queue. Tk is touched only from the main
thread.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from coach.errors import CoachError, MissingDependency

__all__ = ["DEFAULT_URL", "main", "run_overlay"]

DEFAULT_URL = "ws://127.0.0.1:8765/ws"
PROTOCOL = 1

POLL_MS = 50
BACKOFF_S = (0.5, 1.0, 2.0, 4.0, 5.0)  # reconnect delays; the last one repeats
FADE_STEPS = 12
FADE_STEP_MS = 80  # ~1 s from full colour to background

WIDTH, HEIGHT = 380, 150
BAND_W, PAD_X = 6, 12
TEXT_W = WIDTH - BAND_W - 2 * PAD_X  # width available to the text

# colours (dark theme)
BG = "#16191e"
PANEL = "#1f242b"
FG = "#f3f5f8"
FG_SOFT = "#c5ccd6"
MUTED = "#7d8793"
GREY = "#59616b"
TRACK = "#2b313a"
BAND = "#35513f"
SEVERITY = {"info": "#3fb950", "nudge": "#f2a93b", "warn": "#f4524d"}
AMBER, RED, GREEN = SEVERITY["nudge"], SEVERITY["warn"], SEVERITY["info"]

IDLE_TEXT = "Listening…"
CONNECTING_TEXT = "Connecting…"
DISCONNECTED_TEXT = "Disconnected — reconnecting…"
NO_CALL_TEXT = "Waiting for a call…"
CALL_ENDED_TEXT = "Call ended"
REFUSED_TEXT = "Connection refused — retrying…"


# --------------------------------------------------------------------------- client


def _with_token(url: str, token: str | None) -> str:
    if not token:
        return url
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "token"]
    query.append(("token", token))
    return urlunsplit(parts._replace(query=urlencode(query)))


def _is_loopback(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host in ("localhost", "::1") or host.startswith("127.")


CLOSE_POLICY = 1008  # the service refuses a missing/wrong token or a foreign origin


class _Client(threading.Thread):
    """Keeps a websocket open to the service, reconnecting with backoff.

    Puts ``("open", None)`` (when the first message arrives, so a socket the service
    accepts only to refuse never counts as connected), ``("message", dict)`` and
    ``("closed", {"reason", "refused", "retry_s"})`` on ``inbox``; sends every dict put on
    ``outbox``, keeping it until a connection is up.
    """

    def __init__(self, url: str, inbox: queue.Queue, outbox: queue.Queue) -> None:
        super().__init__(name="coach-overlay-ws", daemon=True)
        self.url = url
        self.inbox = inbox
        self.outbox = outbox
        self.stopping = threading.Event()
        self._pending: list[dict[str, Any]] = []

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> None:
        from websockets.exceptions import ConnectionClosed, InvalidStatus
        from websockets.sync.client import connect

        attempt = 0
        while not self.stopping.is_set():
            reason, refused = "unreachable", False
            try:
                kwargs: dict[str, Any] = {"open_timeout": 3, "close_timeout": 1}
                if _is_loopback(self.url):
                    kwargs["proxy"] = None  # never send a local connection through a proxy
                with connect(self.url, **kwargs) as ws:
                    if self._serve(ws):
                        attempt = 0
                    reason = "stopped"
            except InvalidStatus as exc:
                code = exc.response.status_code
                refused = code in (401, 403)
                reason = f"HTTP {code}"
            except ConnectionClosed as exc:
                close = exc.rcvd
                refused = close is not None and close.code == CLOSE_POLICY
                reason = (close.reason or f"closed ({close.code})") if close else "connection lost"
            except (OSError, TimeoutError) as exc:
                reason = type(exc).__name__
            except Exception as exc:  # noqa: BLE001 - a bad server must not kill the thread
                reason = f"{type(exc).__name__}: {exc}"
            if self.stopping.is_set():
                break
            delay = BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)]
            attempt += 1
            self.inbox.put(("closed", {"reason": reason, "refused": refused, "retry_s": delay}))
            self.stopping.wait(delay)

    def _serve(self, ws: Any) -> bool:
        """Relay messages until stopped (returns) or closed (raises ConnectionClosed);
        returns whether any message came."""
        opened = False
        while not self.stopping.is_set():
            self._flush(ws)
            try:
                raw = ws.recv(timeout=0.1)
            except TimeoutError:
                continue
            if isinstance(raw, bytes):
                continue
            try:
                msg = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(msg, dict):
                continue
            if not opened:
                opened = True
                self.inbox.put(("open", None))
            self.inbox.put(("message", msg))
        return opened

    def _flush(self, ws: Any) -> None:
        while True:
            try:
                self._pending.append(self.outbox.get_nowait())
            except queue.Empty:
                break
        while self._pending:
            ws.send(json.dumps(self._pending[0]))  # raises ConnectionClosed: kept for later
            self._pending.pop(0)


# --------------------------------------------------------------------------- state


@dataclass
class _CueOnScreen:
    id: str
    t: Any
    severity: str
    title: str
    advice: str


def _blend(fg: str, bg: str, k: float) -> str:
    """``fg`` moved ``k`` (0..1) of the way to ``bg``."""
    a = [int(fg[i:i + 2], 16) for i in (1, 3, 5)]
    b = [int(bg[i:i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(x + (y - x) * k):02x}" for x, y in zip(a, b, strict=True))


def _fit(text: str, font: Any, width: int, lines: int = 1) -> str:
    """``text`` word-wrapped into at most ``lines`` lines of ``width`` pixels in ``font``,
    ending in "…" when it does not all fit."""
    words = str(text).split()
    out: list[str] = []
    line = ""
    i = 0
    while i < len(words):
        candidate = f"{line} {words[i]}" if line else words[i]
        if font.measure(candidate) <= width:
            line, i = candidate, i + 1
        elif line and len(out) < lines - 1:
            out.append(line)  # and retry the word on a new line
            line = ""
        else:  # the last line (or one word wider than a line): cut the rest short
            rest = " ".join(([line] if line else []) + words[i:])
            while rest and font.measure(rest + "…") > width:
                rest = rest[:-1]
            out.append(rest.rstrip(" ,;:.-") + "…")
            return "\n".join(out)
    if line:
        out.append(line)
    return "\n".join(out)


class _Overlay:
    def __init__(self, root: Any, url: str, *, fade_s: float, state_log: TextIO | None,
                 client: _Client) -> None:
        import tkinter as tk
        import tkinter.font as tkfont

        self.root = root
        self.fade_s = max(0.0, float(fade_s))
        self.state_log = state_log
        self.inbox = client.inbox
        self.outbox = client.outbox
        parts = urlsplit(url)
        self.where = parts.netloc.rsplit("@", 1)[-1] or url

        self.connected = False
        self.ever_connected = False
        self.refused = False
        self.in_call = False
        self.call_ended = False
        self.started_at: Any = None
        self.cue: _CueOnScreen | None = None
        self.fade_level = 0.0  # 0 = full colour, 1 = gone
        self.fade_job: str | None = None
        self.pace_band: tuple[float, float] | None = None
        self.wpm: float | None = None
        self.talk = {"agent": 0.0, "customer": 0.0}
        self.status: str | None = None
        self.degraded = False
        self.note: str | None = None  # short local confirmation ("Flagged as wrong")
        self.note_job: str | None = None
        self.last_logged: dict[str, Any] | None = None
        self._drag: tuple[int, int] | None = None

        family = self._family(tkfont)
        self.f_title = tkfont.Font(root, family=family, size=15, weight="bold")
        self.f_advice = tkfont.Font(root, family=family, size=10)
        self.f_small = tkfont.Font(root, family=family, size=9)
        self.f_small_bold = tkfont.Font(root, family=family, size=9, weight="bold")
        self.f_idle = tkfont.Font(root, family=family, size=13)
        self.f_button = tkfont.Font(root, family=family, size=8)

        root.title("Coach")
        root.configure(bg=BG)
        root.geometry(f"{WIDTH}x{HEIGHT}")
        root.resizable(False, False)
        try:
            root.attributes("-topmost", True)
        except tk.TclError:
            pass
        try:
            root.attributes("-alpha", 0.92)
        except tk.TclError:
            pass  # no compositing on this window system: stays opaque

        # left: severity band; right: the body
        self.band = tk.Frame(root, bg=TRACK, width=BAND_W)
        self.band.pack(side="left", fill="y")
        body = tk.Frame(root, bg=BG, padx=PAD_X, pady=8)
        body.pack(side="left", fill="both", expand=True)

        self.title = tk.Label(body, text=CONNECTING_TEXT, font=self.f_title, bg=BG, fg=MUTED,
                              anchor="w", justify="left")
        self.title.pack(fill="x")
        self.advice = tk.Label(body, text="", font=self.f_advice, bg=BG, fg=FG_SOFT,
                               anchor="nw", justify="left", height=2)
        self.advice.pack(fill="x", pady=(1, 0))

        bottom = tk.Frame(body, bg=BG)
        bottom.pack(fill="x", side="bottom")
        meters = tk.Frame(body, bg=BG)
        meters.pack(fill="x", side="bottom", pady=(0, 5))

        tk.Label(meters, text="Pace", font=self.f_small, bg=BG, fg=MUTED).pack(side="left")
        self.gauge = tk.Canvas(meters, width=84, height=12, bg=BG, highlightthickness=0, bd=0)
        self.gauge.pack(side="left", padx=(6, 6))
        self.wpm_label = tk.Label(meters, text="— wpm", font=self.f_small_bold, bg=BG, fg=MUTED,
                                  anchor="w")
        self.wpm_label.pack(side="left")
        self.talk_label = tk.Label(meters, text="", font=self.f_small, bg=BG, fg=FG_SOFT,
                                   anchor="e")
        self.talk_label.pack(side="right")

        button = {"font": self.f_button, "bg": PANEL, "fg": FG_SOFT, "activebackground": TRACK,
                  "activeforeground": FG, "relief": "flat", "bd": 0, "padx": 6, "pady": 1,
                  "highlightthickness": 0, "disabledforeground": GREY, "cursor": "hand2",
                  "takefocus": 0}
        self.flag_btn = tk.Button(bottom, text="Wrong", command=self.flag, **button)
        self.dismiss_btn = tk.Button(bottom, text="Dismiss", command=self.dismiss, **button)
        self.status_label = tk.Label(bottom, text="", font=self.f_small, bg=BG, fg=MUTED,
                                     anchor="w")
        self.status_label.pack(side="left", fill="x", expand=True)
        self.buttons_shown = False

        for seq in ("<KeyPress-d>", "<KeyPress-D>", "<Escape>"):
            root.bind(seq, lambda _e: self.dismiss())
        for seq in ("<KeyPress-f>", "<KeyPress-F>"):
            root.bind(seq, lambda _e: self.flag())
        for widget in (root, self.band, body, self.title, self.advice, meters, bottom,
                       self.status_label, self.talk_label, self.gauge):
            widget.bind("<ButtonPress-1>", self._drag_start, add="+")
            widget.bind("<B1-Motion>", self._drag_move, add="+")

        self.render()
        root.after(POLL_MS, self.poll)

    @staticmethod
    def _family(tkfont: Any) -> str:
        available = set(tkfont.families())
        for name in ("Inter", "Segoe UI", "SF Pro Text", "Helvetica Neue", "Cantarell",
                     "Noto Sans", "DejaVu Sans", "Liberation Sans", "Arial"):
            if name in available:
                return name
        return "TkDefaultFont"

    # ------------------------------------------------------------------ window dragging

    def _drag_start(self, event: Any) -> None:
        self._drag = (event.x_root - self.root.winfo_x(), event.y_root - self.root.winfo_y())

    def _drag_move(self, event: Any) -> None:
        if self._drag is not None:
            dx, dy = self._drag
            self.root.geometry(f"+{event.x_root - dx}+{event.y_root - dy}")

    # ------------------------------------------------------------------ messages

    def poll(self) -> None:
        try:
            for _ in range(500):  # a burst never starves the window of redraws
                try:
                    kind, payload = self.inbox.get_nowait()
                except queue.Empty:
                    break
                try:
                    if kind == "open":
                        self.on_open()
                    elif kind == "closed":
                        self.on_closed(payload)
                    else:
                        self.on_message(payload)
                except Exception as exc:  # noqa: BLE001 - one odd message must not freeze it
                    print(f"coach overlay: ignored a message ({type(exc).__name__}: {exc})",
                          file=sys.stderr)
        finally:
            self.root.after(POLL_MS, self.poll)

    def on_open(self) -> None:
        self.connected = True
        self.ever_connected = True
        self.refused = False
        self.status = None  # a new connection: the service sends its own status
        self.render()

    def on_closed(self, info: dict[str, Any]) -> None:
        self.connected = False
        self._clear_cue()
        self.refused = bool(info.get("refused"))
        self.status = f"Refused: {info.get('reason')} (check --token)" if self.refused else None
        self.degraded = False
        self.render()

    def on_message(self, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        if kind == "hello":
            proto = msg.get("protocol")
            if proto != PROTOCOL:
                self.status = f"Service speaks protocol {proto}; this overlay speaks {PROTOCOL}"
        elif kind == "call":
            self.on_call(msg)
        elif kind == "cue":
            self.on_cue(msg)
        elif kind == "prosody":
            if msg.get("speaker") == "agent" and isinstance(msg.get("wpm"), int | float):
                self.wpm = float(msg["wpm"])
        elif kind == "turn":
            speaker = msg.get("speaker")
            try:
                dur = float(msg["end"]) - float(msg["start"])
            except (KeyError, TypeError, ValueError):
                dur = 0.0
            if speaker in self.talk and dur > 0:
                self.talk[speaker] += dur
        elif kind == "status":
            message = msg.get("message")
            self.status = str(message) if message else None
            self.degraded = bool(msg.get("degraded"))
        elif kind == "feedback":
            if self.cue is not None and self._same_cue(msg):
                self._clear_cue()
        else:
            return  # words, activity and anything newer: nothing to show
        self.render()

    def on_call(self, msg: dict[str, Any]) -> None:
        if msg.get("state") == "start":
            started_at = msg.get("started_at")
            if not self.in_call or started_at != self.started_at or started_at is None:
                self.talk = {"agent": 0.0, "customer": 0.0}
                self.wpm = None
            self.in_call, self.call_ended, self.started_at = True, False, started_at
            band = msg.get("pace_band")
            try:
                lo, hi = float(band[0]), float(band[1])
                self.pace_band = (lo, hi) if lo < hi else None
            except (TypeError, ValueError, IndexError, KeyError):
                self.pace_band = None
        elif msg.get("state") == "end":
            self.in_call, self.call_ended = False, True
            self._clear_cue()

    def on_cue(self, msg: dict[str, Any]) -> None:
        severity = msg.get("severity")
        if severity not in SEVERITY:
            severity = "info"
        self._cancel_fade()
        self._cancel_note()
        self.cue = _CueOnScreen(id=str(msg.get("id", "")), t=msg.get("t"), severity=severity,
                                title=str(msg.get("title") or msg.get("id") or "Cue"),
                                advice=str(msg.get("advice") or ""))
        self.fade_level = 0.0
        self.fade_job = self.root.after(int(self.fade_s * 1000), self._fade_step)

    def _same_cue(self, msg: dict[str, Any]) -> bool:
        assert self.cue is not None
        if str(msg.get("cue_id")) != self.cue.id:
            return False
        t = msg.get("t")
        if t is None or self.cue.t is None:
            return True
        try:
            return abs(float(t) - float(self.cue.t)) < 1e-3
        except (TypeError, ValueError):
            return t == self.cue.t

    # ------------------------------------------------------------------ agent actions

    def dismiss(self) -> None:
        self._act("dismiss", None)

    def flag(self) -> None:
        self._act("flag", "Flagged as wrong — thanks")

    def _act(self, action: str, note: str | None) -> None:
        if self.cue is None:
            return
        self.outbox.put({"type": action, "cue_id": self.cue.id, "t": self.cue.t})
        self._clear_cue()
        if note:
            self._show_note(note)
        self.render()

    def _show_note(self, note: str) -> None:
        self._cancel_note()
        self.note = note
        self.note_job = self.root.after(2500, self._end_note)

    def _end_note(self) -> None:
        self.note_job = None
        self.note = None
        self.render()

    def _cancel_note(self) -> None:
        if self.note_job is not None:
            self.root.after_cancel(self.note_job)
            self.note_job = None
        self.note = None

    # ------------------------------------------------------------------ fading

    def _fade_step(self) -> None:
        self.fade_level = min(1.0, self.fade_level + 1.0 / FADE_STEPS)
        if self.fade_level >= 1.0:
            self.fade_job = None
            self._clear_cue()
        else:
            self.fade_job = self.root.after(FADE_STEP_MS, self._fade_step)
        self.render()

    def _cancel_fade(self) -> None:
        if self.fade_job is not None:
            self.root.after_cancel(self.fade_job)
            self.fade_job = None

    def _clear_cue(self) -> None:
        self._cancel_fade()
        self.cue = None
        self.fade_level = 0.0

    # ------------------------------------------------------------------ drawing

    def _idle_text(self) -> str:
        if not self.connected:
            if self.refused:
                return REFUSED_TEXT
            return DISCONNECTED_TEXT if self.ever_connected else CONNECTING_TEXT
        if self.note:
            return self.note
        if self.in_call:
            return IDLE_TEXT
        return CALL_ENDED_TEXT if self.call_ended else NO_CALL_TEXT

    def _talk_text(self) -> str:
        total = self.talk["agent"] + self.talk["customer"]
        if total <= 0:
            return "You — · Them —"
        you = round(100 * self.talk["agent"] / total)
        return f"You {you}% · Them {100 - you}%"

    def _pace(self) -> str | None:
        if self.wpm is None or self.pace_band is None:
            return None
        lo, hi = self.pace_band
        return "slow" if self.wpm < lo else "fast" if self.wpm > hi else "ok"

    def render(self) -> None:
        online = self.connected
        cue = self.cue if online else None
        if cue is not None:
            k = self.fade_level
            band = _blend(SEVERITY[cue.severity], BG, k)
            self.title.configure(text=_fit(cue.title, self.f_title, TEXT_W),
                                 font=self.f_title, fg=_blend(FG, BG, k))
            self.advice.configure(text=_fit(cue.advice, self.f_advice, TEXT_W, lines=2),
                                  fg=_blend(FG_SOFT, BG, k))
        else:
            band = TRACK if online else GREY
            self.title.configure(text=_fit(self._idle_text(), self.f_idle, TEXT_W),
                                 font=self.f_idle, fg=MUTED if online else GREY)
            self.advice.configure(text="", fg=FG_SOFT)
        self.band.configure(bg=band)
        self._show_buttons(cue is not None)

        self._draw_gauge(online)
        self.talk_label.configure(text=self._talk_text(), fg=FG_SOFT if online else GREY)

        if not online:
            status, status_fg = self.status or f"No connection to {self.where}", GREY
        elif self.degraded:
            status = "● degraded" + (f"  {self.status}" if self.status else "")
            status_fg = AMBER
        else:
            status, status_fg = self.status or "", AMBER
            if not status and cue is not None:
                status, status_fg = "d dismiss  ·  f wrong", MUTED
        room = TEXT_W
        if self.buttons_shown:
            room -= self.dismiss_btn.winfo_reqwidth() + self.flag_btn.winfo_reqwidth() + 10
        self.status_label.configure(text=_fit(status, self.f_small, room), fg=status_fg)

        self._log_state()

    def _show_buttons(self, show: bool) -> None:
        """Dismiss and Wrong are there only while a cue is (the status line has the room
        otherwise)."""
        if show == self.buttons_shown:
            return
        self.buttons_shown = show
        if show:
            self.flag_btn.pack(side="right", before=self.status_label)
            self.dismiss_btn.pack(side="right", padx=(0, 4), before=self.status_label)
        else:
            self.flag_btn.pack_forget()
            self.dismiss_btn.pack_forget()

    def _draw_gauge(self, online: bool) -> None:
        c = self.gauge
        c.delete("all")
        w, h = int(c["width"]), int(c["height"])
        y0, y1 = 4, h - 4
        c.create_rectangle(0, y0, w, y1, fill=TRACK, outline="")
        pace = self._pace()
        if self.pace_band is not None:
            lo, hi = self.pace_band
            span = hi - lo
            vmin, vmax = max(0.0, lo - span), hi + span
            x = lambda v: (min(max(v, vmin), vmax) - vmin) / (vmax - vmin) * w  # noqa: E731
            c.create_rectangle(x(lo), y0, x(hi), y1, fill=BAND if online else "#3a3f46",
                               outline="")
            if self.wpm is not None:
                far = self.wpm < lo - 0.2 * span or self.wpm > hi + 0.2 * span
                colour = GREEN if pace == "ok" else RED if far else AMBER
                if not online:
                    colour = GREY
                xn = x(self.wpm)
                xn = min(max(xn, 2), w - 2)
                c.create_rectangle(xn - 2, 0, xn + 2, h, fill=colour, outline="")
                self.wpm_label.configure(text=f"{round(self.wpm)} wpm",
                                         fg=(FG_SOFT if pace == "ok" else colour) if online
                                         else GREY)
                return
        self.wpm_label.configure(text="— wpm" if self.wpm is None else f"{round(self.wpm)} wpm",
                                 fg=MUTED if online else GREY)

    def _log_state(self) -> None:
        if self.state_log is None:
            return
        cue = self.cue if self.connected else None
        state = {
            "shown": cue.title if cue else self._idle_text(),
            "severity": cue.severity if cue else None,
            "cue_id": cue.id if cue else None,
            "connected": self.connected,
            "status": self.status,
            "degraded": self.degraded,
            "wpm": None if self.wpm is None else round(self.wpm),
            "pace": self._pace(),
            "talk": self._talk_text() if any(self.talk.values()) else None,
        }
        if state != self.last_logged:
            self.last_logged = state
            self.state_log.write(json.dumps(state, ensure_ascii=False) + "\n")
            self.state_log.flush()


# --------------------------------------------------------------------------- entry points


def _check_display() -> None:
    if sys.platform in ("win32", "darwin"):
        return
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        raise CoachError("no display: DISPLAY is not set (run the overlay in a desktop session)")


def run_overlay(url: str = DEFAULT_URL, *, token: str | None = None, fade_s: float = 6.0,
                state_log: TextIO | None = None) -> int:
    """Show the overlay until its window is closed; returns 0.

    Raises :class:`CoachError` when there is no display, :class:`MissingDependency` when
    ``websockets`` is not installed.
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
    try:
        root = tk.Tk(className="coach")
    except tk.TclError as exc:
        raise CoachError(f"no display: {exc}") from exc

    client = _Client(_with_token(url, token), queue.Queue(), queue.Queue())
    _Overlay(root, url, fade_s=fade_s, state_log=state_log, client=client)
    client.start()
    root.protocol("WM_DELETE_WINDOW", root.destroy)
    previous = _quit_on_signals(root)
    try:
        root.mainloop()
    finally:
        client.stop()
        client.join(timeout=2)
        try:
            root.destroy()
        except tk.TclError:
            pass  # already destroyed by the close button
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _quit_on_signals(root: Any) -> dict[int, Any]:
    """Ctrl+C in the terminal and SIGTERM close the window like its close button does.

    (Python runs signal handlers between Tk callbacks; the 50 ms poll keeps that prompt.)
    """
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, lambda _s, _f: root.after_idle(root.destroy))
    return previous


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="coach overlay",
                                     description="Always-on-top window showing live coaching cues.")
    parser.add_argument("--url", default=DEFAULT_URL, help=f"service websocket (default {DEFAULT_URL})")
    parser.add_argument("--token", help="access token, if the service needs one")
    parser.add_argument("--fade", type=float, default=6.0, metavar="SECONDS",
                        help="seconds a cue stays before fading out (default 6)")
    parser.add_argument("--state-log", metavar="FILE",
                        help="append one JSON line per visible state change (for tests)")
    args = parser.parse_args(argv)
    if args.fade < 0:
        parser.error("--fade must be 0 or more")
    log = None
    try:
        if args.state_log:
            try:
                log = open(args.state_log, "a", encoding="utf-8")  # noqa: SIM115
            except OSError as exc:
                raise CoachError(f"{args.state_log}: {exc.strerror}") from exc
        return run_overlay(args.url, token=args.token, fade_s=args.fade, state_log=log)
    except CoachError as exc:
        print(f"coach: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        if log is not None:
            log.close()


if __name__ == "__main__":
    sys.exit(main())
