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

    def states(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text("utf-8").splitlines() if line]

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
def xvfb() -> Iterator[dict[str, str]]:
    """A private X server on a free display; yields an environment pointing at it."""
    missing = [t for t in ("Xvfb", "xdotool", "import") if shutil.which(t) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (Debian: apt-get install xvfb xdotool "
                    "imagemagick)")
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "800x400x24", "-nolisten", "tcp"],
        pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_fd)
    try:
        with os.fdopen(read_fd) as f:  # Xvfb writes the display number once it is ready
            number = f.readline().strip()
        if not number:
            pytest.fail("Xvfb did not start")
        env = _no_display_env()
        env["DISPLAY"] = f":{number}"
        yield env
    finally:
        proc.terminate()
        proc.wait(timeout=5)


# --------------------------------------------------------------------------- tests


@pytest.mark.slow
def test_overlay_shows_cue_dismisses_and_reconnects(xvfb: dict[str, str], tmp_path: Path):
    port = _free_port()
    url = f"ws://127.0.0.1:{port}/ws"
    start = {"type": "call", "state": "start", "t": 0, "started_at": 1_760_000_000.0,
             "pace_band": [120, 175]}
    script = [
        {"type": "hello", "protocol": 1, "server": "coach 0.1.0"},
        start,
        *({"type": "prosody", "speaker": "agent", "t": t, "f0_hz": 182.0, "loudness_db": -21.5,
           "wpm": wpm, "speaking": True} for t, wpm in ((1, None), (2, 168.0), (3, 192.0))),
        {"type": "prosody", "speaker": "customer", "t": 3, "f0_hz": 120.0, "loudness_db": -25.0,
         "wpm": 140.0, "speaking": False},
        {"type": "turn", "speaker": "customer", "start": 0.2, "end": 4.0},
        {"type": "turn", "speaker": "agent", "start": 4.4, "end": 11.0},
        CUE,
    ]
    service = FakeService(port, script)
    log = tmp_path / "state.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "coach.io.overlay", "--url", url, "--fade", "60",
         "--state-log", str(log)],
        env=xvfb, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    states = StateLog(log, proc)
    try:
        # the cue, the pace (192 wpm is above the 120-175 band) and the talk split
        shown = states.wait_for(lambda s: s["shown"] == CUE["title"], "the warn cue")
        assert shown["severity"] == "warn" and shown["connected"] is True
        assert shown["cue_id"] == CUE["id"]
        assert shown["wpm"] == 192 and shown["pace"] == "fast"
        assert shown["talk"] == "You 63% · Them 37%"

        service.push.put({"type": "status", "lag_s": 0.3, "degraded": False,
                          "message": HEADSET, "devices": {"agent": None}})
        states.wait_for(lambda s: s["status"] == HEADSET and s["shown"] == CUE["title"],
                        "the headset status")

        wid = _run("xdotool", "search", "--sync", "--onlyvisible", "--name", "^Coach$",
                   env=xvfb).split()[0]
        ARTIFACTS.mkdir(exist_ok=True)
        ignore = ARTIFACTS / ".gitignore"  # screenshots are for looking at, not for git
        if not ignore.exists():
            ignore.write_text("*\n")
        shot = ARTIFACTS / "overlay.png"
        _run("import", "-window", wid, str(shot), env=xvfb)
        assert shot.stat().st_size > 1000

        # `d` on the focused window dismisses the cue and tells the service which one
        _run("xdotool", "windowfocus", "--sync", wid, "key", "d", env=xvfb)
        sent = service.received.get(timeout=5)
        assert sent == {"type": "dismiss", "cue_id": CUE["id"], "t": CUE["t"]}
        states.wait_for(lambda s: s["shown"] == "Listening…" and s["severity"] is None,
                        "the idle state after dismiss")
        _run("import", "-window", wid, str(ARTIFACTS / "overlay-idle.png"), env=xvfb)

        # the service goes away: greyed "disconnected"; it comes back: reconnected
        service.stop()
        states.wait_for(lambda s: not s["connected"] and s["shown"].startswith("Disconnected"),
                        "disconnected")
        _run("import", "-window", wid, str(ARTIFACTS / "overlay-disconnected.png"), env=xvfb)
        service = FakeService(port, script[:2])
        states.wait_for(lambda s: s["connected"] and s["shown"] == "Listening…",
                        "reconnected", timeout=10)
        # same call (same started_at): the talk split survives the reconnect
        assert states.states()[-1]["talk"] == "You 63% · Them 37%"

        # another client's feedback for the cue on screen clears it here
        service.push.put(CUE)
        states.wait_for(lambda s: s["shown"] == CUE["title"], "the cue again")
        service.push.put({"type": "feedback", "action": "flag", "cue_id": CUE["id"],
                          "t": CUE["t"]})
        states.wait_for(lambda s: s["shown"] == "Listening…", "the cue cleared by feedback")

        # `f` flags; nothing on screen then, so a second key press sends nothing
        service.push.put(CUE)
        states.wait_for(lambda s: s["shown"] == CUE["title"], "the cue a third time")
        _run("xdotool", "windowfocus", "--sync", wid, "key", "f", env=xvfb)
        assert service.received.get(timeout=5) == {"type": "flag", "cue_id": CUE["id"],
                                                   "t": CUE["t"]}
        _run("xdotool", "key", "d", env=xvfb)
        with pytest.raises(queue.Empty):
            service.received.get(timeout=0.5)
    finally:
        proc.terminate()  # the overlay closes its window on SIGTERM, like the close button
        try:
            code = proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        service.stop()
    assert code == 0, proc.stderr.read()


@pytest.mark.slow
def test_overlay_fades_the_cue_and_shows_degraded_and_token(xvfb: dict[str, str],
                                                           tmp_path: Path):
    port = _free_port()
    service = FakeService(port, [
        {"type": "hello", "protocol": 1, "server": "coach 0.1.0"},
        {"type": "call", "state": "start", "t": 0, "started_at": 1.0, "pace_band": [120, 175]},
        {**CUE, "severity": "nudge", "title": "Slow down a little"},
    ], token="s3cret")
    log = tmp_path / "state.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "coach.io.overlay", "--url", f"ws://127.0.0.1:{port}/ws",
         "--token", "s3cret", "--fade", "0.5", "--state-log", str(log)],
        env=xvfb, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    states = StateLog(log, proc)
    try:
        states.wait_for(lambda s: s["shown"] == "Slow down a little", "the nudge")
        states.wait_for(lambda s: s["shown"] == "Listening…", "the fade back to idle",
                        timeout=5)
        service.push.put({"type": "status", "lag_s": 2.4, "degraded": True, "message": None})
        states.wait_for(lambda s: s["degraded"] and s["status"] is None, "degraded")
        service.push.put({"type": "call", "state": "end", "t": 30.0, "duration": 30.0})
        states.wait_for(lambda s: s["shown"] == "Call ended", "the call end")
    finally:
        proc.terminate()
        proc.wait(timeout=5)
        service.stop()


@pytest.mark.slow
def test_overlay_says_when_the_token_is_refused(xvfb: dict[str, str], tmp_path: Path):
    port = _free_port()
    service = FakeService(port, [], token="s3cret")
    log = tmp_path / "state.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "coach.io.overlay", "--url", f"ws://127.0.0.1:{port}/ws",
         "--token", "wrong", "--state-log", str(log)],
        env=xvfb, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    states = StateLog(log, proc)
    try:
        state = states.wait_for(lambda s: s["status"] and "wrong token" in s["status"],
                                "the token refusal")
        assert not state["connected"] and state["shown"].startswith("Connection refused")
        assert not any(s["connected"] for s in states.states())
    finally:
        proc.terminate()
        proc.wait(timeout=5)
        service.stop()


def test_no_display_raises_coach_error(monkeypatch: pytest.MonkeyPatch):
    from coach.io.overlay import run_overlay

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(CoachError, match=r"^no display: "):
        run_overlay("ws://127.0.0.1:9/ws")


def test_unreachable_display_raises_coach_error(monkeypatch: pytest.MonkeyPatch):
    pytest.importorskip("tkinter")
    pytest.importorskip("websockets")
    from coach.io.overlay import run_overlay

    monkeypatch.setenv("DISPLAY", ":65000")  # no X server there
    with pytest.raises(CoachError, match=r"^no display: ") as info:
        run_overlay("ws://127.0.0.1:9/ws")
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
    root = Path(__file__).resolve().parents[1]
    port = _free_port()
    live = subprocess.Popen(
        [sys.executable, "-m", "coach.cli", "live", "--source",
         str(root / "audio_samples" / "02_every_apology_wrong.flac"), "--no-overlay",
         "--no-record", "--port", str(port)],
        env=xvfb, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=root)
    log = tmp_path / "state.jsonl"
    overlay = subprocess.Popen(
        [sys.executable, "-m", "coach.io.overlay", "--url", f"ws://127.0.0.1:{port}/ws",
         "--state-log", str(log)],
        env=xvfb, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=root)
    try:
        states = StateLog(log, overlay)
        shown = states.wait_for(lambda s: s.get("severity") == "warn", "a warn cue from the call",
                                timeout=60)
        assert shown["shown"] == 'Avoid the "but"'
        shot = root / "tests" / "artifacts" / "overlay-live.png"
        shot.parent.mkdir(exist_ok=True)
        _run("import", "-window", "root", "-crop", "400x170+0+0", str(shot), env=xvfb)
        assert shot.stat().st_size > 1000
    finally:
        overlay.terminate()
        live.terminate()
        overlay.wait(timeout=10)
        live.wait(timeout=10)
