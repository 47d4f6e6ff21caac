"""The QA rubric: each step's status and evidence, the no-problem case, the score formula,
and the ranking of the six demo calls."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from coach.events import Cue, Word
from coach.playbook import load_playbook
from coach.rubric import STEPS, score_call
from coach.scripted import run_engine, script_events

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "audio_samples" / "scripts"
PB = load_playbook()


def analyse(script) -> tuple[list[Word], list[Cue]]:
    events = script_events(script)
    words = [e for e in events if isinstance(e, Word)]
    return words, run_engine(events, PB)


def score(script, **kw):
    words, cues = analyse(script)
    return score_call(words, cues, PB, duration_s=max((w.end for w in words), default=0), **kw)


def turns(*lines: tuple[str, str]) -> dict:
    return {"turns": [{"speaker": sp, "text": text} for sp, text in lines]}


def cue(cue_id: str, t: float, words: list[Word] | None = None, **figures) -> Cue:
    spec = PB.cue(cue_id)
    evidence = dict(figures)
    if words:
        evidence["words"] = [{"text": w.text, "start": w.start, "end": w.end} for w in words]
    return Cue(cue_id, t, spec.speaker, spec.severity,  # type: ignore[arg-type]
               spec.title, spec.advice, evidence)


def word_at(words: list[Word], text: str, after: float = 0.0) -> Word:
    return next(w for w in words if w.text.strip(".,!?").lower() == text.lower()
                and w.start >= after)


MODEL = turns(
    ("customer", "My new washing machine arrived with a cracked door and water all over "
                 "the kitchen floor. I'm so upset."),
    ("agent", "That sounds really upsetting. I'm so sorry we delivered a damaged machine."),
    ("agent", "I've booked a replacement for Friday morning and refunded the delivery fee."),
    ("customer", "Okay, thank you."),
    ("agent", "I'll call you on Friday afternoon to check it is working."),
)
ROUTINE = turns(
    ("agent", "City Library, this is Kim. How can I help?"),
    ("customer", "Hi, I'd like to renew two books, and I won't need the third one."),
    ("agent", "Of course. Could I have your card number?"),
    ("customer", "It's four four one two."),
    ("agent", "Thank you. Both books are renewed until the twelfth of May."),
)


# --- the steps -------------------------------------------------------------------------


def test_model_apology_call_meets_every_step_with_evidence() -> None:
    result = score(MODEL)
    assert result.problem
    assert result.score == 100.0
    for step in STEPS:
        st = result.steps[step]
        assert st.status == "met", (step, st)
        assert st.evidence and all("text" in e and e["start"] <= e["end"] for e in st.evidence)
    ev = {s: result.steps[s].evidence[0]["text"] for s in STEPS}
    assert "sorry we delivered a damaged machine" in ev["ownership"]
    assert "damaged machine" in ev["specific"]
    assert ev["empathy"].startswith("That sounds really upsetting")
    assert ev["solution"].startswith("I've booked a replacement")
    assert ev["follow_up"].startswith("I'll call you on Friday")


def test_evidence_times_point_at_the_words() -> None:
    words, cues = analyse(DEMO / "01_owned_and_fixed.yaml")
    result = score_call(words, cues, PB, duration_s=50)
    empathy = result.steps["empathy"].evidence[0]
    that = word_at(words, "That", after=10)
    assert (empathy["start"], empathy["speaker"]) == (that.start, "agent")
    assert empathy["end"] == word_at(words, "stressful").end
    follow = result.steps["follow_up"].evidence[0]
    ill = next(w for w in words if w.text == "I'll" and w.start > 30)
    assert follow["start"] == ill.start and "Thursday" in follow["text"]

    words, cues = analyse(DEMO / "02_every_apology_wrong.yaml")
    result = score_call(words, cues, PB, duration_s=60)
    by_cue = {e["cue"]: e for s in STEPS for e in result.steps[s].evidence if "cue" in e}
    feel = word_at(words, "feel")
    assert by_cue["conditional-apology"]["text"] == "sorry if you feel"
    assert by_cue["conditional-apology"]["end"] == feel.end
    # name-frustration quotes the customer's words, and says whose they are
    assert by_cue["name-frustration"]["speaker"] == "customer"
    assert by_cue["name-frustration"]["start"] == word_at(words, "ridiculous").start
    assert by_cue["empty-promise"]["text"] == "I guarantee"


def test_every_apology_wrong_scores_far_below_the_model_call() -> None:
    good = score(DEMO / "01_owned_and_fixed.yaml")
    bad = score(DEMO / "02_every_apology_wrong.yaml")
    assert good.score - bad.score >= 80
    assert all(bad.steps[s].status == "violated" for s in STEPS)
    assert bad.delivery["over_apology"]["status"] == "fault"
    # the late "I'll post a new one today" is credited: partly met, not a plain violation
    solution = bad.steps["solution"]
    assert "partly met" in solution.note
    assert any(e.get("text", "").startswith("I'll post a new one") for e in solution.evidence)
    assert solution.loss < bad.steps["specific"].loss


def test_no_problem_call_is_scored_on_delivery_only() -> None:
    words, cues = analyse(ROUTINE)
    assert cues == []
    clean = score_call(words, cues, PB, duration_s=30)
    assert not clean.problem
    assert {s.status for s in clean.steps.values()} == {"n/a"}
    assert clean.score == 100.0  # no apology, no empathy, no follow-up: not marked down
    assert "delivery only" in clean.notes[0]
    slow = score_call(words, [cue("dead-air", 20.0, silence_from=12.0, silence_s=8.0)], PB,
                      duration_s=30)
    # a delivery fault puts the call below every clean call: 84 x (1 - 8/100)
    assert slow.score == 77.3 and not slow.problem and slow.faults == 1
    assert slow.delivery["dead_air"] == {
        "status": "fault", "count": 1, "loss": 8.0,
        "evidence": [{"cue": "dead-air", "t": 20.0, "title": PB.cue("dead-air").title,
                      "severity": "nudge", "detail": "8 s of silence from 00:12"}],
    }


def test_courtesy_and_clarifying_apologies_are_not_a_problem() -> None:
    words, _ = analyse(turns(
        ("agent", "Sorry to keep you waiting. How can I help?"),
        ("customer", "I'd like to book a table for four on Saturday."),
        ("agent", "Sorry, could you repeat the day?"),
        ("customer", "Saturday."),
        ("agent", "Lovely, that's booked for Saturday at seven."),
    ))
    # The rubric's own reading of the words (the cue engine is tested in test_cues.py).
    result = score_call(words, [], PB, duration_s=20)
    assert not result.problem and result.score == 100.0
    sincere = [Word("agent", w, 0.5 + i * 0.4, 0.8 + i * 0.4, True)
               for i, w in enumerate("Sorry we kept you waiting so long.".split())]
    assert score_call(sincere, [], PB, duration_s=5).problem


def test_a_complaint_without_an_apology_misses_the_apology_steps() -> None:
    result = score(turns(
        ("customer", "My parcel arrived broken."),
        ("agent", "Let me send a replacement today."),
        ("agent", "I'll email you the tracking number tonight."),
    ))
    assert result.problem
    assert result.steps["ownership"].status == "missed"
    assert result.steps["ownership"].note == "never apologised for the problem"
    assert result.steps["specific"].status == "missed"
    assert result.steps["solution"].status == "met"
    assert result.steps["follow_up"].status == "met"
    assert result.severity == "major"  # broken: a real failure, all five steps expected
    assert result.loss == 3 * 14 and result.faults == 3  # ownership, specific, empathy missed
    assert result.score == round(84 * (1 - 42 / 100), 1)


def test_a_spoiled_apology_is_not_evidence_of_ownership() -> None:
    words, cues = analyse(turns(
        ("customer", "You sent me the wrong tickets."),
        ("agent", "Oops! Sorry about that. I'll send the right ones now."),
    ))
    assert "casual-apology" in {c.id for c in cues}
    result = score_call(words, cues, PB, duration_s=10)
    assert result.steps["ownership"].status == "missed"
    assert result.steps["specific"].status == "violated"


def test_an_apology_naming_the_problem_is_specific_and_one_that_does_not_is_not() -> None:
    vague = score(turns(
        ("customer", "My bill is wrong again."),
        ("agent", "I'm so sorry, I really am. Let me fix it now."),
    ))
    assert vague.steps["ownership"].status == "met"
    assert vague.steps["specific"].status == "missed"
    named = score(turns(
        ("customer", "My bill is wrong again."),
        ("agent", "I'm so sorry we estimated your bill. Let me fix it now."),
    ))
    assert named.steps["specific"].status == "met"
    assert "estimated your bill" in named.steps["specific"].evidence[0]["text"]


# --- the formula -----------------------------------------------------------------------


COMPLAINT = [Word("customer", w, i * 0.4, i * 0.4 + 0.3, True)
             for i, w in enumerate("This is ridiculous, my order never arrived.".split())]
COMPLAINT += [Word("agent", w, 4 + i * 0.4, 4.3 + i * 0.4, True)
              for i, w in enumerate("Okay, thank you.".split())]


def test_violations_cost_more_than_misses_and_are_capped() -> None:
    w = COMPLAINT
    base = score_call(w, [], PB, duration_s=10)
    assert base.problem and base.loss == 70.0  # five steps missed: 5 x 14
    assert base.score == round(84 * 0.3, 1)
    one = score_call(w, [cue("no-follow-up", 9.0)], PB, duration_s=10)
    assert one.steps["follow_up"].loss == 17.0 and one.loss == 73.0
    assert one.score < base.score
    many = [cue("minimizing", t) for t in (3.0, 40.0, 80.0, 120.0)]
    capped = score_call(w, many, PB, duration_s=130)
    assert capped.steps["empathy"].loss == 20.0  # 14 + at most 6


def test_delivery_deductions_are_capped_per_aspect_and_in_total() -> None:
    w = [Word("agent", "Hello.", 0.0, 0.4, True)]
    three = [cue("talk-over", t, overlap_s=1.2) for t in (10.0, 50.0, 90.0)]
    r = score_call(w, three, PB, duration_s=100)
    assert r.delivery["talk_over"]["count"] == 3 and r.delivery["talk_over"]["loss"] == 16.0
    assert r.loss == 16.0 and r.score == round(84 * 0.84, 1)
    worst = three + [cue("dead-air", 30.0, silence_s=8.0, silence_from=22.0),
                     cue("monologue", 70.0, talk_s=40.0, talk_from=30.0)]
    worst_r = score_call(w, worst, PB, duration_s=100)
    assert worst_r.loss == 30.0  # delivery costs at most 30
    assert worst_r.score == round(84 * 0.7, 1)


def test_the_score_never_goes_below_zero_and_is_json_ready() -> None:
    r = score(DEMO / "02_every_apology_wrong.yaml")
    assert 0.0 <= r.score <= 5.0
    d = json.loads(json.dumps(r.to_dict()))
    assert set(d) == {"score", "status", "problem", "severity", "faults", "loss", "steps",
                      "delivery", "notes"}
    assert d["status"] == "ok" and d["severity"] == "major"
    assert set(d["steps"]) == set(STEPS)
    assert set(d["delivery"]) == {"pace", "tone", "over_apology", "dead_air", "talk_over",
                                  "monologue"}
    assert all(v["status"] in ("met", "missed", "violated", "n/a") for v in d["steps"].values())


def test_empty_call_and_mono_call() -> None:
    r = score_call([], [cue("dead-air", 12.0, silence_s=10.0, silence_from=2.0)], PB,
                   duration_s=42.0)
    assert r.score is None and r.no_speech and not r.problem  # not 100: nothing to score
    assert r.to_dict()["status"] == "no speech"
    assert r.notes == ["no agent speech recognised in 42 s of audio"]
    assert {st.status for st in r.steps.values()} == {"n/a"}
    customer_only = [w for w in COMPLAINT if w.speaker == "customer"]
    r = score_call(customer_only, [], PB, duration_s=10.0)
    assert r.score is None
    assert "the customer side has 7 words: is the agent's channel the right one?" in r.notes[0]
    mono = [w for w in analyse(MODEL)[0] if w.speaker == "agent"]
    r = score_call(mono, run_engine(mono, PB, customer_channel=False), PB, duration_s=30)
    assert r.problem and r.steps["ownership"].status == "met"


def test_pace_reports_the_median_rate() -> None:
    words, cues = analyse(MODEL)
    estimated = score_call(words, cues, PB, duration_s=30).delivery["pace"]["wpm_median"]
    assert estimated == pytest.approx(150, abs=15)  # the scripts speak at 150 wpm
    given = score_call(words, cues, PB, duration_s=30, delivery={"agent_wpm_median": 171.5})
    assert given.delivery["pace"]["wpm_median"] == 171.5


# --- the six demo calls ----------------------------------------------------------------


def test_demo_calls_rank_as_their_manifests_describe() -> None:
    scores = {p.stem[:2]: score(p) for p in sorted(DEMO.glob("*.yaml"))}
    s = {k: v.score for k, v in scores.items()}
    print("demo scores:", s)
    assert s["01"] == s["06"] == 100.0  # the model call and the routine call
    assert not scores["06"].problem
    assert s["01"] > s["05"] > s["03"] > s["04"] > s["02"]
    assert min(s, key=s.get) == "02"
    # 05: good words, poor delivery: every step met, points lost on delivery only
    assert {st.status for st in scores["05"].steps.values()} == {"met"}
    assert {k for k, v in scores["05"].delivery.items() if v["status"] == "fault"} == {
        "pace", "dead_air", "talk_over"}
    # 03: fixed efficiently, the frustration never named
    assert scores["03"].steps["empathy"].status == "violated"
    assert scores["03"].steps["solution"].status == "met"
    # 04: apologies on repeat, no fix, nothing arranged
    assert scores["04"].steps["solution"].status == "violated"
    assert scores["04"].steps["follow_up"].status == "violated"
    assert scores["04"].delivery["over_apology"]["count"] == 1


# --- real speech -------------------------------------------------------------------------


@pytest.mark.slow
def test_demo_audio_through_whisper_scores_like_the_scripts(transcriber, vad) -> None:
    """The rubric on what the pipeline really hears (tiny.en words, real timing and
    punctuation), not only on scripted text."""
    from coach.analyze import analyze_file

    scores = {}
    for name in ("01_owned_and_fixed", "02_every_apology_wrong"):
        res = analyze_file(ROOT / "audio_samples" / f"{name}.flac", transcriber=transcriber,
                           make_vad=vad.shared, playbook=PB, agent_channel="left")
        s = res.summary
        scores[name] = score_call(s.words, s.cues, PB, duration_s=res.duration_s,
                                  delivery=s.delivery())
    good, bad = scores["01_owned_and_fixed"], scores["02_every_apology_wrong"]
    assert good.score >= 90 and {st.status for st in good.steps.values()} == {"met"}
    assert bad.score <= 20 and all(bad.steps[s].status == "violated" for s in STEPS)
    assert 100 < good.delivery["pace"]["wpm_median"] < 200  # espeak speaks at ~140 wpm


# --- severity: the steps a problem calls for ---------------------------------------------


def said(*lines: tuple[str, str], gap: float = 0.6, word_s: float = 0.35) -> list[Word]:
    """Words on a timeline: each (speaker, text) line after the last, ``word_s`` a word."""
    out: list[Word] = []
    t = 0.5
    for speaker, text in lines:
        for w in text.split():
            out.append(Word(speaker, w, t, t + word_s * 0.85, True))
            t += word_s
        t += gap
    return out


def rub(words: list[Word], cues: list[Cue] | None = None, pb=PB):
    return score_call(words, cues or [], pb, duration_s=max((w.end for w in words), default=0))


WAIT = ("customer", "Hi, I've been on hold for ten minutes.")
CHARGED = ("customer", "You charged me twice for my order.")


def test_a_minor_problem_needs_a_specific_apology_and_the_fix_only() -> None:
    r = rub(said(WAIT, ("agent", "I'm sorry about the wait. Let me pull up your order now."),
                 ("customer", "I need to change the delivery day to Friday."),
                 ("agent", "Done, it comes on Friday.")))
    assert r.problem and r.severity == "minor"
    assert {k: v.status for k, v in r.steps.items()} == {
        "ownership": "met", "specific": "met", "empathy": "n/a", "solution": "met",
        "follow_up": "n/a"}
    assert r.steps["empathy"].note == "not expected for a minor problem"
    assert "about the wait" in r.steps["specific"].evidence[0]["text"]
    assert r.score == 100.0 and r.faults == 0
    assert r.notes == ["a minor problem (a short wait or a small delay): expects took "
                       "responsibility, was specific, offered a real solution"]
    # the same call without the fix misses a step the minor problem does call for
    no_fix = rub(said(WAIT, ("agent", "I'm sorry about the wait.")))
    assert no_fix.steps["solution"].status == "missed" and no_fix.score < 85


def test_a_courtesy_apology_answers_a_complaint_about_the_wait() -> None:
    r = rub(said(WAIT, ("agent", "Sorry to keep you waiting. Let me look at that now.")))
    assert r.severity == "minor" and r.steps["ownership"].status == "met"
    assert r.steps["specific"].status == "met" and r.score == 100.0
    # without the complaint it is a courtesy, not a problem (as before)
    assert not rub(said(("agent", "Sorry to keep you waiting. How can I help?"))).problem


def test_a_real_failure_needs_all_five_steps() -> None:
    words = said(CHARGED, ("agent", "I'm so sorry we charged you twice."),
                 ("agent", "I have refunded the second payment."))
    r = rub(words)
    assert r.severity == "major"
    assert r.steps["empathy"].status == r.steps["follow_up"].status == "missed"
    assert r.score < 85
    full = rub(said(CHARGED, ("agent", "That must be so frustrating. I'm so sorry we charged "
                                       "you twice."),
                    ("agent", "I have refunded the second payment."),
                    ("agent", "I will email you the receipt tonight.")))
    assert {st.status for st in full.steps.values()} == {"met"} and full.score == 100.0
    # a minor word beside a major one: the major one decides
    mixed = rub(said(("customer", "I waited ten minutes and my order never arrived."),
                     ("agent", "I'm sorry the order never arrived.")))
    assert mixed.severity == "major"


@pytest.mark.parametrize("line", [
    "I've called three times about this.",        # a repeat contact
    "You promised a refund last week.",           # a promise not kept
    "The engineer never turned up.",              # something missed
    "The screen arrived cracked.",                # something broken
])
def test_real_failures_of_every_kind_are_major(line: str) -> None:
    r = rub(said(("customer", line), ("agent", "I'm so sorry about that.")))
    assert r.severity == "major", line


def test_a_feeling_voiced_over_a_minor_problem_still_asks_for_empathy() -> None:
    r = rub(said(("customer", "I've been on hold for ten minutes, I'm really annoyed."),
                 ("agent", "I'm sorry about the wait. Let me sort your order now.")))
    assert r.severity == "minor" and r.steps["empathy"].status == "missed"
    assert r.steps["follow_up"].status == "n/a"


def test_no_follow_up_cue_is_not_a_fault_on_a_minor_problem_nor_when_words_refute_it() -> None:
    minor = said(WAIT, ("agent", "I'm sorry about the wait. Let me pull up your order now."))
    r = rub(minor, [cue("no-follow-up", 9.0, words=minor[8:12])])
    assert r.steps["follow_up"].status == "n/a" and r.score == 100.0
    # "I will email you the receipt tonight" is a follow-up even if the live cue missed it
    major = said(CHARGED, ("agent", "That must be so frustrating. I'm so sorry we charged "
                                    "you twice. I have refunded the second payment."),
                 ("agent", "I will email you the receipt tonight."))
    r = rub(major, [cue("no-follow-up", 20.0, words=major[12:18])])
    assert r.steps["follow_up"].status == "met" and r.score == 100.0
    assert "missed these words" in r.steps["follow_up"].note
    assert r.steps["follow_up"].evidence[0]["text"] == "I will email you the receipt tonight."


def test_a_missing_follow_up_is_said_as_missing_not_quoted_from_the_apology() -> None:
    words = said(CHARGED, ("agent", "I'm sorry, but that's our fault. I have refunded it."))
    apology = words[7:9]
    r = rub(words, [cue("no-follow-up", 14.0, words=apology)])
    ev = r.steps["follow_up"].evidence
    assert r.steps["follow_up"].status == "violated"
    assert ev == [{"cue": "no-follow-up", "t": 14.0, "title": PB.cue("no-follow-up").title,
                   "severity": PB.cue("no-follow-up").severity,
                   "detail": "the call ended at 00:14 with no follow-up arranged"}]


@pytest.mark.parametrize("opening", [
    "Sorry. Could you repeat that?", "Sorry, could you repeat that?",
    "Sorry? Could you say that again?", "Sorry, I didn't catch that."])
def test_a_request_to_repeat_is_not_a_problem(opening: str) -> None:
    r = rub(said(("customer", "Hi, I want to update my address."), ("agent", opening),
                 ("customer", "I want to update my address."),
                 ("agent", "Of course, what is the new address?")))
    assert not r.problem and r.score == 100.0, opening


def test_severity_words_come_from_the_playbook(tmp_path: Path) -> None:
    team = tmp_path / "team.yaml"
    team.write_text("lexicon:\n  problem_minor+: ['stuck in the lift']\n", encoding="utf-8")
    from coach.playbook import load_playbook as load

    words = said(("customer", "I was stuck in the lift for ten minutes."),
                 ("agent", "I'm sorry you were stuck in the lift. Let me get that checked now."))
    assert rub(words).severity == "major"  # the default knows no lift
    assert rub(words, pb=load(team)).severity == "minor"


def test_a_standalone_playbook_without_severity_words_expects_all_five(tmp_path: Path) -> None:
    import yaml

    from coach.playbook import load_playbook as load

    data = yaml.safe_load((ROOT / "coach" / "playbooks" / "default.yaml").read_text())
    data["extends"] = None
    del data["lexicon"]["problem_minor"], data["lexicon"]["problem_major"]
    own = tmp_path / "own.yaml"
    own.write_text(yaml.safe_dump(data), encoding="utf-8")
    pb = load(own)
    assert pb.lexicon.get("problem_minor") is None
    late = said(("customer", "My order is a day late."),
                ("agent", "I'm sorry your order is late. Let me check it now."))
    assert rub(late).severity == "minor"
    r = rub(late, pb=pb)
    assert r.severity == "major" and r.steps["follow_up"].status == "missed"


# --- the ranking, as a property ------------------------------------------------------------

# What the customer raised, the apology that fits it, and the steps it needs.
_SCENES = {
    "none": ([("customer", "Hi, I would like to change my delivery day.")], None,
             set()),
    "minor": ([WAIT], "I'm sorry about the wait.",
              {"apology", "fix"}),
    "minor_upset": ([("customer", "I've been on hold for ten minutes, I'm so annoyed.")],
                    "I'm sorry about the wait.", {"apology", "fix", "empathy"}),
    "major": ([CHARGED], "I'm so sorry we charged you twice.",
              {"apology", "fix", "empathy", "follow_up"}),
}
_PARTS = {
    "empathy": "That must be so frustrating.",
    "fix": "Let me sort that out for you now.",
    "follow_up": "I will email you the confirmation tonight.",
}
_FAULT_CUES = ["conditional-apology", "blame-shift", "qualified-apology", "generic-apology",
               "casual-apology", "name-frustration", "minimizing", "laughter", "no-action",
               "empty-promise", "pace-fast", "tone-tense", "tone-flat", "volume-loud",
               "over-apology", "dead-air", "talk-over", "monologue"]


def _generated_calls():
    """(scene, parts said, fault cues, words, cues, clean?) over every ordering of every
    subset of the agent's parts, each with a seeded draw of fault cues (none, one, two)."""
    import itertools
    import random

    rng = random.Random(20261201)
    for scene, (opening, apology, needs) in _SCENES.items():
        names = ["apology", *_PARTS] if apology else list(_PARTS)
        for n in range(len(names) + 1):
            for parts in itertools.permutations(names, n):  # in any order
                agent = [apology if p == "apology" else _PARTS[p] for p in parts]
                if scene == "none":
                    agent = [t for t in agent if t not in (_PARTS["empathy"],)]
                words = said(*opening, ("agent", " ".join(agent) or "Of course."),
                             ("customer", "Thank you."))
                end = words[-1].end
                for k in (0, 1, 2):
                    ids = rng.sample(_FAULT_CUES, k)
                    cues = [cue(cid, round(rng.uniform(1.0, end), 2)) for cid in ids]
                    # "I will email you..." is an action too: it stands in for the fix
                    done = set(parts) | ({"fix"} if "follow_up" in parts else set())
                    clean = not cues and needs <= done
                    yield scene, parts, ids, words, cues, clean


def test_every_clean_call_scores_85_or_more_and_ranks_above_every_faulty_call() -> None:
    clean, faulty = [], []
    by_call: dict[tuple, float] = {}
    for scene, parts, ids, words, cues, is_clean in _generated_calls():
        r = rub(words, cues)
        assert r.score is not None
        (clean if is_clean else faulty).append((r.score, scene, parts, ids))
        assert (r.faults == 0) == is_clean, (scene, parts, ids, r.steps)
        key = (scene, parts)
        if not ids:
            by_call[key] = r.score
        else:  # a fault added to a call never raises its score
            assert r.score <= by_call[key], (scene, parts, ids)
    assert len(clean) >= 50 and len(faulty) >= 500
    assert min(s for s, *_ in clean) >= 85
    assert max(s for s, *_ in faulty) < min(s for s, *_ in clean), max(faulty)


def test_a_withdrawn_cue_is_not_a_fault() -> None:
    from coach.events import Retraction
    from coach.rubric import score_events
    from coach.summary import CallSummary

    words = said(("customer", "Hi, I would like to change my delivery day."),
                 ("agent", "Of course, it is now on Friday."))
    talk = cue("talk-over", 3.0, overlap_s=1.0)
    withdrawn = Retraction("talk-over", 3.0, 3.5, "it was a backchannel")
    events = [*words, talk, withdrawn]
    assert score_events([e.to_dict() for e in events], PB).score == 100.0
    assert score_events([e.to_dict() for e in [*words, talk]], PB).score < 85
    summary = CallSummary()
    for e in events:
        summary.add(e)
    assert summary.cues == []
    # as the store keeps it: the cue, marked withdrawn in its evidence
    kept = Cue(talk.id, talk.t, talk.speaker, talk.severity, talk.title, talk.advice,
               {**talk.evidence, "withdrawn": {"at": 3.5, "reason": "it was a backchannel"}})
    assert rub(words, [kept]).score == 100.0
    # a withdrawal recorded without when or why is still a withdrawal, as the store counts it
    bare = Cue(talk.id, talk.t, talk.speaker, talk.severity, talk.title, talk.advice,
               {**talk.evidence, "withdrawn": {}})
    assert rub(words, [bare]).score == 100.0
