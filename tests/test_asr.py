from __future__ import annotations

import numpy as np
import pytest

from coach.asr import StreamingOptions, StreamingRecognizer
from coach.events import Activity, Turn, Word
from tests.fakes import SR, EnergyVad, ScriptedTranscriber, speechy


def run(signal, transcriber, *, block_s=0.37, policy="sure", **opts):
    rec = StreamingRecognizer("agent", transcriber, EnergyVad(),
                              options=StreamingOptions.for_policy(policy, **opts))
    events = []
    b = int(block_s * SR)
    for i in range(0, len(signal), b):
        events += rec.feed(signal[i:i + b])
    events += rec.flush()
    return rec, events


def finals(events):
    return [e for e in events if isinstance(e, Word) and e.final]


def test_committed_words_are_complete_ordered_and_never_flicker():
    sig = speechy([(1.0, 5.5), (7.0, 9.4)], 11.0)
    tx = ScriptedTranscriber(sig)
    rec, events = run(sig, tx)
    words = finals(events)
    texts = [w.text for w in words]
    assert all(not t.endswith("x") for t in texts), texts  # flickering tails never committed
    # every 0.3 s word of both utterances committed exactly once, in order
    assert len(texts) == len(set(texts))
    assert len(texts) >= 20
    starts = [w.start for w in words]
    assert starts == sorted(starts)
    assert all(w.end >= w.start for w in words)
    # absolute times: the first word is near 1.0 s, words of the 2nd utterance after 7 s
    assert 0.7 <= words[0].start <= 1.3
    assert any(w.start >= 7.0 for w in words)


def test_words_commit_before_utterance_end_by_agreement():
    sig = speechy([(0.5, 8.5)], 10.0)
    tx = ScriptedTranscriber(sig)
    rec, events = run(sig, tx)
    end_turn = next(e for e in events if isinstance(e, Turn))
    idx_turn = events.index(end_turn)
    early = [e for e in events[:idx_turn] if isinstance(e, Word) and e.final]
    # most words were committed while the speaker was still talking
    assert len(early) >= 10
    partials = [e for e in events if isinstance(e, Word) and not e.final]
    assert partials, "a partial tail is reported between passes"


def test_passes_follow_audio_time_not_block_size():
    sig = speechy([(0.5, 6.5)], 8.0)
    a = ScriptedTranscriber(sig)
    b = ScriptedTranscriber(sig)
    _, ea = run(sig, a, block_s=0.1)
    _, eb = run(sig, b, block_s=1.3)
    assert [c[0] for c in a.calls] == [c[0] for c in b.calls]
    assert [w.text for w in finals(ea)] == [w.text for w in finals(eb)]
    step = StreamingOptions.for_policy("sure").step_s  # ~one pass per step of speech plus the final one
    assert 6 / step - 1 <= len(a.calls) <= 6 / step + 3


def test_silence_never_reaches_the_model():
    sig = np.zeros(10 * SR, np.float32)
    tx = ScriptedTranscriber(sig)
    _, events = run(sig, tx)
    assert tx.calls == []
    assert events == []


def test_quiet_noise_is_gated_by_energy():
    rng = np.random.default_rng(0)
    sig = (rng.standard_normal(5 * SR) * 1e-4).astype(np.float32)  # -80 dBFS hiss

    class AlwaysSpeech(EnergyVad):
        def probs(self, audio):
            return np.ones(len(audio) // 512, np.float32)

    tx = ScriptedTranscriber(sig)
    rec = StreamingRecognizer("agent", tx, AlwaysSpeech())
    events = rec.feed(sig) + rec.flush()
    assert tx.calls == [] and events == []


def test_hallucinated_pass_is_dropped():
    sig = speechy([(1.0, 3.0)], 4.0)
    tx = ScriptedTranscriber(sig, hallucinate=True)
    _, events = run(sig, tx)
    assert tx.calls, "speech was sent to the model"
    assert finals(events) == []
    assert any(isinstance(e, Turn) for e in events)


def test_buffer_stays_bounded_on_a_long_monologue():
    sig = speechy([(0.5, 60.0)], 61.0)
    tx = ScriptedTranscriber(sig)
    _, events = run(sig, tx, max_buffer_s=6.0)
    longest = max(c[0] for c in tx.calls) / SR
    assert longest <= 6.0 + 1.0
    texts = [w.text for w in finals(events)]
    assert len(texts) == len(set(texts)) and len(texts) >= 150
    # the committed text before the buffer is given as a short prompt
    assert any(c[1] for c in tx.calls)
    assert max(len(c[1].split()) for c in tx.calls) <= StreamingOptions().prompt_words


def test_committed_words_are_forced_as_prefix():
    sig = speechy([(0.5, 6.0)], 7.0)
    tx = ScriptedTranscriber(sig)
    run(sig, tx)
    prefixes = [c[2] for c in tx.calls]
    assert any(p.startswith("w") for p in prefixes)


def test_activity_and_turn_events_bracket_speech():
    sig = speechy([(1.0, 3.0), (5.0, 6.0)], 8.0)
    tx = ScriptedTranscriber(sig)
    _, events = run(sig, tx)
    acts = [e for e in events if isinstance(e, Activity)]
    assert [a.speaking for a in acts] == [True, False, True, False]
    assert acts[0].t == pytest.approx(1.0, abs=0.25)
    assert acts[1].t == pytest.approx(3.0, abs=0.1)
    turns = [e for e in events if isinstance(e, Turn)]
    assert len(turns) == 2 and turns[1].start == pytest.approx(5.0, abs=0.25)


def test_finals_only_makes_one_pass_per_utterance():
    sig = speechy([(1.0, 4.0), (6.0, 9.0)], 10.0)
    tx = ScriptedTranscriber(sig)
    _, events = run(sig, tx, finals_only=True)
    assert len(tx.calls) == 2
    assert not [e for e in events if isinstance(e, Word) and not e.final]
    assert len(finals(events)) >= 15


def _words(text):
    from coach.asr_types import AsrWord

    return [AsrWord(" " + t, i * 0.3, i * 0.3 + 0.3) for i, t in enumerate(text.split())]


def test_loop_is_cut_where_it_starts_repeating():
    from coach.asr import _loop_start

    looped = _words("Anything else I can assist with? Anything else I can assist with? Anything")
    assert _loop_start(looped) == 6
    assert _loop_start(_words("thank you thank you thank you thank")) == 2
    assert _loop_start(_words("okay bye bye")) is None
    assert _loop_start(_words("no, no, that is fine")) is None
    assert _loop_start(_words("the order the order was late")) is None


def test_looping_pass_keeps_its_first_instance():
    from coach.asr_types import AsrResult

    sig = speechy([(1.0, 3.0)], 4.0)

    class Looper:
        def transcribe(self, audio, *, prompt="", prefix="", beam_size=None):
            # a forced prefix comes back first: here it is always the loop's own start
            ws = _words("Anything else I can assist with? " * 6)
            return AsrResult(tuple(ws), compression_ratio=4.0)

    _, events = run(sig, Looper())
    texts = [w.text for w in finals(events)]
    assert texts == ["Anything", "else", "I", "can", "assist", "with?"]


def test_restarted_or_echoed_text_after_the_prefix_is_dropped():
    from coach.asr import _drop_replay

    def texts(ws):
        return " ".join(w.text.strip() for w in ws)

    committed = [Word("agent", t, i, i + 0.3, True)
                 for i, t in enumerate("Okay, there will be two at seven".split())]
    # the decoder starts the buffer over after finishing the sentence
    replay = _words("on Sunday, is it correct? Okay, there will be two at")
    assert texts(_drop_replay(committed, replay)) == "on Sunday, is it correct?"
    # or replays it from the very first new word
    assert texts(_drop_replay(committed, _words("Okay, there will be"))) == ""
    # with nothing committed, a pass that says its text twice keeps it once
    assert texts(_drop_replay([], _words("Okay, what date exactly? Okay, what"))) == \
        "Okay, what date exactly?"
    # an echo of the last committed words is dropped, what follows is kept
    assert texts(_drop_replay(committed, _words("at seven on Sunday"))) == "on Sunday"
    assert texts(_drop_replay(committed, _words("on Sunday"))) == "on Sunday"
    assert texts(_drop_replay(committed[:1], _words("Okay, anything else?"))) == \
        "Okay, anything else?"


def test_a_phrase_said_twice_in_a_row_is_kept_once():
    from coach.asr import _repeat_cut

    committed = [Word("agent", t, i, i + 0.3, True)
                 for i, t in enumerate("I can walk you through it.".split())]
    new = _words("So if you want I can walk you through it. So if you want I can walk you")
    # the period is "I can walk you through it. So if you want": said once, then again
    assert _repeat_cut(committed, new) == 4
    assert _repeat_cut([], _words("Go ahead and hold both buttons. Go ahead and hold both buttons.")) == 6
    assert _repeat_cut(committed, _words("Thank you, thank you.")) == 4  # short: real speech
    assert _repeat_cut([], _words("the order the order was late")) == 6


def _passes_before_first_commit(tx, sig, policy="agreement"):
    rec = StreamingRecognizer("agent", tx, EnergyVad(),
                              options=StreamingOptions.for_policy(policy))
    for i in range(0, len(sig), 1600):
        if any(isinstance(e, Word) and e.final for e in rec.feed(sig[i:i + 1600])):
            return len(tx.calls)
    return None


def test_unsure_words_wait_for_context_after_them():
    from coach.asr_types import AsrResult, AsrWord

    sig = speechy([(0.5, 6.5)], 8.0)

    class Unsure(ScriptedTranscriber):
        def transcribe(self, audio, *, prompt="", prefix="", beam_size=None):
            r = super().transcribe(audio, prompt=prompt, prefix=prefix)
            return AsrResult(tuple(AsrWord(w.text, w.start, w.end, 0.2) for w in r.words))

    sure = _passes_before_first_commit(ScriptedTranscriber(sig, flicker=False), sig)
    unsure = _passes_before_first_commit(Unsure(sig, flicker=False), sig)
    assert sure == 2  # LocalAgreement-2
    # unsure words wait until the agreeing passes have heard unsure_context_s after them
    assert unsure == sure + round(StreamingOptions().unsure_context_s) - 1
    _, events = run(sig, Unsure(sig, flicker=False), policy="agreement")
    assert len(finals(events)) >= 15
    # under the "sure" policy the same unsure words fall back on agreement, never on one pass
    assert _passes_before_first_commit(Unsure(sig, flicker=False), sig, "sure") > 2


def test_sure_words_commit_from_one_pass_safely_before_the_edge():
    sig = speechy([(0.5, 6.5)], 8.0)
    def first_commit_time(policy):
        rec = StreamingRecognizer("agent", ScriptedTranscriber(sig, flicker=False), EnergyVad(),
                                  options=StreamingOptions.for_policy(policy))
        for i in range(0, len(sig), 512):
            if any(isinstance(e, Word) and e.final for e in rec.feed(sig[i:i + 512])):
                return rec.now

    # the first word (0.5-0.8 s) is committed by the first pass that hears guard_s after
    # it, well before two 1 s passes could agree on it
    assert first_commit_time("sure") <= 0.8 + 0.3 + 0.5 + 0.05
    assert first_commit_time("sure") + 0.7 < first_commit_time("agreement")
    o = StreamingOptions.for_policy("sure")
    rec = StreamingRecognizer("agent", ScriptedTranscriber(sig, flicker=False), EnergyVad(),
                              options=o)
    for i in range(0, len(sig), 1600):
        for e in rec.feed(sig[i:i + 1600]):
            if isinstance(e, Word) and e.final and rec.speaking:
                # committed before the utterance ended: heard for guard_s after its end
                assert e.end <= rec.now - o.guard_s + 1e-6, (e, rec.now)
    # latency in audio time: every word of the monologue is committed within
    # guard + one step + a VAD frame of its end, while the speaker is still talking
    rec = StreamingRecognizer("agent", ScriptedTranscriber(sig, flicker=False), EnergyVad(),
                              options=o)
    lat = []
    for i in range(0, len(sig), 512):
        lat += [rec.now - e.end for e in rec.feed(sig[i:i + 512])
                if isinstance(e, Word) and e.final and e.end < 6.0]
    assert lat and max(lat) <= o.guard_s + o.step_s + 0.3 + 0.05, max(lat)


def test_greedy_intermediate_passes_keep_the_beam_for_the_final_pass():
    from coach.asr_types import AsrResult, AsrWord

    sig = speechy([(0.5, 4.0)], 6.0)

    class LastUnsure(ScriptedTranscriber):  # the tail never settles: a final pass is needed
        def transcribe(self, audio, **kw):
            r = super().transcribe(audio, **kw)
            if not r.words:
                return r
            w = r.words[-1]
            return AsrResult(r.words[:-1] + (AsrWord(w.text, w.start, w.end, 0.3),))

    tx = LastUnsure(sig, flicker=False)
    run(sig, tx, partial_beam=1)
    assert tx.beams[-1] is None and set(tx.beams[:-1]) == {1}
    tx = LastUnsure(sig, flicker=False)
    run(sig, tx)
    assert set(tx.beams) == {None}  # by default every pass uses the model's beam
    old = ScriptedTranscriber(sig)
    run(sig, old, policy="agreement")
    assert set(old.beams) == {None}  # the earlier policy: the model's beam on every pass


def test_no_pass_once_everything_heard_is_committed():
    # after the last word, one pass that hears guard_s of silence commits it; the rest of
    # the end-of-utterance silence (and the final pass) would only re-decode the same text
    sig = speechy([(0.5, 4.0)], 7.0)
    o = StreamingOptions.for_policy("sure")
    tx = ScriptedTranscriber(sig, flicker=False)
    rec = StreamingRecognizer("agent", tx, EnergyVad(), options=o)
    times = []
    for i in range(0, len(sig), 512):
        n = len(tx.calls)
        rec.feed(sig[i:i + 512])
        times += [rec.now] * (len(tx.calls) - n)
    rec.flush()
    after = [t for t in times if t > 4.0]
    assert len(after) == 1 and after[0] <= 4.0 + o.guard_s + o.step_s + 0.05, times
    assert len(times) == len(tx.calls)  # no final pass either


def test_no_phrase_is_committed_twice_across_trims_and_utterances():
    # the decoder reads the prompt's last words again after each trim and at each new
    # utterance (the failure seen on a real call: a sentence committed twice)
    sig = speechy([(0.5, 20.0), (21.5, 25.0), (26.5, 30.0)], 31.0)
    for policy in ("sure", "agreement"):
        tx = ScriptedTranscriber(sig, replay_prompt=3, flicker=False)
        _, events = run(sig, tx, max_buffer_s=4.0, policy=policy)
        assert any(c[1] and not c[2] for c in tx.calls), "the replay was exercised"
        texts = [w.text for w in finals(events)]
        dupes = sorted({t for t in texts if texts.count(t) > 1})
        assert not dupes, (policy, dupes)
        assert len(texts) >= 60  # nothing real was dropped with the replay
        nums = [int(t[1:]) for t in texts]
        assert nums == sorted(nums)


def test_look_passes_commit_nothing_and_leave_the_transcript_as_agreement_has_it():
    sig = speechy([(0.5, 6.0), (7.5, 11.0)], 13.0)
    plain_tx = ScriptedTranscriber(sig)
    _, plain = run(sig, plain_tx, policy="agreement")
    look_tx = ScriptedTranscriber(sig)
    rec, looked = run(sig, look_tx, policy="early")
    # the same words committed at the same audio times, whatever the looks saw
    assert [(w.text, w.start, w.end) for w in finals(looked)] == [
        (w.text, w.start, w.end) for w in finals(plain)]
    assert len(look_tx.calls) > len(plain_tx.calls)  # the looks happened...
    looks = [b for b in look_tx.beams if b == 1]
    assert looks and len(looks) == len(look_tx.calls) - len(plain_tx.calls)  # ...greedily
    # after a look the recogniser says what it heard: the uncommitted words, how far
    # the sure ones reach (never past the edge less the guard) and how far it heard
    assert rec.heard_until <= rec.now
    assert rec.sure_until <= rec.heard_until or rec.sure_until == rec._last_end


def test_a_look_reports_sure_words_only_up_to_the_first_unsure_one():
    sig = speechy([(0.5, 5.0)], 5.2)  # the utterance is still open at the end
    rec = StreamingRecognizer("agent", ScriptedTranscriber(sig), EnergyVad(),
                              options=StreamingOptions.for_policy("early"))
    for i in range(0, len(sig), 1600):
        rec.feed(sig[i:i + 1600])
    assert rec.tail, "the open utterance has uncommitted words"
    sure = [w for w in rec.tail if w.end <= rec.sure_until]
    for w in sure:
        assert w.probability >= 0.85 and w.end <= rec.heard_until
    after = rec.tail[len(sure):]
    if after:  # the first word past sure_until is unsure or too close to the edge
        assert after[0].probability < 0.85 or after[0].end > rec.heard_until


def test_degrading_stops_the_looks_and_recovering_restores_them():
    from coach.pipeline import Pipeline, PipelineOptions
    from coach.playbook import load_playbook

    sig = speechy([(0.5, 4.0)], 5.0)
    pipe = Pipeline(ScriptedTranscriber(sig), EnergyVad, load_playbook(),
                    options=PipelineOptions(streaming=StreamingOptions.for_policy("early")))
    agent, customer = pipe.channels["agent"].recognizer, pipe.channels["customer"].recognizer
    assert agent.options.look_s == 0.5 and customer.options.look_s is None
    assert customer.options.finals_only and not agent.options.finals_only
    pipe.degrade(step_s=2.0, customer_finals_only=True)
    assert agent.options.look_s is None and agent.options.step_s == 2.0
    pipe.recover()
    assert agent.options.look_s == 0.5 and agent.options.step_s == 1.0
    # the customer's side stays finals-only: that is the early policy's, not a degradation
    assert customer.options.finals_only and customer.options.look_s is None


def test_agreement_keeps_the_customers_partials_until_degraded():
    from coach.pipeline import Pipeline, PipelineOptions
    from coach.playbook import load_playbook

    sig = speechy([(0.5, 4.0)], 5.0)
    pipe = Pipeline(ScriptedTranscriber(sig), EnergyVad, load_playbook(), options=PipelineOptions(
        streaming=StreamingOptions.for_policy("agreement")))
    customer = pipe.channels["customer"].recognizer
    assert not customer.options.finals_only
    pipe.degrade(step_s=2.0, customer_finals_only=True)
    assert customer.options.finals_only
    pipe.recover()
    assert not customer.options.finals_only


def test_early_cue_decisions_do_not_depend_on_the_block_size():
    """Live capture and `coach analyze` feed different block sizes; the look passes (which
    depend on what the cue engine made of the pass before) must happen at the same audio
    times either way, so analyze reproduces live."""
    from coach.asr_types import AsrResult, AsrWord
    from coach.cues.early import EARLY_CUES
    from coach.pipeline import Pipeline, PipelineOptions
    from coach.playbook import load_playbook

    text = ("I'm sorry, but the courier sets the delivery times and we cannot change them. "
            "Honestly it's only a scratch.").split()

    class Sentences(ScriptedTranscriber):  # the fake's words, read as a real apology
        def transcribe(self, audio, **kw):
            r = super().transcribe(audio, **kw)
            return AsrResult(tuple(AsrWord(" " + text[int(w.text.strip().strip("wx")) % len(text)],
                                           w.start, w.end, w.probability) for w in r.words))

    sig = speechy([(0.5, 9.0), (10.0, 14.0)], 16.0)
    pb = load_playbook()
    runs = []
    for block_s in (0.1, 0.37, 1.3):
        tx = Sentences(sig, flicker=False)
        pipe = Pipeline(tx, EnergyVad, pb, customer_channel=False,
                        options=PipelineOptions(streaming=StreamingOptions.for_policy("early")))
        events = pipe.start()
        b = int(block_s * SR)
        for i in range(0, len(sig), b):
            events += pipe.feed(sig[i:i + b])
        events += pipe.finish()
        runs.append((tx.calls, tx.beams, [e.to_dict() for e in events]))
    assert runs[0][1].count(1) > 0, "look passes happened"
    # every event, in the same order: words, early cues, prosody and the voice and timing
    # cues judged on it (the pipeline works in 0.1 s steps whatever the block size)
    assert runs[0] == runs[1] == runs[2]
    kinds = {e["type"] for e in runs[0][2]}
    assert {"word", "prosody", "cue"} <= kinds, kinds
    assert any(e["type"] == "cue" and e["id"] in EARLY_CUES for e in runs[0][2])
