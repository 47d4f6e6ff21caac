"""Early word cues (policy "early"): a cue from the words a pass is sure of, before they are
committed; the committed words confirm it (nothing sent twice) or withdraw it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from coach.cues import CueEngine
from coach.cues.early import EarlyCues
from coach.events import AGENT, Cue, Retraction, Word
from coach.playbook import load_playbook

PB = load_playbook()


def words(text: str, start: float, *, prob: float = 0.99, final: bool = True,
          step: float = 0.35) -> list[Word]:
    out, t = [], start
    for tok in text.split():
        out.append(Word(AGENT, tok, t, t + step - 0.05, final, prob))
        t += step
    return out


class Call:
    """The pipeline's wiring, by hand: committed words to the engine through ``confirm``,
    a pass's uncommitted words through ``look``."""

    def __init__(self) -> None:
        self.engine = CueEngine(PB, customer_channel=False)
        self.early = EarlyCues(self.engine)
        self.sent: list[Cue | Retraction] = []

    def commit(self, ws: list[Word]) -> list:
        out = []
        for w in ws:
            out += self.early.confirm(self.engine.advance(w.end))
            out += self.early.confirm(self.engine.feed(w))
        self.sent += out
        return out

    def look(self, tail: list[Word], *, sure_until: float, heard: float) -> list[Cue]:
        out = self.early.look(AGENT, [replace(w, final=False) for w in tail],
                              sure_until=sure_until, heard=heard)
        self.sent += out
        return out

    def end(self, t: float) -> list:
        out = self.early.confirm(self.engine.advance(t))
        out += self.early.confirm(self.engine.flush(t))
        out += self.early.end(t)
        self.sent += out
        return out

    def standing(self) -> list[str]:
        gone = {(r.id, r.t) for r in self.sent if isinstance(r, Retraction)}
        return [c.id for c in self.sent if isinstance(c, Cue) and (c.id, c.t) not in gone]


SENTENCE = "I'm sorry, but the courier sets the delivery times."


def test_a_cue_on_sure_uncommitted_words_is_sent_once_and_confirmed() -> None:
    call = Call()
    ws = words(SENTENCE, 1.0)
    call.commit(ws[:2])  # "I'm sorry," committed; the rest still in the pass's tail
    tail = ws[2:6]  # "but the courier sets"
    got = call.look(tail, sure_until=tail[-1].end, heard=tail[-1].end + 0.3)
    assert [c.id for c in got] == ["qualified-apology"]
    # the cue is as early as the words allow: right after the "but" and its wait
    assert abs(got[0].t - ws[2].end) < 1e-3
    # the committed words raise it again: nothing more is sent
    later = call.commit(ws[2:])
    assert not [e for e in later if isinstance(e, Cue) and e.id == "qualified-apology"]
    call.end(ws[-1].end + 5)
    assert call.standing().count("qualified-apology") == 1
    assert not [e for e in call.sent if isinstance(e, Retraction)]


def test_the_look_leaves_the_real_engine_untouched() -> None:
    call = Call()
    ws = words(SENTENCE, 1.0)
    call.commit(ws[:2])
    call.look(ws[2:6], sure_until=ws[5].end, heard=ws[5].end + 0.3)
    plain = CueEngine(PB, customer_channel=False)
    for w in ws[:2]:
        plain.advance(w.end)
        plain.feed(w)
    assert call.engine.state.sentence[AGENT].text == plain.state.sentence[AGENT].text
    assert len(call.engine.state.words[AGENT].ws) == 2
    assert call.engine.hygiene.sent == plain.hygiene.sent == []


def test_unsure_words_need_a_second_look_that_sees_the_same_cue() -> None:
    call = Call()
    ws = words("I guarantee it will be with you tomorrow.", 1.0, prob=0.6)
    first = call.look(ws[:4], sure_until=0.0, heard=ws[3].end + 0.3)
    assert first == []  # the words are not sure: wait
    # the next pass heard "guaranteed" (different words, the same promise)
    again = [replace(ws[0]), replace(ws[1], text="guaranteed")] + ws[2:6]
    second = call.look(again, sure_until=0.0, heard=ws[5].end + 0.3)
    assert [c.id for c in second] == ["empty-promise"]


def test_an_early_cue_the_committed_words_do_not_bear_out_is_withdrawn() -> None:
    call = Call()
    # the pass heard "sorry, but" and a pause: the agent had stopped (heard 1 s on)
    ws = words("Sorry, but", 1.0)
    got = call.look(ws, sure_until=ws[-1].end, heard=ws[-1].end + 1.0)
    assert [c.id for c in got] == ["qualified-apology"]
    # ...but what was committed was "sorry, but let me fix that for you right now."
    committed = words("Sorry, but let me fix that for you right now.", 1.0)
    out = call.commit(committed)
    call.end(committed[-1].end + 5)
    retracted = [e for e in call.sent if isinstance(e, Retraction)]
    assert [(r.id, r.t) for r in retracted] == [("qualified-apology", got[0].t)]
    assert "bear it out" in retracted[0].reason
    assert "qualified-apology" not in call.standing()
    assert not [e for e in out if isinstance(e, Cue) and e.id == "qualified-apology"]


def test_a_withdrawal_of_the_confirmed_cue_names_the_early_one() -> None:
    call = Call()
    ws = words("I'm sorry, but the courier sets", 1.0)
    got = call.look(ws, sure_until=ws[-1].end, heard=ws[-1].end + 0.3)
    assert [c.id for c in got] == ["qualified-apology"]
    # committed timing differs a little from the pass's, and the real engine raises it...
    shifted = [replace(w, start=w.start + 0.1, end=w.end + 0.1) for w in ws]
    call.commit(shifted)
    real = next(c for c in call.engine.hygiene.sent if c.id == "qualified-apology")
    assert real.t != got[0].t
    # ...then withdraws it: the overlay is told about the cue it was shown
    out = call.early.confirm([Retraction(real.id, real.t, 9.0, "test")])
    assert [(r.id, r.t) for r in out if isinstance(r, Retraction)] == [
        ("qualified-apology", got[0].t)]


def test_early_cues_never_confirmed_are_withdrawn_when_the_call_ends() -> None:
    call = Call()
    ws = words("Sorry, but", 1.0)
    call.look(ws, sure_until=ws[-1].end, heard=ws[-1].end + 1.0)
    out = call.end(ws[-1].end + 1.0)  # nothing was ever committed
    assert [r.id for r in out if isinstance(r, Retraction)] == ["qualified-apology"]
    assert call.early.withdrawn == 1


def test_only_word_cues_of_the_sentence_go_early() -> None:
    call = Call()
    # a long silence before the tail: the fork's clock would let time cues fire; it must not
    ws = words("Honestly it's only a scratch, these things happen.", 30.0)
    got = call.look(ws, sure_until=ws[-1].end, heard=ws[-1].end + 0.3)
    assert {c.id for c in got} <= {"minimizing"}
    assert got


def test_the_cli_offers_every_streaming_policy() -> None:
    from coach.asr import POLICIES
    from coach.cli import _POLICIES

    assert set(_POLICIES) == set(POLICIES)


@pytest.mark.slow
def test_on_real_audio_early_cues_come_sooner_and_the_same_cues_stand() -> None:
    """The demo call through the real model under both policies (agreement with the
    customer's side finals-only, as early has it): the transcript and the cues left
    standing are agreement's; the word cues reach the pipeline's output sooner (audio
    time at emission)."""
    from coach.analyze import analyze_file
    from coach.asr import StreamingOptions
    from coach.io.vad import SileroVad
    from coach.io.whisper import WhisperTranscriber
    from coach.pipeline import PipelineOptions

    tx, vad = WhisperTranscriber(), SileroVad()
    call = Path(__file__).resolve().parents[1] / "audio_samples" / "02_every_apology_wrong.flac"

    def run(policy: str, **changes):
        seen, pending = [], []

        def progress(now: float) -> None:
            seen.extend((now, e) for e in pending)
            pending.clear()

        res = analyze_file(call, transcriber=tx, make_vad=vad.shared, playbook=PB,
                           options=PipelineOptions(
                               streaming=StreamingOptions.for_policy(policy, **changes)),
                           on_event=pending.append, progress=progress, block_s=0.1)
        seen.extend((res.duration_s, e) for e in pending)
        gone = {(e.id, e.t) for _, e in seen if isinstance(e, Retraction)}
        cues = {(e.id, e.t): now for now, e in seen
                if isinstance(e, Cue) and (e.id, e.t) not in gone}
        text = [w.text for _, w in seen if isinstance(w, Word) and w.final]
        return text, cues, len(gone)

    text_a, cues_a, gone_a = run("agreement", customer_finals_only=True)
    text_e, cues_e, gone_e = run("early")
    assert text_e == text_a
    assert sorted(i for i, _ in cues_e) == sorted(i for i, _ in cues_a)
    assert gone_e <= gone_a + 1  # at most one early cue withdrawn on this call
    lat_a = {i: now - t for (i, t), now in cues_a.items() if i in EARLY_CUES_CHECKED}
    lat_e = {i: now - t for (i, t), now in cues_e.items() if i in EARLY_CUES_CHECKED}
    sooner = [i for i in lat_e if i in lat_a and lat_e[i] <= lat_a[i] - 0.5]
    assert len(sooner) >= 3, (lat_a, lat_e)
    assert all(lat_e[i] <= lat_a[i] + 1e-6 for i in lat_e if i in lat_a), (lat_a, lat_e)


EARLY_CUES_CHECKED = {"qualified-apology", "conditional-apology", "generic-apology",
                      "casual-apology", "minimizing", "blame-shift", "empty-promise"}


def test_a_phrase_the_committed_words_carry_further_is_still_the_same_cue() -> None:
    from coach.cues.early import _same

    early = Cue("generic-apology", 10.0, AGENT, "nudge", "t", "a",
                {"words": [{"text": "sorry", "start": 8.0, "end": 8.3}]})
    longer = replace(early, t=12.2, evidence={"words": [
        {"text": "sorry", "start": 8.1, "end": 8.4}, {"text": "caused", "start": 11.9,
                                                     "end": 12.2}]})
    elsewhere = replace(longer, evidence={"words": [{"text": "sorry", "start": 11.0,
                                                     "end": 11.3}]})
    assert _same(early, longer)
    assert not _same(early, elsewhere)
    assert not _same(early, replace(longer, id="casual-apology"))
