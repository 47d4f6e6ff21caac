"""The speech model's thread count is a choice of speed, never of words: live coaching and
`coach analyze` run two model threads by default, QA's workers one each, and all must hear
a call alike. So is the block size the audio arrives in."""

from __future__ import annotations

import pytest

from coach.cli import main
from coach.events import Cue, Word
from tests.conftest import SAMPLES
from tests.test_cli import one_line_error


@pytest.mark.parametrize("threads", ["0", "-2"])
def test_a_thread_count_below_one_is_a_one_line_error(capsys, threads):
    code = main(["analyze", str(SAMPLES / "04_sorry_on_repeat.flac"), "--threads", threads,
                 "--progress", "off"])
    _, err = capsys.readouterr()
    one_line_error(code, err, "at least one CPU thread", "--threads 1 or more")


@pytest.mark.parametrize("command", ["analyze", "qa"])
def test_analyze_and_qa_word_a_bad_thread_count_alike(capsys, tmp_path, command):
    argv = {"analyze": ["analyze", str(SAMPLES / "04_sorry_on_repeat.flac")],
            "qa": ["qa", str(SAMPLES), "--out", str(tmp_path / "qa")]}[command]
    code = main([*argv, "--threads", "0", "--progress", "off"])
    _, err = capsys.readouterr()
    one_line_error(code, err, "the speech model needs at least one CPU thread, not 0",
                   "--threads 1 or more")
    assert not (tmp_path / "qa").exists()  # refused before any worker or output


@pytest.mark.slow
def test_two_model_threads_hear_a_real_call_as_one_does(data_dir, transcriber, vad):
    from coach.analyze import analyze_file
    from coach.io.whisper import WhisperTranscriber
    from coach.playbook import load_playbook

    wav = data_dir / "calls" / "spokenwoz" / "SNG0072.wav"

    def heard(tx):
        events: list = []
        analyze_file(wav, transcriber=tx, make_vad=vad.shared, playbook=load_playbook(None),
                     agent_channel="right", on_event=events.append)
        words = [(e.speaker, e.text, round(e.start, 3), round(e.end, 3)) for e in events
                 if isinstance(e, Word) and e.final]
        cues = [(e.id, round(e.t, 3)) for e in events if isinstance(e, Cue)]
        return words, cues

    two = heard(transcriber)  # the session's model: the default, two threads
    one = heard(WhisperTranscriber(cpu_threads=1))
    assert len(one[0]) > 100  # a whole call was heard, both sides
    assert {w[0] for w in one[0]} == {"agent", "customer"}
    assert two[0] == one[0]
    assert two[1] == one[1]


@pytest.mark.slow
def test_a_file_read_in_big_blocks_gives_what_live_capture_gave(data_dir, transcriber, vad):
    """Live capture feeds the pipeline 0.1 s blocks, `coach analyze` and QA 0.5 s ones: the
    same events either way, prosody and voice cues included (on this call, on the machine
    it was found on, a pace nudge live raised was missing from the analysis). Only the two
    runs are compared, so recognised words that differ on another CPU do not matter."""
    from coach.analyze import analyze_file
    from coach.playbook import load_playbook

    wav = data_dir / "calls" / "spokenwoz" / "SNG0480.wav"

    def events(block_s: float) -> list[dict]:
        out: list = []
        analyze_file(wav, transcriber=transcriber, make_vad=vad.shared,
                     playbook=load_playbook(None), agent_channel="right",
                     on_event=out.append, block_s=block_s)
        return [e.to_dict() for e in out]

    live, analysed = events(0.1), events(0.5)
    assert sum(e["type"] == "prosody" for e in live) > 100
    assert any(e["type"] == "prosody" and e.get("wpm") for e in live)  # pace was read
    assert analysed == live


def test_the_cli_default_is_the_models_default() -> None:
    from coach import cli
    from coach.io.whisper import DEFAULT_THREADS

    assert cli._DEFAULT_THREADS == DEFAULT_THREADS
    assert cli._build_parser().parse_args(["analyze", "x.wav"]).threads == DEFAULT_THREADS
