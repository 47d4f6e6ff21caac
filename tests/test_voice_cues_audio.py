"""Voice cues through audio (issue 9, item 7): rendered calls whose agent's pitch or level
rises after a calm start raise ``tone-tense`` / ``volume-loud`` after the rise and not
before; a real SpokenWOZ call raises neither. Real parts: espeak-ng or flite, Silero VAD,
faster-whisper (one pass per utterance, the pipeline's finals-only mode: the voice cues do
not depend on the words), prosody and the cue engine. About 40 s on 2 quiet cores."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.judge_audio import SPOKENWOZ, Analyser
from bench.judge_bench import surviving
from bench.voice_calls import engines, rise_call
from coach.playbook import load_playbook

pytestmark = pytest.mark.slow
VOICE = ("tone-tense", "volume-loud")


@pytest.fixture(scope="module")
def analyser() -> Analyser:
    return Analyser(load_playbook(), finals_only=True)


@pytest.fixture(scope="module")
def engine() -> str:
    have = engines()
    if not have:
        pytest.skip("neither espeak-ng nor flite is installed")
    return "flite" if "flite" in have else have[0]


def voice_cues(analyser: Analyser, path: Path, agent_channel: str = "left") -> list:
    events, _ = analyser.events(path, agent_channel)
    return [c for c in surviving(events) if c.id in VOICE]


@pytest.mark.parametrize("kind,cue", [("pitch", "tone-tense"), ("loud", "volume-loud")])
def test_a_rising_voice_raises_its_cue_after_the_rise(analyser, engine, tmp_path, kind, cue):
    path, rise = rise_call(kind, engine, tmp_path)
    got = voice_cues(analyser, path)
    assert {c.id for c in got} == {cue}, [(c.id, c.t) for c in got]
    early = [round(c.t, 1) for c in got if c.t < rise]
    assert not early, f"{cue} at {early} s, before the rise at {rise:.1f} s"


def test_a_real_call_raises_no_voice_cue(analyser):
    call = SPOKENWOZ / "SNG0072.wav"
    if not call.exists():
        pytest.skip(f"{call} is not available")
    assert voice_cues(analyser, call, agent_channel="right") == []
