"""``coach import`` and ``coach calls list|export`` through their handlers, parsed by a
parser built with ``coach.store.cli.add_parsers`` (as coach/cli.py wires them)."""

from __future__ import annotations

import argparse
import csv
import io
import json
from datetime import timedelta
from pathlib import Path

import pytest

from coach.errors import CoachError
from coach.store import StoreError, open_store
from coach.store.cli import add_parsers
from tests.test_store import T0, add, age, recording


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    p = argparse.ArgumentParser(prog="coach")
    add_parsers(p.add_subparsers(dest="command", required=True))
    args = p.parse_args(argv)
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def env(tmp_path, monkeypatch) -> Path:
    """A private data dir; no COACH_DB from the environment."""
    monkeypatch.setenv("COACH_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("COACH_DB", raising=False)
    return tmp_path


def test_import_prints_one_line_per_call(env, capsys) -> None:
    root = env / "recordings"
    recording(root / "2024" / "a", agent="Kim")
    recording(root / "2024" / "b", seconds=2.5, agent="Lou")
    cut = recording(root / "c", seconds=3.0, finished=False, agent="Max")
    age(cut)
    code, out, err = run(["import", str(root)], capsys)
    lines = [ln for ln in out.splitlines() if not ln.startswith("  replay: ")]
    assert code == 0 and len(lines) == 3
    assert all(ln.startswith("imported ") for ln in lines)
    assert lines[0].endswith("(complete)") and "2024/a" in lines[0]
    assert lines[2].endswith("(recovered)")
    # every stored call comes with the address of its replay page
    urls = [ln.split()[-1] for ln in out.splitlines() if ln.startswith("  replay: ")]
    assert urls == [f"http://127.0.0.1:8765/calls/{ln.split()[1]}" for ln in lines]
    assert "3 imported, 0 skipped, 0 failed" in err
    code, out, _ = run(["import", str(root), "--agent", "Zed"], capsys)
    assert code == 0 and [ln.split()[0] for ln in out.splitlines()] == ["skipped"] * 3
    with open_store(data_dir=env / "data") as s:  # the default store: $COACH_DATA/coach.db
        assert s.agents() == ["Kim", "Lou", "Max"]


def test_import_agent_and_no_redact(env, capsys) -> None:
    recording(env / "r" / "a")
    db = f"sqlite:///{env / 'other.db'}"
    code, out, _ = run(["import", str(env / "r"), "--db", db, "--agent", "Zed",
                        "--no-redact"], capsys)
    assert code == 0
    with open_store(db) as s:
        rows, _ = s.list_calls()
        call = s.get_call(rows[0]["id"])
    assert call["agent"] == "Zed" and "4111" in [w["text"] for w in call["words"]]


def test_import_bad_path_and_failed_folder(env, capsys) -> None:
    with pytest.raises(StoreError, match="no such file or folder"):
        run(["import", str(env / "nope")], capsys)
    (env / "empty").mkdir()
    with pytest.raises(CoachError, match="no recording folders"):
        run(["import", str(env / "empty")], capsys)
    bad = env / "bad" / "x"
    bad.mkdir(parents=True)
    (bad / "call.json").write_text('{"finished": true}')
    (bad / "events.jsonl").write_text('{"type": "status", "lag_s": 0.1}\n')
    code, out, _ = run(["import", str(env / "bad"), "--min-digits", "6"], capsys)
    assert code == 0 and out.startswith("skipped ")  # nothing usable: not an error
    assert out.rstrip().endswith(": nothing usable recorded")
    (bad / "call.json").write_text('{"finished": true, "started_at": "teatime"}')
    (bad / "events.jsonl").write_text(json.dumps({"type": "word", "speaker": "agent",
                                                  "text": "hi", "start": 0, "end": 1}) + "\n")
    code, out, _ = run(["import", str(env / "bad")], capsys)
    assert code == 1 and out == f"failed {bad}: bad started_at: 'teatime' (expected ISO " \
                                "8601, e.g. 2024-05-01 or 2024-05-01T09:30:00Z)\n"
    with pytest.raises(StoreError, match="--min-digits 1"):
        run(["import", str(env / "bad"), "--min-digits", "1"], capsys)


@pytest.fixture
def filled(env) -> list[str]:
    with open_store(data_dir=env / "data") as s:
        return [add(s, agent="Ama", when=T0 - timedelta(days=40)),
                add(s, agent="Ben", when=T0, cue="sorry-if", score=70,
                    agent_text="i will refund the charge"),
                add(s, agent="Ama", when=T0 + timedelta(days=1))]


def test_calls_list_table_and_json(filled, capsys) -> None:
    code, out, _ = run(["calls", "list"], capsys)
    lines = out.splitlines()
    assert code == 0
    assert lines[0].split() == ["ID", "STARTED", "LENGTH", "AGENT", "STATUS", "SCORE",
                                "WORDS", "CUES"]
    assert [ln.split()[0] for ln in lines[1:4]] == [i[:8] for i in reversed(filled)]
    assert "0:12" in lines[1] and "Ama" in lines[1] and "sorry-but" in lines[1]
    assert lines[-1] == "1-3 of 3 calls"
    code, out, _ = run(["calls", "list", "--json", "--agent", "Ama"], capsys)
    d = json.loads(out)
    assert d["total"] == 2 and [c["id"] for c in d["calls"]] == [filled[2], filled[0]]
    code, out, _ = run(["calls", "list", "--json", "--cue", "sorry-if"], capsys)
    assert [c["id"] for c in json.loads(out)["calls"]] == [filled[1]]
    code, out, _ = run(["calls", "list", "--json", "--q", "refund"], capsys)
    assert [c["id"] for c in json.loads(out)["calls"]] == [filled[1]]
    code, out, _ = run(["calls", "list", "--json", "--since", "2024-04-20", "--until",
                        "2024-05-01"], capsys)  # a date as --until includes that day
    assert [c["id"] for c in json.loads(out)["calls"]] == [filled[1]]
    code, out, _ = run(["calls", "list", "--limit", "1", "--offset", "1"], capsys)
    assert out.splitlines()[-1] == "2-2 of 3 calls"
    code, out, _ = run(["calls", "list", "--agent", "Nobody"], capsys)
    assert code == 0 and out == "no calls match\n"


def test_calls_list_bad_input(filled, capsys) -> None:
    with pytest.raises(StoreError, match="--since 'last week': expected a date"):
        run(["calls", "list", "--since", "last week"], capsys)
    with pytest.raises(StoreError, match="--limit 0"):
        run(["calls", "list", "--limit", "0"], capsys)


def test_db_option_and_env(env, capsys, monkeypatch) -> None:
    db = env / "team.db"
    with open_store(f"sqlite:///{db}") as s:
        cid = add(s, agent="Team")
    for argv in (["calls", "--db", str(db), "list", "--json"],
                 ["calls", "list", "--db", f"sqlite:///{db}", "--json"]):
        assert json.loads(run(argv, capsys)[1])["calls"][0]["id"] == cid
    assert json.loads(run(["calls", "list", "--json"], capsys)[1])["total"] == 0
    monkeypatch.setenv("COACH_DB", f"sqlite:///{db}")
    assert json.loads(run(["calls", "list", "--json"], capsys)[1])["total"] == 1
    monkeypatch.setenv("COACH_DB", "postgresql://nobody@127.0.0.1:1/coach")
    with pytest.raises(StoreError, match="^cannot reach the database"):
        run(["calls", "list"], capsys)


def test_calls_list_recovers_recordings_first(env, capsys) -> None:
    folder = recording(env / "data" / "live" / "20240501-090000", finished=False)
    age(folder)
    code, out, err = run(["calls", "list", "--json"], capsys)
    d = json.loads(out)
    assert d["total"] == 1 and d["calls"][0]["status"] == "recovered"
    assert "stored 1 recorded call from" in err


def test_calls_export(filled, env, capsys) -> None:
    cid = filled[1]
    code, out, _ = run(["calls", "export", cid], capsys)
    assert code == 0 and json.loads(out)["id"] == cid
    code, out, _ = run(["calls", "export", cid[:6], "--format", "vtt"], capsys)
    assert out.startswith("WEBVTT\n") and "<v Customer>my card is [card]" in out
    code, out, _ = run(["calls", "export", cid, "--format", "srt"], capsys)
    assert out.startswith("1\n00:00:00,000 --> ") and "\nAGENT: i will refund" in out
    dest = env / "cues.csv"
    code, out, err = run(["calls", "export", cid, "--format", "csv", "-o", str(dest)], capsys)
    assert code == 0 and out == "" and f"wrote {dest}" in err
    rows = list(csv.reader(io.StringIO(dest.read_text())))
    assert rows[0][:3] == ["call_id", "idx", "id"] and rows[1][:3] == [cid, "0", "sorry-if"]


def test_calls_export_bad_input(filled, env, capsys) -> None:
    with pytest.raises(StoreError, match=f"^no call {'f' * 32}$"):
        run(["calls", "export", "f" * 32], capsys)
    with pytest.raises(StoreError, match="^no call abc$"):
        run(["calls", "export", "abc"], capsys)
    with pytest.raises(StoreError, match="^bad call id"):
        run(["calls", "export", "../etc"], capsys)
    with pytest.raises(StoreError, match="is a folder"):
        run(["calls", "export", filled[0], "-o", str(env)], capsys)
    with pytest.raises(SystemExit):  # argparse: unknown format
        run(["calls", "export", filled[0], "--format", "pdf"], capsys)


def test_calls_show_prints_transcript_cues_evidence_and_notes(filled, env, capsys) -> None:
    cid = filled[1]
    with open_store(data_dir=env / "data") as s:
        s.add_note(cid, 7.4, "Own the policy point first.", author="Kim")
    code, out, _ = run(["calls", "show", cid[:6]], capsys)
    lines = out.splitlines()
    assert code == 0
    assert lines[0].startswith(f"call {cid}: Ben · 2024-") and "0:12" in lines[0]
    assert "score 70" in lines[0]
    assert f"replay: http://127.0.0.1:8765/calls/{cid}" in out
    assert "[0:00] CUSTOMER my card is [card]" in out  # redacted as stored
    assert "[0:06] AGENT    i will refund the charge" in out
    cue = next(i for i, ln in enumerate(lines) if "Drop the but (sorry-if, warn) at 0:07" in ln)
    assert "the agent dismissed it" in lines[cue]
    assert lines[cue + 1].strip() == "“sorry but” at 0:07"
    assert "pace 190 words/min" in out
    assert lines[-2:] == ["Coach notes", "  [0:07] Kim: Own the policy point first."]
    for raw in ("None", "{'", "wpm=", "[{"):
        assert raw not in out
    with pytest.raises(StoreError, match="^no call abcd$"):
        run(["calls", "show", "abcd"], capsys)


def _args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="coach")
    add_parsers(p.add_subparsers(dest="command", required=True))
    return p.parse_args(argv)


def test_calls_delete_asks_first_and_removes_the_call(filled, env, capsys) -> None:
    from coach.store.cli import cmd_calls_delete

    cid = filled[0]
    asked: list[str] = []
    out = io.StringIO()
    code = cmd_calls_delete(_args(["calls", "delete", cid[:8]]), out,
                            ask=lambda q: asked.append(q) or "n")
    assert code == 1 and out.getvalue() == "kept: nothing was deleted\n"
    assert asked and cid in asked[0] and "cannot be undone" in asked[0]
    with open_store(data_dir=env / "data") as s:
        assert s.has_call(cid)
    out = io.StringIO()
    assert cmd_calls_delete(_args(["calls", "delete", cid[:8]]), out, ask=lambda q: "y") == 0
    assert out.getvalue().startswith(f"deleted call {cid} (Ama, ")
    with open_store(data_dir=env / "data") as s:
        assert not s.has_call(cid) and s.list_calls()[1] == 2
    with pytest.raises(StoreError, match="^no call "):
        run(["calls", "delete", cid, "--yes"], capsys)


def test_calls_delete_without_a_terminal_needs_yes(filled, env, capsys, monkeypatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # not a tty
    with pytest.raises(StoreError, match="add --yes"):
        run(["calls", "delete", filled[2]], capsys)
    code, out, _ = run(["calls", "delete", filled[2], "--yes"], capsys)
    assert code == 0 and out.startswith(f"deleted call {filled[2]}")


def test_deleting_a_live_call_removes_its_recording_so_it_stays_deleted(env, capsys) -> None:
    folder = recording(env / "data" / "live" / "20240501-090000")
    code, out, _ = run(["calls", "list", "--json"], capsys)  # stores the recording
    cid = json.loads(out)["calls"][0]["id"]
    assert (folder / "imported.json").is_file()
    code, out, _ = run(["calls", "delete", cid, "--yes"], capsys)
    assert code == 0 and str(folder) in out and not folder.exists()
    code, out, _ = run(["calls", "list", "--json"], capsys)  # not brought back
    assert json.loads(out)["total"] == 0
