"""The call store on real SQLite and real PostgreSQL, the importer (crash recovery of a
killed recorder included), saved analyses and the export formats."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from sqlalchemy import func, select

from coach.redact import RedactOptions
from coach.store import AlreadyStoredError, StoreError, open_store
from coach.store import schema as S
from coach.store.export import CSV_COLUMNS, export, timestamp, to_csv, to_json, to_srt, to_vtt
from coach.store.importer import (
    import_path,
    import_recording,
    read_events,
    recover,
    save_analysis,
)
from coach.store.rows import build_rows

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "audio_samples" / "01_owned_and_fixed.flac"
T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


# -- helpers --------------------------------------------------------------------------------


def word(speaker: str, text: str, start: float, dur: float = 0.3, final: bool = True) -> dict:
    return {"type": "word", "speaker": speaker, "text": text, "start": start,
            "end": round(start + dur, 3), "final": final, "probability": 0.9}


def say(speaker: str, text: str, start: float, step: float = 0.4) -> list[dict]:
    return [word(speaker, w, round(start + i * step, 3)) for i, w in enumerate(text.split())]


def call_events(*, agent_text: str = "i am so sorry but that is our policy",
                customer_text: str = "my card is 4111 1111 1111 1111 and i am upset",
                cue: str = "sorry-but", started_at: float | None = None) -> list[dict]:
    ev: list[dict] = [{"type": "call", "state": "start", "t": 0.0, "source": "test.wav",
                       "channels": ["agent", "customer"],
                       **({"started_at": started_at} if started_at else {})}]
    ev += say("customer", customer_text, 0.0)
    ev += say("agent", agent_text, 6.0)
    ev.append(word("agent", "partial", 9.0, final=False))
    for t in range(1, 11):
        for sp in ("agent", "customer"):
            ev.append({"type": "prosody", "speaker": sp, "t": float(t), "f0_hz": 120.0 + t,
                       "loudness_db": -20.0, "wpm": None if t < 3 else 150.0,
                       "speaking": True})
    ev.append({"type": "activity", "speaker": "agent", "t": 6.0, "speaking": True})
    ev.append({"type": "cue", "id": cue, "t": 7.5, "speaker": "agent", "severity": "warn",
               "title": "Drop the but", "advice": "Say what you will do instead.",
               "evidence": {"words": [{"text": "sorry", "start": 7.2, "end": 7.5},
                                      {"text": "but", "start": 7.6, "end": 7.9}]}})
    ev.append({"type": "cue", "id": "frustration-unacknowledged", "t": 8.0,
               "speaker": "agent", "severity": "nudge", "title": "Name it",
               "advice": "Say you hear them.",
               "evidence": {"words": [{"text": "1111", "start": 1.6, "end": 1.9},
                                      {"text": "1111", "start": 2.0, "end": 2.3}],
                            "wpm": 190}})
    ev.append({"type": "dismiss", "cue_id": cue, "t": 7.5, "client_id": 1,
               "received_at": T0.timestamp()})
    ev.append({"type": "status", "lag_s": 0.1})
    ev.append({"type": "call", "state": "end", "t": 12.0, "duration": 12.0})
    return ev


@pytest.fixture
def store(store_url):
    s = open_store(store_url)
    yield s
    s.close()


def add(store, *, agent="Dana Whitfield", when=T0, score=None, **kw) -> str:
    cid = store.add_call(meta={"agent": agent, "started_at": when, "model": "tiny.en"},
                         events=call_events(**kw), audio_path=None)
    if score is not None:
        store.set_score(cid, score)
    return cid


def recording(folder: Path, *, seconds: float = 2.0, finished: bool = True,
              agent: str = "Kim Osei", writer: str = "dead") -> Path:
    """A folder written by the real coach.live.Recorder. Unfinished: as a kill leaves it,
    its writer's pid in call.json ``writer`` "dead" (a finished process), "alive" (ours),
    or "unknown" (no pid, as older recorders wrote)."""
    from coach.live import Recorder

    where = folder if finished else folder.with_name(folder.name + ".writing")
    rec = Recorder(where, customer_channel=True,
                   meta={"agent": agent, "started_at": T0.timestamp(), "model": "tiny.en"})
    n = int(seconds * 16000)
    t = np.arange(n) / 16000
    rec.audio((0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32),
              (0.1 * np.sin(2 * np.pi * 330 * t)).astype(np.float32))
    for e in call_events():
        rec.event(e)
    if finished:
        rec.close(duration=seconds)
    else:  # what a kill leaves: flushed files, no length in the FLAC header, unfinished
        rec._audio.flush()
        rec._events.flush()
        shutil.copytree(where, folder)
        rec.close()
        shutil.rmtree(where)
        meta = json.loads((folder / "call.json").read_text())
        if writer == "dead":
            gone = subprocess.Popen(["true"])
            gone.wait()
            meta["pid"] = gone.pid
        elif writer == "unknown":
            meta.pop("pid", None)
        (folder / "call.json").write_text(json.dumps(meta))
    return folder


def age(folder: Path, seconds: float = 60) -> None:
    """Make a folder look idle (its writer gone for ``seconds``)."""
    past = time.time() - seconds
    for p in folder.iterdir():
        os.utime(p, (past, past))


# -- one call in, the same call out ---------------------------------------------------------


def test_add_and_get_call(store) -> None:
    cid = add(store, started_at=None)
    call = store.get_call(cid)
    assert call["id"] == cid and len(cid) == 32
    assert call["agent"] == "Dana Whitfield"
    assert call["started_at"] == "2024-05-01T09:00:00+00:00"
    assert call["duration_s"] == 12.0
    assert call["source"] == "test.wav" and call["model"] == "tiny.en"
    assert call["channels"] == "agent,customer" and call["status"] == "complete"
    assert call["cue_counts"] == {"frustration-unacknowledged": 1, "sorry-but": 1}
    # final words only, in time order, the card number redacted word by word, times kept
    texts = [w["text"] for w in call["words"]]
    assert "partial" not in texts
    assert texts[:8] == ["my", "card", "is", "[card]", "[card]", "[card]", "[card]", "and"]
    assert call["n_words"] == len(call["words"]) == 20
    starts = [w["start"] for w in call["words"]]
    assert starts == sorted(starts)
    assert call["words"][3] == {"speaker": "customer", "text": "[card]", "start": 1.2,
                                "end": 1.5, "probability": 0.9}
    c0, c1 = call["cues"]
    assert (c0["idx"], c0["id"], c0["severity"], c0["t"]) == (0, "sorry-but", "warn", 7.5)
    assert c0["feedback"] == "dismissed"  # the overlay's dismiss, recorded with the call
    assert c0["feedback_at"].startswith("2024-05-01T09:00:00")
    assert c1["feedback"] is None
    # evidence words are redacted like the transcript; figures stay
    assert c1["evidence"] == {"words": [{"text": "[card]", "start": 1.6, "end": 1.9},
                                        {"text": "[card]", "start": 2.0, "end": 2.3}],
                              "wpm": 190}
    assert call["notes"] == []
    pro = store.prosody(cid)
    assert len(pro) == 20 and pro[0] == {"speaker": "agent", "t": 1.0, "f0_hz": 121.0,
                                         "loudness_db": -20.0, "wpm": None}
    assert store.audio_size(cid) == 0 and store.read_audio(cid, 0, 100) == b""
    json.dumps(call)  # JSON-ready as it is


def test_redacted_numbers_are_not_searchable_and_redaction_can_be_off(store) -> None:
    a = add(store)
    assert store.list_calls(q="4111")[1] == 0
    assert store.list_calls(q="upset")[0][0]["id"] == a
    b = store.add_call(meta={"agent": "X", "started_at": T0}, events=call_events(),
                       audio_path=None, redact=RedactOptions.off())
    assert [w["text"] for w in store.get_call(b)["words"]][3] == "4111"
    assert [r["id"] for r in store.list_calls(q="4111")[0]] == [b]


def test_list_calls_filters_and_paging(store) -> None:
    ids = {}
    ids["old"] = add(store, agent="Ama", when=T0 - timedelta(days=30), score=40,
                     agent_text="sorry for the inconvenience")
    ids["mid"] = add(store, agent="Ben", when=T0, score=75, cue="sorry-if",
                     agent_text="i will refund the charge today")
    ids["new"] = add(store, agent="Ama", when=T0 + timedelta(days=2), score=90,
                     agent_text="let me fix the refund right now")
    rows, total = store.list_calls()
    assert total == 3 and [r["id"] for r in rows] == [ids["new"], ids["mid"], ids["old"]]
    assert set(rows[0]) == {"id", "agent", "started_at", "duration_s", "source", "status",
                            "score", "cue_counts", "n_words"}
    assert [r["id"] for r in store.list_calls(agent="Ama")[0]] == [ids["new"], ids["old"]]
    assert store.list_calls(agent="Nobody") == ([], 0)
    assert [r["id"] for r in store.list_calls(since=T0)[0]] == [ids["new"], ids["mid"]]
    assert [r["id"] for r in store.list_calls(until=T0)[0]] == [ids["mid"], ids["old"]]
    assert [r["id"] for r in store.list_calls(since="2024-04-30", until="2024-05-02")[0]] \
        == [ids["mid"]]
    assert [r["id"] for r in store.list_calls(cue="sorry-if")[0]] == [ids["mid"]]
    assert store.list_calls(cue="frustration-unacknowledged")[1] == 3
    assert [r["id"] for r in store.list_calls(min_score=50)[0]] == [ids["new"], ids["mid"]]
    assert [r["id"] for r in store.list_calls(max_score=50)[0]] == [ids["old"]]
    # search: words match as prefixes, several words as a phrase, case does not matter
    assert [r["id"] for r in store.list_calls(q="Refund")[0]] == [ids["new"], ids["mid"]]
    assert [r["id"] for r in store.list_calls(q="refu")[0]] == [ids["new"], ids["mid"]]
    assert [r["id"] for r in store.list_calls(q="the refund")[0]] == [ids["new"]]
    assert [r["id"] for r in store.list_calls(q="refund the")[0]] == [ids["mid"]]
    assert store.list_calls(q="refund today")[1] == 0
    assert store.list_calls(q="efund")[1] == 0
    assert store.list_calls(q="  ")[1] == 3 and store.list_calls(q="%_")[1] == 3
    assert [r["id"] for r in store.list_calls(agent="Ama", q="inconvenience")[0]] == [ids["old"]]
    # paging: the total is of all matches
    page, total = store.list_calls(limit=2)
    assert len(page) == 2 and total == 3
    page, total = store.list_calls(limit=2, offset=2)
    assert [r["id"] for r in page] == [ids["old"]] and total == 3
    assert store.list_calls(offset=5) == ([], 3)
    assert store.agents() == ["Ama", "Ben"]
    for bad in ({"limit": 0}, {"limit": 10**6}, {"offset": -1}, {"since": "yesterday"},
                {"min_score": float("nan")}):
        with pytest.raises(StoreError, match="^bad "):
            store.list_calls(**bad)


def test_notes_feedback_and_score(store) -> None:
    cid = add(store)
    n1 = store.add_note(cid, 7.5, "  Good recovery after this.  ", author="coach Lee")
    assert n1["text"] == "Good recovery after this." and n1["author"] == "coach Lee"
    assert n1["t"] == 7.5 and n1["created_at"] == n1["updated_at"]
    n2 = store.add_note(cid, 2.0, "Card read out: remind the agent to pause recording")
    assert [n["id"] for n in store.get_call(cid)["notes"]] == [n2["id"], n1["id"]]  # by time
    time.sleep(0.01)
    up = store.update_note(cid, n1["id"], text="Better: name the fix first", t=8.0)
    assert (up["text"], up["t"]) == ("Better: name the fix first", 8.0)
    assert up["updated_at"] > up["created_at"]
    store.delete_note(cid, n2["id"])
    assert [n["id"] for n in store.get_call(cid)["notes"]] == [n1["id"]]
    with pytest.raises(StoreError, match=rf"^call {cid} has no note {n2['id']}$"):
        store.delete_note(cid, n2["id"])
    with pytest.raises(StoreError, match="^call .* has no note"):
        store.update_note(cid, 999, text="x")
    with pytest.raises(StoreError, match="^a note needs some text"):
        store.add_note(cid, 1.0, "   ")
    with pytest.raises(StoreError, match="^bad note time"):
        store.add_note(cid, -1.0, "x")
    with pytest.raises(StoreError, match="^bad note time"):
        store.add_note(cid, float("inf"), "x")

    store.set_feedback(cid, 1, "flagged")
    store.set_feedback(cid, 0, None)
    cues = store.get_call(cid)["cues"]
    assert [c["feedback"] for c in cues] == [None, "flagged"]
    assert cues[1]["feedback_at"] is not None and cues[0]["feedback_at"] is None
    with pytest.raises(StoreError, match="^bad feedback"):
        store.set_feedback(cid, 0, "liked")
    with pytest.raises(StoreError, match=rf"^call {cid} has no cue 7$"):
        store.set_feedback(cid, 7, "flagged")

    store.set_score(cid, 82.5)
    assert store.get_call(cid)["score"] == 82.5
    with pytest.raises(StoreError, match="^bad score"):
        store.set_score(cid, float("nan"))


def test_unknown_call(store) -> None:
    missing = "0" * 32
    for call in (lambda: store.get_call(missing), lambda: store.prosody(missing),
                 lambda: store.audio_size(missing), lambda: store.read_audio(missing, 0, 9),
                 lambda: store.add_note(missing, 1.0, "x"),
                 lambda: store.set_score(missing, 1.0),
                 lambda: store.set_feedback(missing, 0, "flagged"),
                 lambda: store.update_note(missing, 1, text="x"),
                 lambda: store.delete_note(missing, 1),
                 lambda: store.delete_call(missing)):
        with pytest.raises(StoreError, match=f"^no call {missing}$"):
            call()
    assert not store.has_call(missing)


def test_audio_in_chunks_and_ranges(store, tmp_path) -> None:
    # 2.5 MiB: three 1 MiB rows; ranges across their edges come back exact
    blob = np.random.default_rng(1).integers(0, 256, int(2.5 * 2**20), dtype=np.uint8).tobytes()
    f = tmp_path / "call.flac"
    f.write_bytes(blob)
    cid = store.add_call(meta={"started_at": T0}, events=[], audio_path=f)
    assert store.audio_size(cid) == len(blob)
    assert store.get_call(cid)["audio_mime"] == "audio/flac"
    M = 2**20
    for a, b in [(0, 10), (M - 5, M + 5), (M - 1, 2 * M + 1), (0, len(blob)),
                 (len(blob) - 3, len(blob) + 100), (len(blob), len(blob) + 5), (7, 7)]:
        assert store.read_audio(cid, a, b) == blob[a:b]
    assert b"".join(store.iter_audio(cid, 5, 2 * M + 3, chunk=300_000)) == blob[5:2 * M + 3]
    with pytest.raises(StoreError, match="^bad byte range"):
        store.read_audio(cid, 10, 5)
    with pytest.raises(StoreError, match="no such audio file"):
        store.add_call(meta={}, events=[], audio_path=tmp_path / "missing.flac")


def test_same_source_is_stored_once(store) -> None:
    key = "ab" * 32
    cid = store.add_call(meta={"source_key": key, "started_at": T0}, events=[],
                         audio_path=None)
    assert store.has_source(key) == cid and store.has_source("cd" * 32) is None
    with pytest.raises(AlreadyStoredError) as e:
        store.add_call(meta={"source_key": key}, events=[], audio_path=None)
    assert e.value.call_id == cid and isinstance(e.value, StoreError)
    assert store.list_calls()[1] == 1


def test_delete_call_removes_everything(store, tmp_path) -> None:
    f = tmp_path / "a.flac"
    f.write_bytes(b"fLaC" + b"\0" * 100)
    cid = store.add_call(meta={"started_at": T0}, events=call_events(), audio_path=f)
    store.add_note(cid, 1.0, "note")
    keep = add(store)
    store.delete_call(cid)
    assert not store.has_call(cid) and store.has_call(keep)
    assert store.list_calls(q="upset")[1] == 1  # the search index forgot it too
    with store._read() as conn:  # no orphans in any child table
        for t in (S.words, S.prosody, S.cues, S.notes, S.audio_chunks):
            n = conn.execute(select(func.count()).select_from(t)
                             .where(t.c.call_id == cid)).scalar()
            assert n == 0, t.name


def test_build_rows_feedback_forms_and_bad_input() -> None:
    ev = call_events()
    ev = [e for e in ev if e["type"] != "dismiss"]
    ev.append({"type": "feedback", "cue_index": 1, "action": "flag"})
    ev.append({"type": "feedback", "id": "sorry-but", "t": 7.49, "action": "dismiss"})
    ev.append({"type": "feedback", "id": "nope", "t": 1.0, "action": "dismiss"})  # no such cue
    ev += [{"type": "word", "speaker": "robot", "text": "x", "start": 1, "end": 2},
           {"type": "word", "speaker": "agent", "text": "x", "start": "?", "end": 2},
           {"type": "prosody", "speaker": "agent", "t": float("nan")}, "junk", None]
    rows = build_rows({"started_at": "2024-05-01T11:00:00+02:00"}, ev)
    assert [c["feedback"] for c in rows.cues] == ["dismissed", "flagged"]
    assert rows.call["started_at"] == T0
    assert len(rows.words) == 20 and len(rows.prosody) == 20
    assert rows.call["transcript"].startswith("my card is card card card card and i am upset")
    with pytest.raises(StoreError, match="^bad started_at"):
        build_rows({"started_at": "soon"}, [])
    with pytest.raises(StoreError, match="^bad call status"):
        build_rows({"status": "great"}, [])


# -- many writers at once -------------------------------------------------------------------


def test_concurrent_writers_in_threads(store_url, tmp_path) -> None:
    """One thread imports calls with audio while another adds notes and feedback and
    calls of its own, each through its own Store (as two processes would)."""
    audio = tmp_path / "a.flac"
    audio.write_bytes(SAMPLE.read_bytes())
    a, b = open_store(store_url), open_store(store_url)
    target = add(a)
    errors: list[BaseException] = []

    def importer() -> None:
        try:
            for i in range(12):
                a.add_call(meta={"agent": "Imp", "started_at": T0 + timedelta(minutes=i)},
                           events=call_events(), audio_path=audio)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    def coach() -> None:
        try:
            for i in range(30):
                b.add_note(target, float(i), f"note {i}")
                b.set_feedback(target, i % 2, "flagged" if i % 3 else None)
                if i % 5 == 0:
                    add(b, agent="Coach", when=T0 + timedelta(hours=i))
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=importer), threading.Thread(target=coach)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert a.list_calls(agent="Imp")[1] == 12 and a.list_calls(agent="Coach")[1] == 6
    assert len(a.get_call(target)["notes"]) == 30
    assert all(a.audio_size(r["id"]) == audio.stat().st_size
               for r in a.list_calls(agent="Imp")[0])
    a.close()
    b.close()
    _check_integrity(store_url)


_WRITER = r"""
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
sys.path.insert(0, {tests!r})
from test_store import call_events
from coach.store import open_store
s = open_store(sys.argv[1])
for i in range(10):
    cid = s.add_call(meta={{"agent": sys.argv[2], "started_at": datetime(2024, 1, 1, tzinfo=UTC)
                          + timedelta(minutes=i)}},
                     events=call_events(), audio_path=Path(sys.argv[3]))
    s.add_note(cid, 1.0, "from " + sys.argv[2])
s.close()
"""


def test_two_processes_write_at_once(store_url) -> None:
    script = _WRITER.format(tests=str(Path(__file__).parent))
    procs = [subprocess.Popen([sys.executable, "-c", script, store_url, name, str(SAMPLE)],
                              stderr=subprocess.PIPE, text=True, cwd=ROOT)
             for name in ("P1", "P2")]
    errs = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    assert not any("locked" in e for e in errs)
    with open_store(store_url) as s:
        assert s.list_calls(agent="P1")[1] == 10 and s.list_calls(agent="P2")[1] == 10
        assert all(len(s.get_call(r["id"])["notes"]) == 1 for r in s.list_calls()[0])
    _check_integrity(store_url)


def _check_integrity(url: str) -> None:
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        with sqlite3.connect(path) as c:
            assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert c.execute("PRAGMA foreign_key_check").fetchall() == []
            n = c.execute("SELECT count(*) FROM calls").fetchone()[0]
            assert c.execute("SELECT count(*) FROM calls_fts_ids").fetchone()[0] == n
            assert c.execute("SELECT count(*) FROM calls_fts WHERE calls_fts MATCH 'upset'"
                             ).fetchone()[0] == n


# -- schema and migrations ------------------------------------------------------------------


def test_schema_matches_the_table_definitions(store) -> None:
    from sqlalchemy import inspect

    with store._engine.connect() as conn:
        insp = inspect(conn)
        for name, cols in S.table_columns(conn.dialect.name).items():
            assert [c["name"] for c in insp.get_columns(name)] == cols, name
        idx = {i["name"] for i in insp.get_indexes("calls")}
        assert {"ix_calls_started_at", "ix_calls_agent_started_at", "ix_calls_score"} <= idx
        assert "ix_cues_cue_id_call_id" in {i["name"] for i in insp.get_indexes("cues")}
        versions = conn.execute(select(S.schema_version.c.version)
                                .order_by(S.schema_version.c.version)).scalars().all()
    assert versions == [m.version for m in S.MIGRATIONS] and store.version == S.LATEST_VERSION


def test_migrations_apply_in_order_and_roll_back_on_failure(store_url, monkeypatch) -> None:
    from sqlalchemy import text

    # a database made by an older coach (migration 1 only), with a call in it
    monkeypatch.setattr(S, "MIGRATIONS", S.MIGRATIONS[:1])
    monkeypatch.setattr(S, "LATEST_VERSION", 1)
    with open_store(store_url) as old:
        assert old.version == 1
        old.add_call(meta={"started_at": T0}, events=call_events(), audio_path=None)
    monkeypatch.undo()
    with open_store(store_url) as s:  # upgrading builds the search index over old calls
        assert s.version == S.LATEST_VERSION and s.list_calls(q="upset")[1] == 1

    def broken(conn) -> None:
        conn.execute(text("CREATE TABLE half_done (x INTEGER)"))
        conn.execute(text("SELECT no_such_column FROM calls"))

    nxt = S.LATEST_VERSION + 1
    monkeypatch.setattr(S, "MIGRATIONS", [*S.MIGRATIONS, S.Migration(nxt, "broken", broken)])
    monkeypatch.setattr(S, "LATEST_VERSION", nxt)
    with pytest.raises(StoreError, match="no_such_column"):
        open_store(store_url)
    monkeypatch.undo()
    with open_store(store_url) as s:  # nothing of the failed migration remains
        assert s.version == nxt - 1
        with s._engine.connect() as conn:
            assert not conn.dialect.has_table(conn, "half_done")
            assert S.current_version(conn) == nxt - 1


def _withdrawn_call_events() -> list[dict]:
    ev = call_events()
    ev.insert(-1, {"type": "retract", "id": "sorry-but", "t": 7.5, "at": 8.9,
                   "reason": "the agent fixed it straight after"})
    return ev


def test_withdrawn_cues_are_kept_but_not_counted_or_found(store_url) -> None:
    with open_store(store_url) as s:
        cid = s.add_call(meta={"started_at": T0}, events=_withdrawn_call_events(),
                         audio_path=None)
        (row,), _ = s.list_calls()
        assert row["cue_counts"] == {"frustration-unacknowledged": 1}
        assert s.list_calls(cue="sorry-but")[1] == 0
        assert s.list_calls(cue="frustration-unacknowledged")[1] == 1
        gone = {c["id"]: c["evidence"].get("withdrawn") for c in s.get_call(cid)["cues"]}
        assert gone == {"sorry-but": {"at": 8.9, "reason": "the agent fixed it straight after"},
                        "frustration-unacknowledged": None}


def test_upgrading_stops_counting_withdrawn_cues(store_url) -> None:
    from sqlalchemy import delete, update

    # a call stored by a coach that counted its withdrawn cue (schema version 4)
    with open_store(store_url) as s:
        cid = s.add_call(meta={"started_at": T0}, events=_withdrawn_call_events(),
                         audio_path=None)
        other = s.add_call(meta={"started_at": T0, "agent": "B"}, events=call_events(),
                           audio_path=None)
        with s._write() as conn:
            conn.execute(update(S.calls).where(S.calls.c.id == cid).values(
                cue_counts='{"frustration-unacknowledged": 1, "sorry-but": 1}'))
            conn.execute(delete(S.schema_version).where(S.schema_version.c.version == 5))
    with open_store(store_url) as s:
        assert s.version == S.LATEST_VERSION
        counts = {r["id"]: r["cue_counts"] for r in s.list_calls()[0]}
        assert counts[cid] == {"frustration-unacknowledged": 1}
        assert counts[other] == {"frustration-unacknowledged": 1, "sorry-but": 1}


def test_newer_database_is_refused(store_url) -> None:
    with open_store(store_url) as s, s._write() as conn:
        conn.execute(S.schema_version.insert().values(version=99, description="future",
                                                      applied_at=T0))
    with pytest.raises(StoreError, match=r"schema version 99, newer than this coach knows "
                                         rf"\({S.LATEST_VERSION}\): upgrade coach") as e:
        open_store(store_url)
    assert "\n" not in str(e.value)


# -- opening: files, permissions, bad URLs --------------------------------------------------


def test_files_are_private(tmp_path) -> None:
    old = os.umask(0o022)  # a permissive umask must not matter
    try:
        data = tmp_path / "coach-data"
        s = open_store(data_dir=data)
        add(s)
        db = data / "coach.db"
        modes = {p.name: stat.S_IMODE(os.stat(p).st_mode)
                 for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm"))}
        assert modes == {"coach.db": 0o600, "coach.db-wal": 0o600, "coach.db-shm": 0o600}
        assert stat.S_IMODE(os.stat(data).st_mode) == 0o700
        with sqlite3.connect(db) as c:
            assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        s.close()
        # a data dir and database left readable by others are tightened on open
        os.chmod(data, 0o755)
        os.chmod(db, 0o644)
        open_store(data_dir=data).close()
        assert stat.S_IMODE(os.stat(data).st_mode) == 0o700
        assert stat.S_IMODE(os.stat(db).st_mode) == 0o600
    finally:
        os.umask(old)


def test_default_location_and_env(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("COACH_DATA", str(tmp_path / "d"))
    monkeypatch.delenv("COACH_DB", raising=False)
    with open_store() as s:
        assert s.path == tmp_path / "d" / "coach.db"
    monkeypatch.setenv("COACH_DB", str(tmp_path / "other.db"))  # a plain path is SQLite
    with open_store() as s:
        assert s.path == tmp_path / "other.db" and s.dialect == "sqlite"


@pytest.mark.parametrize("url, message", [
    ("postgresql://nobody@127.0.0.1:1/coach", "^cannot reach the database postgresql"),
    ("mysql://u@h/db", "^unsupported database 'mysql'"),
    ("sqlite:////proc/no/such/dir/coach.db", "^cannot create the database"),
])
def test_bad_urls_fail_in_one_line(url, message) -> None:
    with pytest.raises(StoreError, match=message) as e:
        open_store(url)
    assert "\n" not in str(e.value)


def test_password_is_not_shown() -> None:
    with pytest.raises(StoreError) as e:
        open_store("postgresql://coach:s3cret@127.0.0.1:1/coach")
    assert "s3cret" not in str(e.value)


def test_not_a_database_file(tmp_path) -> None:
    f = tmp_path / "junk.db"
    f.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="^cannot open the database .*not a database"):
        open_store(f"sqlite:///{f}")


# -- importing recording folders ------------------------------------------------------------


def test_import_a_finished_recording(store, tmp_path) -> None:
    folder = recording(tmp_path / "live" / "20240501-090000")
    cid = import_recording(store, folder)
    call = store.get_call(cid)
    assert (call["status"], call["agent"], call["source"]) == ("complete", "Kim Osei", "live")
    assert call["duration_s"] == 2.0 and call["started_at"] == T0.isoformat()
    assert call["channels"] == "agent,customer"
    assert store.audio_size(cid) == (folder / "audio.flac").stat().st_size
    assert store.read_audio(cid, 0, 10**9) == (folder / "audio.flac").read_bytes()
    assert call["cues"][0]["feedback"] == "dismissed"
    assert json.loads((folder / "imported.json").read_text())["call_id"] == cid
    # again: skipped, by the marker; and without the marker, by the audio's hash
    assert import_recording(store, folder) is None
    (folder / "imported.json").unlink()
    res = import_path(store, tmp_path / "live")
    assert [(r.outcome, r.call_id) for r in res] == [("skipped", cid)]
    assert res[0].reason == f"already imported as {cid}"
    assert store.list_calls()[1] == 1


def test_recover_a_cut_off_recording(store, tmp_path) -> None:
    """What a kill leaves: call.json unfinished, a FLAC cut mid-frame with no length in
    its header, and half a line at the end of events.jsonl."""
    folder = recording(tmp_path / "live" / "a", seconds=6.0, finished=False)
    flac = folder / "audio.flac"
    assert sf.info(str(flac)).frames > 2**40  # libsndfile cannot tell its length
    data = flac.read_bytes()
    flac.write_bytes(data[: len(data) // 2 + 7])
    with open(folder / "events.jsonl", "a") as f:
        f.write('{"type": "word", "speaker": "agent", "text": "cut')
    events, dropped = read_events(folder / "events.jsonl")
    assert dropped == 1 and len(events) == len(call_events())
    assert json.loads((folder / "call.json").read_text())["finished"] is False
    age(folder)
    ids = recover(store, tmp_path / "live")
    assert len(ids) == 1
    call = store.get_call(ids[0])
    assert call["status"] == "recovered" and call["n_words"] == 20
    got, rate = _stored_audio(store, ids[0], tmp_path)
    assert rate == 16000 and got.shape[1] == 2
    assert 2.0 < got.shape[0] / rate < 4.0  # about half of the 6 s
    assert call["duration_s"] == pytest.approx(max(got.shape[0] / rate, 12.0), abs=0.01)
    assert recover(store, tmp_path / "live") == []  # done once


def test_a_call_still_being_recorded_is_left_alone(store, tmp_path) -> None:
    live = tmp_path / "live"
    folder = recording(live / "now", finished=False, writer="alive")
    age(folder, 60)  # our pid is alive and wrote a minute ago: still recording
    assert recover(store, live) == []
    res = import_path(store, folder)
    assert [(r.outcome, r.reason) for r in res] == [("skipped", "still being recorded")]
    age(folder, 600)  # alive but silent for 10 minutes: a reused pid, the call is over
    assert len(recover(store, live)) == 1
    # no pid in call.json: only the files' age tells
    old = recording(live / "old", seconds=2.5, finished=False, writer="unknown")
    assert recover(store, live) == []
    age(old, 60)
    assert len(recover(store, live)) == 1


def test_import_bad_input(store, tmp_path) -> None:
    with pytest.raises(StoreError, match="no such file or folder"):
        import_path(store, tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(StoreError, match="no recording folders in it"):
        import_path(store, tmp_path / "empty")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(StoreError, match="not a recording folder"):
        import_path(store, tmp_path / "x.txt")
    # one bad folder among good ones: reported, the others imported
    root = tmp_path / "many"
    recording(root / "1")
    junk = root / "2"
    junk.mkdir(parents=True)
    (junk / "audio.flac").write_bytes(b"not flac at all" * 10)
    (junk / "call.json").write_text("{broken")
    age(junk)
    recording(root / "3", seconds=2.5)
    res = import_path(store, root)
    assert [r.outcome for r in res] == ["imported", "skipped", "imported"]
    assert res[1].reason.startswith("nothing usable recorded (audio not readable")
    assert recover(store, tmp_path / "not-there") == []


def test_recover_after_the_recorder_process_is_killed(tmp_path) -> None:
    """A real coach.live.Recorder in a child process, writing audio and events in real
    time, killed with SIGKILL after 2.5 s: the recovered call has the audio and events
    flushed before the kill (the recorder flushes about once a second). Recovery reads
    files; the backend it stores into does not matter here, so SQLite only."""
    store = open_store(data_dir=tmp_path / "data")
    folder = tmp_path / "live" / "killed"
    child = subprocess.Popen([sys.executable, "-c", _RECORDER, str(folder)], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t_written, n_words = 0.0, 0
    assert child.stdout is not None
    for line in child.stdout:
        t_written, n_words = float(line.split()[0]), int(line.split()[1])
        if t_written >= 2.5:
            break
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL and t_written >= 2.5, child.stderr.read()
    assert json.loads((folder / "call.json").read_text())["finished"] is False

    ids = recover(store, tmp_path / "live", idle_s=0)
    assert len(ids) == 1
    call = store.get_call(ids[0])
    assert call["status"] == "recovered" and call["agent"] == "Kim Osei"
    got, rate = _stored_audio(store, ids[0], tmp_path)
    seconds = got.shape[0] / rate
    assert t_written - 1.6 <= seconds <= t_written + 0.2, (seconds, t_written)
    # what was recorded: the agent's 220 Hz tone left, the customer's quieter tone right
    rms = np.sqrt(np.mean(got[: int(rate * 1.0)] ** 2, axis=0))
    assert rms[0] == pytest.approx(0.3 / np.sqrt(2), rel=0.05)
    assert rms[1] == pytest.approx(0.1 / np.sqrt(2), rel=0.05)
    texts = [w["text"] for w in call["words"]]
    assert texts == [f"w{i}" for i in range(len(texts))]  # a gapless prefix
    assert (t_written - 1.6) / 0.1 - 1 <= len(texts) <= n_words
    assert len(store.prosody(ids[0])) >= 1
    assert call["duration_s"] >= seconds
    store.close()


_RECORDER = r"""
import sys, time
import numpy as np
from pathlib import Path
from coach.live import Recorder
rec = Recorder(Path(sys.argv[1]), customer_channel=True,
               meta={"agent": "Kim Osei", "started_at": time.time(), "model": "tiny.en"})
n = 1600
i = 0
while True:
    t = (np.arange(n) + i * n) / 16000
    rec.audio((0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32),
              (0.1 * np.sin(2 * np.pi * 330 * t)).astype(np.float32))
    end = (i + 1) * 0.1
    rec.event({"type": "word", "speaker": "agent", "text": f"w{i}", "start": round(end - 0.1, 3),
               "end": round(end, 3), "final": True, "probability": 0.9})
    if i % 10 == 9:
        rec.event({"type": "prosody", "speaker": "agent", "t": round(end, 3), "f0_hz": 220.0,
                   "loudness_db": -13.5, "wpm": 150.0})
    i += 1
    print(f"{end:.1f} {i}", flush=True)
    time.sleep(0.1)
"""


def _stored_audio(store, call_id: str, tmp_path: Path) -> tuple[np.ndarray, int]:
    f = tmp_path / f"{call_id}.flac"
    f.write_bytes(store.read_audio(call_id, 0, store.audio_size(call_id)))
    data, rate = sf.read(f, always_2d=True)
    return data, rate


# -- saving an analysed file ----------------------------------------------------------------


def test_save_analysis_transcodes_to_16k_flac(store, tmp_path) -> None:
    """An odd file (22.05 kHz Ogg Vorbis, agent on the right) is stored as 16 kHz FLAC with
    the agent left."""
    rate, secs = 22050, 3.0
    t = np.arange(int(rate * secs)) / rate
    left = 0.05 * np.sin(2 * np.pi * 500 * t)   # the customer
    right = 0.4 * np.sin(2 * np.pi * 200 * t)   # the agent
    src = tmp_path / "call.ogg"
    sf.write(src, np.stack([left, right], axis=1), rate, format="OGG", subtype="VORBIS")
    ev = call_events()
    cid = save_analysis(store, src, ev, {"agent": "Ravi", "agent_channel": "right",
                                         "started_at": T0})
    call = store.get_call(cid)
    assert (call["source"], call["agent"], call["status"]) == ("call.ogg", "Ravi", "complete")
    got, got_rate = _stored_audio(store, cid, tmp_path)
    assert got_rate == 16000 and got.shape[1] == 2
    assert got.shape[0] / 16000 == pytest.approx(secs, abs=0.05)
    rms = np.sqrt(np.mean(got[1000:-1000] ** 2, axis=0))
    assert rms[0] == pytest.approx(0.4 / np.sqrt(2), rel=0.1)   # agent now left
    assert rms[1] == pytest.approx(0.05 / np.sqrt(2), rel=0.15)
    assert store.read_audio(cid, 0, 4) == b"fLaC"
    # the same file again: the stored call; replace=True stores it anew
    assert save_analysis(store, src, ev, {}) == cid
    new = save_analysis(store, src, ev, {"agent": "Ravi"}, replace=True)
    assert new != cid and not store.has_call(cid) and store.list_calls()[1] == 1


def test_save_analysis_of_a_cut_off_file_is_truncated(store, tmp_path) -> None:
    src = tmp_path / "cut.wav"
    sf.write(src, np.zeros((16000 * 2, 1), dtype=np.float32) + 0.01, 16000, subtype="PCM_16")
    data = src.read_bytes()
    src.write_bytes(data[: len(data) // 2])  # the header still promises 2 s
    cid = save_analysis(store, src, [], {})
    call = store.get_call(cid)
    assert call["status"] == "truncated" and call["channels"] == "agent"
    with pytest.raises(StoreError, match="no such file"):
        save_analysis(store, tmp_path / "missing.wav", [], {})


# -- exports (pure, on the get_call dict) ---------------------------------------------------


def _call_dict() -> dict:
    words = (say("agent", "thanks for calling <team> & co", 0.0)
             + say("customer", "my card is 4111 1111 1111 1111", 3.0)
             + say("agent", "i can help with that", 3725.0))
    return {"id": "c" * 32, "agent": "Dana", "started_at": T0.isoformat(),
            "words": [{k: w[k] for k in ("speaker", "text", "start", "end", "probability")}
                      for w in words],
            "cues": [{"idx": 0, "id": "sorry-but", "t": 4.5, "speaker": "agent",
                      "severity": "warn", "title": "Drop the \"but\", please",
                      "advice": "x", "feedback": "flagged",
                      "evidence": {"words": [{"text": "sorry", "start": 4.0, "end": 4.2},
                                             {"text": "but", "start": 4.3, "end": 4.5}],
                                   "gap_s": 0.4,
                                   "withdrawn": {"at": 63.5, "reason": "the agent fixed it"}}},
                     {"idx": 1, "id": "pace-fast", "t": 3730.0, "speaker": "agent",
                      "severity": "nudge", "title": "Slow down", "advice": "y",
                      "feedback": None, "evidence": {"wpm": 201}}],
            "notes": []}


_VTT_TIME = r"(\d\d):(\d\d):(\d\d)\.(\d\d\d)"


def _parse_vtt(s: str) -> list[tuple[float, float, str, str]]:
    assert s.startswith("WEBVTT\n\n")
    cues = []
    for block in s.strip().split("\n\n")[1:]:
        lines = block.split("\n")
        if lines[0].startswith("NOTE"):
            continue
        m = re.fullmatch(_VTT_TIME + " --> " + _VTT_TIME, lines[1])
        assert m, lines
        g = [int(x) for x in m.groups()]
        a = g[0] * 3600 + g[1] * 60 + g[2] + g[3] / 1000
        b = g[4] * 3600 + g[5] * 60 + g[6] + g[7] / 1000
        v = re.fullmatch(r"<v (Agent|Customer)>(.*)", lines[2])
        assert v, lines
        cues.append((a, b, v.group(1), v.group(2)))
    return cues


def test_vtt() -> None:
    cues = _parse_vtt(to_vtt(_call_dict()))
    assert [c[2] for c in cues] == ["Agent", "Customer", "Agent"]
    assert cues[0][3] == "thanks for calling &lt;team&gt; &amp; co"
    assert cues[1][3] == "my card is [card] [card] [card] [card]"  # redacted on the way out
    assert cues[1][:2] == (3.0, pytest.approx(5.7))
    assert cues[2][0] == 3725.0 and to_vtt(_call_dict()).count("01:02:05.000 -->") == 1
    assert all(a < b for a, b, *_ in cues) and [c[0] for c in cues] == sorted(c[0] for c in cues)
    plain = to_vtt(_call_dict(), redact=RedactOptions.off())
    assert "4111 1111 1111 1111" in plain


def test_srt() -> None:
    s = to_srt(_call_dict())
    blocks = s.strip().split("\n\n")
    assert [b.split("\n")[0] for b in blocks] == ["1", "2", "3"]
    assert blocks[1].split("\n")[1] == "00:00:03,000 --> 00:00:05,700"
    assert blocks[2].split("\n")[1].startswith("01:02:05,000 --> ")
    assert blocks[1].split("\n")[2] == "CUSTOMER: my card is [card] [card] [card] [card]"
    assert blocks[0].split("\n")[2] == "AGENT: thanks for calling <team> & co"
    assert timestamp(59.9996) == "00:01:00.000" and timestamp(0.0015, ",") == "00:00:00,002"


def test_csv_of_cues() -> None:
    rows = list(csv.reader(io.StringIO(to_csv(_call_dict()))))
    assert rows[0] == CSV_COLUMNS == ["call_id", "idx", "id", "t", "speaker", "severity",
                                      "title", "evidence", "feedback", "withdrawn"]
    assert rows[1] == ["c" * 32, "0", "sorry-but", "4.5", "agent", "warn",
                       'Drop the "but", please', "sorry but; gap_s=0.4", "flagged",
                       "withdrawn at 1:03: the agent fixed it"]
    assert rows[2][2] == "pace-fast" and rows[2][7] == "wpm=201" and rows[2][8:] == ["", ""]


def test_json_and_unknown_format() -> None:
    d = json.loads(to_json(_call_dict()))
    assert d["id"] == "c" * 32 and len(d["words"]) == 18
    assert d["words"][9]["text"] == "[card]" and d["cues"][1]["evidence"] == {"wpm": 201}
    assert export(_call_dict(), "srt") == to_srt(_call_dict())
    with pytest.raises(StoreError, match="unknown export format 'pdf'"):
        export(_call_dict(), "pdf")


def test_exports_of_a_stored_call(store) -> None:
    cid = add(store)
    call = store.get_call(cid)
    assert json.loads(export(call, "json")) == call
    cues = _parse_vtt(export(call, "vtt"))
    assert [c[2] for c in cues] == ["Customer", "Agent"]
    assert list(csv.reader(io.StringIO(export(call, "csv"))))[1][:3] == [cid, "0", "sorry-but"]


def test_opening_a_new_database_waits_for_another_opener(tmp_path) -> None:
    """Switching a new SQLite file to WAL needs it to itself, and SQLite says "locked" at
    once rather than waiting: a second process opening the same new database at that
    instant (two importers started together) must wait, not fail."""
    path = tmp_path / "coach.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # a writer mid-transaction: WAL switch fails at once
    holder.execute("CREATE TABLE held (x)")
    release = threading.Timer(0.4, lambda: holder.execute("ROLLBACK"))
    release.start()
    try:
        with open_store(f"sqlite:///{path}") as s:
            assert s.list_calls()[1] == 0
    finally:
        release.join()
        holder.close()
    with sqlite3.connect(path) as c:
        assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
