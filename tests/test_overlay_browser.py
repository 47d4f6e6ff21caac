"""The browser overlay (/overlay) in real headless Chromium (Debian's /usr/bin/chromium driven
by playwright) against the real service and hub: the same display policy as the desktop
overlay (the shared cases), priority, retraction, lag and late cues on the page.

Screenshots go to tests/artifacts/ (git-ignored)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from coach.events import Cue, Prosody, Retraction
from coach.io.hub import Hub
from coach.io.server import ServerThread, create_app

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CASES = json.loads((Path(__file__).parent / "display_cases.json").read_text("utf-8"))

pytestmark = [
    pytest.mark.slow,  # a real browser: ~10 s in all
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (/usr/bin/chromium)"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright client")

# the same runner as tests/display_cases.py, over the page's display.js
RUN_CASES = """(cases) => {
  const STARTED_AT = 1000000.0;
  const r2 = (v) => typeof v === "number" ? Math.round(v * 100) / 100 : v;
  function observe(p, now, want, decisions) {
    const s = p.screen(now), got = {};
    for (const k of Object.keys(want)) {
      if (k === "cue") got[k] = s.cue ? s.cue.id : null;
      else if (["late_s", "withdrawn", "severity", "title"].includes(k)) got[k] = s.cue ? r2(s.cue[k]) : null;
      else if (["status", "tag", "headline", "alert", "degraded", "talk"].includes(k)) got[k] = s[k];
      else if (k === "lag_s") got[k] = s.lag_s === null ? null : r2(s.lag_s);
      else if (k === "pace") got[k] = [s.pace.wpm, s.pace.zone];
      else if (k === "decisions") {
        got[k] = {};
        for (const id of Object.keys(want[k])) {
          got[k][id] = decisions.filter((d) => d.cue_id === id).map((d) => d.decision);
        }
      } else throw new Error("unknown expectation " + k);
    }
    return got;
  }
  return cases.map((c) => {
    const p = new CoachDisplay.DisplayPolicy(c.options || {});
    const decisions = [], pairs = [];
    p.connected(0);
    p.feed({type: "hello", protocol: 1}, 0, STARTED_AT);
    p.feed({type: "call", state: "start", t: 0, started_at: STARTED_AT, pace_band: [120, 175]},
           0, STARTED_AT);
    for (const st of c.steps) {
      const now = st.at, wall = STARTED_AT + now + (st.wall_skew || 0);
      let out;
      if (st.msg) out = p.feed(st.msg, now, wall);
      else if (st.act) out = p.act(st.act, now).decisions;
      else out = p.tick(now);
      decisions.push(...out);
      if (st.expect) pairs.push([observe(p, now, st.expect, decisions), st.expect]);
    }
    return {name: c.name, pairs: pairs};
  });
}"""


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM))
        yield b
        b.close()


@pytest.fixture
def service():
    hub = Hub()
    with ServerThread(create_app(hub), "127.0.0.1", 0) as st:
        yield hub, st


@pytest.fixture
def page(browser, service):
    _, st = service
    context = browser.new_context(viewport={"width": 420, "height": 240})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error"
          and not m.text.startswith("Failed to load resource") else None)
    pg.on("response", lambda r: errors.append(f"{r.status} {r.url}")
          if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)
    pg.goto(f"{st.url}/overlay")
    yield pg
    context.close()
    assert not errors, errors


def _shot(pg, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    ignore = ARTIFACTS / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n")
    pg.screenshot(path=str(ARTIFACTS / name))


def test_the_page_decides_like_the_desktop_overlay(page):
    """Every shared case gives in display.js what it gives in coach.display."""
    page.wait_for_function("window.CoachDisplay !== undefined")
    results = page.evaluate(RUN_CASES, CASES)
    assert [r["name"] for r in results] == [c["name"] for c in CASES]
    for r in results:
        for got, want in r["pairs"]:
            assert got == want, r["name"]


def test_the_page_honours_priority_retraction_lag_and_late_cues(page, service):
    hub, _ = service
    assert hub.wait_clients(1, 10)
    started_at = time.time() - 20.0

    def audio_now() -> float:
        return time.time() - started_at

    def publish(event: Any) -> None:
        hub.publish_threadsafe(event if isinstance(event, dict) else event.to_dict())

    def decisions(cue_id: str) -> list[str]:
        return page.evaluate(f"window.coachDecisions.filter((d) => d.cue_id === "
                             f"{json.dumps(cue_id)}).map((d) => d.decision)")

    def wait_decisions(cue_id: str, n: int) -> list[str]:
        page.wait_for_function(f"window.coachDecisions.filter((d) => d.cue_id === "
                               f"{json.dumps(cue_id)}).length >= {n}")
        return decisions(cue_id)

    title = page.locator("#cue-title")
    publish({"type": "call", "state": "start", "t": 0.0, "started_at": started_at,
             "pace_band": [120, 175]})
    sync_api.expect(title).to_have_text("Listening…")
    publish({"type": "turn", "speaker": "customer", "start": 0.5, "end": 8.0})
    publish({"type": "turn", "speaker": "agent", "start": 8.4, "end": 19.6})
    publish(Prosody("agent", round(audio_now(), 1), 180.0, -20.0, 150.0, pace_wpm=191.0))

    warn = Cue("qualified-apology", round(audio_now() - 0.3, 3), "agent", "warn",
               'Avoid the "but"', 'It cancels the apology. Try: "I\'m sorry it\'s late; '
               'I\'ll send a new one today."')
    publish(warn)
    sync_api.expect(title).to_have_text('Avoid the "but"')
    sync_api.expect(page.locator("#cue")).to_have_class("warn")
    sync_api.expect(page.locator("#pace-value")).to_have_text("191")
    sync_api.expect(page.locator("#pace-mark")).to_have_class("fast")
    sync_api.expect(page.locator("#talk-value")).to_have_text("60%")

    # a nudge and info praise within the warn's display time: the warn stays
    publish(Cue("blame-shift", round(audio_now() - 0.2, 3), "agent", "nudge",
                "Focus on the fix", "Leave the courier out of it."))
    publish(Cue("empathy-shown", round(audio_now() - 0.1, 3), "agent", "info",
                "Good: you named the feeling", ""))
    assert wait_decisions("empathy-shown", 1) == ["dropped"]
    assert decisions("blame-shift") == ["dropped"]
    sync_api.expect(title).to_have_text('Avoid the "but"')
    _shot(page, "overlay-browser-priority.png")

    # withdrawn: struck through, then gone, and never back
    publish(Retraction(warn.id, warn.t, round(audio_now(), 3), "the agent went on to fix it"))
    sync_api.expect(page.locator("#cue")).to_have_class("warn withdrawn")
    sync_api.expect(page.locator("#cue-tag")).to_have_text("withdrawn")
    assert page.evaluate("getComputedStyle(document.getElementById('cue-title'))"
                         ".textDecorationLine") == "line-through"
    _shot(page, "overlay-browser-withdrawn.png")
    sync_api.expect(title).to_have_text("Listening…")
    publish(warn)
    publish(Retraction("pace-fast", 3.0, 4.0, "never shown"))
    assert wait_decisions("pace-fast", 1) == ["ignored"]
    assert decisions(warn.id) == ["shown", "retracted", "dropped"]
    sync_api.expect(title).to_have_text("Listening…")

    # running behind: said; a cue 9 s after its words: late, muted, labelled
    publish(Prosody("agent", round(audio_now() - 2.6, 1), 180.0, -20.0, 150.0, pace_wpm=185.0))
    publish({"type": "status", "lag_s": 2.6, "degraded": False, "message": None})
    sync_api.expect(page.locator("#status")).to_have_text("Coaching is 2.6 s behind the call")
    sync_api.expect(page.locator("#status")).to_have_class("alert")
    publish(Cue("minimizing", round(audio_now() - 9.0, 3), "agent", "nudge",
                "Don't minimise", '"Only a lamp" tells them their problem is small.'))
    sync_api.expect(page.locator("#cue")).to_have_class("nudge late")
    tag = page.locator("#cue-tag").text_content()
    assert tag in ("9 s late", "10 s late"), tag
    _shot(page, "overlay-browser-late.png")
    publish(Prosody("agent", round(audio_now(), 1), 180.0, -20.0, 150.0, pace_wpm=None))
    sync_api.expect(page.locator("#pace-value")).to_have_text("—")  # the gauge idles
