"""The overlay's Tk window: draws the :class:`~coach.display.Screen` the display policy
decides, and turns the agent's keys, drags and resizes into actions.

Tk is touched only from the main thread: the websocket client (another thread) hands
messages over through a queue polled every 50 ms; what the agent sends back goes the other
way through a second queue.
"""

from __future__ import annotations

import json
import queue
import sys
import time
from typing import Any, TextIO

from coach.display import DisplayPolicy, Screen

from .prefs import MIN_SIZE, Geometry, parse_geometry, save_prefs

__all__ = ["OverlayWindow"]

POLL_MS = 50
SAVE_DELAY_MS = 500  # the place is remembered this long after the last move or resize

BAND_W, PAD_X = 6, 12
GRIP = 14  # the resize grip in the bottom-right corner
NARROW_W = 300  # text width below which the buttons give way to the status line

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


class OverlayWindow:
    """The window. ``geometry`` is where it opens (already clamped to the screen);
    ``remember`` keeps its place in ``prefs_file`` as the agent moves or resizes it."""

    def __init__(self, root: Any, policy: DisplayPolicy, *, inbox: queue.Queue,
                 outbox: queue.Queue, geometry: Geometry, remember: bool = True,
                 prefs_file: Any = None, state_log: TextIO | None = None) -> None:
        import tkinter as tk
        import tkinter.font as tkfont

        self.root = root
        self.policy = policy
        self.inbox = inbox
        self.outbox = outbox
        self.state_log = state_log
        self.remember = remember
        self.prefs_file = prefs_file
        self.last_screen: Screen | None = None
        self.last_logged: dict[str, Any] | None = None
        self._drag: tuple[int, int] | None = None
        self._resize: tuple[int, int, int, int] | None = None
        self._placed = str(geometry)
        self._save_job: str | None = None
        self._save_failed = False
        self.text_w = (geometry.width or 380) - BAND_W - 2 * PAD_X
        self.advice_lines = 2

        family = self._family(tkfont)
        self.f_title = tkfont.Font(root, family=family, size=15, weight="bold")
        self.f_title_struck = tkfont.Font(root, family=family, size=15, weight="bold",
                                          overstrike=1)
        self.f_advice = tkfont.Font(root, family=family, size=10)
        self.f_advice_struck = tkfont.Font(root, family=family, size=10, overstrike=1)
        self.f_small = tkfont.Font(root, family=family, size=9)
        self.f_small_bold = tkfont.Font(root, family=family, size=9, weight="bold")
        self.f_idle = tkfont.Font(root, family=family, size=13)
        self.f_button = tkfont.Font(root, family=family, size=8)

        root.title("Coach")
        root.configure(bg=BG)
        root.geometry(str(geometry))
        root.minsize(*MIN_SIZE)
        root.resizable(True, True)
        for attribute, value in (("-topmost", True), ("-alpha", 0.92)):
            try:
                root.attributes(attribute, value)
            except tk.TclError:
                pass  # no such support on this window system (alpha: no compositing)

        # left: severity band; right: the body
        self.band = tk.Frame(root, bg=TRACK, width=BAND_W)
        self.band.pack(side="left", fill="y")
        body = tk.Frame(root, bg=BG, padx=PAD_X, pady=8)
        body.pack(side="left", fill="both", expand=True)

        head = tk.Frame(body, bg=BG)
        head.pack(fill="x")
        self.tag = tk.Label(head, text="", font=self.f_small_bold, bg=BG, fg=MUTED, anchor="ne")
        self.tag.pack(side="right", anchor="n", pady=(4, 0))
        self.title = tk.Label(head, text="", font=self.f_title, bg=BG, fg=MUTED,
                              anchor="w", justify="left")
        self.title.pack(side="left", fill="x", expand=True)
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

        # a grip to resize from, also where no window manager gives the window borders
        self.grip = tk.Canvas(root, width=GRIP, height=GRIP, bg=BG, highlightthickness=0, bd=0,
                              cursor="bottom_right_corner")
        for k in (4, 8, 12):
            self.grip.create_line(GRIP, GRIP - k, GRIP - k, GRIP, fill=GREY)
        self.grip.place(relx=1.0, rely=1.0, anchor="se")
        self.grip.bind("<ButtonPress-1>", self._resize_start)
        self.grip.bind("<B1-Motion>", self._resize_move)
        self.grip.bind("<ButtonRelease-1>", lambda _e: "break")

        for seq in ("<KeyPress-d>", "<KeyPress-D>", "<Escape>"):
            root.bind(seq, lambda _e: self.dismiss())
        for seq in ("<KeyPress-f>", "<KeyPress-F>"):
            root.bind(seq, lambda _e: self.flag())
        # the toplevel's bindings reach every widget in it: drag the window from anywhere
        root.bind("<ButtonPress-1>", self._drag_start, add="+")
        root.bind("<B1-Motion>", self._drag_move, add="+")
        root.bind("<Configure>", self._configured, add="+")

        self.render(policy.screen(time.monotonic()))
        root.after(POLL_MS, self.poll)

    @staticmethod
    def _family(tkfont: Any) -> str:
        available = set(tkfont.families())
        for name in ("Inter", "Segoe UI", "SF Pro Text", "Helvetica Neue", "Cantarell",
                     "Noto Sans", "DejaVu Sans", "Liberation Sans", "Arial"):
            if name in available:
                return name
        return "TkDefaultFont"

    # ------------------------------------------------------------------ moving, resizing

    def _drag_start(self, event: Any) -> None:
        self._drag = (event.x_root - self.root.winfo_x(), event.y_root - self.root.winfo_y())

    def _drag_move(self, event: Any) -> None:
        if self._drag is not None:
            dx, dy = self._drag
            self.root.geometry(f"+{event.x_root - dx}+{event.y_root - dy}")

    def _resize_start(self, event: Any) -> str:
        self._resize = (event.x_root, event.y_root, self.root.winfo_width(),
                        self.root.winfo_height())
        return "break"  # not a drag of the window

    def _resize_move(self, event: Any) -> str:
        if self._resize is not None:
            x0, y0, w0, h0 = self._resize
            w = max(MIN_SIZE[0], w0 + event.x_root - x0)
            h = max(MIN_SIZE[1], h0 + event.y_root - y0)
            self.root.geometry(f"{w}x{h}")
        return "break"

    def _configured(self, event: Any) -> None:
        if event.widget is not self.root:
            return
        text_w = max(80, event.width - BAND_W - 2 * PAD_X)
        line_h = max(1, self.f_advice.metrics("linespace"))
        lines = max(1, min(6, 2 + (event.height - 150) // line_h))  # 2 at the default size
        if (text_w, lines) != (self.text_w, self.advice_lines):
            self.text_w, self.advice_lines = text_w, lines
            self.advice.configure(height=lines)
            self.gauge.configure(width=40 if text_w < NARROW_W else min(180, text_w // 4))
            self.last_screen = None  # re-fit the text to the new width
        placed = self.root.geometry()
        if placed != self._placed:
            self._placed = placed
            if self.remember:
                if self._save_job is not None:
                    self.root.after_cancel(self._save_job)
                self._save_job = self.root.after(SAVE_DELAY_MS, self.save_place)

    def save_place(self) -> None:
        """Remember where the window is (also called when it closes)."""
        if self._save_job is not None:
            self.root.after_cancel(self._save_job)
            self._save_job = None
        if not self.remember:
            return
        try:
            g = parse_geometry(self.root.geometry())
        except Exception:  # noqa: BLE001 - a window system with an odd geometry string
            return
        note = save_prefs(g, self.prefs_file)
        if note and not self._save_failed:
            self._save_failed = True
            print(f"coach overlay: note: {note}", file=sys.stderr)
        self._log({"saved": str(g)})

    # ------------------------------------------------------------------ messages

    def poll(self) -> None:
        try:
            now, wall = time.monotonic(), time.time()
            for _ in range(500):  # a burst never starves the window of redraws
                try:
                    kind, payload = self.inbox.get_nowait()
                except queue.Empty:
                    break
                try:
                    if kind == "open":
                        self.policy.connected(now)
                    elif kind == "closed":
                        self._decided(self.policy.disconnected(
                            now, reason=str(payload.get("reason") or ""),
                            refused=bool(payload.get("refused"))))
                    else:
                        self._decided(self.policy.feed(payload, now, wall))
                except Exception as exc:  # noqa: BLE001 - one odd message must not freeze it
                    print(f"coach overlay: ignored a message ({type(exc).__name__}: {exc})",
                          file=sys.stderr)
            self._decided(self.policy.tick(now))
            self.render(self.policy.screen(now))
        finally:
            self.root.after(POLL_MS, self.poll)

    def dismiss(self) -> None:
        self._act("dismiss")

    def flag(self) -> None:
        self._act("flag")

    def _act(self, action: str) -> None:
        now = time.monotonic()
        msg, decisions = self.policy.act(action, now)  # type: ignore[arg-type]
        if msg is not None:
            self.outbox.put(msg)
        self._decided(decisions)
        self.render(self.policy.screen(now))

    # ------------------------------------------------------------------ drawing

    def render(self, s: Screen) -> None:
        if s == self.last_screen:
            return
        self.last_screen = s
        online = s.connection == "connected"
        cue = s.cue
        if cue is not None:
            k = cue.fade
            colour = SEVERITY.get(cue.severity, GREEN)
            if cue.withdrawn:
                k = 0.45 + 0.55 * k
                band, title_fg = _blend(GREY, BG, k), _blend(MUTED, BG, k)
            elif cue.late_s is not None:  # late: muted, never like a fresh cue
                band, title_fg = _blend(colour, BG, 0.6 + 0.4 * k), _blend(FG_SOFT, BG, 0.25 + k)
            else:
                band, title_fg = _blend(colour, BG, k), _blend(FG, BG, k)
            struck = cue.withdrawn
            self.tag.configure(text=s.tag, fg=_blend(AMBER if cue.late_s is not None else MUTED,
                                                     BG, 0.2 + 0.8 * k))
            room = self.text_w - (self.f_small_bold.measure(s.tag) + 8 if s.tag else 0)
            self.title.configure(
                text=_fit(cue.title, self.f_title, room),
                font=self.f_title_struck if struck else self.f_title, fg=title_fg)
            self.advice.configure(
                text=_fit(cue.advice, self.f_advice, self.text_w, lines=self.advice_lines),
                font=self.f_advice_struck if struck else self.f_advice,
                fg=_blend(FG_SOFT if cue.late_s is None else MUTED, BG,
                          min(1.0, k + (0.3 if struck else 0.0))))
        else:
            band = TRACK if online else GREY
            self.tag.configure(text="")
            self.title.configure(text=_fit(s.headline, self.f_idle, self.text_w),
                                 font=self.f_idle, fg=MUTED if online else GREY)
            self.advice.configure(text="", fg=FG_SOFT, font=self.f_advice)
        self.band.configure(bg=band)
        narrow = self.text_w < NARROW_W  # a small window: keys only, the short talk split
        self._show_buttons(cue is not None and not cue.withdrawn and not narrow)

        self._draw_gauge(s, online)
        talk = s.talk or "You — · Them —"
        self.talk_label.configure(text=talk.split(" · ")[0] if narrow else talk,
                                  fg=FG_SOFT if online else GREY)

        status, fg = s.status, (AMBER if s.alert else MUTED) if online else GREY
        if s.alert and not online:
            fg = AMBER
        if not status and cue is not None and not cue.withdrawn:
            status = "d dismiss  ·  f wrong"
        room = self.text_w
        if self.buttons_shown:
            room -= self.dismiss_btn.winfo_reqwidth() + self.flag_btn.winfo_reqwidth() + 10
        self.status_label.configure(text=_fit(status, self.f_small, max(40, room)),
                                    fg=fg)
        self._log_state(s)

    def _show_buttons(self, show: bool) -> None:
        """Dismiss and Wrong are there only while a cue is (the status line has the room
        otherwise)."""
        if show == self.buttons_shown:
            return
        self.buttons_shown = show
        if show:
            self.flag_btn.pack(side="right", before=self.status_label, padx=(0, 2))
            self.dismiss_btn.pack(side="right", padx=(0, 4), before=self.status_label)
        else:
            self.flag_btn.pack_forget()
            self.dismiss_btn.pack_forget()

    def _draw_gauge(self, s: Screen, online: bool) -> None:
        c = self.gauge
        c.delete("all")
        w, h = int(c["width"]), int(c["height"])
        y0, y1 = 4, h - 4
        c.create_rectangle(0, y0, w, y1, fill=TRACK, outline="")
        pace = s.pace
        if pace.band is not None:
            lo, hi = pace.band
            span = hi - lo
            vmin, vmax = max(0.0, lo - span), hi + span

            def x(v: float) -> float:
                return (min(max(v, vmin), vmax) - vmin) / (vmax - vmin) * w

            c.create_rectangle(x(lo), y0, x(hi), y1, fill=BAND if online else "#3a3f46",
                               outline="")
        if pace.wpm is None:  # no stretch of talk long enough to judge: the gauge idles
            self.wpm_label.configure(text="— wpm", fg=MUTED if online else GREY)
            return
        colour = GREEN if pace.zone in ("ok", None) else RED if pace.far else AMBER
        if not online:
            colour = GREY
        if pace.band is not None:
            xn = min(max(x(pace.wpm), 2), w - 2)
            c.create_rectangle(xn - 2, 0, xn + 2, h, fill=colour, outline="")
        self.wpm_label.configure(text=f"{round(pace.wpm)} wpm",
                                 fg=(FG_SOFT if pace.zone in ("ok", None) else colour)
                                 if online else GREY)

    # ------------------------------------------------------------------ test log

    def _decided(self, decisions: list) -> None:
        for d in decisions:
            self._log(d.to_dict())

    def _log(self, entry: dict[str, Any]) -> None:
        if self.state_log is not None:
            self.state_log.write(json.dumps({**entry, "wall": round(time.time(), 3)},
                                            ensure_ascii=False) + "\n")
            self.state_log.flush()

    def _log_state(self, s: Screen) -> None:
        if self.state_log is None:
            return
        cue = s.cue
        state = {
            "shown": cue.title if cue else s.headline,
            "severity": cue.severity if cue else None,
            "cue_id": cue.id if cue else None,
            "late_s": None if cue is None or cue.late_s is None else round(cue.late_s, 1),
            "withdrawn": bool(cue and cue.withdrawn),
            "tag": s.tag or None,
            "connected": s.connection == "connected",
            "status": s.status or None,
            "lag_s": None if s.lag_s is None else round(s.lag_s, 1),
            "degraded": s.degraded,
            "wpm": None if s.pace.wpm is None else round(s.pace.wpm),
            "pace": s.pace.zone,
            "talk": s.talk,
        }
        if state != self.last_logged:
            self.last_logged = state
            self._log(state)
