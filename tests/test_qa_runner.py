"""`coach qa`, the runner half: finding and sampling calls, channel rules, transcripts,
bad files, the resumable log (SIGKILL, SIGINT), the fast path, a real 2-worker pool."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from coach.asr_types import AsrResult, AsrWord
from coach.errors import CoachError
from coach.events import Activity, Prosody, Turn, Word
from coach.qa.analyse_call import analyse_one, transcript_events
from coach.qa.runner import QaOptions, ResultLog, run_qa
from coach.qa.sources import (
    CallSource,
    ChannelRules,
    SampleSpec,
    TranscriptError,
    find_calls,
    parse_sample,
    read_channel_map,
    read_transcript,
    sample_calls,
)
from tests.conftest import ROOT, SAMPLES
from tests.fakes import SR, EnergyVad, speechy

PY = sys.executable


# --- helpers ----------------------------------------------------------------------------------

def vtt(*cues: tuple[float, float, str, str]) -> str:
    def ts(t: float) -> str:
        m, s = divmod(t, 60)
        return f"00:{int(m):02d}:{s:06.3f}"

    body = ["WEBVTT", ""]
    for a, b, who, text in cues:
        body += [f"{ts(a)} --> {ts(b)}", f"<v {who}>{text}", ""]
    return "\n".join(body)


BAD_CALL = vtt(
    (0.5, 4.0, "Customer", "You sent the wrong lamp and nobody called me back, it is a problem."),
    (4.5, 9.0, "Agent", "I'm sorry, but the warehouse made that mistake, not me."),
    (9.5, 12.0, "Customer", "That is ridiculous."),
    (12.5, 16.0, "Agent", "Sorry for any inconvenience."),
)
GOOD_CALL = vtt(
    (0.5, 4.0, "Customer", "My bill is wrong again and I am really frustrated."),
    (4.5, 12.0, "Agent", "That sounds really frustrating. I'm sorry we charged you twice, "
                          "that was our mistake. I have refunded the charge right now."),
    (12.5, 15.0, "Customer", "Okay, thank you."),
    (15.5, 20.0, "Agent", "I will call you on Friday at ten to make sure it is settled."),
)


def long_vtt(n_cues: int, seed: int) -> str:
    """A longer made-up call (so each takes measurable time to score)."""
    rng = np.random.default_rng(seed)
    lines = ["I am sorry we sent the wrong part, I will send the right one today.",
             "Okay, can you check the order number for me please?",
             "I'll call you tomorrow at nine to confirm it arrived.",
             "It is the third time this has happened and I am annoyed."]
    cues, t = [], 0.5
    for i in range(n_cues):
        d = float(rng.uniform(2.5, 4.5))
        cues.append((t, t + d, "Agent" if i % 2 else "Customer", lines[i % len(lines)]))
        t += d + 0.4
    return vtt(*cues)


def stereo_wav(path: Path, seconds: float = 1.0) -> Path:
    sf.write(path, np.zeros((int(seconds * 8000), 2), np.float32), 8000)
    return path


def log_rows(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]


def opts(source: Path, out: Path, **kw) -> QaOptions:
    kw.setdefault("workers", 1)
    return QaOptions(source=str(source), out_dir=out, **kw)


# --- sampling ---------------------------------------------------------------------------------

def calls(n: int) -> list[CallSource]:
    return [CallSource(f"/x/c{i:03d}.wav", f"c{i:03d}", "audio") for i in range(n)]


def test_parse_sample_counts_and_percentages():
    assert parse_sample("25").count == 25
    assert parse_sample("10%").percent == 10.0
    assert parse_sample(" 100% ").percent == 100.0
    for bad in ("0", "-3", "0%", "150%", "ten", "", "nan%"):
        with pytest.raises(CoachError, match="--sample"):
            parse_sample(bad)


def test_sample_sizes():
    assert len(sample_calls(calls(30), SampleSpec(percent=10))) == 3
    assert len(sample_calls(calls(9), SampleSpec(percent=10))) == 1  # never 0 of a non-empty set
    assert len(sample_calls(calls(30), SampleSpec(count=25))) == 25
    assert len(sample_calls(calls(5), SampleSpec(count=25))) == 5
    assert [c.path for c in sample_calls(calls(7), SampleSpec(percent=100))] == \
        [c.path for c in calls(7)]
    assert sample_calls([], SampleSpec(percent=50)) == []


def test_sampling_is_reproducible_and_order_free():
    pool = calls(200)
    a = sample_calls(pool, SampleSpec(count=20), seed=7)
    b = sample_calls(list(reversed(pool)), SampleSpec(count=20), seed=7)  # found in any order
    c = sample_calls(pool, SampleSpec(count=20), seed=8)
    assert [x.path for x in a] == [x.path for x in b]
    assert [x.path for x in a] != [x.path for x in c]
    assert [x.path for x in a] == sorted(x.path for x in a)
    # a bigger sample with the same seed is not required to contain the smaller one, but
    # the same request always gives the same calls
    assert a == sample_calls(pool, SampleSpec(count=20), seed=7)


# --- finding calls and their agent channel ----------------------------------------------------

def test_channel_rules_in_order(tmp_path):
    m = stereo_wav(tmp_path / "with_manifest.wav")
    (tmp_path / "with_manifest.json").write_text(json.dumps(
        {"channels": {"left": "customer", "right": "agent"}}))
    m2 = stereo_wav(tmp_path / "agent_key.wav")
    (tmp_path / "agent_key.json").write_text(json.dumps({"agent_channel": "2"}))
    hint = stereo_wav(tmp_path / "auto_L-caller_R-agent.wav")
    hint2 = stereo_wav(tmp_path / "x_R-customer.wav")
    # a manifest beats the name hint
    both = stereo_wav(tmp_path / "y_R-agent.wav")
    (tmp_path / "y_R-agent.json").write_text(json.dumps({"channels": {"left": "agent"}}))
    mapped = stereo_wav(tmp_path / "site2_call.wav")
    plain = stereo_wav(tmp_path / "plain.wav")
    cmap = tmp_path / "map.csv"
    cmap.write_text("glob,channel\n# the second site records agents on the right\n"
                    "site2_*,right\n*_R-agent.wav,left\n")
    rules = ChannelRules("left", read_channel_map(cmap))
    got = {Path(c.path).name: (c.agent_channel, c.channel_rule)
           for c in find_calls(tmp_path, rules).calls}
    assert got[m.name] == ("right", "manifest")
    assert got[m2.name] == ("2", "manifest")
    assert got[hint.name] == ("right", "name")
    assert got[hint2.name] == ("left", "name")
    assert got[both.name] == ("left", "manifest")
    assert got[mapped.name] == ("right", "map")
    assert got[plain.name] == ("left", "default")
    right = {Path(c.path).name: c.agent_channel
             for c in find_calls(tmp_path, ChannelRules("right")).calls}
    assert right[plain.name] == "right" and right[mapped.name] == "right"


def test_demo_manifests_and_lca_name_give_the_agent_channel(data_dir):
    demo = {c.call: (c.agent_channel, c.channel_rule) for c in find_calls(SAMPLES).calls}
    assert demo["01_owned_and_fixed"] == ("left", "manifest")
    lca = find_calls(data_dir / "calls" / "lca").calls
    assert [(c.agent_channel, c.channel_rule) for c in lca] == [("right", "name")]


def test_bad_channel_map_names_the_line(tmp_path):
    p = tmp_path / "m.csv"
    p.write_text("*.wav,right\n*.flac,middle\n")
    with pytest.raises(CoachError, match=r"m\.csv:2: .*middle"):
        read_channel_map(p)
    p.write_text("only-a-glob\n")
    with pytest.raises(CoachError, match=r"m\.csv:1: expected 'glob,channel'"):
        read_channel_map(p)
    with pytest.raises(CoachError, match="cannot read"):
        read_channel_map(tmp_path / "absent.csv")


def test_what_counts_as_a_call(tmp_path):
    stereo_wav(tmp_path / "a.wav")
    (tmp_path / "a.words.json").write_text("[]")  # transcript of a call that has audio
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.vtt").write_text(GOOD_CALL)  # transcript alone: a call
    (tmp_path / "sub" / "c.words.json").write_text(json.dumps(
        [{"speaker": "A", "word": "hello", "start": 0.1, "end": 0.4}]))
    (tmp_path / "settings.json").write_text(json.dumps({"threshold": 3}))  # not a call
    (tmp_path / "README.md").write_text("notes")
    found = find_calls(tmp_path)
    assert [(Path(c.path).name, c.kind, c.call) for c in found.calls] == [
        ("a.wav", "audio", "a"), ("b.vtt", "transcript", "b"),
        ("c.words.json", "transcript", "c")]
    assert sorted(Path(p).name for p in found.ignored) == ["README.md", "settings.json"]
    assert [Path(p).name for p in found.covered] == ["a.words.json"]
    with pytest.raises(CoachError, match="no such file"):
        find_calls(tmp_path / "nope")


# --- transcripts ---------------------------------------------------------------------------

def test_spokenwoz_words_are_read_with_b_as_agent(data_dir):
    path = data_dir / "calls" / "spokenwoz" / "SNG0072.words.json"
    words, roles = read_transcript(path)
    assert roles == {"A": "customer", "B": "agent"}
    agent = " ".join(w.text for w in words if w.speaker == "agent")
    assert agent.startswith("hi customer service how can i help you")
    assert all(w.final and w.end >= w.start for w in words)
    assert [w.start for w in words] == sorted(w.start for w in words)
    _, flipped = read_transcript(path, agent="A")
    assert flipped == {"A": "agent", "B": "customer"}
    with pytest.raises(TranscriptError, match="no speaker 'Z'"):
        read_transcript(path, agent="Z")


def test_transcript_sidecar_names_the_agent(tmp_path):
    p = tmp_path / "call7.words.json"
    p.write_text(json.dumps([
        {"speaker": "spk0", "text": "hello thanks for calling", "start": 0.0, "end": 1.5},
        {"speaker": "spk1", "word": "hi", "start": 2.0, "end": 2.3}]))
    (tmp_path / "call7.json").write_text(json.dumps({"agent_speaker": "spk1"}))
    words, roles = read_transcript(p)
    assert roles == {"spk0": "customer", "spk1": "agent"}
    # a segment's text is spread over its span, word by word
    spk0 = [w for w in words if w.speaker == "customer"]
    assert [w.text for w in spk0] == ["hello", "thanks", "for", "calling"]
    assert spk0[0].start == 0.0 and spk0[-1].end <= 1.5


def test_vtt_voices_and_prefixes(tmp_path):
    p = tmp_path / "x.vtt"
    p.write_text("WEBVTT\n\nNOTE made by hand\n\n1\n00:00:01.000 --> 00:00:03.000\n"
                 "<v.loud Customer>Where is my <b>parcel</b>?</v>\n\n"
                 "00:00:03.500 --> 00:00:06,000\nAGENT: I'm sorry it is late.\n\n"
                 "00:00:06.500 --> 00:00:07.500\nit left today\n")
    words, roles = read_transcript(p)
    assert roles == {"Customer": "customer", "AGENT": "agent"}
    text = [(w.speaker, w.text) for w in words]
    assert text[:4] == [("customer", "Where"), ("customer", "is"), ("customer", "my"),
                        ("customer", "parcel?")]
    assert ("agent", "sorry") in text
    assert text[-1] == ("agent", "today")  # an unlabelled cue keeps the last speaker
    assert words[4].start == pytest.approx(3.5)


@pytest.mark.parametrize("content, needle", [
    ("", "empty"),
    ("{not json", "not valid JSON"),
    (json.dumps({"a": 1}), "expected a list of words"),
    (json.dumps([{"speaker": "A", "start": 1.0}]), "item 1 needs a word"),
    (json.dumps([{"speaker": "A", "word": "hi", "start": "soon"}]), "item 1 needs"),
])
def test_bad_json_transcripts(tmp_path, content, needle):
    p = tmp_path / "t.json"
    p.write_text(content)
    with pytest.raises(TranscriptError, match=needle):
        read_transcript(p)


def test_bad_vtt(tmp_path):
    p = tmp_path / "t.vtt"
    p.write_text("hello\n00:00:01.000 --> 00:00:02.000\nhi\n")
    with pytest.raises(TranscriptError, match="no WEBVTT header"):
        read_transcript(p)
    p.write_text("WEBVTT\n\n")
    with pytest.raises(TranscriptError, match="no timed words"):
        read_transcript(p)


def test_transcript_events_look_like_the_pipeline():
    words = [Word("agent", t, s, s + 0.3, True) for t, s in
             [("hello", 0.5), ("there", 0.9), ("again", 3.0)]]
    events, end = transcript_events(words)
    assert end == pytest.approx(3.3)
    acts = [e for e in events if isinstance(e, Activity)]
    assert [a.speaking for a in acts] == [True, False, True, False]  # two turns (2 s gap)
    turns = [e for e in events if isinstance(e, Turn)]
    assert [(t.start, t.end) for t in turns] == [(0.5, 1.2), (3.0, 3.3)]
    i_word = events.index(words[1])
    assert events.index(turns[0]) > i_word  # words of a turn before the turn


def test_transcripts_are_scored_without_audio(tmp_path):
    bad = tmp_path / "bad.vtt"
    bad.write_text(BAD_CALL)
    good = tmp_path / "good.vtt"
    good.write_text(GOOD_CALL)
    rb = analyse_one(bad)
    rg = analyse_one(good)
    for r in (rb, rg):
        assert r["status"] == "ok" and r["kind"] == "transcript" and r["model"] is None
        assert len(r["key"]) == 64 and r["transcript"] and r["duration_s"] > 10
    assert rb["cue_counts"].get("qualified-apology") == 1
    assert rb["cue_counts"].get("generic-apology") == 1
    assert rb["steps"]["ownership"]["status"] == "violated"
    assert rg["steps"]["follow_up"]["status"] == "met"
    assert rg["score"] > rb["score"] + 30


# --- bad files and the batch ---------------------------------------------------------------

def make_mixed_dir(root: Path) -> Path:
    root.mkdir()
    (root / "empty.wav").write_bytes(b"")
    (root / "notes.wav").write_text("this is not audio at all\n")
    (root / "cut.flac").write_bytes((SAMPLES / "06_address_change.flac").read_bytes()[:60])
    (root / "silent.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt ")
    (root / "good.vtt").write_text(GOOD_CALL)
    (root / "broken.vtt").write_text("WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n\n")
    (root / "README.txt").write_text("not a call")
    return root


def test_bad_files_are_skipped_with_reasons_and_the_batch_goes_on(tmp_path):
    src = make_mixed_dir(tmp_path / "calls")
    out = tmp_path / "qa"
    s = run_qa(opts(src, out))
    rows = {Path(r["path"]).name: r for r in log_rows(out)}
    assert rows["good.vtt"]["status"] == "ok"
    reasons = {k: v["reason"] for k, v in rows.items() if v["status"] == "skipped"}
    assert set(reasons) == {"empty.wav", "notes.wav", "cut.flac", "silent.wav", "broken.vtt"}
    assert "empty" in reasons["empty.wav"]
    assert "not a readable audio file" in reasons["notes.wav"]
    assert "no timed words" in reasons["broken.vtt"]
    assert all("\n" not in r and "Traceback" not in r for r in reasons.values())
    assert (s.analysed, s.skipped, s.ignored) == (1, 5, 1)
    report = json.loads((out / "results.json").read_text())
    assert {Path(c["path"]).name for c in report["calls"]} == set(rows)
    assert "not a readable audio file" in (out / "report.html").read_text()
    # skipped files are in the log too: a rerun does not try them again
    again = run_qa(opts(src, out))
    assert (again.analysed, again.skipped, again.done_before) == (0, 0, 6)


def test_bad_command_input(tmp_path):
    with pytest.raises(CoachError, match="no such file"):
        run_qa(opts(tmp_path / "absent", tmp_path / "qa"))
    (tmp_path / "file").write_text("x")
    with pytest.raises(CoachError, match="not a directory"):
        run_qa(opts(SAMPLES, tmp_path / "file"))
    with pytest.raises(CoachError, match="--executor"):
        run_qa(opts(SAMPLES, tmp_path / "qa2", executor="ray://x"))


def test_cli_errors_are_one_line(tmp_path):
    for args, needle in [
        ([str(SAMPLES), "--sample", "0", "--out", str(tmp_path / "o")], "--sample"),
        ([str(tmp_path / "nope"), "--sample", "5", "--out", str(tmp_path / "o")],
         "no such file"),
        ([str(SAMPLES), "--sample", "5", "--out", str(tmp_path / "o"),
          "--agent-channel", "middle"], "agent channel"),
        ([str(SAMPLES), "--sample", "5", "--out", str(tmp_path / "o"), "--agent", "Dana"],
         "store:"),
        ([str(SAMPLES), "--sample", "5", "--out", str(tmp_path / "o"),
          "--executor", "dask:/nowhere"], "dask://HOST:PORT"),
    ]:
        p = subprocess.run([PY, "-m", "coach.qa", *args], capture_output=True, text=True,
                           cwd=ROOT, timeout=120)
        lines = p.stderr.strip().splitlines()
        assert p.returncode == 2, p.stderr
        assert len(lines) == 1 and lines[0].startswith("coach: error: "), p.stderr
        assert needle in lines[0]


def crash_on_named(task):
    """A per-call function for the pool test: the call named "crash" kills its worker."""
    if task.source.call == "crash":
        os._exit(3)
    time.sleep(0.05)
    return {"call": task.source.call, "status": "ok"}, None


def test_a_worker_that_dies_costs_only_its_call():
    from coach.qa.workers import LocalExecutor, Task

    names = ["a", "b", "crash", "c", "d", "e"]
    tasks = [Task(CallSource(f"/x/{n}.vtt", n, "transcript"), n * 64) for n in names]
    ex = LocalExecutor(2, model="tiny.en", threads=1, preload=False, fn=crash_on_named)
    try:
        out = {t.source.call: (res, why) for t, res, why in ex.run(tasks)}
    finally:
        ex.close()
    assert set(out) == set(names)  # every call comes back, once
    assert out["crash"][0] is None and "worker process died" in out["crash"][1]
    assert all(out[n][0][0]["status"] == "ok" for n in names if n != "crash")


# --- the log: resume, duplicates, torn lines -----------------------------------------------

def test_torn_last_line_is_dropped_and_cut(tmp_path):
    log = ResultLog(tmp_path / "results.jsonl")
    log.append({"key": "a", "n": 1})
    log.append({"key": "b", "n": 2})
    log.append({"key": "a", "n": 3})  # a duplicate key never counts twice
    with open(log.path, "ab") as f:
        f.write(b'{"key": "c", "n"')
    rows = log.load()
    assert [(r["key"], r["n"]) for r in rows] == [("a", 1), ("b", 2)]
    assert log.dropped == 1
    assert log.path.read_bytes().endswith(b"}\n")  # the torn piece is gone
    log.append({"key": "c", "n": 4})
    assert [r["key"] for r in ResultLog(log.path).load()] == ["a", "b", "c"]


def test_resume_and_duplicate_content(tmp_path):
    src = tmp_path / "calls"
    src.mkdir()
    for i in range(4):
        (src / f"c{i}.vtt").write_text(long_vtt(6, i))
    (src / "copy_of_c1.vtt").write_text((src / "c1.vtt").read_text())
    out = tmp_path / "qa"
    first = run_qa(opts(src, out, sample=parse_sample("3"), seed=1))
    assert first.sampled == 3
    second = run_qa(opts(src, out, sample=parse_sample("100%"), seed=1))
    rows = log_rows(out)
    keys = [r["key"] for r in rows]
    assert len(keys) == len(set(keys)) == 4  # five files, four contents
    assert second.done_before + first.duplicates == 3
    assert second.duplicates == 1
    report = json.loads((out / "results.json").read_text())
    dup = [c for c in report["calls"] if c["status"] == "skipped"]
    assert len(dup) == 1 and dup[0]["reason"].startswith("same content as ")
    third = run_qa(opts(src, out, sample=parse_sample("100%")))
    assert (third.analysed, third.done_before, third.duplicates) == (0, 4, 1)
    assert len(log_rows(out)) == 4


def session_alive(sid: int) -> bool:
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if os.getsid(int(d.name)) == sid:
                    return True
            except OSError:
                pass
    return False


@pytest.mark.slow
def test_sigkill_midway_then_resume_does_every_call_once(tmp_path):
    src = tmp_path / "calls"
    src.mkdir()
    n = 60
    for i in range(n):
        (src / f"call{i:03d}.vtt").write_text(long_vtt(20, i))
    out = tmp_path / "qa"
    cmd = [PY, "-m", "coach.qa", str(src), "--sample", "100%", "--out", str(out),
           "--workers", "2", "--progress", "off"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    log = out / "results.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if log.exists() and log.read_bytes().count(b"\n") >= 5:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    partial = ResultLog(log).load()
    deadline = time.monotonic() + 10  # the pool's workers die with their parent
    while time.monotonic() < deadline and session_alive(proc.pid):
        time.sleep(0.1)
    assert not session_alive(proc.pid), "orphaned workers"
    assert 5 <= len(partial) < n, "killed midway"
    assert not (out / "report.html").exists() or len(partial) < n
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    rows = log_rows(out)  # every line parses
    names = [Path(r["path"]).name for r in rows]
    assert sorted(names) == sorted(f"call{i:03d}.vtt" for i in range(n))  # each once
    assert f"{len(partial)} already done" in p.stderr or len(partial) == 0
    report = json.loads((out / "results.json").read_text())
    assert len(report["calls"]) == n


# --- fast mode with a fake model ----------------------------------------------------------

class WindowFake:
    """One word per 0.3 s of loud audio in whatever window it is given, named by its
    index in the window: the test checks where the fast path puts each word."""

    def __init__(self, stop_after_s: float | None = None):
        self.calls: list[tuple[int, str]] = []
        self.stop_after_s = stop_after_s  # like Whisper ending a long window early

    def transcribe(self, audio, *, prompt="", prefix="", beam_size=None):
        audio = np.asarray(audio, np.float32)
        self.calls.append((audio.size, prompt))
        loud = np.abs(audio) > 0.01
        step = int(0.3 * SR)
        words = [AsrWord(f" w{i // step}", i / SR, (i + step) / SR)
                 for i in range(0, audio.size - step + 1, step) if loud[i:i + step].mean() > 0.8]
        if self.stop_after_s is not None:
            words = [w for w in words if w.start < self.stop_after_s]
        return AsrResult(tuple(words))


def fast_run(tmp_path, segments, total_s, tx=None, **fast_opts):
    from coach.playbook import load_playbook
    from coach.qa.fast import FastOptions, analyze_fast

    y = speechy(segments, total_s)
    path = tmp_path / "x.wav"
    sf.write(path, np.stack([y, np.zeros_like(y)], axis=1), SR)
    tx = tx or WindowFake()
    events = []
    res = analyze_fast(path, transcriber=tx, make_vad=EnergyVad, playbook=load_playbook(),
                       options=FastOptions(**fast_opts), on_event=events.append)
    return res, events, tx


def test_fast_mode_packs_utterances_and_maps_words_back(tmp_path):
    res, events, tx = fast_run(tmp_path, [(1.0, 3.0), (6.0, 8.0), (11.0, 12.5)], 14.0,
                               window_s=20.0)
    assert len(tx.calls) == 1  # three utterances, one recognition pass
    words = [e for e in events if isinstance(e, Word)]
    assert all(w.final for w in words)
    spans = [(1.0, 3.0), (6.0, 8.0), (11.0, 12.5)]
    for w in words:  # every word lands inside the utterance it was heard in
        assert any(a - 0.6 <= w.start and w.end <= b + 1.1 for a, b in spans), w
    assert sum(1 for w in words if w.start >= 6.0) >= 8
    turns = [e for e in events if isinstance(e, Turn)]
    assert [round(t.start) for t in turns] == [1, 6, 11]
    for t in turns:  # an utterance's words are emitted before its Turn, as live
        mine = [w for w in words if t.start - 0.6 <= w.start <= t.end + 0.1]
        assert mine and max(events.index(w) for w in mine) < events.index(t)
    assert res.summary.words == words


def test_fast_mode_window_limit_and_prompt(tmp_path):
    _, _, tx = fast_run(tmp_path, [(1.0, 6.0), (8.0, 13.0), (15.0, 20.0)], 22.0,
                        window_s=8.0)
    assert len(tx.calls) == 3
    assert all(n <= 8.0 * SR for n, _ in tx.calls)
    # the earlier words of the channel are the next pass's prompt
    assert tx.calls[0][1] == "" and tx.calls[1][1].startswith("w") and tx.calls[2][1]


def test_fast_mode_redoes_utterances_a_pass_left_without_words(tmp_path):
    spans = [(1.0, 3.0), (5.0, 7.0), (9.0, 11.0)]
    tx = WindowFake(stop_after_s=3.0)  # each pass "ends" after 3 s of its window
    res, events, tx = fast_run(tmp_path, spans, 12.0, tx=tx, window_s=20.0)
    words = [e for e in events if isinstance(e, Word)]
    for a, b in spans:  # every utterance got words in the end
        assert any(a - 0.6 <= w.start and w.end <= b + 0.5 for w in words), (a, b)
    # one pass over all three, one over the two left empty, one for the last alone
    assert len(tx.calls) == 3
    assert [w.start for w in words] == sorted(w.start for w in words)


def test_fast_mode_cuts_a_long_utterance_at_a_pause(tmp_path):
    # 26 s of speech with a 0.2 s dip at 12 s: too long for one 15 s window
    res, events, tx = fast_run(tmp_path, [(0.5, 12.0), (12.2, 26.5)], 27.0, window_s=15.0)
    assert len(tx.calls) == 2
    first = tx.calls[0][0] / SR
    assert 11.0 <= first <= 12.4  # cut in the dip, not mid-word
    turns = [e for e in events if isinstance(e, Turn)]
    assert len(turns) == 1  # still one turn for the listener


def test_fast_mode_judges_the_pace_of_one_long_utterance_while_it_is_spoken(tmp_path):
    """18 s of talk at 200 words/min in one breath: live, the words reach the pace cue as
    they are committed, so it fires while the agent talks; the fast path must replay them
    as they were heard, not all at the utterance's end (when the agent is silent again)."""
    from coach.events import Cue

    _, events, _ = fast_run(tmp_path, [(1.0, 19.0)], 22.0, window_s=24.0)
    words = [e for e in events if isinstance(e, Word)]
    assert len(words) >= 55
    paces = [e for e in events if isinstance(e, Cue) and e.id == "pace-fast"]
    assert paces, "no pace-fast on 18 s at 200 wpm"
    assert 7.0 <= paces[0].t <= 19.0  # while the agent was still talking
    assert paces[0].evidence["wpm"] >= 180
    # each word reaches the engine about when it was heard, before the utterance ended
    first_at = next(i for i, e in enumerate(events) if isinstance(e, Word))
    readings_before = [e for e in events[:first_at] if isinstance(e, Prosody)]
    assert readings_before and readings_before[-1].t <= words[0].end + 2.0


# --- real model: a 2-worker pool, Ctrl-C ----------------------------------------------------

@pytest.mark.slow
def test_pool_of_two_on_real_audio_and_sigint(tmp_path):
    src = tmp_path / "calls"
    src.mkdir()
    # six calls on two workers: when the first is done, two are in flight and the rest
    # still wait (with four, a fast machine had all of them running or done by Ctrl-C,
    # and the run then ends normally)
    for name in ("01_owned_and_fixed", "02_every_apology_wrong", "03_frustration_ignored",
                 "04_sorry_on_repeat", "05_silence_overlap_rush", "06_address_change"):
        for ext in (".flac", ".json"):
            os.symlink(SAMPLES / f"{name}{ext}", src / f"{name}{ext}")
    (src / "notes.flac").write_text("not audio")
    out = tmp_path / "qa"
    cmd = [PY, "-m", "coach.qa", str(src), "--sample", "100%", "--out", str(out),
           "--workers", "2", "--progress", "off"]
    # Ctrl-C as at a terminal: a job started in the background by a shell without job
    # control (`cmd &` in a script) inherits SIGINT ignored, and so would the QA run
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    log = out / "results.jsonl"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if log.exists() and sum(1 for r in ResultLog(log).load() if r["status"] == "ok"):
            break
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C at a terminal reaches the whole group
    _, err = proc.communicate(timeout=60)
    done = ResultLog(log).load()
    assert proc.returncode == 130, err  # six calls of ~45-65 s: stopped after the first
    assert "interrupted" in err and "Traceback" not in err
    assert 1 <= len([r for r in done if r["status"] == "ok"]) < 6
    report = json.loads((out / "results.json").read_text())
    assert {c["key"] for c in report["calls"]} == {r["key"] for r in done}
    assert (out / "report.html").is_file() and (out / "results.csv").is_file()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and session_alive(proc.pid):
        time.sleep(0.1)
    assert not session_alive(proc.pid)  # no worker left behind
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    rows = {r["call"]: r for r in log_rows(out)}
    assert len(log_rows(out)) == 7
    assert rows["notes"]["status"] == "skipped"
    ok = {k: v for k, v in rows.items() if v["status"] == "ok"}
    assert len(ok) == 6 and all(v["mode"] == "fast" and v["model"] == "tiny.en"
                                for v in ok.values())
    bad = ok["02_every_apology_wrong"]
    assert {"qualified-apology", "conditional-apology", "blame-shift"} <= set(bad["cue_counts"])
    assert ok["01_owned_and_fixed"]["score"] > bad["score"] + 40
    assert ok["06_address_change"]["problem"] is False
    assert "empathy-shown" in ok["01_owned_and_fixed"]["cue_counts"]


# --- the call store --------------------------------------------------------------------------

@pytest.mark.slow
def test_store_saves_scored_calls_and_serves_as_a_source(tmp_path):
    from coach.store import open_store

    url = f"sqlite:///{tmp_path / 'coach.db'}"
    src = tmp_path / "calls"
    src.mkdir()
    for ext in (".flac", ".json"):
        os.symlink(SAMPLES / f"04_sorry_on_repeat{ext}", src / f"04_sorry_on_repeat{ext}")
    (src / "t.vtt").write_text(BAD_CALL)  # a transcript has no audio to store
    run_qa(opts(src, tmp_path / "qa", save_to_store=True, store_url=url))
    rows = {r["call"]: r for r in log_rows(tmp_path / "qa")}
    row = rows["04_sorry_on_repeat"]
    assert row["status"] == "ok" and row["store_id"]
    assert rows["t"]["store_id"] is None
    with open_store(url) as st:
        call = st.get_call(row["store_id"])
        assert call["score"] == row["score"] and call["words"]
        st.set_score(row["store_id"], None)
    assert (tmp_path / "qa" / "report.html").read_text().count(row["store_id"]) == 0  # no URL
    # the store as SOURCE: scored from the events it was stored with, score written back
    s = run_qa(QaOptions(source="store:", store_url=url, out_dir=tmp_path / "qa2",
                         workers=1, replay_url="http://qa.example:8765"))
    [r2] = log_rows(tmp_path / "qa2")
    assert s.analysed == 1
    assert r2["path"] == r2["key"] == f"store:{row['store_id']}"
    assert r2["store_id"] == row["store_id"] and r2["status"] == "ok"
    assert r2["score"] == row["score"] and r2["mode"] == "stored"  # one score per call
    assert f"http://qa.example:8765/calls/{row['store_id']}" in \
        (tmp_path / "qa2" / "report.html").read_text()
    with open_store(url) as st:
        assert st.get_call(row["store_id"])["score"] == row["score"]
    assert not list((tmp_path / "qa2").glob(".store-audio-*/*"))  # fetched audio removed
    none = run_qa(QaOptions(source="store:", store_url=url, out_dir=tmp_path / "qa3",
                            store_filters={"agent": "nobody"}))
    assert (none.found, none.analysed) == (0, 0)


# --- no speech --------------------------------------------------------------------------------

@pytest.mark.slow
def test_a_silent_recording_is_reported_as_no_speech_not_scored(tmp_path):
    """`coach qa` on a real silent recording (a quiet room hum, 16 kHz stereo FLAC) beside a
    scored transcript: the silent call is analysed, has no score, and stays out of the mean."""
    src = tmp_path / "calls"
    src.mkdir()
    rng = np.random.default_rng(3)
    t = np.arange(20 * 16000) / 16000
    hum = 0.002 * np.sin(2 * np.pi * 50 * t) + 0.0005 * rng.standard_normal(t.size)
    sf.write(src / "hold_silence.flac", np.stack([hum, hum], axis=1).astype(np.float32), 16000)
    (src / "good.vtt").write_text(GOOD_CALL)
    out = tmp_path / "qa"
    proc = subprocess.run([PY, "-m", "coach.qa", str(src), "--sample", "100%",
                           "--out", str(out), "--workers", "1"],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "2 analysed, 1 with no speech (not scored)" in proc.stderr
    rows = {r["call"]: r for r in log_rows(out)}
    quiet = rows["hold_silence"]
    assert quiet["status"] == "no speech" and quiet["score"] is None
    assert quiet["duration_s"] == pytest.approx(20.0, abs=0.1)
    assert quiet["notes"] == ["no agent speech recognised in 20 s of audio"]
    summary = json.loads((out / "results.json").read_text())["summary"]
    assert (summary["scored"], summary["no_speech"], summary["skipped"]) == (1, 1, 0)
    assert summary["mean_score"] == rows["good"]["score"]
    assert sum(summary["score_bins"]) == 1
    page = (out / "report.html").read_text()
    assert "<h2>No speech (1)</h2>" in page and "0:20" in page
