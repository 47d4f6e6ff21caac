"""A floor of twenty agents on one PostgreSQL-backed team server: three real `coach live
--source` processes (Whisper on demo calls) and seventeen processes replaying recorded
calls' events in real time through the same client code; the board in headless Chromium
shows them all. One real agent process is killed mid-call: the board shows it, and `coach
team sync` later stores what it recorded. Short calls (45 s) keep it to about two minutes; screenshot in tests/artifacts/team-floor.png."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from coach.store import open_store
from coach.store.team import TeamData
from tests.conftest import ROOT, SAMPLES
from tests.replay_data import manifest_events
from tests.team_helpers import BoardWatcher, team_server

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium")]
sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright client")

REAL = ["02_every_apology_wrong", "03_frustration_ignored", "04_sorry_on_repeat"]
SIMULATED = 17
CALL_S = 45.0


def _clip(name: str, dest: Path) -> Path:
    import soundfile as sf

    y, sr = sf.read(SAMPLES / f"{name}.flac")
    sf.write(dest, y[: int(sr * CALL_S)], sr)
    return dest


def _shift(e: dict, by: float) -> dict:
    e = dict(e)
    for k in ("t", "start", "end"):
        if isinstance(e.get(k), (int, float)):
            e[k] = e[k] + by
    return e


def test_twenty_agents_on_one_board(pg_url, tmp_path) -> None:
    store = open_store(pg_url)
    td = TeamData(store)
    coach, _ = td.create_token("Floor Coach", "coach", None)
    real_tok = {n: td.create_token(f"Live {i + 1}", "agent", "floor")[0]
                for i, n in enumerate(REAL)}
    sim_tok = [td.create_token(f"Replay {i + 1:02d}", "agent", "floor")[0]
               for i in range(SIMULATED)]
    st, _ = team_server(store)
    board = BoardWatcher(st.url, coach)
    events = tmp_path / "events.jsonl"
    base_events = [e for e in manifest_events() if e["type"] not in ("call", "dismiss")]
    long_call = [_shift(e, k * 60.0) for k in range(3) for e in base_events]  # 3 minutes
    events.write_text("".join(json.dumps(e) + "\n" for e in long_call))
    procs: dict[str, subprocess.Popen] = {}
    sims: list[subprocess.Popen] = []
    try:
        # the replayed calls are long: the real agents load Whisper (slow on a busy
        # machine) while they run, and all twenty are live together
        sims = [subprocess.Popen(
            [sys.executable, "-m", "coach.team.simulate", str(events), "--team", st.url],
            cwd=ROOT, env={**os.environ, "COACH_TEAM_TOKEN": tok}, stdout=subprocess.DEVNULL)
            for tok in sim_tok]
        for i, (name, tok) in enumerate(real_tok.items()):
            data = tmp_path / f"agent{i}"
            procs[name] = subprocess.Popen(
                [sys.executable, "-m", "coach.cli", "live", "--source",
                 str(_clip(name, tmp_path / f"{name}.flac")), "--no-overlay", "--port", "0",
                 "--agent", f"Live {i + 1}", "--team", st.url, "--threads", "1"],
                cwd=ROOT, env={**os.environ, "COACH_TEAM_TOKEN": tok, "COACH_DATA": str(data)},
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        assert board.wait(lambda b: len([r for r in b.rows.values() if r["state"] == "live"])
                          == 20, 170), {r["agent"]: r["state"] for r in board.rows.values()}
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM))
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.goto(f"{st.url}/team?token={coach}")
            page.wait_for_function("() => document.querySelectorAll('#rows tr').length === 20")
            first = page.locator("#rows").inner_text()
            # kill one real agent mid-call: its row says so
            victim = REAL[1]
            procs[victim].send_signal(signal.SIGKILL)
            procs[victim].wait(10)
            page.wait_for_selector("#rows tr:has-text('Live 2') .conn-disconnected", timeout=20000)
            time.sleep(2)
            assert page.locator("#rows").inner_text() != first  # they keep updating
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "team-floor.png"), full_page=True)
            browser.close()
        for name in REAL:
            if name != victim:
                _, err = procs[name].communicate(timeout=180)
                assert procs[name].returncode == 0, err
                assert "call stored on the team server" in err, err
        # the killed agent's recording reaches the team store with `coach team sync`
        sync = subprocess.run(
            [sys.executable, "-m", "coach.cli", "team", "sync", "--team", st.url,
             "--record-dir", str(tmp_path / "agent1" / "live")], cwd=ROOT,
            env={**os.environ, "COACH_TEAM_TOKEN": real_tok[victim]}, capture_output=True,
            text=True, timeout=60)
        assert sync.returncode == 0 and "sent 1 call" in sync.stderr, sync.stderr
        rows, total = store.list_calls(limit=50)
        assert total == 3  # the replayed calls are live only; the real ones are stored
        by_agent = {r["agent"]: r for r in rows}
        assert by_agent["Live 2"]["status"] == "recovered"
        assert by_agent["Live 1"]["status"] == by_agent["Live 3"]["status"] == "complete"
        # nothing doubled: each call's live events are numbered without gaps or repeats
        for call_id in {r["call_id"] for r in board.rows.values()}:
            seqs = [e.seq for e in td.live_events(call_id)]
            assert seqs == list(range(len(seqs)))
    finally:
        board.stop()
        for p in [*procs.values(), *sims]:
            if p.poll() is None:
                p.kill()
        st.stop()
        store.close()
