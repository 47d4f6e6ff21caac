"""`coach qa store:` keeps a stored call's one score: it scores the words and cues the call
was stored with (the same rubric the store used on the way in), says so in the report, and
analyses the audio again only with --reanalyse. On SQLite and on a real PostgreSQL."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from coach.playbook import load_playbook
from coach.qa.runner import QaOptions, run_qa
from coach.scripted import run_engine, script_events
from coach.store import open_store
from coach.store.importer import save_analysis
from tests.conftest import ROOT, SAMPLES

PB = load_playbook()
SCRIPTS = ROOT / "audio_samples" / "scripts"


def scripted_call(name: str) -> list[dict]:
    """The events a pipeline gives for a demo call (its script at text level, with the cue
    engine's cues), as the dicts ``coach analyze --save`` stores."""
    events = script_events(SCRIPTS / f"{name}.yaml")
    cues = run_engine(events, PB)
    return [e.to_dict() for e in [*events, *cues]]


def rows(out: Path) -> dict[str, dict]:
    lines = (out / "results.jsonl").read_text(encoding="utf-8").splitlines()
    return {json.loads(x)["store_id"]: json.loads(x) for x in lines}


def test_qa_of_stored_calls_reuses_their_events_and_their_score(store_url, tmp_path):
    ids = {}
    with open_store(store_url) as st:
        for name in ("02_every_apology_wrong", "01_owned_and_fixed"):
            ids[name] = save_analysis(st, SAMPLES / f"{name}.flac", scripted_call(name),
                                      {"agent": "Dana", "model": "tiny.en"})
        # a call with no speech at all: stored without a score
        ids["silent"] = st.add_call(meta={"agent": "Dana", "started_at": 1.8e9,
                                          "duration_s": 20.0},
                                    events=[{"type": "call", "state": "end", "t": 20.0}],
                                    audio_path=None)
        before = {k: st.get_call(v)["score"] for k, v in ids.items()}
    assert before["02_every_apology_wrong"] < 30 and before["01_owned_and_fixed"] == 100.0
    assert before["silent"] is None

    out = tmp_path / "qa"
    s = run_qa(QaOptions(source="store:", store_url=store_url, out_dir=out, workers=1))
    assert (s.analysed, s.no_speech, s.skipped) == (3, 1, 0)
    got = rows(out)
    for name in ("02_every_apology_wrong", "01_owned_and_fixed"):
        r = got[ids[name]]
        assert r["mode"] == "stored" and r["status"] == "ok"
        assert r["score"] == r["stored_score"] == before[name], name  # one score
        assert r["model"] == "tiny.en" and r["transcript"] and r["steps"]
    bad = got[ids["02_every_apology_wrong"]]
    assert {st["status"] for st in bad["steps"].values()} == {"violated"}
    assert bad["cue_counts"]["qualified-apology"] == 1
    silent = got[ids["silent"]]
    assert silent["status"] == "no speech" and silent["score"] is None
    with open_store(store_url) as st:  # the store still shows the same scores
        assert {k: st.get_call(v)["score"] for k, v in ids.items()} == before
        listed, _ = st.list_calls()
        assert {r["id"]: r["score"] for r in listed} == {v: before[k] for k, v in ids.items()}
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "Scores: 2 from stored words and cues." in page
    assert page.count("scored from its stored words and cues") == 2
    with (out / "results.csv").open(newline="", encoding="utf-8") as f:
        assert {r["mode"] for r in csv.DictReader(f)} == {"stored"}
    # `coach calls list` shows the same scores, and "no speech" for the silent call
    table = subprocess.run([str(Path(sys.executable).parent / "coach"), "calls", "list",
                            "--db", store_url], capture_output=True, text=True, timeout=120)
    assert table.returncode == 0, table.stderr
    by_id = {ln.split()[0]: ln for ln in table.stdout.splitlines()[1:4]}
    assert "no speech" in by_id[ids["silent"][:8]]
    bad_line = by_id[ids["02_every_apology_wrong"][:8]].split()
    assert f"{before['02_every_apology_wrong']:.0f}" in bad_line


def test_a_stale_stored_score_is_replaced_so_the_call_keeps_one_score(tmp_path):
    url = f"sqlite:///{tmp_path / 'coach.db'}"
    with open_store(url) as st:
        cid = save_analysis(st, SAMPLES / "02_every_apology_wrong.flac",
                            scripted_call("02_every_apology_wrong"), {"agent": "Dana"})
        fresh = st.get_call(cid)["score"]
        st.set_score(cid, 12.0)  # as an older rubric, or a second analysis, left it
    run_qa(QaOptions(source="store:", store_url=url, out_dir=tmp_path / "qa", workers=1))
    r = rows(tmp_path / "qa")[cid]
    assert r["stored_score"] == 12.0 and r["score"] == fresh
    with open_store(url) as st:
        assert st.get_call(cid)["score"] == fresh


def test_reanalyse_is_only_for_the_store(tmp_path):
    p = subprocess.run([sys.executable, "-m", "coach.qa", str(SAMPLES), "--sample", "1",
                        "--out", str(tmp_path / "o"), "--reanalyse"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    assert p.stderr.strip() == ("coach: error: --reanalyse is for SOURCE store: (other calls "
                                "are always analysed)")


@pytest.mark.slow
def test_reanalyse_runs_the_audio_again_and_says_so(tmp_path):
    url = f"sqlite:///{tmp_path / 'coach.db'}"
    with open_store(url) as st:
        cid = save_analysis(st, SAMPLES / "01_owned_and_fixed.flac",
                            scripted_call("01_owned_and_fixed"), {"agent": "Dana"})
    run_qa(QaOptions(source="store:", store_url=url, out_dir=tmp_path / "qa", workers=1,
                     reanalyse=True))
    r = rows(tmp_path / "qa")[cid]
    assert r["mode"] == "fast" and r["status"] == "ok"
    assert r["key"] == f"store:{cid}#reanalysed"  # not taken for the stored-events result
    assert "scored from a fast analysis of the audio" in \
        (tmp_path / "qa" / "report.html").read_text(encoding="utf-8")
    with open_store(url) as st:
        assert st.get_call(cid)["score"] == r["score"]  # written back: still one score


def test_a_withdrawn_cue_is_stored_marked_and_not_held_against_the_call(tmp_path):
    url = f"sqlite:///{tmp_path / 'coach.db'}"
    events = [e for e in scripted_call("06_address_change")]  # a clean routine call
    events += [{"type": "cue", "id": "talk-over", "t": 5.0, "speaker": "agent",
                "severity": "nudge", "title": "Let them finish", "advice": "Pause.",
                "evidence": {"overlap_s": 1.1}},
               {"type": "retract", "id": "talk-over", "t": 5.0, "at": 5.6,
                "reason": "the overlap was a backchannel"}]
    with open_store(url) as st:
        cid = save_analysis(st, SAMPLES / "06_address_change.flac", events, {"agent": "Kim"})
        call = st.get_call(cid)
    [kept] = [c for c in call["cues"] if c["id"] == "talk-over"]  # kept, to be counted
    assert kept["evidence"]["withdrawn"] == {"at": 5.6,
                                             "reason": "the overlap was a backchannel"}
    assert call["score"] == 100.0
    run_qa(QaOptions(source="store:", store_url=url, out_dir=tmp_path / "qa", workers=1))
    assert rows(tmp_path / "qa")[cid]["score"] == 100.0


@pytest.mark.slow
@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="needs Debian's chromium")
def test_the_replay_list_shows_no_speech_and_the_stored_score(tmp_path):
    """The call list in real headless Chromium: the silent call reads "no speech", the
    scored one shows the score coach qa reported."""
    sync_api = pytest.importorskip("playwright.sync_api")
    from coach.io.hub import Hub
    from coach.io.server import ServerThread, create_app

    url = f"sqlite:///{tmp_path / 'coach.db'}"
    store = open_store(url)
    try:
        bad = save_analysis(store, SAMPLES / "02_every_apology_wrong.flac",
                            scripted_call("02_every_apology_wrong"), {"agent": "Dana"})
        silent = store.add_call(meta={"agent": "Sam", "started_at": 1.8e9, "duration_s": 20.0},
                                events=[{"type": "call", "state": "end", "t": 20.0}],
                                audio_path=None)
        run_qa(QaOptions(source="store:", store_url=url, out_dir=tmp_path / "qa", workers=1))
        qa_score = rows(tmp_path / "qa")[bad]["score"]
        with ServerThread(create_app(Hub(), store=store), "127.0.0.1", 0) as st, \
                sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium")
            page = browser.new_page()
            page.goto(st.url + "/")
            page.wait_for_selector("body[data-state=ready]", timeout=15000)
            cell = "tr[data-id='{}'] .score"
            assert page.inner_text(cell.format(silent)) == "no speech"
            assert page.inner_text(cell.format(bad)) == f"{qa_score:.1f}".rstrip("0").rstrip(".")
            shots = ROOT / "tests" / "artifacts"
            shots.mkdir(exist_ok=True)
            page.screenshot(path=str(shots / "replay_list_no_speech.png"))
            browser.close()
    finally:
        store.close()
