"""The team pages in real headless Chromium (Debian's /usr/bin/chromium via playwright):
the live board fed by agents' coaches publishing through the real client code, alerts,
following a call. Screenshots go to tests/artifacts/ (git-ignored)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from coach.store import open_store
from coach.team.client import TeamPublisher, new_call_id
from tests.team_helpers import team_server, tokens

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"

pytestmark = [
    pytest.mark.slow,  # a browser: a few seconds each
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (/usr/bin/chromium)"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright client")


@pytest.fixture(scope="module")
def team(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("team-ui")
    store = open_store(f"sqlite:///{tmp / 'coach.db'}")
    toks = tokens(store)
    from coach.store.team import TeamData

    td = TeamData(store)
    for name in ("Lee", "Kim"):
        toks[name.lower()], _ = td.create_token(name, "agent", "north")
    st, ts = team_server(store)
    yield {"base": st.url, "tokens": toks, "store": store}
    st.stop()
    store.close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=["--mute-audio"])
        yield b
        b.close()


def _page(browser):  # type: ignore[no-untyped-def]
    ctx = browser.new_context(viewport={"width": 1400, "height": 820})
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    return page, errors


def _call(token: str, base: str, events: list[dict]) -> TeamPublisher:
    pub = TeamPublisher(base, token, call_id=new_call_id()).start()
    for e in events:
        pub.offer(e)
    return pub


def _cue(t: float, cid: str, sev: str, title: str) -> dict:
    return {"type": "cue", "id": cid, "t": t, "severity": sev, "title": title,
            "speaker": "agent", "advice": "", "evidence": {}}


def _talk(agent_s: float, customer_s: float, wpm: float, t: float) -> list[dict]:
    return [{"type": "call", "state": "start", "t": 0.0, "started_at": time.time() - t,
             "pace_band": [120, 175]},
            {"type": "turn", "speaker": "agent", "start": 0.5, "end": 0.5 + agent_s},
            {"type": "turn", "speaker": "customer", "start": 1.0 + agent_s,
             "end": 1.0 + agent_s + customer_s},
            {"type": "prosody", "speaker": "agent", "t": t, "wpm": wpm, "pace_wpm": wpm},
            {"type": "status", "lag_s": 0.3, "degraded": False, "message": None}]


def test_the_board_shows_live_calls_and_raises_alerts(team, browser) -> None:
    base, t = team["base"], team["tokens"]
    page, errors = _page(browser)
    page.goto(f"{base}/team?token={t['coach_north']}")
    page.wait_for_function("() => window.coachBoardReady === true")
    calm = _call(t["lee"], base, _talk(40, 35, 148, 82) + [_cue(60, "dead-air", "nudge",
                                                                  "Fill the silence")])
    rushed = _call(t["kim"], base, _talk(90, 20, 196, 130) + [
        _cue(100, "pace-fast", "nudge", "Slow down"),
        {"type": "status", "lag_s": 2.6, "degraded": True, "message": "falling behind"}])
    angry = _call(t["dana"], base, _talk(30, 55, 160, 95) + [
        _cue(40, "sorry-but", "warn", "Avoid the \"but\""),
        _cue(70, "blame-shift", "warn", "Own it"),
        {"type": "signal", "kind": "frustration", "t": 80.0, "n": 1},
        {"type": "signal", "kind": "frustration", "t": 85.0, "n": 2},
        {"type": "signal", "kind": "supervisor-request", "t": 92.0},
        _cue(93, "name-frustration", "warn", "Name their frustration")])
    other_team = _call(t["sam"], base, _talk(10, 10, 150, 25))
    page.wait_for_function("() => document.querySelectorAll('#rows tr').length === 3")
    page.wait_for_selector(".alert:has-text('asked for a supervisor')")
    alerts = page.locator("#alerts .alert").all_inner_texts()
    assert any("Dana — the customer asked for a supervisor or a manager" in a for a in alerts)
    assert any("3 warn cues within 2 min" in a for a in alerts)
    assert any("frustration is rising" in a for a in alerts)
    rows = page.locator("#rows tr").all_inner_texts()
    assert rows[0].startswith("Dana")  # calls with alerts come first
    dana = rows[0]
    assert "Name their frustration" in dana and "\t3\t" in dana and "35 / 65" in dana
    kim = next(r for r in rows if r.startswith("Kim"))
    assert "196 wpm" in kim and "behind by 2.6 s" in kim and "82 / 18" in kim
    assert page.locator("#rows tr .pace.fast").count() == 1
    assert not any(r.startswith("Sam") for r in rows)  # another team's agent
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "team-board.png"), full_page=True)
    # an ending call moves to "Recently ended"
    calm.offer({"type": "call", "state": "end", "t": 90.0, "duration": 90.0})
    page.wait_for_function("() => document.querySelectorAll('#rows tr').length === 2")
    assert "Lee" in page.locator("#ended").inner_text()
    # follow Dana's call: its cues as they come, a withdrawn one struck through
    page.locator("#rows tr", has_text="Dana").click()
    page.wait_for_function("() => window.coachFollowReady === true")
    assert page.locator(".cue-live").count() == 3
    angry.offer({"type": "retract", "id": "blame-shift", "t": 70.0, "at": 75.0,
                 "reason": "the agent went on to own it"})
    page.wait_for_selector(".cue-live.withdrawn")
    assert "the agent went on to own it" in page.locator(".cue-live.withdrawn").inner_text()
    assert "keeps the words on the agent's machine" in page.locator("#transcript").inner_text()
    page.screenshot(path=str(ARTIFACTS / "team-follow.png"), full_page=True)
    assert errors == []
    for p in (calm, rushed, angry, other_team):
        p.stop()


def test_a_refused_board_says_why(team, browser) -> None:
    page, _ = _page(browser)
    page.goto(f"{team['base']}/team/calls/{'0' * 32}?token={team['tokens']['dana']}")
    page.wait_for_selector("#error.on")
    assert "no live call with this id" in page.locator("#error").inner_text()
    page.goto(f"{team['base']}/team")
    assert "needs a token" in page.locator("body").inner_text()


def test_an_agent_page_and_a_dispute_resolved_by_the_coach(team, browser) -> None:
    from tests.replay_data import manifest_events

    store, base, t = team["store"], team["base"], team["tokens"]
    now = time.time()
    ids = []
    for day, (score, f0, wpm) in enumerate([(48, 121, 152), (62, 118, 147), (41, 126, 171),
                                            (77, 119, 149), (85, 122, 145)]):
        events = [e for e in manifest_events() if e["type"] != "prosody"] + [
            {"type": "prosody", "speaker": "agent", "t": float(i), "f0_hz": f0 + i % 3,
             "loudness_db": -21.0, "wpm": wpm} for i in range(1, 41)]
        ids.append(store.add_call(meta={"agent": "Dana", "started_at": now - (5 - day) * 86400,
                                        "source": f"{day}.flac", "score": score},
                                  events=events, audio_path=None))
    store.add_note(ids[2], 12.0, "Try naming the feeling before the fix.", author="Nia")
    page, errors = _page(browser)
    page.set_viewport_size({"width": 1400, "height": 1250})
    page.goto(f"{base}/team/agents/Dana?token={t['dana']}")
    page.wait_for_function("() => window.coachAgentReady === true")
    assert "5 calls" in page.locator("#totals").inner_text()
    assert "Learned from 5 calls" in page.locator("#baseline-text").inner_text()
    assert page.locator("#trend canvas").count() == 1 and page.locator("#voice canvas").count() == 1
    assert "qualified-apology in 100 % of calls" in page.locator("#recurring").inner_text()
    assert "Try naming the feeling" in page.locator("#notes").inner_text()
    page.screenshot(path=str(ARTIFACTS / "team-agent.png"), full_page=True)
    # Dana disputes a cue of her worst call
    page.locator("#bestworst a").filter(has_text="").nth(3).click()
    page.wait_for_function("() => window.coachReviewReady >= 1")
    call_id = page.url.split("/team/review/")[1].split("?")[0]
    assert call_id == ids[2]
    page.select_option("#target", label=page.locator("#target option", has_text="cue:").first
                       .inner_text())
    page.fill("#answer textarea", "I apologised and fixed it in the same breath.")
    page.click("#dispute")
    page.wait_for_function("() => window.coachReviewReady >= 2")
    assert "Disputed cue qualified-apology" in page.locator("#reviews").inner_text()
    page.screenshot(path=str(ARTIFACTS / "team-dispute.png"), full_page=True)
    # the coach sees it among open disputes and resolves it
    coach, cerrors = _page(browser)
    coach.goto(f"{base}/team/reviews?token={t['coach_north']}")
    coach.wait_for_function("() => window.coachReviewsReady === true")
    assert "I apologised and fixed it" in coach.locator("#open").inner_text()
    coach.locator("#open a").first.click()
    coach.wait_for_function("() => window.coachReviewReady >= 1")
    assert coach.locator("#answer-card").is_hidden()  # coaches resolve, they do not dispute
    coach.fill(".review .resolution", "Fair: the fix followed at once. Overturned.")
    coach.click("text=Agent is right")
    coach.wait_for_function("() => window.coachReviewReady >= 2")
    assert "Overturned by Nia: Fair: the fix followed at once." in coach.locator(
        "#reviews").inner_text()
    coach.goto(f"{base}/team/reviews?token={t['coach_north']}")
    coach.wait_for_function("() => window.coachReviewsReady === true")
    assert "No open disputes." in coach.locator("#open").inner_text()
    row = coach.locator("#rates tr", has_text="qualified-apology").inner_text()
    assert row.split("\t")[1:] == ["5", "1", "20 %"]
    coach.screenshot(path=str(ARTIFACTS / "team-reviews.png"), full_page=True)
    assert errors == [] and cerrors == []
