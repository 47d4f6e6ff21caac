"""The pipeline's wiring: retractions pass through like cues; playbook hotwords reach the model."""

from __future__ import annotations

import numpy as np

from coach.asr import StreamingOptions
from coach.events import Retraction
from coach.pipeline import Pipeline, PipelineOptions
from coach.playbook import load_playbook
from tests.fakes import SR, EnergyVad, ScriptedTranscriber, speechy


def test_retractions_from_the_cue_engine_pass_through_like_cues():
    sig = speechy([(0.5, 2.0)], 3.0)
    pipe = Pipeline(ScriptedTranscriber(sig), EnergyVad, load_playbook())
    withdrawn = Retraction("qualified-apology", 1.2, 2.0, "the fix followed at once")

    class Engine:
        def feed(self, e):
            return []

        def advance(self, t):
            return [withdrawn] if abs(t - 2.0) < 1e-9 else []

        def flush(self, t):
            return [Retraction("no-action", 2.5, t, "a fix was offered")]

    pipe.cues = Engine()
    out = pipe.start()
    for i in range(0, len(sig), SR // 10):
        out += pipe.feed(sig[i:i + SR // 10], np.zeros(SR // 10, np.float32))
    out += pipe.finish()
    got = [e for e in out if isinstance(e, Retraction)]
    assert [r.id for r in got] == ["qualified-apology", "no-action"]
    assert got[0].to_dict()["type"] == "retract"


def test_playbook_hotwords_reach_the_model_prompt(tmp_path):
    sig = speechy([(0.5, 3.0), (4.5, 6.0)], 7.0)
    assert load_playbook().hotwords == ()  # none by default (measured: no gain)
    team = tmp_path / "team.yaml"
    team.write_text("hotwords: [sorry, apologise, my bad, bummer]\n")
    pb = load_playbook(team)

    def prompts(playbook, policy="sure"):
        tx = ScriptedTranscriber(sig)
        pipe = Pipeline(tx, EnergyVad, playbook, customer_channel=False, options=PipelineOptions(
            streaming=StreamingOptions.for_policy(policy)))
        for i in range(0, len(sig), SR // 10):
            pipe.feed(sig[i:i + SR // 10])
        pipe.finish()
        return [c[1] for c in tx.calls]

    got = prompts(pb)
    assert got and all(p.startswith("sorry, apologise") for p in got)
    assert all(p.startswith("sorry, apologise") for p in prompts(pb, "agreement"))
    # the committed words of earlier utterances follow the hint
    assert any(p.startswith(", ".join(pb.hotwords) + ". w") for p in got)
    plus = tmp_path / "plus.yaml"
    plus.write_text("hotwords+: [gutted, depot]\n")
    assert all(p.startswith("gutted, depot.") for p in prompts(load_playbook(plus)))
    assert not any("gutted" in p for p in prompts(load_playbook()))
    team.write_text("hotwords: [warranty]\n")
    assert load_playbook(team).hotwords == ("warranty",)
    assert all(p.startswith("warranty.") for p in prompts(load_playbook(team)))
    team.write_text("hotwords: sorry\n")
    import pytest

    from coach.errors import PlaybookError

    with pytest.raises(PlaybookError, match="team.yaml:1: hotwords must be a list"):
        load_playbook(team)


def test_help_states_the_default_streaming_policy(capsys):
    import pytest

    from coach.asr import DEFAULT_POLICY
    from coach.cli import main

    for cmd in ("analyze", "live"):
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        out = " ".join(capsys.readouterr().out.split())
        assert f"(default: {DEFAULT_POLICY})" in out, cmd


def test_under_early_the_customers_side_is_read_once_per_utterance_the_agents_streams():
    """The default policy streams the agent's words (cues while they speak) and reads each
    customer utterance in one pass at its end: same words, a fraction of the passes."""
    talk = speechy([(0.5, 5.5)], 7.0)
    quiet = np.zeros_like(talk)

    def passes(policy: str, *, customer_speaks: bool) -> tuple[int, list[str]]:
        tx = ScriptedTranscriber(talk)
        pipe = Pipeline(tx, EnergyVad, load_playbook(), options=PipelineOptions(
            streaming=StreamingOptions.for_policy(policy)))
        agent, customer = (quiet, talk) if customer_speaks else (talk, quiet)
        out = pipe.start()
        for i in range(0, len(talk), SR // 10):
            out += pipe.feed(agent[i:i + SR // 10], customer[i:i + SR // 10])
        out += pipe.finish()
        words = [e.text for e in out if getattr(e, "final", False)]
        return len(tx.calls), words

    n_customer, words_customer = passes("early", customer_speaks=True)
    n_streamed, words_streamed = passes("agreement", customer_speaks=True)
    n_agent, _ = passes("early", customer_speaks=False)
    assert n_customer == 1 and n_streamed >= 4  # one pass at the utterance's end
    assert n_agent >= 4  # the agent's side still streams
    assert words_customer == words_streamed and len(words_customer) >= 10


def test_blocks_of_any_size_and_a_short_customer_block_give_the_same_events():
    """Blocks are worked through in 0.1 s steps whatever their size; a customer block
    shorter than the agent's is silence to its end, a longer one is cut to it."""
    sig = speechy([(0.5, 2.0), (3.0, 4.5)], 5.23)

    def run(sizes, customer_for):
        pipe = Pipeline(ScriptedTranscriber(sig), EnergyVad, load_playbook())
        out, i, k = pipe.start(), 0, 0
        while i < len(sig):
            n = sizes[k % len(sizes)]
            out += pipe.feed(sig[i:i + n], customer_for(n))
            i, k = i + n, k + 1
        out += pipe.finish()
        return [e.to_dict() for e in out], pipe.now

    live, t = run([SR // 10], lambda n: np.zeros(n, np.float32))
    assert t == len(sig) / SR  # the last part of a step is worked through at the end
    assert any(e["type"] == "word" for e in live) and any(e["type"] == "prosody" for e in live)
    assert run([777, 8000, 123], lambda n: np.zeros(n, np.float32))[0] == live
    assert run([SR // 2], lambda n: np.zeros(n // 2, np.float32))[0] == live
    assert run([SR // 2], lambda n: np.zeros(n + 50, np.float32))[0] == live
    assert run([SR // 3], lambda n: None)[0] == live
