"""The evidence formatter: what a person reads for a cue's evidence (pure, no I/O)."""

from __future__ import annotations

import doctest
import re

import pytest

from coach import evidence
from coach.evidence import KNOWN, clock, describe, figures, quote_words
from tests.conftest import ROOT


def w(text: str, start: float, end: float | None = None) -> dict:
    return {"text": text, "start": start, "end": start + 0.3 if end is None else end}


def test_module_examples_hold():
    assert doctest.testmod(evidence).failed == 0


def test_words_quoted_as_words_with_their_time():
    assert describe({"words": [w("sorry,", 42.1), w("but", 42.4)]}) == "“sorry, but” at 0:42"


def test_words_far_apart_are_quoted_separately_in_time_order():
    ev = {"words": [w("sorry", 30.2), w("so", 30.0), w("sorry", 12.0)]}
    assert describe(ev) == "“sorry” at 0:12, “so sorry” at 0:30"


def test_a_withdrawn_cue_says_when_and_why_in_words():
    ev = {"words": [w("sorry", 4.0), w("but", 4.3)],
          "withdrawn": {"at": 63.5, "reason": "the agent fixed it straight after"}}
    assert describe(ev) == "“sorry but” at 0:04; withdrawn at 1:03: the agent fixed it straight after"
    assert describe({"withdrawn": {"at": None, "reason": ""}}) == "withdrawn"
    assert describe({"withdrawn": {"at": 2.0}}) == "withdrawn at 0:02"


def test_clock():
    assert clock(0) == "0:00"
    assert clock(42.9) == "0:42"
    assert clock(3725.2) == "1:02:05"
    assert clock(-3) == "0:00"


def test_pace_figures_have_labels_and_units_and_no_none():
    text = describe({"wpm": 191.34, "word_count": 45, "over_s": 15.24,
                     "threshold_wpm": 175.0, "baseline_wpm": None})
    assert text == "pace 191 words/min, 45 words, over 15.2 s, limit 175 words/min"


@pytest.mark.parametrize("ev, cue_id, expected", [
    ({"median_f0_hz": 240.3, "baseline_f0_hz": 190.0, "rise": 0.263}, "tone-tense",
     "pitch 240 Hz, usual pitch 190 Hz, 26 % above usual"),
    ({"median_loudness_db": -14.04, "baseline_loudness_db": -21.5}, "volume-loud",
     "level -14 dB, usual level -21.5 dB"),
    ({"f0_sd_st": 1.234, "readings": 20}, "tone-flat",
     "pitch variation 1.2 semitones, 20 readings"),
    ({"silence_from": 61.2, "silence_s": 8.4}, "dead-air", "silent from 1:01, 8.4 s of silence"),
    ({"agent_start": 61.2, "customer_start": 60.0, "overlap_s": 1.3}, "talk-over",
     "agent started at 1:01, customer talking since 1:00, both talking for 1.3 s"),
    ({"talk_from": 61.2, "talk_s": 40.0}, "monologue", "agent talking from 1:01, 40 s of agent talk"),
    ({"words": [w("sorry", 12)], "count": 3, "window_speech_s": 60.0}, "over-apology",
     "“sorry” at 0:12; 3 apologies, within 60 s of agent speech"),
    ({"words": [w("sorry", 12)], "window_end": 27.5, "agent_speech_s": 15.0}, "no-action",
     "“sorry” at 0:12; no fix offered by 0:27, 15 s of agent speech after it"),
    ({"words": [w("ridiculous", 62)], "f0_hz": 250.0, "baseline_f0_hz": 200.0,
      "response_window": [63.0, 75.0]}, "name-frustration",
     "“ridiculous” at 1:02; customer's pitch 250 Hz, their usual 200 Hz, "
     "not acknowledged in the reply 1:03–1:15"),
    ({"words": [w("ridiculous", 62)], "reply_from_s": 63.0, "reply_to_s": 75.2},
     "name-frustration",
     "“ridiculous” at 1:02; not acknowledged in the reply from 1:03, to 1:15"),
    ({"words": [w("sorry", 12)], "problem_words": [w("still", 3), w("broken", 3.3)]},
     "no-follow-up", "“sorry” at 0:12; the problem: “still broken” at 0:03"),
    ({"words": [w("Oops.", 36)], "downgraded_from": "warn"}, "casual-apology",
     "“Oops.” at 0:36; shown as a nudge: another warning was on screen"),
])
def test_todays_cue_evidence_reads_like_a_sentence(ev, cue_id, expected):
    assert describe(ev, cue_id=cue_id) == expected


@pytest.mark.parametrize("key, value, expected", [
    ("pause_s", 2.25, "pause 2.2 s"),
    ("syllable_rate_hz", 4.31, "syllable rate 4.3 Hz"),
    ("peak_f0_hz", 312.4, "peak f0 312 Hz"),
    ("gain_db", 3.04, "gain 3 dB"),
    ("audio_wpm", 160.2, "audio 160 words/min"),
    ("spread_st", 2.46, "spread 2.5 semitones"),
    ("pitch_rise", 0.3, "pitch rise 30 %"),
    ("share_pct", 0.55, "share 55 %"),
    ("peak_at", 75.2, "peak at 1:15"),
    ("echo_words", [w("sorry", 5)], "echo: “sorry” at 0:05"),
    ("late_words", [w("sorry", 5)], "late: “sorry” at 0:05"),
    ("reason", "device lost", "reason: device lost"),
    ("confirmed", True, "confirmed: yes"),
    ("ratio", 1.5, "ratio 1.5"),
    ("turns", 4, "turns 4"),
    ("span", [10.0, 20.0], "span 0:10–0:20"),
])
def test_unknown_keys_read_from_their_suffix(key, value, expected):
    assert key not in KNOWN
    assert figures({key: value}) == [expected]


@pytest.mark.parametrize("value", [None, float("nan"), float("inf"), "", [], {}, False])
def test_missing_values_are_left_out(value):
    assert describe({"something_s": value}) == "" or value is False
    assert "None" not in describe({"baseline_wpm": value, "wpm": 150})
    assert "nan" not in describe({"baseline_wpm": value, "wpm": 150}).lower()


def test_never_a_python_repr_whatever_the_engine_sends():
    ev = {"words": [w("sorry", 1), {"bogus": 1}, "text"], "nested": {"a_s": 1.0, "b": None},
          "mixed": [1, "x", None, {"k": 1}], "problem_words": [w("late", 2)],
          "baseline_wpm": None, "odd": object()}
    text = describe(ev)
    for repr_bit in ("{", "}", "[", "]", "None", "'text'", "<object"):
        assert repr_bit not in text, text
    assert "“sorry” at 0:01" in text and "“late” at 0:02" in text


def _emitted_keys() -> set[str]:
    """Evidence keys written as literals in the cue engine (coach/cues.py or the coach/cues/
    package): dicts passed to ``emit``/``frustrated`` calls, dicts assigned to ``ev`` or
    ``evidence``, and ``ev[...] =`` stores (read with ``ast``: layout does not matter)."""
    import ast
    from pathlib import Path

    root = Path(evidence.__file__).parent
    files = [root / "cues.py"] if (root / "cues.py").is_file() else sorted(
        (root / "cues").glob("*.py"))
    names = {"ev", "evidence"}
    keys: set[str] = set()
    for f in files:
        for node in ast.walk(ast.parse(f.read_text())):
            dicts = []
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "").lstrip("_") in (
                    "emit", "frustrated", "raise"):
                dicts = [a for a in node.args if isinstance(a, ast.Dict)]
            elif isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.Dict):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if any(getattr(t, "id", "") in names for t in targets):
                    dicts = [node.value]
            elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store):
                if isinstance(node.slice, ast.Constant) and getattr(node.value, "id", "") in names:
                    keys.add(node.slice.value)
            for d in dicts:
                keys |= {k.value for k in d.keys if isinstance(k, ast.Constant)}
    return keys


def test_every_key_the_cue_engine_emits_has_a_label_and_unit():
    keys = _emitted_keys()
    if not keys:
        pytest.skip("the cue engine no longer emits through emit(...): nothing to read")
    for key in keys:
        label, kind = evidence._kind(key)
        assert key in KNOWN or kind != "number", f"evidence key {key!r} has no label or unit"


SCRIPTS = sorted((ROOT / "audio_samples" / "scripts").glob("*.yaml")) + sorted(
    (ROOT / "tests" / "scripts").glob("*.yaml"))


def test_every_cue_of_every_call_script_reads_cleanly():
    """The real cue engine over every call script: each cue's evidence says something, in
    words, with no raw keys, reprs or missing values."""
    from coach.playbook import load_playbook
    from coach.scripted import load_script, run_engine, script_events

    pb = load_playbook()
    seen = set()
    for path in SCRIPTS:
        for cue in run_engine(script_events(load_script(path)), pb):
            text = describe(cue.evidence, cue_id=cue.id)
            seen.add(cue.id)
            assert text, (path.name, cue.id, cue.evidence)
            for bad in ("None", "nan", "{", "[", "_", "'text'"):
                assert bad not in text, (path.name, cue.id, text)
            if cue.evidence.get("words"):
                assert re.search(r"“[^”]+” at \d+:\d\d", text), text
    assert len(seen) >= 8, seen  # the scripts exercise most cues


def test_quote_words_ignores_junk_and_empty_words():
    assert quote_words([w(" ", 1), {"text": "x"}, w("yes", 2)]) == "“yes” at 0:02"
    assert describe(None) == "" and describe({}) == ""


@pytest.mark.parametrize("ev, withdrawn, said", [
    ({"words": [], "withdrawn": {"at": 12.5, "reason": "the agent fixed it"}}, True,
     "at 0:12: the agent fixed it"),
    ({"words": [], "withdrawn": {}}, True, ""),  # no when or why: still withdrawn
    ({"words": []}, False, None),
    (None, False, None),
    ("withdrawn", False, None),  # junk where a dict belongs is not a withdrawal
])
def test_a_withdrawal_is_the_key_whatever_it_holds(ev, withdrawn, said):
    assert evidence.is_withdrawn(ev) is withdrawn
    standing, text = evidence.split_withdrawn(ev)
    assert text == said
    assert "withdrawn" not in standing
