"""Cue engine: each cue and its near-misses, hygiene, evidence, mono calls, channel skew,
and every call script in tests/scripts and audio_samples/scripts."""

from __future__ import annotations

from pathlib import Path

import pytest

from coach.cues import Baseline, CueEngine, normalise_word
from coach.events import Activity, Prosody, Turn, Word
from coach.playbook import load_playbook
from coach.scripted import load_script, run_engine, script_events

ROOT = Path(__file__).resolve().parents[1]
PB = load_playbook()
PROBLEM = "My order arrived broken and I have been waiting two weeks for a replacement."


def fired(turns: list[dict], **kw) -> list:
    return run_engine(script_events({"turns": turns}), PB, **kw)


def ids(turns: list[dict], **kw) -> set[str]:
    return {c.id for c in fired(turns, **kw)}


def after_problem(line: str, customer: str = PROBLEM) -> set[str]:
    return ids([{"speaker": "customer", "text": customer}, {"speaker": "agent", "text": line}])


# --- text normalisation ------------------------------------------------------------------

@pytest.mark.parametrize("raw,toks", [
    (" I'm", ["i", "am"]), ("sorry,", ["sorry"]), ("can't", ["can", "not"]),
    ("won't.", ["will", "not"]), ("I’ve", ["i", "have"]), ("courier's", ["couriers"]),
    ("it's", ["it", "is"]), ("follow-up", ["follow", "up"]), ("'bout", ["bout"]), ("—", []),
])
def test_normalise_word(raw: str, toks: list[str]) -> None:
    assert normalise_word(raw) == toks


# --- word cues fire on meaning, near-misses do not ---------------------------------------

POSITIVE = [
    ("qualified-apology", "I'm sorry, but the courier sets the delivery times."),
    ("qualified-apology", "I do apologise, however the box was clearly marked fragile."),
    ("qualified-apology", "sorry about that although we did send a reminder"),
    ("qualified-apology", "I'm sorry it broke. However, you picked the cheapest packaging."),
    ("conditional-apology", "I'm sorry if you felt we ignored you."),
    ("conditional-apology", "My apologies if that came across badly."),
    ("conditional-apology", "Well, I'm sorry you feel that way."),
    ("generic-apology", "We apologise for any trouble caused."),
    ("generic-apology", "Sorry for the inconvenience."),
    ("generic-apology", "We regret any inconvenience this may have caused."),
    ("casual-apology", "Oops, my bad. I will send another."),
    ("casual-apology", "Ah, sorry 'bout that."),
    ("minimizing", "These things happen, it's only a vase."),
    ("minimizing", "Calm down, it could be a lot worse."),
    ("minimizing", "Honestly it's not a big deal."),
    ("blame-shift", "You should have checked the box before signing for it."),
    ("blame-shift", "That's our policy, I'm afraid."),
    ("blame-shift", "It's not our fault, the courier dropped it."),
    ("blame-shift", "According to our terms, we can't replace opened items."),
    ("empty-promise", "I guarantee it will be there tomorrow."),
    ("empty-promise", "This will never happen again."),
    ("empty-promise", "I promise it will be fixed today."),
    ("empathy-shown", "That must be really frustrating after two weeks."),
    ("empathy-shown", "I completely understand why you're annoyed."),
]

NEGATIVE = [
    ("qualified-apology", "I'm sorry we charged you twice. But I've refunded it now."),
    ("qualified-apology", "I'm sorry we sent it broken, but let me send a new one today."),
    ("qualified-apology", "Sorry, but could you repeat the order number?"),
    ("qualified-apology", "The button on the form is broken, but I can take the details."),
    ("conditional-apology", "I'm sorry we broke it. If you like, I can send a new one."),
    ("conditional-apology", "I'm sorry you had to wait two weeks."),
    ("generic-apology", "I'm sorry for the trouble with your broken vase."),
    ("generic-apology", "I'm sorry we sent it in a flimsy box."),
    ("casual-apology", "I'm really sorry about the damage."),
    ("minimizing", "It's only fair that we refund you in full."),
    ("minimizing", "No problem at all, I will arrange that."),
    ("blame-shift", "Our policy lets me refund you today."),
    ("blame-shift", "You should have the new one by Friday."),
    ("blame-shift", "The system shows it left our depot on Monday."),
    ("empty-promise", "I can't promise a time slot, but I'll ask for a morning."),
    ("empty-promise", "I can't guarantee this will never happen again."),
    ("empathy-shown", "I understand you'd like a refund."),
    ("empathy-shown", "I'm sorry if you feel nobody told you."),
]


@pytest.mark.parametrize("cue,line", POSITIVE, ids=[f"{c}:{line[:30]}" for c, line in POSITIVE])
def test_word_cue_fires(cue: str, line: str) -> None:
    assert cue in after_problem(line)


@pytest.mark.parametrize("cue,line", NEGATIVE, ids=[f"{c}:{line[:30]}" for c, line in NEGATIVE])
def test_near_miss_does_not_fire(cue: str, line: str) -> None:
    assert cue not in after_problem(line)


@pytest.mark.parametrize("line", [
    "Sorry, could you repeat that?", "Sorry?", "Sorry, I didn't catch that, could you say it again?",
    "Sorry, what was the postcode?", "No need to apologise.",
])
def test_clarifying_sorry_is_not_an_apology(line: str) -> None:
    got = after_problem(line, customer="It's nine Willow Lane, Bristol.")
    assert not got & {"no-action", "no-follow-up", "over-apology", "qualified-apology"}


def test_sorry_to_hear_is_an_apology() -> None:
    got = after_problem("I'm sorry to hear that.")
    assert {"no-action", "no-follow-up"} <= got


def test_unpunctuated_stream_is_split_on_pauses() -> None:
    # Streaming may give no punctuation: a long pause still ends the sentence.
    def run(pause: float) -> set[str]:
        e = CueEngine(PB)
        words = [("i'm", 1.0), ("sorry", 1.3), ("we", 1.6), ("broke", 1.9), ("it", 2.2)]
        words += [(w, 2.5 + pause + 0.3 * i) for i, w in enumerate("but the courier was late".split())]
        out = []
        for text, t in words:
            out += e.feed(Word("agent", text, t, t + 0.25, True))
        out += e.flush(12.0)
        return {c.id for c in out}

    assert "qualified-apology" in run(0.05)  # one sentence: an apology with an excuse
    assert "qualified-apology" not in run(4.0)  # a long pause: a new thought


def test_partial_words_never_cue() -> None:
    e = CueEngine(PB)
    out = []
    for i, text in enumerate(["I'm", "sorry,", "but", "that's", "our", "policy."]):
        out += e.feed(Word("agent", text, 1 + i * 0.4, 1.3 + i * 0.4, False))
    out += e.advance(20.0)
    assert out == []
    out += e.flush(20.0)
    assert out == []  # partials leave nothing pending either


# --- evidence and timing -----------------------------------------------------------------

def test_evidence_words_and_time() -> None:
    cues = fired([{"speaker": "customer", "text": PROBLEM},
                  {"speaker": "agent", "text": "I'm sorry, but the courier sets the times."}])
    q = next(c for c in cues if c.id == "qualified-apology")
    texts = [w["text"] for w in q.evidence["words"]]
    assert texts[0] == "sorry," and texts[-1] == "but"
    assert q.t == q.evidence["words"][-1]["end"]
    assert all(w["start"] < w["end"] for w in q.evidence["words"])
    assert q.speaker == "agent" and q.title == PB.cue("qualified-apology").title
    assert q.to_dict()["type"] == "cue"


def test_deterministic() -> None:
    script = ROOT / "audio_samples" / "scripts" / "02_every_apology_wrong.yaml"
    if not script.exists():
        pytest.skip("demo script missing")
    a = run_engine(script_events(script), PB)
    b = run_engine(script_events(script), PB)
    assert [c.to_dict() for c in a] == [c.to_dict() for c in b]


# --- hygiene ---------------------------------------------------------------------------------

def test_cooldown_per_id() -> None:
    turns = [{"speaker": "customer", "text": PROBLEM},
             {"speaker": "agent", "text": "Sorry for the inconvenience."},
             {"speaker": "customer", "text": "Right."},
             {"speaker": "agent", "text": "Again, sorry for the inconvenience."}]
    assert sum(c.id == "generic-apology" for c in fired(turns)) == 1
    turns[3:3] = [{"pause": 7}, {"speaker": "customer", "text": "word " * 60}]
    assert sum(c.id == "generic-apology" for c in fired(turns)) == 2


def test_one_warn_at_a_time() -> None:
    cues = fired([{"speaker": "customer", "text": PROBLEM},
                  {"speaker": "agent", "text": "I'm sorry, but that's our policy."}])
    assert {"qualified-apology", "blame-shift"} <= {c.id for c in cues}
    warns = sorted(c.t for c in cues if c.severity == "warn")
    assert all(b - a >= PB.settings.warn_gap_s for a, b in zip(warns, warns[1:], strict=False))
    assert any(c.evidence.get("downgraded_from") == "warn" for c in cues)


def test_disabled_cue_never_fires(tmp_path: Path) -> None:
    p = tmp_path / "team.yaml"
    p.write_text("cues:\n  generic-apology: {enabled: false}\n")
    cues = run_engine(script_events({"turns": [{"speaker": "agent", "text": "Sorry for the inconvenience."}]}),
                      load_playbook(p))
    assert "generic-apology" not in {c.id for c in cues}


# --- apology windows -------------------------------------------------------------------------

def test_over_apology_third_within_window() -> None:
    three = "I'm so sorry. I really am sorry. I do apologise. Let me fix it now."
    assert "over-apology" in after_problem(three)
    assert "over-apology" not in after_problem("I'm so sorry. I really am sorry. Let me fix it now.")


def test_no_action_fires_and_is_satisfied_by_next_turn() -> None:
    base = [{"speaker": "customer", "text": PROBLEM},
            {"speaker": "agent", "text": "I'm sorry we sent it broken."},
            {"speaker": "customer", "text": "So what now then?"}]
    assert "no-action" in ids(base + [{"speaker": "agent", "text": "It was packed by the warehouse team."},
                                      {"speaker": "customer", "text": "That doesn't help me at all."}])
    assert "no-action" not in ids(base + [{"speaker": "agent", "text": "I'll send a new one today."},
                                          {"speaker": "customer", "text": "Okay, thank you."}])


def test_no_action_too_late() -> None:
    turns = [{"speaker": "customer", "text": PROBLEM},
             {"speaker": "agent", "text": "I'm sorry we sent it broken."},
             {"speaker": "customer", "text": "So what now then?"},
             {"speaker": "agent", "text": "It was packed by the warehouse team."},
             {"speaker": "customer", "text": "That doesn't help me at all."},
             {"speaker": "agent", "text": "Right. I'll send a new one today."}]
    assert "no-action" in ids(turns)


def test_no_follow_up() -> None:
    fix = {"speaker": "agent", "text": "I'm sorry it arrived broken. I've sent a new one today."}
    assert "no-follow-up" in ids([{"speaker": "customer", "text": PROBLEM}, fix])
    follow = {"speaker": "agent", "text": "I'll call you on Friday to check it arrived."}
    assert "no-follow-up" not in ids([{"speaker": "customer", "text": PROBLEM}, fix, follow])
    vague = {"speaker": "agent", "text": "Someone will be in touch at some point."}
    assert "no-follow-up" in ids([{"speaker": "customer", "text": PROBLEM}, fix, vague])
    # no problem, no apology: nothing to follow up
    assert "no-follow-up" not in ids([{"speaker": "customer", "text": "Can I change my address?"},
                                      {"speaker": "agent", "text": "Yes, I've changed it."}])


# --- the customer's feelings ---------------------------------------------------------------

ANGRY = "This is ridiculous, it's the third time I've called about this."


def test_name_frustration_and_empathy() -> None:
    ignored = ids([{"speaker": "customer", "text": ANGRY},
                   {"speaker": "agent", "text": "Can I take your order number please?"},
                   {"speaker": "customer", "text": "It's four four two one."},
                   {"speaker": "agent", "text": "Thanks. I have your order here now."}])
    assert "name-frustration" in ignored and "empathy-shown" not in ignored
    named = ids([{"speaker": "customer", "text": ANGRY},
                 {"speaker": "agent", "text": "I can hear how frustrating this has been. Let me fix it."}])
    assert "name-frustration" not in named and "empathy-shown" in named


def test_negated_feeling_is_not_frustration() -> None:
    got = ids([{"speaker": "customer", "text": "I'm not upset, I just want to know the date."},
               {"speaker": "agent", "text": "It's booked for Saturday morning."}])
    assert "name-frustration" not in got


@pytest.mark.parametrize("lag", [0.0, 2.5])
def test_skewed_channels_use_event_times(lag: float) -> None:
    # The customer's words arrive late (their channel commits later); the agent's empathy
    # was spoken after the outburst, and must still count as the answer to it.
    turns = [{"speaker": "customer", "text": ANGRY},
             {"speaker": "agent", "text": "That sounds so frustrating. Let me sort it out."},
             {"speaker": "customer", "text": "Thank you."}]
    got = {c.id for c in run_engine(script_events({"turns": turns}, lag_s={"customer": lag}), PB)}
    assert "name-frustration" not in got and "empathy-shown" in got
    turns[1] = {"speaker": "agent", "text": "Can I take the order number? And the postcode please?"}
    got = {c.id for c in run_engine(script_events({"turns": turns}, lag_s={"customer": lag}), PB)}
    assert "name-frustration" in got


def test_customer_pitch_and_loudness_rise_is_frustration() -> None:
    e = CueEngine(PB)
    out = []
    for t in range(1, 41):  # calibrate the customer: 30 s at 200 Hz / -30 dB
        out += e.feed(Prosody("customer", float(t), 200.0, -30.0, None, speaking=True))
    for t in range(41, 45):  # then a rise in both
        out += e.feed(Prosody("customer", float(t), 260.0, -22.0, None, speaking=True))
    for i, text in enumerate("Can I take your account number please".split()):
        out += e.feed(Word("agent", text, 45 + i * 0.4, 45.3 + i * 0.4, True))
    out += e.advance(80.0)
    for i in range(40):
        out += e.feed(Word("agent", "okay", 80 + i * 0.4, 80.3 + i * 0.4, True))
    out += e.flush(100.0)
    nf = [c for c in out if c.id == "name-frustration"]
    assert nf and nf[0].evidence["f0_hz"] == 260.0


def test_laughter_only_while_a_problem_is_described() -> None:
    assert "laughter" in ids([{"speaker": "customer", "text": "The heater leaked and ruined my carpet."},
                              {"speaker": "agent", "text": "Haha, oh dear. Let me look."}])
    assert "laughter" in ids([{"speaker": "customer", "text": "The heater leaked and ruined my carpet."},
                              {"speaker": "agent", "text": "(laughs) Right, let me look."}])
    assert "laughter" not in ids([{"speaker": "customer", "text": "My cat is twelve, ninety in cat years."},
                                  {"speaker": "agent", "text": "Ha ha, lovely. Let me renew it."}])
    assert "laughter" not in ids([{"speaker": "customer", "text": "The heater leaked and ruined my carpet."},
                                  {"speaker": "agent", "text": "That is no laughing matter. Let me look."}])


# --- timing cues ---------------------------------------------------------------------------

def test_dead_air_mid_call_only() -> None:
    a = {"speaker": "agent", "text": "Let me check that for you."}
    c = {"speaker": "customer", "text": "Okay, thanks."}
    assert "dead-air" in ids([c, a, {"pause": 9}, a])
    assert "dead-air" not in ids([c, a, {"pause": 7}, a])
    assert "dead-air" not in ids([{"pause": 12}, c, a])  # before the call started
    assert "dead-air" not in ids([c, a], t_end=40.0)  # silence at the very end


def test_talk_over() -> None:
    cust = {"speaker": "customer", "text": "I was charged twice and my bank says it is your fault."}
    assert "talk-over" in ids([cust, {"speaker": "agent", "overlap": 2.0, "text": "Right, can I have the account number?"}])
    assert "talk-over" not in ids([cust, {"speaker": "agent", "overlap": 0.5, "text": "Right, can I have the account number?"}])
    assert "talk-over" not in ids([cust, {"speaker": "agent", "overlap": 2.0, "text": "Mm-hmm."}])


def test_talk_over_from_activity_events_out_of_order() -> None:
    e = CueEngine(PB)
    out = e.feed(Activity("agent", 5.0, True))  # the agent channel reports first
    out += e.feed(Activity("customer", 3.0, True))  # the customer's onset arrives late
    # An open utterance counts as speech up to the detector's hang-over before now; with no
    # words yet to tell a backchannel, a second more of overlap settles it.
    out += e.advance(8.0)
    assert [c.id for c in out] == ["talk-over"] and out[0].t == pytest.approx(6.0)


def test_monologue() -> None:
    long = {"speaker": "agent", "text": "word " * 115}  # ~46 s at 150 wpm
    assert "monologue" in ids([{"speaker": "customer", "text": PROBLEM}, long])
    half = {"speaker": "agent", "text": "word " * 60}
    check = {"speaker": "customer", "text": "Yes, that makes sense so far."}
    assert "monologue" not in ids([half, check, half])
    assert "monologue" in ids([half, {"speaker": "customer", "text": "Mm."}, half])


def test_pace_fast_from_prosody_wpm() -> None:
    calm = {"speaker": "agent", "text": "word " * 60}
    fast = {"speaker": "agent", "rate": 230, "text": "word " * 70}
    assert "pace-fast" in ids([calm, fast])
    assert "pace-fast" not in ids([calm, calm])


def test_pace_uses_agent_baseline() -> None:
    slow = {"speaker": "agent", "rate": 110, "text": "word " * 100}
    quicker = {"speaker": "agent", "rate": 150, "text": "word " * 60}
    assert "pace-fast" not in ids([quicker])
    assert "pace-fast" in ids([quicker], agent_baseline=Baseline(wpm=110))
    assert "pace-fast" in ids([slow, quicker])  # calibrated from the first 30 s


def _voice(e: CueEngine, t0: int, n: int, f0: float, db: float) -> list:
    out = []
    for t in range(t0, t0 + n):
        out += e.feed(Prosody("agent", float(t), f0, db, 150.0, speaking=True))
    return out


def test_tone_tense_and_volume_loud_against_baseline() -> None:
    e = CueEngine(PB)
    out = _voice(e, 1, 35, 120.0, -30.0)
    assert out == []
    out = _voice(e, 36, 15, 160.0, -22.0)
    got = {c.id for c in out}
    assert {"tone-tense", "volume-loud"} <= got
    e2 = CueEngine(PB, agent_baseline=Baseline(f0_hz=150.0, loudness_db=-25.0))
    assert _voice(e2, 1, 15, 160.0, -22.0) == []


def test_tone_flat_off_by_default(tmp_path: Path) -> None:
    flat = [Prosody("agent", float(t), 120.0, -30.0, 150.0, speaking=True) for t in range(1, 40)]
    e = CueEngine(PB)
    assert all(e.feed(p) == [] for p in flat)
    p = tmp_path / "team.yaml"
    p.write_text("cues:\n  tone-flat: {enabled: true}\n")
    e = CueEngine(load_playbook(p))
    assert "tone-flat" in {c.id for ev in flat for c in e.feed(ev)}


# --- mono calls ------------------------------------------------------------------------------

def test_mono_call_has_no_customer_cues() -> None:
    turns = [{"speaker": "customer", "text": ANGRY},
             {"speaker": "agent", "overlap": 2.0, "text": "Can I take your order number please?"},
             {"pause": 10},
             {"speaker": "agent", "text": "I'm sorry, but that's our policy."}]
    stereo = ids(turns)
    mono = ids(turns, customer_channel=False)
    assert {"name-frustration", "talk-over", "dead-air"} <= stereo
    assert not mono & {"name-frustration", "talk-over", "dead-air", "empathy-shown"}
    assert {"qualified-apology", "blame-shift"} <= mono


def test_ignores_other_events() -> None:
    from coach.events import CallEvent, Cue
    e = CueEngine(PB)
    assert e.feed(CallEvent("start", 0.0)) == []
    assert e.feed(Cue("dead-air", 1.0, "agent", "nudge", "x", "y")) == []
    assert e.feed(Turn("customer", 0.0, 0.5)) == []


# --- every call script ----------------------------------------------------------------------

SCRIPTS = sorted((ROOT / "tests" / "scripts").glob("*.yaml")) + sorted(
    (ROOT / "audio_samples" / "scripts").glob("*.yaml")
)


@pytest.mark.parametrize("path", SCRIPTS, ids=[f"{p.parent.parent.name}/{p.stem}" for p in SCRIPTS])
def test_script(path: Path) -> None:
    script = load_script(path)
    cues = run_engine(script_events(script), PB)
    got = {c.id for c in cues}
    missed = sorted(set(script.expect) - got)
    wrong = sorted(set(script.forbid) & got)
    detail = "\n".join(
        f"  {c.t:7.2f} {c.id:20s} {' '.join(w['text'] for w in c.evidence.get('words', []))}" for c in cues
    )
    assert not missed and not wrong, (
        f"{path.name} ({script.title}): missed {missed}, forbidden but fired {wrong}\nfired:\n{detail}"
    )


def test_words_committed_late_in_an_open_utterance_still_make_one_sentence() -> None:
    """The recogniser may commit unsure words seconds after they were said. While the
    speaker's utterance that holds the last word is still open, the sentence is not
    judged finished for lack of words: "I ... can hear how annoying this has been" stays
    one sentence (it was cut after "I" once the clock passed settle_s + skew_s)."""
    engine = CueEngine(PB, customer_channel=False)
    out = engine.feed(Activity("agent", 28.9, True))
    words = [("I", 29.0, 29.2), ("can", 29.2, 29.4), ("hear", 29.4, 29.6),
             ("how", 29.6, 29.9), ("annoying", 29.9, 30.3), ("this", 30.3, 30.8),
             ("has", 30.8, 31.6), ("been.", 31.6, 32.3)]
    w0 = words[0]
    out += engine.advance(30.0)
    out += engine.feed(Word("agent", w0[0], w0[1], w0[2], True))
    out += engine.advance(38.0)  # the rest arrives 6 s after "I"
    for text, a, b in words[1:]:
        out += engine.feed(Word("agent", text, a, b, True))
    out += engine.feed(Activity("agent", 32.4, False))
    out += engine.flush(40.0)
    assert "empathy-shown" in [c.id for c in out if hasattr(c, "severity")]
