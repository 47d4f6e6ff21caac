"""The judgement layer's newer rules: decisions in audio time, withdrawal, backchannels,
the agent's first reply to a complaint, complaints stated as facts, and one apology
analysis shared by live cues and QA."""

from __future__ import annotations

from coach.apology import analyse_apologies
from coach.cues import CueEngine
from coach.events import Activity, Cue, Retraction, Word
from coach.language import sentences_of
from coach.playbook import load_playbook

PB = load_playbook()


def _words(speaker: str, text: str, t0: float, step: float = 0.3) -> list[Word]:
    return [Word(speaker, w, t0 + i * step, t0 + i * step + step * 0.8, True)
            for i, w in enumerate(text.split())]


def _run(events: list, t_end: float) -> list:
    e = CueEngine(PB)
    out = []
    for ev in sorted(events, key=lambda x: getattr(x, "start", getattr(x, "t", 0.0))):
        out += e.feed(ev)
        out += e.advance(getattr(ev, "end", getattr(ev, "t", 0.0)))
    out += e.flush(t_end)
    return out


def test_sorry_but_fires_within_the_sentence_on_audio_time() -> None:
    # "I'm sorry, but that is how the courier works and ..." : the cue is decided once
    # 0.6 s of words follow the "but", while the agent is still talking.
    ws = _words("agent", "I'm sorry, but that is how the courier works and there is nothing else", 1.0)
    e = CueEngine(PB)
    fired_at = None
    for w in ws:
        if any(isinstance(c, Cue) and c.id == "qualified-apology" for c in e.feed(w)):
            fired_at = w.end
            break
    assert fired_at is not None
    but_end = ws[2].end
    assert fired_at - but_end <= 1.0
    assert fired_at < ws[-1].end  # the sentence was still being spoken


def test_a_cue_the_rest_of_the_sentence_clears_is_withdrawn() -> None:
    # The action comes late after the "but": the cue fired mid-sentence is withdrawn
    # when the sentence ends, with a reason a person can read.
    ws = _words("agent", "I'm sorry, but honestly, um, you know, well, let me fix that for you now.", 1.0)
    out = _run(ws, 20.0)
    cues = [c for c in out if isinstance(c, Cue) and c.id == "qualified-apology"]
    retracted = [r for r in out if isinstance(r, Retraction)]
    assert len(cues) == 1  # decided 0.6 s after the "but", before the action was heard
    assert [r.id for r in retracted] == ["qualified-apology"]
    assert retracted[0].t == cues[0].t and "action" in retracted[0].reason
    assert retracted[0].to_dict()["type"] == "retract"
    # and the complete sentence, as QA reads it, has no flaw
    apos = analyse_apologies(sentences_of(ws), PB)
    assert apos and not apos[0].flaws


def test_live_and_qa_agree_on_each_apology() -> None:
    lines = [
        ("I'm sorry, but the courier sets the times.", {"qualified-apology"}),
        ("I'm sorry if you felt ignored.", {"conditional-apology"}),
        ("Sorry for the inconvenience.", {"generic-apology"}),
        ("I'm sorry for the mix-up with your address.", set()),
        ("Sorry to keep you waiting.", set()),
    ]
    for text, flaws in lines:
        ws = _words("agent", text, 1.0)
        live = {c.id for c in _run(ws, 20.0) if isinstance(c, Cue)} & {
            "qualified-apology", "conditional-apology", "generic-apology"}
        qa = {f for a in analyse_apologies(sentences_of(ws), PB) for f in a.flaws}
        assert live == qa == flaws, text


def test_backchannel_during_customer_turn_is_not_talk_over() -> None:
    ev: list = [Activity("customer", 1.0, True), Activity("customer", 9.0, False)]
    ev += [Activity("agent", 4.0, True), Activity("agent", 4.5, False)]
    ev += _words("agent", "mm-hm", 4.0, 0.4)
    assert "talk-over" not in {c.id for c in _run(ev, 12.0) if isinstance(c, Cue)}


def test_real_overlap_is_talk_over() -> None:
    ev: list = [Activity("customer", 1.0, True), Activity("customer", 9.0, False)]
    ev += [Activity("agent", 4.0, True), Activity("agent", 7.0, False)]
    ev += _words("agent", "no no listen the thing is you have to", 4.0)
    assert "talk-over" in {c.id for c in _run(ev, 12.0) if isinstance(c, Cue)}


def test_customer_backchannel_does_not_break_a_monologue() -> None:
    ev: list = [Activity("agent", 1.0, True), Activity("agent", 50.0, False)]
    ev += [Activity("customer", 20.0, True), Activity("customer", 20.4, False)]
    assert "monologue" in {c.id for c in _run(ev, 55.0) if isinstance(c, Cue)}


def test_name_frustration_fires_at_the_end_of_the_first_reply() -> None:
    ev = _words("customer", "I have called three times about this and nobody listens.", 1.0)
    reply = _words("agent", "Okay. Can I take your account number please?", 5.0)
    ev += reply
    ev += _words("agent", "Thanks. Let me pull that up for you now.", 12.0)
    out = [c for c in _run(ev, 30.0) if isinstance(c, Cue) and c.id == "name-frustration"]
    assert out and abs(out[0].t - reply[-1].end) < 0.01  # not after a long fixed window


def test_complaint_stated_as_facts_asks_for_acknowledgement() -> None:
    ev = _words("customer", "I literally just left your shop and the oil light is still on.", 1.0)
    ev += _words("agent", "Okay, what is the registration?", 6.0)
    assert "name-frustration" in {c.id for c in _run(ev, 20.0) if isinstance(c, Cue)}
    ev = _words("customer", "I literally just left your shop and the oil light is still on.", 1.0)
    ev += _words("agent", "Oh no, that must be so frustrating. Let me book you straight back in.", 6.0)
    assert "name-frustration" not in {c.id for c in _run(ev, 20.0) if isinstance(c, Cue)}


def test_the_pace_gauge_shows_the_figure_the_pace_cue_judges() -> None:
    import numpy as np

    from coach.cues.voice import stretch_rate_for
    from coach.prosody import ProsodyTracker

    tracker = ProsodyTracker("agent", pace=stretch_rate_for(PB))
    engine = CueEngine(PB)
    # 230 words a minute of talk for 20 s, as committed words, with a voiced signal
    words = [Word("agent", "word", 0.5 + i * 60 / 230, 0.5 + i * 60 / 230 + 0.2, True)
             for i in range(int(20 * 230 / 60))]
    tone = (0.1 * np.sin(2 * np.pi * 150 * np.arange(16000) / 16000)).astype(np.float32)
    fired = []
    for second in range(1, 22):
        for w in [w for w in words if second - 1 < w.end <= second]:
            tracker.add_word(w)
            engine.feed(w)
        for p in tracker.feed(tone, speaking=second <= 20):
            for c in engine.feed(p):
                if isinstance(c, Cue) and c.id == "pace-fast":
                    fired.append((c, p))
    assert fired
    cue, reading = fired[0]
    assert reading.pace_wpm is not None
    assert cue.evidence["wpm"] == round(reading.pace_wpm, 1)


def test_say_instead_lines_take_turns_within_a_call(tmp_path) -> None:
    from coach.errors import PlaybookError

    engine = CueEngine(PB)
    seen = []
    for k in range(3):  # three stock apologies, each past the cooldown
        t0 = 1.0 + k * 40
        for w in _words("agent", "Sorry for the inconvenience.", t0):
            seen += [c.advice for c in engine.feed(w)
                     if isinstance(c, Cue) and c.id == "generic-apology"]
    assert len(seen) == 3 and len(set(seen)) == 3
    assert seen == list(PB.cue("generic-apology").advice_variants[:3])
    team = tmp_path / "team.yaml"
    team.write_text("cues:\n  generic-apology:\n    advice: []\n")
    try:
        load_playbook(team)
    except PlaybookError as exc:
        assert "team.yaml:3" in str(exc) and "empty" in str(exc)
    else:
        raise AssertionError("an empty advice list must be refused")


def test_a_bare_sorry_before_a_question_is_a_request() -> None:
    ws = _words("agent", "Sorry.", 1.0) + _words("agent", "Could you repeat that?", 1.6)
    assert not [c for c in _run(ws, 30.0) if isinstance(c, Cue)]
    assert [a.kind for a in analyse_apologies(sentences_of(ws), PB)] == ["request"]
    # ... but not when the apology is for something
    ws = _words("agent", "Sorry we lost it.", 1.0) + _words("agent", "Could you confirm the address?", 2.5)
    assert [a.kind for a in analyse_apologies(sentences_of(ws), PB)] == ["problem"]


def test_talk_over_that_starts_with_a_backchannel_is_still_talk_over() -> None:
    ev: list = [Activity("customer", 1.0, True), Activity("customer", 9.0, False)]
    ev += [Activity("agent", 4.0, True), Activity("agent", 7.5, False)]
    ev += _words("agent", "Right, right, but what you need to do is", 4.0)
    assert "talk-over" in {c.id for c in _run(ev, 12.0) if isinstance(c, Cue)}


def test_a_follow_up_by_email_tonight_counts() -> None:
    ev = _words("customer", "My receipt never arrived.", 1.0)
    ev += _words("agent", "I'm sorry it didn't reach you. I will send the receipt by email tonight.", 3.0)
    assert "no-follow-up" not in {c.id for c in _run(ev, 30.0) if isinstance(c, Cue)}


def test_judgement_does_not_depend_on_how_late_the_words_arrive() -> None:
    """The recogniser commits words a second or more after they were said, and a turn's
    end can reach the engine before its last words: a sentence is judged whole all the same."""
    from coach.scripted import event_time, script_events

    script = {"turns": [
        {"speaker": "customer", "text": "The parcel never came."},
        {"speaker": "agent", "text": "You needed to tell us you had moved house."},
        {"speaker": "agent", "text": "I'm sorry you're so annoyed about it."},
    ]}
    for lag in (0.0, 2.0, 4.0):
        engine, out, last = CueEngine(PB), [], 0.0
        for ev in script_events(script, lag_s={"agent": lag, "customer": lag}):
            t = event_time(ev)
            if t > last:
                out += engine.advance(t)
                last = t
            out += engine.feed(ev)
        out += engine.flush(last + 1.0)
        got = {c.id for c in out if isinstance(c, Cue)}
        assert {"blame-shift", "conditional-apology"} <= got, (lag, got)


def _first_fired(text: str, cue_id: str) -> tuple[int | None, list[Word]]:
    """Feed the agent's words one by one; the index of the word on which ``cue_id`` fired."""
    ws = _words("agent", text, 1.0)
    e = CueEngine(PB)
    for i, w in enumerate(ws):
        if any(isinstance(c, Cue) and c.id == cue_id for c in e.feed(w)):
            return i, ws
    return None, ws


def test_a_phrase_no_words_can_undo_is_decided_at_once() -> None:
    # "I guarantee": no exception can still overlap it, nothing in it looks past its words
    i, ws = _first_fired("I guarantee it will be there tomorrow", "empty-promise")
    assert i == 1  # on "guarantee" itself, not confirm_s of words later
    # "the courier lost it": blame in its own words
    i, ws = _first_fired("well the courier lost it somewhere in the depot", "blame-shift")
    assert i is not None and ws[i].text == "lost"


def test_a_phrase_the_next_words_could_excuse_waits_for_them() -> None:
    # "it is only a ..." may go on "... matter of time" (an exception): wait until a word
    # rules that out ("small"), then decide
    i, ws = _first_fired("honestly it is only a small delay on the line", "minimizing")
    assert i is not None and ws[i].text == "small"
    assert _first_fired("honestly it is only a matter of time now", "minimizing")[0] is None
    # "that is company policy" may go on "... policy allows me to refund it"
    i, ws = _first_fired("that is company policy so there we are", "blame-shift")
    assert i is not None and ws[i].text != "policy"
    assert _first_fired("that is company policy allows a refund here", "blame-shift")[0] is None
    # "these things happen" looks past its words ("... happen to be ..."): waits as before
    i, ws = _first_fired("these things happen sometimes you know", "minimizing")
    assert i is not None and ws[i].end - ws[2].end >= PB.settings.confirm_s


def test_settled_reads_exceptions_and_lookaheads() -> None:
    from coach.language import Sentence, settled

    def check(cue: str, group: str, text: str) -> list[bool]:
        spec = PB.cue(cue)
        s = Sentence(_words("agent", text, 0.0))
        return [settled(s, spec.patterns[group], spec.patterns.get("except"), h.a, h.b)
                for h in s.hits(spec.patterns[group])]

    assert check("empty-promise", "promise", "I guarantee") == [True]
    assert check("casual-apology", "casual", "oops") == [True]  # no exceptions at all
    assert check("minimizing", "minimizing", "well it is only a") == [False]
    assert check("minimizing", "minimizing", "it is only a small delay") == [True]
    assert check("minimizing", "minimizing", "just relax") == [False]  # relax(?! and)
    assert check("blame-shift", "blame", "that is company policy") == [False]

    # an exception anchored at the sentence's end applies if the sentence ends right there
    import re

    from coach.playbook import PatternSet

    def ps(src: str) -> PatternSet:
        return PatternSet("p", (src,), re.compile(rf"(?<!\w)(?:{src})(?!\w)"))

    s = Sentence(_words("agent", "it is only a dog", 0.0))
    assert not settled(s, ps("only a"), ps("a dog$"), 2, 4)
    assert settled(s, ps("only a"), ps("a cat$"), 2, 4)


def test_settled_reads_each_alternative_of_a_pattern_on_its_own() -> None:
    from coach.language import _branches

    # "calm down|settle down|relax(?! and)|...": only "relax" looks past its words
    assert _branches("calm down|relax(?! and)|take (?:it|things) easy|[|]x") == [
        "calm down", "relax(?! and)", "take (?:it|things) easy", "[|]x"]
    i, ws = _first_fired("settle down please we will get there", "minimizing")
    assert i is not None and ws[i].text == "down"
