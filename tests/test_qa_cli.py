"""`coach qa` from the command line: every call by default, no lock file left behind, one
run per output folder (transcripts only: no model)."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest

from coach.errors import CoachError
from coach.qa.cli import add_parser, run
from tests.test_qa_runner import BAD_CALL, GOOD_CALL


def _args(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="coach")
    add_parser(p.add_subparsers(dest="command", required=True))
    return p.parse_args(["qa", *argv])


@pytest.fixture
def calls(tmp_path) -> Path:
    root = tmp_path / "calls"
    root.mkdir()
    for i in range(3):
        (root / f"bad{i}.vtt").write_text(BAD_CALL.replace("lamp", f"lamp {i}"))
    (root / "good.vtt").write_text(GOOD_CALL)
    return root


def test_samples_every_call_by_default_and_leaves_no_lock(calls, tmp_path):
    out = tmp_path / "qa"
    err = io.StringIO()
    assert run(_args(str(calls), "--out", str(out), "--progress", "off"), err) == 0
    assert "4 of 4 calls: 4 analysed" in err.getvalue()
    assert sorted(p.name for p in out.iterdir()) == [
        "report.html", "results.csv", "results.json", "results.jsonl"]
    # a second run (resuming: nothing to do) leaves none either
    assert run(_args(str(calls), "--out", str(out), "--progress", "off"), io.StringIO()) == 0
    assert not (out / ".qa.lock").exists()


def test_a_second_run_on_the_same_folder_is_refused_while_one_runs(calls, tmp_path):
    import fcntl
    import os

    out = tmp_path / "qa"
    out.mkdir()
    fd = os.open(out / ".qa.lock", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running `coach qa` holds it
    try:
        with pytest.raises(CoachError, match="another coach qa run is writing there"):
            run(_args(str(calls), "--out", str(out), "--progress", "off"), io.StringIO())
    finally:
        os.close(fd)
    assert run(_args(str(calls), "--out", str(out), "--progress", "off"), io.StringIO()) == 0
    assert not (out / ".qa.lock").exists()


def test_a_stale_lock_file_from_a_crash_does_not_block(calls, tmp_path):
    out = tmp_path / "qa"
    out.mkdir()
    (out / ".qa.lock").write_text("")  # a killed run leaves the file, not the lock
    assert run(_args(str(calls), "--out", str(out), "--progress", "off"), io.StringIO()) == 0
    assert not (out / ".qa.lock").exists()
