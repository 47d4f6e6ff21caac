"""The store as users reach it: `coach analyze --save`, a killed `coach live` recovered by
the next command, `coach calls` listing and exporting (real model, real SQLite)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "audio_samples"


def _coach(*args: str, env: dict | None = None, timeout: float = 300):
    return subprocess.run([sys.executable, "-m", "coach.cli", *args], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=timeout)


def _env(tmp_path: Path) -> dict:
    return dict(os.environ, COACH_DATA=str(tmp_path / "data"), COACH_DB="")


@pytest.mark.slow
def test_analyze_save_then_list_and_export(tmp_path):
    env = _env(tmp_path)
    demo = SAMPLES / "02_every_apology_wrong.flac"
    r = _coach("analyze", str(demo), "--save", "--agent", "Sam", env=env)
    assert r.returncode == 0, r.stderr
    assert "saved as call" in r.stderr
    saved = r.stderr
    # the database sits in the data directory, readable by its owner only
    db = tmp_path / "data" / "coach.db"
    assert db.is_file() and (db.stat().st_mode & 0o077) == 0
    r = _coach("calls", "list", "--json", env=env)
    assert r.returncode == 0, r.stderr
    listing = json.loads(r.stdout)
    assert listing["total"] == 1
    row = listing["calls"][0]
    assert row["agent"] == "Sam" and row["source"] == demo.name
    assert row["cue_counts"].get("qualified-apology", 0) >= 1
    # scored on the QA rubric on the way in: every apology in this call goes wrong
    assert row["score"] is not None and row["score"] < 30
    # saving the same recording again keeps the stored call rather than adding a copy
    r = _coach("analyze", str(demo), "--save", "--agent", "Sam", "--format", "jsonl", env=env)
    assert r.returncode == 0, r.stderr
    assert f"already stored as call {row['id'][:8]}…" in r.stderr
    # both saves name the replay page of the call
    assert r.stderr.count(f"replay: http://127.0.0.1:8765/calls/{row['id']}") == 1
    assert saved.count(f"replay: http://127.0.0.1:8765/calls/{row['id']}") == 1
    # the stored call in the terminal: transcript, cues with their evidence in words
    r = _coach("calls", "show", row["id"][:8], env=env)
    assert r.returncode == 0, r.stderr
    assert "Avoid the \"but\" (qualified-apology, warn)" in r.stdout
    assert "“sorry, but” at 0:" in r.stdout or "“sorry,” at 0:" in r.stdout
    assert "None" not in r.stdout and "{'" not in r.stdout
    assert json.loads(_coach("calls", "list", "--json", env=env).stdout)["total"] == 1
    r = _coach("calls", "export", row["id"][:8], "--format", "vtt", env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("WEBVTT") and "<v Agent>" in r.stdout
    r = _coach("calls", "list", "--cue", "laughter", "--json", env=env)
    assert json.loads(r.stdout)["total"] == 0
    r = _coach("calls", "delete", row["id"][:8], "--yes", env=env)
    assert r.returncode == 0 and r.stdout.startswith(f"deleted call {row['id']}"), r.stderr
    assert json.loads(_coach("calls", "list", "--json", env=env).stdout)["total"] == 0


def test_bad_database_url_is_one_line(tmp_path):
    r = _coach("calls", "list", "--db", "postgresql+psycopg://nobody@127.0.0.1:1/none",
               env=_env(tmp_path), timeout=60)
    assert r.returncode == 2
    assert r.stderr.startswith("coach: error:") and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_killed_live_call_is_recovered_by_the_next_command(tmp_path):
    env = _env(tmp_path)
    port = 20000 + os.getpid() % 20000
    proc = subprocess.Popen(
        [sys.executable, "-m", "coach.cli", "live", "--source",
         str(SAMPLES / "02_every_apology_wrong.flac"), "--no-overlay", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    live = tmp_path / "data" / "live"
    deadline = time.monotonic() + 120
    # wait until a few seconds of the call are on disk, then kill it without warning
    while time.monotonic() < deadline:
        recs = list(live.glob("*/audio.flac")) if live.is_dir() else []
        if recs and recs[0].stat().st_size > 60_000:
            break
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.2)
    time.sleep(2.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    r = _coach("calls", "list", "--json", env=env)
    assert r.returncode == 0, r.stderr
    listing = json.loads(r.stdout)
    assert listing["total"] == 1, r.stderr
    row = listing["calls"][0]
    assert row["status"] == "recovered"
    assert 3.0 < row["duration_s"] < 60.0
    # running the next command again does not import it twice
    assert json.loads(_coach("calls", "list", "--json", env=env).stdout)["total"] == 1
