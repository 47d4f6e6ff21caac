"""The replay pages in real headless Chromium (Debian's /usr/bin/chromium driven by
playwright), over a real store holding a demo call analysed by the real pipeline.

Screenshots go to tests/artifacts/ (git-ignored)."""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from typing import Any

import pytest

from coach.io.hub import Hub
from coach.io.server import ServerThread, create_app
from coach.store import open_store
from coach.store.importer import save_analysis
from tests.replay_data import DEMO, SAMPLES, pipeline_events

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"

pytestmark = [
    pytest.mark.slow,  # the demo call goes through Whisper once (~20 s), then a few s each
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (/usr/bin/chromium)"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright client")


@pytest.fixture(scope="module")
def calls(tmp_path_factory, transcriber, vad):
    """A store with the demo call (real audio, real pipeline events) and a quiet call."""
    store = open_store(f"sqlite:///{tmp_path_factory.mktemp('replay-ui') / 'coach.db'}")
    audio = SAMPLES / f"{DEMO}.flac"
    events = pipeline_events(audio, transcriber, vad)
    # one cue withdrawn, as live coaching records it when the words after a cue undo it
    gone = [e for e in events if e["type"] == "cue"][-3]
    events.append({"type": "retract", "id": gone["id"], "t": gone["t"], "at": gone["t"] + 1.2,
                   "reason": "the agent fixed it straight after"})
    demo = save_analysis(store, audio, events,
                         {"agent": "Dana", "started_at": "2025-03-04T09:30:00Z",
                          "model": transcriber.name})
    store.set_score(demo, 34)
    cues = store.get_call(demo)["cues"]
    store.set_feedback(demo, cues[-1]["idx"], "flagged")   # as an overlay would record them
    store.set_feedback(demo, cues[-2]["idx"], "dismissed")
    quiet = store.add_call(
        meta={"agent": "Sam", "started_at": "2025-03-05T11:00:00Z", "source": "quiet.flac"},
        events=[{"type": "word", "speaker": "agent", "text": w, "start": i * 0.5,
                 "end": i * 0.5 + 0.4, "final": True}
                for i, w in enumerate("thanks for calling how can I help".split())],
        audio_path=None)
    yield store, {"demo": demo, "quiet": quiet}
    store.close()


@pytest.fixture(scope="module")
def server(calls):
    store, _ = calls
    with ServerThread(create_app(Hub(), store=store), "127.0.0.1", 0) as st:
        yield st


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=["--mute-audio"])
        yield b
        b.close()


class Page:
    """A fresh page that records console errors and every URL it requests."""

    def __init__(self, browser, base: str) -> None:  # type: ignore[no-untyped-def]
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000},
                                           timezone_id="Europe/Berlin")
        self.page = self.context.new_page()
        self.base = base
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("response", lambda r: self.errors.append(f"{r.status} {r.url}")
                     if r.status >= 400 else None)

    def open(self, path: str) -> Any:
        self.page.goto(self.base + path)
        self.page.wait_for_selector("body[data-state=ready]", timeout=15000)
        return self.page

    def close(self) -> None:
        self.context.close()

    def check_clean(self) -> None:
        assert not self.errors, self.errors
        foreign = [u for u in self.requests if not u.startswith((self.base, "data:", "blob:"))]
        assert not foreign, f"requests outside the service: {foreign}"


@pytest.fixture
def tab(browser, server):
    t = Page(browser, server.url)
    yield t
    t.close()


def api_get(server, path: str) -> Any:  # type: ignore[no-untyped-def]
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", path)
    return json.loads(conn.getresponse().read())


def shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def rows(page) -> list[str]:  # type: ignore[no-untyped-def]
    return page.eval_on_selector_all("table.calls tbody tr", "trs => trs.map(r => r.dataset.id)")


def wait_rows(page, want: list[str]) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_function(
        "want => JSON.stringify([...document.querySelectorAll('table.calls tbody tr')]"
        ".map(r => r.dataset.id)) === JSON.stringify(want)", arg=want, timeout=5000)


def test_list_filters_by_cue_and_opens_a_call(tab, calls):
    store, ids = calls
    cue = store.get_call(ids["demo"])["cues"][0]["id"]
    page = tab.open("/")
    assert rows(page) == [ids["quiet"], ids["demo"]]
    assert page.inner_text("#range") == "1–2 of 2 calls"
    shot(page, "replay-list.png")
    page.select_option("select[name=cue]", cue)
    page.wait_for_function("n => document.querySelectorAll('table.calls tbody tr').length === n",
                           arg=1)
    assert rows(page) == [ids["demo"]]
    assert f"cue={cue}" in page.url  # the filter survives a reload / a shared link
    page.reload()
    page.wait_for_selector("body[data-state=ready]")
    assert rows(page) == [ids["demo"]]
    assert page.input_value("select[name=cue]") == cue
    page.fill("input[name=q]", "zebra crossing")
    page.wait_for_selector(".empty")
    assert "No calls match" in page.inner_text(".empty")
    page.fill("input[name=q]", "")
    page.wait_for_function("() => document.querySelectorAll('table.calls tbody tr').length === 1")
    # dates are the reader's days: the demo call started 10:30 in Berlin on 4 March
    page.select_option("select[name=cue]", "")
    wait_rows(page, [ids["quiet"], ids["demo"]])
    page.fill("input[name=from]", "2025-03-05")
    wait_rows(page, [ids["quiet"]])
    page.fill("input[name=from]", "2025-03-04")
    page.fill("input[name=to]", "2025-03-04")
    wait_rows(page, [ids["demo"]])
    assert "10:30" in page.inner_text("td.when a")
    page.click(f"tr[data-id='{ids['demo']}'] td.agent")
    page.wait_for_url(f"**/calls/{ids['demo']}")
    page.wait_for_selector("body[data-state=ready]", timeout=15000)
    assert "Dana" in page.inner_text("#title")
    tab.check_clean()


def _waveform_ink(page) -> list[int]:  # type: ignore[no-untyped-def]
    """Non-transparent pixels in each waveform canvas (wavesurfer draws in a shadow DOM)."""
    return page.evaluate("""() => {
        const host = document.querySelector('#waveform > div');
        const canvases = [...host.shadowRoot.querySelectorAll('.canvases canvas')];
        return canvases.map((c) => {
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
            return n;
        });
    }""")


def assert_aligned(page) -> None:  # type: ignore[no-untyped-def]
    """The waveform, the cue lane and both curves share one time axis (same x extent)."""
    page.wait_for_timeout(100)  # let a pending resize settle
    wave = page.locator("#waveform").bounding_box()
    for other in ("#pitch-chart .u-over", "#pace-chart .u-over", "#cue-lane", "#overlay"):
        box = page.locator(other).bounding_box()
        assert abs(box["x"] - wave["x"]) <= 1.5, (other, box, wave)
        assert abs(box["width"] - wave["width"]) <= 1.5, (other, box, wave)


def test_call_page_cue_marker_plays_its_evidence(tab, calls, server):
    store, ids = calls
    call = api_get(server, f"/api/calls/{ids['demo']}")
    with_words = [c for c in call["cues"] if len(c["evidence"].get("words", [])) >= 2]
    cue = with_words[0]
    evidence = sorted(cue["evidence"]["words"], key=lambda w: w["start"])
    page = tab.open(f"/calls/{ids['demo']}")

    # two waveforms (agent, customer) with ink in both, lined up with the curves
    ink = _waveform_ink(page)
    assert len(ink) >= 2 and all(n > 500 for n in ink), ink
    assert_aligned(page)
    assert page.locator(".marker").count() == len(call["cues"])
    # the agent's feedback during the call shows on the cue cards and markers
    flagged, dismissed = call["cues"][-1]["idx"], call["cues"][-2]["idx"]
    assert "flagged it as wrong" in page.inner_text(f".cue-card.flagged[data-idx='{flagged}']")
    assert "dismissed" in page.inner_text(f".cue-card.dismissed[data-idx='{dismissed}']")
    assert page.locator(f".marker.flagged[data-idx='{flagged}']").count() == 1
    # a withdrawn cue stays on the page, marked as such, with when and why
    gone = [c for c in call["cues"] if c["withdrawn"] is not None]
    assert len(gone) == 1 and gone[0]["withdrawn"].endswith(": the agent fixed it straight after")
    assert "withdrawn" not in gone[0]["evidence_text"]
    card = page.inner_text(f".cue-card.withdrawn[data-idx='{gone[0]['idx']}']")
    assert f"Withdrawn {gone[0]['withdrawn']}" in card, card
    assert page.locator(f".marker.withdrawn[data-idx='{gone[0]['idx']}']").count() == 1
    assert page.locator(".cue-card.withdrawn").count() == 1
    # counted as the call list counts them: standing cues, the withdrawn one said apart
    assert f"{len(call['cues']) - 1} cues (and 1 withdrawn)" in page.inner_text("#facts")
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator(".cue-card.withdrawn").screenshot(path=str(ARTIFACTS / "replay-withdrawn.png"))
    assert page.locator(".cue-card .fb-badge").count() == 3
    assert page.locator(".seg.agent").count() > 0 and page.locator(".seg.customer").count() > 0

    page.click(f".marker[data-idx='{cue['idx']}']")
    page.wait_for_function("() => !document.getElementById('audio').paused")
    t = page.evaluate("() => { const a = document.getElementById('audio'); a.pause(); "
                      "return a.currentTime; }")
    assert evidence[0]["start"] - 0.05 <= t <= evidence[0]["start"] + 1.5, (t, evidence[0])
    highlighted = page.eval_on_selector_all(".w.evidence", "els => els.map(e => e.textContent)")
    assert highlighted == [w["text"] for w in evidence]
    assert page.locator(f".cue-card.active[data-idx='{cue['idx']}']").count() == 1
    assert page.locator(".span-band").count() >= 1
    # the transcript follows: the word being played is marked
    now = page.eval_on_selector_all(".w.now", "els => els.map(e => +e.dataset.start)")
    assert now and all(abs(s - t) < 2.0 for s in now), (now, t)
    shot(page, "replay-call.png")

    # a cue whose evidence is figures only seeks to the cue time
    figures = [c for c in call["cues"] if not c["evidence"].get("words")]
    if figures:
        page.click(f".marker[data-idx='{figures[0]['idx']}']")
        t = page.evaluate("() => { const a = document.getElementById('audio'); a.pause(); "
                          "return a.currentTime; }")
        assert figures[0]["t"] - 0.05 <= t <= figures[0]["t"] + 1.5
        assert page.locator(".w.evidence").count() == 0
    tab.check_clean()


def _notes(page) -> list[str]:  # type: ignore[no-untyped-def]
    return page.eval_on_selector_all(".note .body", "els => els.map(e => e.textContent)")


def test_notes_add_reload_edit_delete(tab, calls):
    store, ids = calls
    page = tab.open(f"/calls/{ids['demo']}")
    page.evaluate("() => { document.getElementById('audio').currentTime = 20; }")
    page.wait_for_function("() => document.getElementById('note-add').textContent.includes('0:20.0')")
    page.fill("#note-text", "Blame shift: coach on owning the delay.")
    page.fill("#note-author", "Kim")
    page.click("#note-add")
    page.wait_for_selector(".note")
    assert _notes(page) == ["Blame shift: coach on owning the delay."]
    assert page.inner_text(".note .t") == "0:20.0"
    assert page.locator(".note-marker").count() == 1

    page.reload()
    page.wait_for_selector("body[data-state=ready]", timeout=15000)
    assert _notes(page) == ["Blame shift: coach on owning the delay."]
    assert page.inner_text(".note .by") == "Kim"
    stored = store.get_call(ids["demo"])["notes"]
    assert [(n["t"], n["author"]) for n in stored] == [(20.0, "Kim")]

    page.click(".note button:has-text('Edit')")
    page.fill(".note textarea", "Blame shift at 0:18: own the delay first.")
    page.fill(".note input[aria-label='note time']", "0:18.5")
    assert_aligned(page)
    shot(page, "replay-notes-edit.png")
    page.click(".note button:has-text('Save')")
    page.wait_for_selector(".note .body")
    assert _notes(page) == ["Blame shift at 0:18: own the delay first."]
    page.reload()
    page.wait_for_selector("body[data-state=ready]", timeout=15000)
    assert _notes(page) == ["Blame shift at 0:18: own the delay first."]
    assert page.inner_text(".note .t") == "0:18.5"

    page.click(".note button:has-text('Delete')")
    assert _notes(page) == ["Blame shift at 0:18: own the delay first."]  # asks first
    page.click(".note button:has-text('Delete?')")
    page.wait_for_selector(".note", state="detached")
    assert page.locator(".note-marker").count() == 0
    page.reload()
    page.wait_for_selector("body[data-state=ready]", timeout=15000)
    assert _notes(page) == []
    assert store.get_call(ids["demo"])["notes"] == []
    page.set_viewport_size({"width": 1000, "height": 900})  # narrower: still one time axis
    assert_aligned(page)
    tab.check_clean()


def test_call_without_audio_and_unknown_call(tab, calls):
    _, ids = calls
    page = tab.open(f"/calls/{ids['quiet']}")
    assert page.is_visible("#noaudio")
    assert page.inner_text(".seg.agent .text").startswith("thanks for calling")
    assert page.is_disabled("#play")
    shot(page, "replay-call-no-audio.png")
    tab.check_clean()
    page.goto(tab.base + "/calls/0123456789abcdef")
    assert "No such call" in page.inner_text("h1")


def test_api_docs_render_from_local_assets(tab):
    page = tab.page
    page.goto(tab.base + "/docs")
    page.wait_for_selector(".opblock", timeout=15000)
    assert page.locator(".opblock").count() >= 10
    assert "coach replay API" in page.inner_text(".information-container")
    tab.check_clean()


def test_remote_access_with_a_token(browser, calls):
    """Opened as /?token=...: the API calls carry it (Bearer), links and audio (?token=)."""
    store, ids = calls
    with ServerThread(create_app(Hub(), token="t0ken", store=store), "127.0.0.1", 0) as st:
        tab = Page(browser, st.url)
        try:
            refused = tab.page.goto(st.url + "/")
            assert refused is not None and refused.status == 401
            tab.errors.clear()
            page = tab.open("/?token=t0ken")
            assert rows(page) == [ids["quiet"], ids["demo"]]
            page.click(f"tr[data-id='{ids['demo']}'] td.agent")
            page.wait_for_url(f"**/calls/{ids['demo']}?token=t0ken")
            page.wait_for_selector("body[data-state=ready]", timeout=15000)
            assert _waveform_ink(page)
            page.click(".marker >> nth=0")
            page.wait_for_function("() => document.getElementById('audio').currentTime > 0")
            page.evaluate("() => document.getElementById('audio').pause()")
            href = page.get_attribute("#exp-vtt", "href")
            assert href.endswith("/export.vtt?token=t0ken")
            assert page.get_attribute("#back", "href") == "/?token=t0ken"
            tab.check_clean()
        finally:
            tab.close()


TURNS_JS = """async (cases) => {
    const { turns } = await import('/static/replay/transcript.js');
    return cases.map((ws) => turns(ws).map((t) => ({
        speaker: t.speaker, words: t.idx.map((i) => ws[i].text).join(' '),
        asides: t.asides.map((a) => a.idx.map((i) => ws[i].text).join(' ')) })));
}"""


def _ws(*spec: tuple[str, float, str]) -> list[dict]:
    """(speaker, start, text) per word, 0.3 s each."""
    return [{"speaker": sp, "start": t, "end": t + 0.3, "text": x} for sp, t, x in spec]


def test_transcript_turns_keep_a_speaker_together(tab, calls):
    """The case from a real call: the agent goes on through the customer's "Yeah. Next
    time." (an aside, not three turns); a customer who really takes the floor makes a turn;
    a lone "Mm-hm." between two of the agent's runs is an aside too."""
    page = tab.open("/")
    got = page.evaluate(TURNS_JS, [
        _ws(("agent", 10.0, "Let's"), ("customer", 10.4, "Yeah."), ("customer", 10.7, "Next"),
            ("customer", 11.0, "time."), ("agent", 11.2, "let's"), ("agent", 11.5, "get"),
            ("agent", 11.8, "that"), ("agent", 12.1, "fixed.")),
        _ws(("agent", 0.0, "It"), ("agent", 0.3, "is"), ("agent", 0.6, "sorted."),
            ("customer", 3.0, "Mm-hm."),
            ("agent", 5.0, "Anything"), ("agent", 5.3, "else?")),
        _ws(("agent", 0.0, "I"), ("agent", 0.3, "can"), ("agent", 0.6, "check."),
            ("customer", 1.5, "No,"), ("customer", 1.8, "I"), ("customer", 2.1, "want"),
            ("customer", 2.4, "a"), ("customer", 2.7, "refund"), ("customer", 3.0, "today."),
            ("agent", 5.0, "Of"), ("agent", 5.3, "course.")),
    ])
    assert got[0] == [{"speaker": "agent", "words": "Let's let's get that fixed.",
                       "asides": ["Yeah. Next time."]}]
    assert got[1] == [{"speaker": "agent", "words": "It is sorted. Anything else?",
                       "asides": ["Mm-hm."]}]
    assert [(t["speaker"], t["words"]) for t in got[2]] == [
        ("agent", "I can check."), ("customer", "No, I want a refund today."),
        ("agent", "Of course.")]
    tab.check_clean()


def test_real_call_transcript_has_few_one_word_turns(tab, calls, data_dir):
    """A real phone call (SpokenWOZ, human word times): turns are turns, the asides sit
    inside them, and unsure words are explained."""
    store, _ = calls
    words = json.loads((data_dir / "calls" / "spokenwoz" / "MUL1423.words.json").read_text())
    events = [{"type": "word", "speaker": "agent" if w["speaker"] == "B" else "customer",
               "text": w["word"], "start": w["start"], "end": w["end"], "final": True,
               "probability": 0.3 if i % 25 == 0 else 0.9} for i, w in enumerate(words)]
    cid = store.add_call(meta={"agent": "Real", "started_at": "2025-03-06T10:00:00Z",
                               "source": "MUL1423.wav"}, events=events, audio_path=None)
    try:
        page = tab.open(f"/calls/{cid}")
        segs = page.eval_on_selector_all(
            ".seg", "els => els.map(e => e.querySelectorAll(':scope > .text > .w').length)")
        naive = sum(1 for a, b in zip(words, words[1:], strict=False)
                    if a["speaker"] != b["speaker"]) + 1   # a turn at every change of speaker
        assert len(segs) < naive * 0.8, (len(segs), naive)
        assert sum(1 for n in segs if n == 1) <= max(2, len(segs) // 10), segs
        assert page.locator(".seg .aside").count() >= 1
        assert page.locator(".w").count() == len(words)  # every word shown once
        legend = page.inner_text(".transcript-legend")
        assert "grey words" in legend and "unsure" in legend
        shot(page, "replay-real-transcript.png")
        tab.check_clean()
    finally:
        store.delete_call(cid)


def test_call_list_shows_cue_titles_and_the_cli_length(tab, calls):
    store, ids = calls
    call = store.get_call(ids["demo"])
    page = tab.open("/")
    chips = page.eval_on_selector_all(f"tr[data-id='{ids['demo']}'] .chip[data-cue]",
                                      "els => els.map(e => [e.dataset.cue, e.textContent])")
    assert chips
    titles = {c["id"]: c["title"] for c in call["cues"]}
    for cue_id, text in chips:
        assert text.startswith(titles[cue_id]) and cue_id not in text
    # the withdrawn cue is not counted among the call's cues (nor found by the cue filter)
    standing = {c["id"] for c in call["cues"] if "withdrawn" not in c["evidence"]}
    gone = {c["id"] for c in call["cues"]} - standing
    assert gone and not gone & {cue_id for cue_id, _ in chips}
    assert not gone & set(store.list_calls(agent="Dana")[0][0]["cue_counts"])
    from coach.store.cli import _duration

    length = page.inner_text(f"tr[data-id='{ids['demo']}'] td.num >> nth=0")
    assert length == _duration(call["duration_s"])
    tab.check_clean()
