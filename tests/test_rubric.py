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
    assert slow.score == 92.0 and not slow.problem
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
    assert result.score == 100 - 3 * 14  # ownership, specific, empathy missed


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
        ("agent", "I'm so sorry about all of this, I really am. Let me fix it now."),
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
             for i, w in enumerate("This is ridiculous, my order is late.".split())]


def test_violations_cost_more_than_misses_and_are_capped() -> None:
    w = COMPLAINT
    base = score_call(w, [], PB, duration_s=10)
    assert base.problem and base.score == 30.0  # five steps missed: 100 - 5 x 14
    one = score_call(w, [cue("no-follow-up", 9.0)], PB, duration_s=10)
    assert one.steps["follow_up"].loss == 17.0 and one.score == 27.0
    many = [cue("minimizing", t) for t in (3.0, 40.0, 80.0, 120.0)]
    capped = score_call(w, many, PB, duration_s=130)
    assert capped.steps["empathy"].loss == 20.0  # 14 + at most 6


def test_delivery_deductions_are_capped_per_aspect_and_in_total() -> None:
    w = [Word("agent", "Hello.", 0.0, 0.4, True)]
    three = [cue("talk-over", t, overlap_s=1.2) for t in (10.0, 50.0, 90.0)]
    r = score_call(w, three, PB, duration_s=100)
    assert r.delivery["talk_over"]["count"] == 3 and r.delivery["talk_over"]["loss"] == 16.0
    assert r.score == 84.0
    worst = three + [cue("dead-air", 30.0, silence_s=8.0, silence_from=22.0),
                     cue("monologue", 70.0, talk_s=40.0, talk_from=30.0)]
    assert score_call(w, worst, PB, duration_s=100).score == 70.0  # delivery costs at most 30


def test_the_score_never_goes_below_zero_and_is_json_ready() -> None:
    r = score(DEMO / "02_every_apology_wrong.yaml")
    assert 0.0 <= r.score <= 5.0
    d = json.loads(json.dumps(r.to_dict()))
    assert set(d) == {"score", "problem", "steps", "delivery", "notes"}
    assert set(d["steps"]) == set(STEPS)
    assert set(d["delivery"]) == {"pace", "tone", "over_apology", "dead_air", "talk_over",
                                  "monologue"}
    assert all(v["status"] in ("met", "missed", "violated", "n/a") for v in d["steps"].values())


def test_empty_call_and_mono_call() -> None:
    r = score_call([], [], PB, duration_s=42.0)
    assert r.score == 100.0 and not r.problem
    assert r.notes == ["no agent speech recognised in 42 s of audio"]
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
