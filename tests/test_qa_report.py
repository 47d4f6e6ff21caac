"""QA reports: results.csv and results.json columns and rows, report.html content and
escaping, and the page as headless Chromium renders it (screenshot in tests/artifacts)."""

from __future__ import annotations

import copy
import csv
import hashlib
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from coach.errors import CoachError
from coach.events import Word
from coach.playbook import CUE_IDS, load_playbook
from coach.qa.report import CSV_COLUMNS, summarise, write_reports
from coach.rubric import STEPS, score_call
from coach.scripted import run_engine, script_events
from coach.summary import transcript_lines

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "audio_samples" / "scripts"
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
PB = load_playbook()


def result_for(script, call: str, *, store_id: str | None = None) -> dict:
    """A result dict as the contract describes it, from a call script at text level."""
    events = script_events(script)
    words = [e for e in events if isinstance(e, Word)]
    cues = run_engine(events, PB)
    duration = max(w.end for w in words) + 0.5
    scored = score_call(words, cues, PB, duration_s=duration).to_dict()
    return {
        "call": call, "path": str(script), "kind": "transcript", "status": "ok",
        "key": hashlib.sha256(call.encode()).hexdigest(), "reason": None,
        "duration_s": round(duration, 3), "agent_channel": "left", "model": "tiny.en",
        **scored,
        "cue_counts": dict(Counter(c.id for c in cues)),
        "cues": [c.to_dict() for c in cues],
        "transcript": [{"speaker": ln.speaker, "start": ln.start, "end": ln.end,
                        "text": ln.text} for ln in transcript_lines(words)],
        "store_id": store_id, "analysed_at": "2026-05-01T10:00:00+00:00", "seconds": 0.02,
    }


def skipped(call: str, reason: str) -> dict:
    return {"call": call, "path": f"/calls/{call}.wav", "key": None, "kind": "audio",
            "status": "skipped", "reason": reason, "duration_s": None, "score": None,
            "problem": None, "steps": {}, "delivery": {}, "cue_counts": {}, "cues": [],
            "transcript": [], "store_id": None, "analysed_at": "2026-05-01T10:00:00+00:00",
            "seconds": 0.0}


HOSTILE = {"turns": [
    {"speaker": "customer", "text": "My <script>alert(1)</script> order is broken & late."},
    {"speaker": "agent", "text": "I'm sorry, but <b>that</b> is not our fault."},
]}


@pytest.fixture(scope="module")
def results() -> list[dict]:
    out = [result_for(p, p.stem, store_id=f"id-{p.stem[:2]}") for p in sorted(DEMO.glob("*.yaml"))]
    out.append(result_for(HOSTILE, 'evil "<call>"'))
    out.append(skipped("broken_upload", "not a readable audio file (truncated header)"))
    out.append(skipped("empty", "the file is empty (0 bytes)"))
    return out


@pytest.fixture(scope="module")
def report(results, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("qa") / "report"
    return write_reports(results, out, replay_url="http://127.0.0.1:8765/", title="Team A QA")


# --- CSV and JSON ----------------------------------------------------------------------


def test_csv_has_one_row_per_call_with_the_contract_columns(report, results) -> None:
    with report["csv"].open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        header = reader.fieldnames or []
    assert len(rows) == len(results)
    for col in ("call", "score", "status", "duration_s", "reason", *STEPS):
        assert col in header
    assert set(CUE_IDS) <= set(header)  # every cue id of the playbook, found or not
    assert tuple(header) == CSV_COLUMNS
    by_call = {r["call"]: r for r in rows}
    worst = by_call["02_every_apology_wrong"]
    assert worst["status"] == "ok" and float(worst["score"]) < 10
    assert {worst[s] for s in STEPS} == {"violated"}
    assert worst["over-apology"] == "1" and worst["qualified-apology"] == "1"
    assert worst["laughter"] == "0" and worst["tone-flat"] == "0"  # absent ids count 0
    routine = by_call["06_address_change"]
    assert {routine[s] for s in STEPS} == {"n/a"} and routine["problem"] == "False"
    bad = by_call["broken_upload"]
    assert bad["status"] == "skipped" and bad["score"] == ""
    assert bad["reason"] == "not a readable audio file (truncated header)"
    # worst first, skipped last
    scores = [float(r["score"]) for r in rows if r["status"] == "ok"]
    assert scores == sorted(scores)
    assert [r["status"] for r in rows[-2:]] == ["skipped", "skipped"]


def test_json_holds_the_calls_with_evidence_and_a_summary(report, results) -> None:
    doc = json.loads(report["json"].read_text(encoding="utf-8"))
    assert doc["title"] == "Team A QA"
    calls = {c["call"]: c for c in doc["calls"]}
    assert len(calls) == len(results)
    model = calls["01_owned_and_fixed"]
    assert model["score"] == 100.0
    ev = model["steps"]["empathy"]["evidence"][0]
    assert ev["text"] == "That sounds really stressful." and ev["start"] == 11.65
    s = doc["summary"]
    assert (s["calls"], s["scored"], s["skipped"]) == (9, 7, 2)
    assert s["problem_calls"] == 6  # all but the routine 06
    assert s["calls_with_fault"]["no-follow-up"] == 3  # 02, 04 and the hostile call
    assert "empathy-shown" not in s["fault_counts"]  # praise is not a fault
    assert sum(s["score_bins"]) == 7
    assert s["steps"]["empathy"] == {"met": 2, "missed": 2, "violated": 2}


def test_summary_of_nothing() -> None:
    s = summarise([skipped("a", "no such file")])
    assert (s["scored"], s["skipped"], s["mean_score"], s["median_score"]) == (0, 1, None, None)


def silent(call: str, duration: float = 42.0) -> dict:
    """A result as the runner writes it for a recording with no speech."""
    scored = score_call([], [], PB, duration_s=duration).to_dict()
    return {**skipped(call, "no speech"), **scored, "status": "no speech",
            "duration_s": duration, "key": call}


def test_no_speech_calls_are_reported_as_such_and_kept_out_of_the_figures(tmp_path,
                                                                          results) -> None:
    rows = [r for r in results if r["status"] == "ok"]
    with_silent = [*rows, silent("hold_music"), silent("blank", 12.0)]
    s, before = summarise(with_silent), summarise(rows)
    assert (s["scored"], s["no_speech"], s["skipped"]) == (len(rows), 2, 0)
    assert (s["mean_score"], s["median_score"], s["score_bins"]) == (
        before["mean_score"], before["median_score"], before["score_bins"])
    assert s["audio_hours"] == before["audio_hours"]
    paths = write_reports(with_silent, tmp_path / "r")
    page = paths["html"].read_text(encoding="utf-8")
    assert "<h2>No speech (2)</h2>" in page and ">hold_music<" in page and "0:42" in page
    assert "Skipped files" not in page
    with paths["csv"].open(newline="", encoding="utf-8") as f:
        by_call = {r["call"]: r for r in csv.DictReader(f)}
    assert by_call["blank"]["status"] == "no speech" and by_call["blank"]["score"] == ""


def test_reports_into_a_path_that_is_a_file_fail_clearly(tmp_path, results) -> None:
    blocker = tmp_path / "out"
    blocker.write_text("x")
    with pytest.raises(CoachError, match="not a directory"):
        write_reports(results[:1], blocker)


def test_many_calls_get_a_compact_table_after_the_detailed_ones(tmp_path, results) -> None:
    many = []
    for i in range(104):
        r = copy.deepcopy(results[i % 6])
        r["call"] = f"call_{i:03d}"
        many.append(r)
    page = write_reports(many, tmp_path / "many")["html"].read_text(encoding="utf-8")
    assert page.count('<article class="callcard"') == 100
    assert "The other 4 calls" in page
    compact = page[page.index('<table class="compact">'):]
    assert compact.count("<tr>") == 5  # header + 4 calls, the best ones
    assert ">100<" in page[page.index('id="call-100"'):][:200]


def test_minimal_result_dicts_do_not_break_the_report(tmp_path) -> None:
    paths = write_reports([{"call": "bare", "status": "ok", "score": 61.5, "store_id": "a/b c"},
                           {"status": "skipped", "path": "/x/y.wav"}], tmp_path / "bare",
                          replay_url="http://h:1")
    rows = list(csv.DictReader(paths["csv"].open(encoding="utf-8")))
    assert [r["call"] for r in rows] == ["bare", ""]
    assert rows[0]["no-action"] == "0" and rows[0]["ownership"] == ""
    page = paths["html"].read_text(encoding="utf-8")
    assert ">bare<" in page and "/x/y.wav" in page and "not scored" in page
    assert 'href="http://h:1/calls/a%2Fb%20c"' in page  # store ids are quoted into the URL


def test_reports_with_no_calls(tmp_path) -> None:
    paths = write_reports([], tmp_path / "empty")
    assert paths["csv"].read_text().splitlines() == [",".join(CSV_COLUMNS)]
    page = paths["html"].read_text()
    assert "No call could be scored" in page and "<svg" not in page


# --- HTML ------------------------------------------------------------------------------


def test_html_escapes_call_text_and_is_self_contained(report) -> None:
    page = report["html"].read_text(encoding="utf-8")
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;that&lt;/b&gt;" in page
    assert "evil &quot;&lt;call&gt;&quot;" in page
    assert "<link" not in page and "@import" not in page
    # nothing fetched: every src/href is a replay link or an in-page anchor
    for url in re.findall(r'(?:src|href)="([^"]*)"', page):
        assert url.startswith(("http://127.0.0.1:8765/calls/", "#")), url


def test_html_lists_worst_first_with_evidence_and_replay_links(report) -> None:
    page = report["html"].read_text(encoding="utf-8")
    order = [page.index(f">{name}<") for name in
             ("02_every_apology_wrong", "04_sorry_on_repeat", "03_frustration_ignored",
              "05_silence_overlap_rush")]
    assert order == sorted(order)
    assert 'href="http://127.0.0.1:8765/calls/id-02"' in page
    assert 'href="http://127.0.0.1:8765/calls/id-02#t=20.6"' in page  # "sorry if you feel"
    assert "<mark>sorry if you feel</mark> nobody told you." in page and "Own it" in page
    assert "not a readable audio file (truncated header)" in page
    assert page.count('<svg class="chart"') == 3


@pytest.mark.slow
def test_report_renders_in_chromium(report) -> None:
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM),
                                    args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            dialogs: list[str] = []
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto(report["html"].as_uri())
            assert [u for u in requests if not u.startswith("file:")] == []
            assert dialogs == []  # the "<script>" in a transcript stayed text
            first = page.locator("article.callcard").first
            assert first.locator(".call").inner_text() == "02_every_apology_wrong"
            assert first.locator(".score").inner_text() in ("0", "1", "2", "3", "4", "5")
            charts = page.locator("svg.chart")
            assert charts.count() == 3
            for i in range(3):
                box = charts.nth(i).bounding_box()
                assert box and box["width"] > 200 and box["height"] > 100
                assert charts.nth(i).locator("rect, path").count() > 5
            kpis = page.locator(".kpi .v").all_inner_texts()
            assert kpis[:2] == ["7", "2"]
            page.locator("article.callcard").first.locator("details.all summary").click()
            page.screenshot(path=str(ARTIFACTS / "qa-report.png"), full_page=True)
        finally:
            browser.close()
    assert (ARTIFACTS / "qa-report.png").stat().st_size > 20_000


def test_cue_figures_in_the_report_read_with_labels_and_units(report) -> None:
    """The figures behind a delivery fault come from coach.evidence: labelled, with units,
    no raw keys (05 is rushed: dead air and talk-over in the script)."""
    page = report["html"].read_text(encoding="utf-8")
    text = re.sub(r"<[^>]+>", " ", page)
    assert re.search(r"silent from \d+:\d\d, \d+(\.\d)? s of silence", text), text[:2000]
    assert re.search(r"both talking for \d+(\.\d)? s", text)
    assert re.search(r"\d+ apologies, within \d+ s of agent speech", text)
    for raw in ("silence_s", "overlap_s", "window_speech_s", "downgraded_from", "None"):
        assert raw not in text
