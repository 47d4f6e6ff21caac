"""Retake the README's two screenshots from the real program (not a mock-up):

- docs/overlay.png: `coach live --source` on the demo call under a virtual X display
  (Xvfb), the desktop overlay captured while it shows the first cue;
- docs/replay.png: the same call analysed and saved (`coach analyze --save`), its replay
  page served by `coach serve` and rendered by headless Chromium with a cue selected.

Needs Debian's xvfb, imagemagick and chromium, and the `test` extra (playwright):

    .venv/bin/python docs/make_screenshots.py

Everything runs in a throwaway data folder; nothing touches your own store or settings.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
CALL = ROOT / "audio_samples" / "02_every_apology_wrong.flac"
COACH = [sys.executable, "-m", "coach.cli"]
GEOMETRY = (440, 170, 16, 16)  # the overlay's size and place on the virtual screen


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _shrink(path: Path) -> None:
    """A 256-colour PNG: the screenshots are flat UI, this keeps them small."""
    subprocess.run(["convert", str(path), "-colors", "256", "-strip", f"PNG8:{path}"],
                   check=True)


async def _first_cue(url: str, timeout: float) -> dict:
    import websockets

    deadline = time.monotonic() + timeout
    while True:
        try:
            async with websockets.connect(url) as ws:
                while True:
                    msg = json.loads(await asyncio.wait_for(ws.recv(), deadline - time.monotonic()))
                    if msg.get("type") == "cue" and msg.get("severity") == "warn":
                        return msg
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.3)


def overlay_shot(env: dict) -> Path:
    display = ":87"
    xvfb = subprocess.Popen(["Xvfb", display, "-screen", "0", "800x400x24", "-nolisten", "tcp"])
    port = _free_port()
    w, h, x, y = GEOMETRY
    live = None
    try:
        time.sleep(1.0)
        live = subprocess.Popen(
            [*COACH, "live", "--source", str(CALL), "--port", str(port), "--no-store",
             "--no-record", "--geometry", f"{w}x{h}+{x}+{y}"],
            env={**env, "DISPLAY": display}, cwd=ROOT, stdout=subprocess.DEVNULL)
        cue = asyncio.run(_first_cue(f"ws://127.0.0.1:{port}/ws", 120))
        time.sleep(1.5)  # let the overlay draw it
        out = DOCS / "overlay.png"
        subprocess.run(["import", "-display", display, "-window", "root",
                        "-crop", f"{w}x{h}+{x}+{y}", "+repage", str(out)], check=True)
        _shrink(out)
        print(f"overlay: {out} showing {cue['id']} at {cue['t']:.1f} s")
        return out
    finally:
        if live is not None:
            live.terminate()
            live.wait(30)
        xvfb.terminate()
        xvfb.wait(10)


def replay_shot(env: dict) -> Path:
    from playwright.sync_api import sync_playwright

    r = subprocess.run([*COACH, "analyze", str(CALL), "--save", "--agent", "Dana",
                        "--format", "jsonl", "--progress", "off"], env=env, cwd=ROOT,
                       capture_output=True, text=True, check=True)
    call_id = json.loads(subprocess.run([*COACH, "calls", "list", "--json"], env=env,
                                        capture_output=True, text=True, check=True
                                        ).stdout)["calls"][0]["id"]
    assert call_id in r.stderr, r.stderr
    port = _free_port()
    serve = subprocess.Popen([*COACH, "serve", "--port", str(port)], env=env, cwd=ROOT)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                        args=["--mute-audio"])
            page = browser.new_page(viewport={"width": 1180, "height": 780})
            for _ in range(50):
                try:
                    page.goto(f"http://127.0.0.1:{port}/calls/{call_id}")
                    break
                except Exception:  # the server is still starting
                    time.sleep(0.2)
            page.wait_for_selector("body[data-state=ready]", timeout=20000)
            page.click(".cue-card.sev-warn >> nth=0")
            page.wait_for_timeout(1200)
            page.evaluate("() => document.getElementById('audio').pause()")
            page.wait_for_timeout(300)
            out = DOCS / "replay.png"
            page.screenshot(path=str(out))
            browser.close()
    finally:
        serve.terminate()
        serve.wait(30)
    _shrink(out)
    print(f"replay: {out} (call {call_id})")
    return out


def main() -> int:
    for tool in ("Xvfb", "import", "convert", "/usr/bin/chromium"):
        if shutil.which(tool) is None:
            print(f"needs {tool} (apt-get install xvfb imagemagick chromium)", file=sys.stderr)
            return 2
    with tempfile.TemporaryDirectory(prefix="coach-shots-") as tmp:
        env = dict(os.environ, COACH_DATA=str(Path(tmp) / "data"), COACH_DB="",
                   XDG_CONFIG_HOME=str(Path(tmp) / "config"))
        overlay_shot(env)
        replay_shot(env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
