"""The desktop overlay, end to end: a real X server (Xvfb), a real websocket server and the
overlay running as its own process (``python -m coach.io.overlay``).

Debian packages for the slow test: ``xvfb`` (the X server), ``xdotool`` (key presses),
``imagemagick`` (``import`` for the screenshot in ``tests/artifacts/overlay.png``).
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from coach.errors import CoachError

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"

CUE = {
    "type": "cue", "id": "but_after_apology", "t": 12.48, "speaker": "agent",
    "severity": "warn", "title": 'Avoid the "but"',
    "advice": 'It cancels the apology. Try: "I\'m sorry about the delay, and here is '
              'what I\'ll do now."',
    "evidence": {"words": [{"text": "but", "start": 12.31, "end": 12.48}]},
}
HEADSET = "Headset microphone disconnected"


# --------------------------------------------------------------------------- helpers


def _no_display_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FakeService:
    """A websocket server playing the coach service: sends a script to every client,
    then whatever the test pushes, and records what clients send back."""

    def __init__(self, port: int, script: list[dict[str, Any]], token: str | None = None) -> None:
        from websockets.sync.server import serve

        self.script = script
        self.push: queue.Queue[dict[str, Any]] = queue.Queue()
        self.received: queue.Queue[dict[str, Any]] = queue.Queue()
        self.token = token
        self.server = serve(self._handler, "127.0.0.1", port, compression=None)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _handler(self, ws: Any) -> None:
        from urllib.parse import parse_qs, urlsplit

        from websockets.exceptions import ConnectionClosed

        given = parse_qs(urlsplit(ws.request.path).query).get("token", [None])[0]
        if self.token is not None and given != self.token:
            # like coach.io.server: accept, then close with 1008 "policy violation"
            ws.close(1008, "unauthorized: wrong token")
            return
        try:
            for msg in self.script:
                ws.send(json.dumps(msg))
            while True:
                try:
                    ws.send(json.dumps(self.push.get_nowait()))
                except queue.Empty:
                    pass
                try:
                    self.received.put(json.loads(ws.recv(timeout=0.05)))
                except TimeoutError:
                    pass
        except ConnectionClosed:
            return

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=5)


class StateLog:
    def __init__(self, path: Path, proc: subprocess.Popen) -> None:
        self.path = path
        self.proc = proc

    def entries(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text("utf-8").splitlines() if line]

    def states(self) -> list[dict[str, Any]]:
        """What the window showed, one entry per change."""
        return [e for e in self.entries() if "shown" in e]

    def decisions(self, cue_id: str | None = None) -> list[str]:
        """What the display policy did with cues (with ``cue_id``: with that cue)."""
        return [e["decision"] for e in self.entries()
                if "decision" in e and cue_id in (None, e["cue_id"])]

    def wait_for(self, pred: Callable[[dict[str, Any]], bool], what: str,
                 timeout: float = 10.0) -> dict[str, Any]:
        """The first state after those already seen that satisfies ``pred``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = self.states()
            if states and pred(states[-1]):
                return states[-1]
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        err = self.proc.stderr.read() if self.proc.poll() is not None and self.proc.stderr else ""
        raise AssertionError(f"overlay never showed {what}; states: {self.states()[-5:]} {err}")


def _run(*cmd: str, env: dict[str, str], timeout: float = 10) -> str:
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{cmd}: {out.stderr}"
    return out.stdout


@pytest.fixture
def xvfb(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A private X server on a free display; yields an environment pointing at it."""
    missing = [t for t in ("Xvfb", "xdotool", "import") if shutil.which(t) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (Debian: apt-get install xvfb xdotool "
                    "imagemagick)")
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        # -noreset: by default the server resets when its last client leaves, and a test
        # that closes one overlay and opens the next could not connect during the reset
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "800x400x24", "-nolisten", "tcp",
         "-noreset"],
        pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_fd)
    try:
        with os.fdopen(read_fd) as f:  # Xvfb writes the display number once it is ready
            number = f.readline().strip()
        if not number:
            pytest.fail("Xvfb did not start")
        env = _no_display_env()
        env["DISPLAY"] = f":{number}"
        env["XDG_CONFIG_HOME"] = str(tmp_path / "config")  # the remembered place
        yield env
    finally:
        proc.terminate()
        proc.wait(timeout=5)


# --------------------------------------------------------------------------- tests


def _overlay(env: dict[str, str], port: int, log: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "coach.io.overlay", "--url", f"ws://127.0.0.1:{port}/ws",
         "--state-log", str(log), *args],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _close(proc: subprocess.Popen) -> int:
    proc.terminate()  # the overlay closes its window on SIGTERM, like the close button
    try:
        return proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


def _window(env: dict[str, str]) -> str:
    return _run("xdotool", "search", "--sync", "--onlyvisible", "--name", "^Coach$",
                env=env).split()[0]


def _shot(env: dict[str, str], wid: str, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    ignore = ARTIFACTS / ".gitignore"  # screenshots are for looking at, not for git
    if not ignore.exists():
        ignore.write_text("*\n")
    shot = ARTIFACTS / name
    _run("import", "-window", wid, str(shot), env=env)
    assert shot.stat().st_size > 1000
    return shot


def _call_start(audio_now: float) -> dict[str, Any]:
    """A call start whose audio time is ``audio_now`` now (the service's clock is ours)."""
    return {"type": "call", "state": "start", "t": 0, "started_at": time.time() - audio_now,
            "pace_band": [120, 175]}


def _audio_now(start: dict[str, Any]) -> float:
    return time.time() - start["started_at"]


@pytest.mark.slow
def test_overlay_shows_cue_dismisses_and_reconnects(xvfb: dict[str, str], tmp_path: Path):
    port = _free_port()
    start = _call_start(12.6)
    script = [
        {"type": "hello", "protocol": 1, "server": "coach 0.1.0"},
        start,
        *({"type": "prosody", "speaker": "agent", "t": t, "f0_hz": 182.0, "loudness_db": -21.5,
           "wpm": 150.0, "speaking": True, "pace_wpm": wpm}
          for t, wpm in ((1, None), (2, 168.0), (3, 192.0))),
        {"type": "prosody", "speaker": "customer", "t": 3, "f0_hz": 120.0, "loudness_db": -25.0,
         "wpm": 140.0, "speaking": False, "pace_wpm": 140.0},
        {"type": "turn", "speaker": "customer", "start": 0.2, "end": 4.0},
        {"type": "turn", "speaker": "agent", "start": 4.4, "end": 11.0},
        CUE,
    ]
    service = FakeService(port, script)
    log = tmp_path / "state.jsonl"
    proc = _overlay(xvfb, port, log, "--fade", "60")
    states = StateLog(log, proc)
    try:
        # the cue, the pace (192 wpm is above the 120-175 band) and the talk split
        shown = states.wait_for(lambda s: s["shown"] == CUE["title"], "the warn cue")
        assert shown["severity"] == "warn" and shown["connected"] is True
        assert shown["cue_id"] == CUE["id"] and shown["late_s"] is None
        assert shown["wpm"] == 192 and shown["pace"] == "fast"
        assert shown["talk"] == "You 63% · Them 37%"

        service.push.put({"type": "status", "lag_s": 0.3, "degraded": False,
                          "device": "USB headset", "role": "agent", "state": "lost",
                          "message": HEADSET})
        states.wait_for(lambda s: s["status"] == HEADSET and s["shown"] == CUE["title"],
                        "the headset status")
        service.push.put({"type": "status", "lag_s": 0.3, "degraded": False, "message": None})
        time.sleep(0.3)
        assert states.states()[-1]["status"] == HEADSET  # until the headset is back

        wid = _window(xvfb)
        _shot(xvfb, wid, "overlay.png")

        # `d` on the focused window dismisses the cue and tells the service which one
        _run("xdotool", "windowfocus", "--sync", wid, "key", "d", env=xvfb)
        sent = service.received.get(timeout=5)
        assert sent == {"type": "dismiss", "cue_id": CUE["id"], "t": CUE["t"]}
        states.wait_for(lambda s: s["shown"] == "Listening…" and s["severity"] is None,
                        "the idle state after dismiss")
        _shot(xvfb, wid, "overlay-idle.png")

        # the service goes away: greyed "disconnected"; it comes back: reconnected
        service.stop()
        states.wait_for(lambda s: not s["connected"] and s["shown"].startswith("Disconnected"),
                        "disconnected")
        _shot(xvfb, wid, "overlay-disconnected.png")
        service = FakeService(port, script[:2])
        states.wait_for(lambda s: s["connected"] and s["shown"] == "Listening…",
                        "reconnected", timeout=10)
        # same call (same started_at): the talk split survives the reconnect
        assert states.states()[-1]["talk"] == "You 63% · Them 37%"

        # another client's feedback for the cue on screen clears it here
        again = {**CUE, "t": round(_audio_now(start) - 0.2, 3)}
        service.push.put(again)
        states.wait_for(lambda s: s["shown"] == CUE["title"], "the cue again")
        service.push.put({"type": "feedback", "action": "flag", "cue_id": CUE["id"],
                          "t": again["t"]})
        states.wait_for(lambda s: s["shown"] == "Listening…", "the cue cleared by feedback")

        # `f` flags; nothing on screen then, so a second key press sends nothing
        third = {**CUE, "t": round(_audio_now(start) - 0.2, 3)}
        service.push.put(third)
        states.wait_for(lambda s: s["shown"] == CUE["title"], "the cue a third time")
        _run("xdotool", "windowfocus", "--sync", wid, "key", "f", env=xvfb)
        assert service.received.get(timeout=5) == {"type": "flag", "cue_id": CUE["id"],
                                                   "t": third["t"]}
        states.wait_for(lambda s: s["shown"] == "Flagged as wrong — thanks", "the thanks")
        _run("xdotool", "key", "d", env=xvfb)
        with pytest.raises(queue.Empty):
            service.received.get(timeout=0.5)
    finally:
        code = _close(proc)
        service.stop()
    assert code == 0, proc.stderr.read()


@pytest.mark.slow
def test_overlay_priority_retraction_lag_and_late_cues(xvfb: dict[str, str], tmp_path: Path):
    """One cue at a time by severity, a retraction honoured for good, lag said plainly,
    a late cue shown as late — on the real window, with screenshots."""
    port = _free_port()
    start = _call_start(20.0)
    service = FakeService(port, [{"type": "hello", "protocol": 1, "server": "coach 0.1.0"},
                                 start])
    log = tmp_path / "state.jsonl"
    proc = _overlay(xvfb, port, log, "--fade", "4")
    states = StateLog(log, proc)

    def cue(cid: str, severity: str, title: str, ago: float) -> dict[str, Any]:
        return {"type": "cue", "id": cid, "t": round(_audio_now(start) - ago, 3),
                "speaker": "agent", "severity": severity, "title": title,
                "advice": f"What to do about {title.lower()}.", "evidence": {}}

    try:
        states.wait_for(lambda s: s["shown"] == "Listening…", "the call")
        wid = _window(xvfb)
        warn = cue("qualified-apology", "warn", 'Avoid the "but"', 0.3)
        service.push.put(warn)
        states.wait_for(lambda s: s["cue_id"] == warn["id"], "the warn")
        # a nudge and an info praise within the warn's display time: the warn stays
        service.push.put(cue("blame-shift", "nudge", "Focus on the fix", 0.2))
        service.push.put(cue("empathy-shown", "info", "Good: you named it", 0.1))
        deadline = time.monotonic() + 10
        while len(states.decisions("empathy-shown")) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert states.decisions("blame-shift") == ["dropped"]  # 4 s left: too long to wait
        assert states.decisions("empathy-shown") == ["dropped"]
        assert states.states()[-1]["cue_id"] == warn["id"]
        _shot(xvfb, wid, "overlay-priority.png")

        # the cue engine withdraws the warn: struck through, then gone for good
        service.push.put({"type": "retract", "id": warn["id"], "t": warn["t"],
                          "at": round(_audio_now(start), 3),
                          "reason": "the agent went on to fix it"})
        states.wait_for(lambda s: s["withdrawn"] and s["cue_id"] == warn["id"], "struck through")
        _shot(xvfb, wid, "overlay-withdrawn.png")
        states.wait_for(lambda s: s["shown"] == "Listening…", "the withdrawn cue gone")
        service.push.put(warn)  # the same cue again: never comes back
        service.push.put({"type": "retract", "id": "pace-fast", "t": 3.0, "at": 4.0,
                          "reason": "not shown"})  # a cue never shown: nothing changes
        deadline = time.monotonic() + 10
        while not states.decisions("pace-fast") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert states.decisions(warn["id"]) == ["shown", "retracted", "dropped"]
        assert states.decisions("pace-fast") == ["ignored"]
        assert states.states()[-1]["shown"] == "Listening…"

        # coaching runs behind: said plainly; a cue 9 s after its words is shown as late
        service.push.put({"type": "status", "lag_s": 2.6, "degraded": False, "message": None})
        states.wait_for(lambda s: s["lag_s"] == 2.6
                        and s["status"] == "Coaching is 2.6 s behind the call", "the lag")
        service.push.put(cue("minimizing", "nudge", "Don't minimise", 9.0))
        late = states.wait_for(lambda s: s["cue_id"] == "minimizing", "the late cue")
        assert 8.5 <= late["late_s"] <= 11, late
        assert late["tag"] == f"{late['late_s']:.0f} s late"
        assert late["status"] == "Coaching is 2.6 s behind the call"
        _shot(xvfb, wid, "overlay-late.png")
        # a fresh cue replaces a late one at once
        service.push.put(cue("no-action", "nudge", "Offer the fix", 0.2))
        fresh = states.wait_for(lambda s: s["cue_id"] == "no-action", "the fresh cue")
        assert fresh["late_s"] is None
        service.push.put({"type": "status", "lag_s": 0.2, "degraded": False, "message": None})
        states.wait_for(lambda s: s["lag_s"] is None and s["status"] is None, "caught up")
    finally:
        code = _close(proc)
        service.stop()
    assert code == 0, proc.stderr.read()


@pytest.mark.slow
def test_overlay_fades_the_cue_and_shows_degraded_and_token(xvfb: dict[str, str],
                                                           tmp_path: Path):
    port = _free_port()
    start = _call_start(12.6)
    service = FakeService(port, [
        {"type": "hello", "protocol": 1, "server": "coach 0.1.0"},
        start,
    ], token="s3cret")
    log = tmp_path / "state.jsonl"
    proc = _overlay(xvfb, port, log, "--token", "s3cret", "--fade", "1")
    states = StateLog(log, proc)
    try:
        states.wait_for(lambda s: s["shown"] == "Listening…", "the call")
        service.push.put({**CUE, "severity": "nudge", "title": "Slow down a little",
                          "t": round(_audio_now(start) - 0.1, 3)})
        states.wait_for(lambda s: s["shown"] == "Slow down a little", "the nudge")
        states.wait_for(lambda s: s["shown"] == "Listening…", "the fade back to idle",
                        timeout=5)
        assert states.decisions(CUE["id"]) == ["shown", "expired"]
        service.push.put({"type": "status", "lag_s": 2.4, "degraded": True,
                          "message": "falling behind by 2.4 s: fewer recognition passes"})
        states.wait_for(lambda s: s["degraded"] and s["status"] == (
            "Coaching is 2.4 s behind the call"),
            "degraded")
        service.push.put({"type": "call", "state": "end", "t": 30.0, "duration": 30.0})
        states.wait_for(lambda s: s["shown"] == "Call ended" and s["lag_s"] is None,
                        "the call end")
    finally:
        _close(proc)
        service.stop()


@pytest.mark.slow
def test_overlay_says_when_the_token_is_refused(xvfb: dict[str, str], tmp_path: Path):
    port = _free_port()
    service = FakeService(port, [], token="s3cret")
    log = tmp_path / "state.jsonl"
    proc = _overlay(xvfb, port, log, "--token", "wrong")
    states = StateLog(log, proc)
    try:
        state = states.wait_for(lambda s: s["status"] and "wrong token" in s["status"],
                                "the token refusal")
        assert not state["connected"] and state["shown"].startswith("Connection refused")
        assert not any(s["connected"] for s in states.states())
    finally:
        _close(proc)
        service.stop()


def _geometry(env: dict[str, str], wid: str) -> tuple[int, int, int, int]:
    out = _run("xdotool", "getwindowgeometry", "--shell", wid, env=env)
    v = dict(line.split("=", 1) for line in out.split())
    return int(v["WIDTH"]), int(v["HEIGHT"]), int(v["X"]), int(v["Y"])


def _wait_geometry(env: dict[str, str], wid: str, want: tuple[int, int, int, int],
                   what: str) -> None:
    deadline = time.monotonic() + 10
    got = None
    while time.monotonic() < deadline:
        got = _geometry(env, wid)
        if got == want:
            return
        time.sleep(0.05)
    raise AssertionError(f"{what}: the window is at {got}, not {want}")


def _wait_saved(prefs: Path, want: dict[str, int]) -> None:
    deadline = time.monotonic() + 10
    got = None
    while time.monotonic() < deadline:
        try:
            got = json.loads(prefs.read_text("utf-8"))
        except (OSError, ValueError):
            got = None
        if got == want:
            return
        time.sleep(0.05)
    raise AssertionError(f"{prefs} holds {got}, not {want}")


@pytest.mark.slow
def test_overlay_geometry_is_set_moved_resized_remembered_and_clamped(
        xvfb: dict[str, str], tmp_path: Path):
    """--geometry places it; a drag moves it and the corner grip resizes it (xdotool's
    real pointer events); the place is remembered and restored; off-screen places come
    back on screen; a corrupt prefs file is ignored with one line. (Xvfb: 800x400.)"""
    port = _free_port()
    service = FakeService(port, [{"type": "hello", "protocol": 1, "server": "coach 0.1.0"},
                                 _call_start(3.0)])
    prefs = Path(xvfb["XDG_CONFIG_HOME"]) / "coach" / "overlay.json"
    log = tmp_path / "state.jsonl"
    proc = _overlay(xvfb, port, log, "--geometry", "420x160+50+60")
    try:
        StateLog(log, proc).wait_for(lambda s: s["connected"], "the connection")
        wid = _window(xvfb)
        _wait_geometry(xvfb, wid, (420, 160, 50, 60), "--geometry")
        # drag from the title area by 100 x 40 pixels
        _run("xdotool", "mousemove", "150", "75", "mousedown", "1", env=xvfb)
        for step in range(1, 6):
            _run("xdotool", "mousemove", str(150 + 20 * step), str(75 + 8 * step), env=xvfb)
        _run("xdotool", "mouseup", "1", env=xvfb)
        _wait_geometry(xvfb, wid, (420, 160, 150, 100), "after the drag")
        _wait_saved(prefs, {"width": 420, "height": 160, "x": 150, "y": 100})
        # resize from the grip in the bottom-right corner by 60 x 30 pixels
        _run("xdotool", "mousemove", str(150 + 420 - 4), str(100 + 160 - 4), "mousedown", "1",
             env=xvfb)
        for step in range(1, 4):
            _run("xdotool", "mousemove", str(566 + 20 * step), str(256 + 10 * step), env=xvfb)
        _run("xdotool", "mouseup", "1", env=xvfb)
        _wait_geometry(xvfb, wid, (480, 190, 150, 100), "after the resize")
        _wait_saved(prefs, {"width": 480, "height": 190, "x": 150, "y": 100})
        service.push.put({**CUE, "t": 2.9})
        StateLog(log, proc).wait_for(lambda s: s["cue_id"] == CUE["id"], "the cue")
        _shot(xvfb, wid, "overlay-resized.png")
    finally:
        assert _close(proc) == 0

    # the next start restores it
    proc = _overlay(xvfb, port, log)
    try:
        _wait_geometry(xvfb, _window(xvfb), (480, 190, 150, 100), "restored")
    finally:
        _close(proc)

    # a place off the screen (a monitor unplugged since) comes back fully on screen
    prefs.write_text(json.dumps({"width": 480, "height": 190, "x": 2500, "y": -300}))
    proc = _overlay(xvfb, port, log)
    try:
        _wait_geometry(xvfb, _window(xvfb), (480, 190, 800 - 480, 0), "clamped")
    finally:
        _close(proc)

    # --geometry from the right and bottom edges; too big for the screen: made to fit
    proc = _overlay(xvfb, port, log, "--geometry", "1200x150-10-20")
    try:
        _wait_geometry(xvfb, _window(xvfb), (800, 150, 0, 400 - 150 - 20), "from the edges")
    finally:
        _close(proc)

    # a corrupt prefs file: one line on stderr, the default place, then remembered anew
    prefs.write_text("{not json")
    proc = _overlay(xvfb, port, log)
    try:
        wid = _window(xvfb)
        _wait_geometry(xvfb, wid, (380, 150, 0, 0), "the default place")
    finally:
        _close(proc)
        service.stop()
    err = proc.stderr.read()
    assert err == (f"coach: note: ignored {prefs} (not valid JSON); the overlay starts at "
                   "its default place\n"), err
    assert json.loads(prefs.read_text("utf-8")) == {"width": 380, "height": 150, "x": 0, "y": 0}


@pytest.mark.parametrize("cmd, says", [
    (["overlay", "--geometry", "12x"], "expected WIDTHxHEIGHT+X+Y"),
    (["overlay", "--geometry", "100x50+1+1"], "at least 260x120 pixels"),
    (["overlay", "--fade", "0"], "at least 1 second"),
    # checked before the model loads or the source opens
    (["live", "--geometry", "wide", "--source", "nothing.flac"], "--geometry 'wide'"),
])
def test_bad_geometry_and_fade_are_one_line_errors(cmd, says, capsys, monkeypatch):
    from coach.cli import main

    monkeypatch.delenv("DISPLAY", raising=False)
    assert main(cmd) == 2
    err = capsys.readouterr().err
    assert err.startswith("coach: error: ") and err.count("\n") == 1, err
    assert says in err


def test_no_display_raises_coach_error(monkeypatch: pytest.MonkeyPatch):
    from coach.io.overlay import run_overlay

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(CoachError, match=r"^no display: "):
        run_overlay("ws://127.0.0.1:9/ws")


def test_unreachable_display_raises_coach_error(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path):
    pytest.importorskip("tkinter")
    pytest.importorskip("websockets")
    from coach.io.overlay import run_overlay

    monkeypatch.setenv("DISPLAY", ":65000")  # no X server there
    with pytest.raises(CoachError, match=r"^no display: ") as info:
        run_overlay("ws://127.0.0.1:9/ws", prefs_file=tmp_path / "overlay.json")
    assert "\n" not in str(info.value)


def test_module_without_display_exits_2_with_one_line():
    out = subprocess.run([sys.executable, "-m", "coach.io.overlay"], env=_no_display_env(),
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2
    assert out.stderr.startswith("coach: error: no display: ")
    assert out.stderr.count("\n") == 1


def test_token_goes_in_the_query():
    from coach.io.overlay import _with_token

    assert _with_token("ws://h:1/ws", None) == "ws://h:1/ws"
    assert _with_token("ws://h:1/ws", "a b") == "ws://h:1/ws?token=a+b"
    assert _with_token("ws://h:1/ws?x=1&token=old", "new") == "ws://h:1/ws?x=1&token=new"


@pytest.mark.slow
def test_overlay_on_a_live_demo_call(xvfb: dict[str, str], tmp_path: Path):
    """`coach live --source` a demo call with the real service; the overlay shows its cues."""
    port = _free_port()
    live = subprocess.Popen(
        [sys.executable, "-m", "coach.cli", "live", "--source",
         str(ROOT / "audio_samples" / "02_every_apology_wrong.flac"), "--no-overlay",
         "--no-record", "--port", str(port)],
        env=xvfb, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    log = tmp_path / "state.jsonl"
    overlay = _overlay(xvfb, port, log)
    try:
        states = StateLog(log, overlay)
        shown = states.wait_for(lambda s: s.get("severity") == "warn", "a warn cue from the call",
                                timeout=60)
        assert shown["shown"] == 'Avoid the "but"' and shown["late_s"] is None
        _shot(xvfb, _window(xvfb), "overlay-live.png")
    finally:
        _close(overlay)
        live.terminate()
        live.wait(timeout=10)
