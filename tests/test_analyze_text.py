"""What `coach analyze` (text) and the `coach live` terminal print for cues: evidence in
words with units, a summary with labels (no model: built from events)."""

from __future__ import annotations

import io

from coach.analyze import AnalysisResult, format_text
from coach.cli import _TerminalPrinter
from coach.events import Cue, Prosody, Turn, Word
from coach.summary import CallSummary

PACE = Cue("pace-fast", 51.0, "agent", "nudge", "Slow down", "Ease off.",
           {"wpm": 191.3, "over_s": 15.24, "threshold_wpm": 175.0, "baseline_wpm": None})
BUT = Cue("qualified-apology", 42.6, "agent", "warn", "Avoid the \"but\"", "Let it stand.",
          {"words": [{"text": "sorry,", "start": 42.1, "end": 42.4},
                     {"text": "but", "start": 42.4, "end": 42.6}]})
FOLLOW = Cue("no-follow-up", 60.0, "agent", "nudge", "Confirm the follow-up", "Say when.",
             {"words": [{"text": "sorry,", "start": 42.1, "end": 42.4}],
              "problem_words": [{"text": "still", "start": 3.0, "end": 3.2},
                                {"text": "broken", "start": 3.2, "end": 3.6}]})


def _result() -> AnalysisResult:
    s = CallSummary(duration_s=61.0)
    for e in [Word("agent", "I'm", 41.8, 42.1, True), Word("agent", "sorry,", 42.1, 42.4, True),
              Word("agent", "but", 42.4, 42.6, True), Turn("agent", 41.8, 50.0),
              Turn("customer", 2.0, 6.0),
              Prosody("agent", 45.0, 120.0, -20.0, 190.0), BUT, PACE, FOLLOW]:
        s.add(e)
    return AnalysisResult("call.wav", 61.0, "agent = channel 1, customer = channel 2 of 2", 16000, s, [])


def test_analyze_text_words_and_figures_read_like_text():
    out = io.StringIO()
    format_text(_result(), out)
    text = out.getvalue()
    assert "evidence: “sorry, but” at 0:42" in text
    assert "evidence: pace 191 words/min, over 15.2 s, limit 175 words/min" in text
    assert "evidence: “sorry,” at 0:42; the problem: “still broken” at 0:03" in text
    assert ("cues: Confirm the follow-up (no-follow-up), Slow down (pace-fast), "
            "Avoid the \"but\" (qualified-apology)") in text
    assert "talk time: agent 8 s (67 % of the talk), customer 4 s" in text
    for raw in ("None", "x1", "{'", "baseline_wpm", "problem_words", "agent_talk_s"):
        assert raw not in text, raw


def test_live_terminal_prints_the_evidence_under_each_cue():
    out = io.StringIO()
    printer = _TerminalPrinter(out)
    printer(PACE)
    printer(BUT)
    lines = out.getvalue().splitlines()
    assert "Slow down" in lines[0] and lines[1].strip() == (
        "pace 191 words/min, over 15.2 s, limit 175 words/min")
    assert lines[3].strip() == "“sorry, but” at 0:42"
    assert "None" not in out.getvalue()
