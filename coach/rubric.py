"""The QA rubric: one finished call's words and cues in, a 0-100 score with evidence out.

Pure: no I/O, no clock. A QA analyst reads the result to decide which calls to listen to
and why, so every point lost is tied to evidence: the words (with their times) that
satisfied a step, or the cue that violated it.

The five steps of a sincere apology (CUES.md, "QA rubric"):

==============  ==========================================  ==============================
step            met when the agent's final words contain     violated by the cues
==============  ==========================================  ==============================
ownership       an apology for the problem that is not       conditional-apology,
                spoiled by a condition, an excuse or blame   blame-shift, qualified-apology
                (+ matches of an ``ownership`` lexicon,
                when the playbook defines one)
specific        such an apology whose sentence names the     generic-apology,
                problem: a ``problem`` (or severity)         casual-apology
                lexicon phrase, a
                content word the customer used before it,
                what the company did ("sorry WE sent...",
                "OUR queue") or a stock phrase made specific
                ("the mix-up with your address")
empathy         an ``empathy`` lexicon phrase (or an         name-frustration, minimizing,
                ``empathy-shown`` cue)                       laughter
solution        an ``action`` lexicon phrase once the        no-action, empty-promise
                customer has spoken
follow_up       a ``follow_up`` lexicon phrase not made      no-follow-up
                vague by ``follow_up_vague``
==============  ==========================================  ==============================

Apologies are the live cue engine's: the shared apology analysis (``coach/apology.py`` over
``coach/language.py`` sentences) finds them and sorts out requests to repeat (``not_apology``,
or a "sorry?") and courtesies (``courtesy``: "sorry to keep you waiting", which make no
problem of their own); the rubric also drops a bare "Sorry." whose next sentence is the
request ("Sorry. Could you repeat that?", as a recogniser punctuates it).

``qualified-apology`` ("sorry, but...") is not in CUES.md's list for any step; we count it
against ownership because an apology turned into an excuse is exactly the failure to take
responsibility the guides warn about. An apology is *spoiled* (cannot be positive
evidence) when the apology analysis found a flaw in it (a contrast, a condition, a stock
object: the same verdict the live cues use), or a casual-apology or blame-shift cue has
evidence words in its sentence or in the two seconds before it ("Oops! Sorry about
that.").

The call had a **problem** when the customer used ``problem``, ``frustration``,
``problem_minor`` or ``problem_major`` lexicon words (not negated by ``not_frustration``,
"no problem", and not a bare negation such as "won't" or "never", which routine requests
are full of), or the agent apologised for something (an apology that is not a courtesy,
"sorry to keep you waiting", nor a request to repeat, "sorry, could you...", also when the
recogniser splits it: "Sorry. Could you repeat that?"), or any of the step-violating cues
above fired (they only fire around a problem). A courtesy apology for the wait answers a
customer who complained of waiting, so it counts as the apology then.

**Severity** sets the steps a problem expects (CUES.md: match the apology to the problem).
It is ``major`` (a real failure: money taken, something broken or missed, a repeat contact,
a promise not kept) when the customer's sentences or the agent's apologies hold a
``problem_major`` phrase; else ``minor`` when they hold a ``problem_minor`` phrase (a short
wait, a small delay); else ``major`` (a problem the playbook cannot place is treated as a
real one, and so is one known only from cues). A minor problem expects ownership, specific
and solution; a major one all five; and a customer who voiced a feeling (``frustration``
words) is owed empathy either way. The two lexicon names are read through
``playbook.lexicon`` so a team playbook can extend or replace them; a standalone playbook
without them treats every problem as major.

A step's status: ``n/a`` when the call had no problem, or when the problem does not expect
the step and nothing was said for or against it; otherwise ``violated`` when any of its
cues fired (even if the agent also got it right elsewhere: the customer heard the fault),
else ``met`` with positive evidence, else ``missed`` (expected steps only). ``no-follow-up``
only says a follow-up was absent: it is no fault on a step the problem does not expect, nor
where the agent's words hold a follow-up the live cue missed ("I will email you the receipt
tonight"); its evidence says when the call ended, not the apology it was raised about.

Delivery, six aspects, each ``fault`` when any of its cues fired: pace (pace-fast), tone
(tone-tense, tone-flat, volume-loud), over_apology (over-apology), dead_air (dead-air),
talk_over (talk-over), monologue (monologue).

**Score.** A *fault* is an apology step violated or missed, or a delivery cue. A call with
no fault is *clean* and scores 100. A call with faults scores below every clean call, by
construction, however small its faults::

    loss  = min(100, apology_loss + delivery_loss)
    score = 100                          if the call is clean (no fault)
          = 84 x (1 - loss / 100)        otherwise (one decimal; at most 77.3, at least 0)

    apology_loss  = sum over the five steps of
        n/a, met  0
        missed    14
        violated  14 + 3 per violating cue (at most +6),
                  minus 7 if the step also has positive evidence (partly met)
    delivery_loss = min(30, sum over the six aspects of min(16, 8 per fault cue))

Every fault costs at least 8 points of loss, so a faulty call scores at most 84 x 0.92 =
77.3, and the ceiling 84 keeps it under the clean floor of 85 whatever the rounding. Among
faulty calls the order is the order of their loss, and a routine call and a problem call
lose the same for the same delivery fault. A call with no problem can only lose delivery
points. Example: a real failure never apologised for (ownership and specific missed: 28),
the frustration ignored once (empathy violated: 17), fixed and followed up, one stretch of
dead air (8): loss 53, score 84 x 0.47 = 39.5.

A call with **no agent speech** (a silent recording, or the wrong channel taken for the
agent) has no score: ``score`` is None and its status "no speech", so reports keep it out
of averages and distributions.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .apology import FLAWS, analyse_apologies
from .events import AGENT, CUSTOMER, Cue, Word
from .evidence import is_withdrawn
from .language import Hit, Sentence, normalise_word, sentences_of, spans
from .playbook import PatternSet, Playbook
from .rubric_evidence import (
    ABSENCE_CUES,
    cue_ev,
    cue_word_spans,
    dedupe,
    ev_time,
    snippet,
)
from .summary import transcript_lines

__all__ = [
    "DELIVERY_ASPECTS",
    "STEPS",
    "STEP_TITLES",
    "STEP_VIOLATIONS",
    "CallScore",
    "StepResult",
    "score_call",
]

STEPS: tuple[str, ...] = ("ownership", "specific", "empathy", "solution", "follow_up")
STEP_TITLES: dict[str, str] = {
    "ownership": "Took responsibility",
    "specific": "Was specific",
    "empathy": "Showed empathy",
    "solution": "Offered a real solution",
    "follow_up": "Followed up",
}
STEP_VIOLATIONS: dict[str, tuple[str, ...]] = {
    "ownership": ("conditional-apology", "blame-shift", "qualified-apology"),
    "specific": ("generic-apology", "casual-apology"),
    "empathy": ("name-frustration", "minimizing", "laughter"),
    "solution": ("no-action", "empty-promise"),
    "follow_up": ("no-follow-up",),
}
DELIVERY_ASPECTS: dict[str, tuple[str, ...]] = {
    "pace": ("pace-fast",),
    "tone": ("tone-tense", "tone-flat", "volume-loud"),
    "over_apology": ("over-apology",),
    "dead_air": ("dead-air",),
    "talk_over": ("talk-over",),
    "monologue": ("monologue",),
}

# Which steps a problem of each severity expects (CUES.md: "match the severity of your
# apology to the severity of the problem").
SEVERITIES = ("minor", "major")
EXPECTED: dict[str, tuple[str, ...]] = {
    "minor": ("ownership", "specific", "solution"),
    "major": STEPS,
}
SEVERITY_LABELS = {
    "minor": "a minor problem (a short wait or a small delay)",
    "major": "a real failure (money taken, something broken or missed, a repeat contact, "
             "a promise not kept)",
}
NO_SPEECH = "no speech"

# The formula of the module docstring.
CLEAN_SCORE = 100.0
FAULT_CEILING = 84.0
MAX_LOSS = 100.0
STEP_POINTS = 14.0
PARTLY_MET_CREDIT = 7.0
VIOLATION_PENALTY = 3.0
VIOLATION_PENALTY_CAP = 6.0
DELIVERY_POINTS = 30.0
DELIVERY_DEDUCTION = 8.0
DELIVERY_ASPECT_CAP = 16.0

# Cues whose words on or just before an apology mean it was not an owned apology, beyond
# the flaws the shared apology analysis judges itself (coach/apology.py FLAWS).
_SPOILERS = frozenset({"casual-apology", "blame-shift"}) - frozenset(FLAWS)
_SPOIL_LEAD_S = 2.0
_SEVERITY_LEX = ("problem_minor", "problem_major")
_VIOLATING = frozenset(c for ids in STEP_VIOLATIONS.values() for c in ids)
_MAX_POSITIVE = 4  # positive evidence kept per step: enough to judge, short to read
_TAIL_TOKENS = 15  # how far after an apology the problem may be named
_NEXT_SENTENCE_S = 2.0
# Function words never count as "naming the problem" when shared with the customer.
_FUNCTION_WORDS = frozenset(
    "about above after again also been before being could does doing down each even ever "
    "from have having here just into know like make more most much only other over really "
    "said same should some such than that them then there these they thing things this "
    "those very want well were what when where which while will with would your yours "
    "okay yeah please thank thanks sorry today truly terribly deeply sincerely genuinely "
    "honestly hear happened everything".split()
)
# The company as the one who did it: "sorry WE sent the wrong size", "OUR mistake".
_COMPANY = frozenset({"we", "our", "us"})
# Auxiliaries and negations: a complaint needs more than "won't" or "never" on its own.
_BARE_NEGATION = frozenset(
    "not never no nobody one longer without can could does did will would is was are were "
    "has have had".split()
)

_MET_NOTES = {
    "ownership": "apologised for the problem without conditions or excuses",
    "specific": "the apology named the actual problem",
    "empathy": "named or acknowledged the customer's feeling",
    "solution": "offered a concrete action",
    "follow_up": "said how or when they will follow up",
}
_MISSED_NOTES = {
    "ownership": "never apologised for the problem",
    "specific": "no apology named the actual problem",
    "empathy": "never acknowledged how the customer felt",
    "solution": "no concrete action offered",
    "follow_up": "no follow-up arranged",
}


@dataclass
class StepResult:
    """One rubric step: its status, the evidence behind it and a one-line reason."""

    status: str  # "met" | "missed" | "violated" | "n/a"
    evidence: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""
    loss: float = 0.0  # points this step cost the call

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "evidence": self.evidence, "note": self.note,
                "loss": self.loss}


@dataclass
class CallScore:
    """The rubric result of one call (see the module docstring for the formula)."""

    score: float | None  # None: no speech in the call, nothing to score
    problem: bool
    steps: dict[str, StepResult]
    delivery: dict[str, dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    severity: str | None = None  # "minor" | "major" when the call had a problem
    faults: int = 0  # apology steps violated or missed, plus delivery fault cues
    loss: float = 0.0  # the points of the formula, before the fault ceiling

    @property
    def no_speech(self) -> bool:
        return self.score is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "status": NO_SPEECH if self.no_speech else "ok",
            "problem": self.problem,
            "severity": self.severity,
            "faults": self.faults,
            "loss": self.loss,
            "steps": {name: step.to_dict() for name, step in self.steps.items()},
            "delivery": self.delivery,
            "notes": list(self.notes),
        }


# --- text --------------------------------------------------------------------------------


def _overlaps(h: Hit, spans: list[tuple[int, int]]) -> bool:
    return any(a < h.b and b > h.a for a, b in spans)


def _sentences(words: list[Word], pause_s: float) -> list[Sentence]:
    return sentences_of(words, pause_s=pause_s)


def _lex(playbook: Playbook, name: str) -> PatternSet | None:
    return playbook.lexicon.get(name)


# --- the rubric ---------------------------------------------------------------------------


@dataclass
class _Apology:
    hit: Hit
    courtesy: bool
    flawed: bool  # the shared apology analysis found a flaw in it (coach/apology.py)


def _apologies(sents: list[Sentence], playbook: Playbook) -> list[_Apology]:
    """The agent's apologies as the live cue engine reads them (coach/apology.py), minus
    the requests to repeat that a recogniser split in two ("Sorry. Could you repeat?")."""
    if playbook.lexicon.get("apology") is None:
        return []
    not_apology = _lex(playbook, "not_apology")
    out = []
    for apo in analyse_apologies(sents, playbook):
        if apo.kind == "request":
            continue
        hit = Hit(apo.sentence, apo.tok_start, apo.tok_end, tuple(apo.words))
        i = sents.index(apo.sentence)
        if _request_follows(hit, sents[i + 1:i + 2], not_apology):
            continue
        out.append(_Apology(hit, courtesy=apo.kind == "courtesy", flawed=bool(apo.flaws)))
    return out


def _request_follows(h: Hit, nxt: list[Sentence], not_apology: PatternSet | None) -> bool:
    """A bare "sorry" sentence (as a recogniser often punctuates it) whose next sentence,
    said at once, is a request to repeat: read as one, ``not_apology`` denies it."""
    s = h.sentence
    if not nxt or not_apology is None or h.b < len(s.toks) - 1 or h.a > 2:
        return False
    if nxt[0].start - s.end > _NEXT_SENTENCE_S:
        return False
    return not_apology.search(f"{s.text} {nxt[0].text}") is not None


_COMPLAINT_LEX = ("problem", "frustration", *_SEVERITY_LEX)


def _customer_problems(sents: list[Sentence], playbook: Playbook,
                       names: tuple[str, ...] = _COMPLAINT_LEX) -> list[Hit]:
    negation = _lex(playbook, "not_frustration")
    out: list[Hit] = []
    for s in sents:
        negated = spans(s, negation) if negation is not None else []
        for name in names:
            ps = _lex(playbook, name)
            if ps is not None:
                out += [h for h in s.hits(ps) if not _overlaps(h, negated)
                        and not set(s.toks[h.a:h.b]) <= _BARE_NEGATION]
    return sorted(out, key=lambda h: h.start)


def _names_problem(apo: Hit, sents: list[Sentence], customer: list[Word],
                   playbook: Playbook) -> Word | None:
    """The last word naming the problem after the apology, or None.

    The apology's sentence (or the next one, when the apology stands alone: "I'm so sorry.
    The parcel went to the wrong address.") names the problem when it holds a ``problem``
    lexicon phrase, a content word the customer used before it ("sorry about your
    glasses"), what the company did ("sorry we estimated it", "our queue"), or a stock
    phrase made specific the way generic-apology accepts ("the mix-up with your address").
    """
    s = apo.sentence
    tails = [(s, apo.b, min(len(s.toks), apo.b + _TAIL_TOKENS))]
    if len(s.toks) - apo.b < 3:
        i = sents.index(s)
        if i + 1 < len(sents) and sents[i + 1].start - s.end <= _NEXT_SENTENCE_S:
            nxt = sents[i + 1]
            tails.append((nxt, 0, min(len(nxt.toks), _TAIL_TOKENS)))
    heard = {tok for w in customer if w.start < apo.end for tok in normalise_word(w.text)
             if _content(tok)}
    problems = [ps for ps in (_lex(playbook, n) for n in ("problem", *_SEVERITY_LEX))
                if ps is not None]
    generic = playbook.cues.get("generic-apology")
    stock = generic.patterns.get("stock") if generic is not None else None
    specific = generic.patterns.get("specific") if generic is not None else None
    lead = int(generic.windows.get("lead_words", 2)) if generic is not None else 2
    named: list[Word] = []
    for sent, a, b in tails:
        for i in range(a, b):
            tok = sent.toks[i]
            if tok in heard or (
                tok in _COMPANY and any(_content(t) for t in sent.toks[i + 1:min(b, i + 4)])
            ):
                named.append(sent.words[sent.tok_word[min(b, i + 3) - 1]])
        for problem in problems:
            named += [h.words[-1] for h in sent.hits(problem) if a <= h.a and h.b <= b
                      and not set(sent.toks[h.a:h.b]) <= _BARE_NEGATION]
        if stock is not None and specific is not None and sent is s:
            for h in sent.hits(stock):
                if 0 <= h.a - a <= lead and h.b < len(sent.toks) and specific.match(
                    sent.text, sent.offsets[h.b]
                ):
                    named.append(sent.words[sent.tok_word[min(b, h.b + 2) - 1]])
    return max(named, key=lambda w: w.end) if named else None


def _content(tok: str) -> bool:
    return len(tok) >= 4 and tok.isalpha() and tok not in _FUNCTION_WORDS


def _follow_ups(sents: list[Sentence], playbook: Playbook) -> list[Hit]:
    ps, vague = _lex(playbook, "follow_up"), _lex(playbook, "follow_up_vague")
    if ps is None:
        return []
    out = []
    for s in sents:
        vague_at = [a for a, _ in spans(s, vague)] if vague is not None else []
        for h in s.hits(ps):
            # "someone will be in touch at some point" says neither how nor when
            if not any(h.a <= va <= h.a + 10 for va in vague_at):
                out.append(h)
    return out


def _lex_hits(sents: list[Sentence], playbook: Playbook, name: str) -> list[Hit]:
    ps = _lex(playbook, name)
    return [] if ps is None else [h for s in sents for h in s.hits(ps)]


def _wpm_median(agent: list[Word]) -> float | None:
    rates = []
    for line in transcript_lines(agent):
        n = len(line.text.split())
        if n >= 6 and line.end - line.start > 1.0:
            rates.append(n * 60.0 / (line.end - line.start))
    return round(statistics.median(rates), 1) if rates else None


def score_call(
    words: list[Word],
    cues: list[Cue],
    playbook: Playbook,
    *,
    duration_s: float,
    delivery: dict[str, Any] | None = None,
) -> CallScore:
    """Score one call on the rubric from its final words and its cues.

    ``delivery`` takes the measured figures of :meth:`coach.summary.CallSummary.delivery`
    when known (its ``agent_wpm_median`` is reported with pace); without it the median
    rate is estimated from the agent's word times. ``duration_s`` is only used to say how
    much audio held no agent speech at all. A call without agent speech has no score
    (``score`` None, "no speech").
    """
    finals = sorted((w for w in words if w.final), key=lambda w: (w.start, w.end))
    agent = [w for w in finals if w.speaker == AGENT]
    customer = [w for w in finals if w.speaker == CUSTOMER]
    # a cue the engine withdrew (a stored one carries the withdrawal in its evidence)
    cues = sorted((c for c in cues if not is_withdrawn(c.evidence)),
                  key=lambda c: (c.t, c.id))
    pause = playbook.settings.sentence_pause_s
    agent_sents = _sentences(agent, pause)
    customer_sents = _sentences(customer, pause)
    sentence_at = {round(w.start, 3): s for s in agent_sents + customer_sents for w in s.words}
    aspects = _delivery(cues, sentence_at)
    wpm = (delivery or {}).get("agent_wpm_median")
    aspects["pace"]["wpm_median"] = wpm if isinstance(wpm, int | float) else _wpm_median(agent)
    if not agent:
        return _no_speech(customer, aspects, duration_s)

    complaints = _customer_problems(customer_sents, playbook)
    apologies = _apologies(agent_sents, playbook)
    # A courtesy ("sorry to keep you waiting") answers a complaint about the wait itself.
    waited = [h.start for h in _customer_problems(customer_sents, playbook, ("problem_minor",))]
    owned = [a for a in apologies if not a.courtesy or (waited and a.hit.start >= waited[0])]
    problem = bool(complaints or owned or any(c.id in _VIOLATING for c in cues))
    severity = _severity(customer_sents, owned, playbook) if problem else None
    expected = set(EXPECTED[severity]) if severity else set()
    if _customer_problems(customer_sents, playbook, ("frustration",)):
        expected.add("empathy")  # a feeling voiced is a feeling to name, whatever the problem
    # Actions count from when the customer could have raised the problem, so the opening
    # "can I take your account number?" is not taken for a fix.
    onset = min([h.start for h in complaints] + [a.hit.start for a in owned]
                + [w.start for w in customer[:1]], default=0.0)
    positive = _positive(agent_sents, customer, owned, cues, playbook, onset, sentence_at)

    steps: dict[str, StepResult] = {}
    for step in STEPS:
        good = dedupe(positive[step])[:_MAX_POSITIVE]
        bad = [c for c in cues if c.id in STEP_VIOLATIONS[step]]
        steps[step] = _judge(step, severity, step in expected, good, bad, sentence_at)

    faults = (sum(st.status in ("missed", "violated") for st in steps.values())
              + sum(a["count"] for a in aspects.values()))
    apology_loss = sum(st.loss for st in steps.values())
    delivery_loss = min(DELIVERY_POINTS, sum(a["loss"] for a in aspects.values()))
    loss = round(min(MAX_LOSS, apology_loss + delivery_loss), 1)
    score = CLEAN_SCORE if not faults else round(FAULT_CEILING * (1 - loss / MAX_LOSS), 1)
    notes = []
    if not problem:
        notes.append("no problem or apology in the call: scored on delivery only")
    else:
        assert severity is not None
        notes.append(f"{SEVERITY_LABELS[severity]}: expects "
                     + ", ".join(STEP_TITLES[st].lower() for st in STEPS if st in expected))
    return CallScore(score, problem, steps, aspects, notes, severity, faults, loss)


def _no_speech(customer: list[Word], aspects: dict[str, dict[str, Any]],
               duration_s: float) -> CallScore:
    note = f"no agent speech recognised in {duration_s:.0f} s of audio"
    if customer:
        note += (f" (the customer side has {len(customer)} words: is the agent's channel "
                 "the right one?)")
    steps = {st: StepResult("n/a", [], NO_SPEECH, 0.0) for st in STEPS}
    return CallScore(None, False, steps, aspects, [note])


def _severity(customer_sents: list[Sentence], owned: list[_Apology], playbook: Playbook) -> str:
    """"minor" when the words of the problem (the customer's, and the agent's apologies)
    speak only of a short wait or a small delay; else "major" (a problem the playbook's
    severity words do not place counts as a real failure)."""
    said = customer_sents + [a.hit.sentence for a in owned]
    major, minor = _lex(playbook, "problem_major"), _lex(playbook, "problem_minor")
    if major is None or minor is None:
        return "major"
    if any(s.hits(major) for s in said):
        return "major"
    return "minor" if any(s.hits(minor) for s in said) else "major"


def _positive(agent_sents: list[Sentence], customer: list[Word], owned: list[_Apology],
              cues: list[Cue], playbook: Playbook, onset: float,
              sentence_at: dict[float, Sentence]) -> dict[str, list[dict[str, Any]]]:
    """Positive evidence for each step, from the agent's words."""
    # An apology is spoiled by a flaw the apology analysis found in it (a contrast, a
    # condition, a stock object), or by a casual or blaming cue whose words sit in its
    # sentence or just before it ("Oops! Sorry about that.").
    spoilers = [span for c in cues if c.id in _SPOILERS for span in cue_word_spans(c)]
    clean = [
        a.hit for a in owned
        if not a.flawed and not any(
            end >= a.hit.sentence.start - _SPOIL_LEAD_S and start <= a.hit.sentence.end
            for start, end in spoilers)
    ]
    out: dict[str, list[dict[str, Any]]] = {}
    out["ownership"] = [snippet(h, lead=2) for h in clean]
    # A playbook may define "ownership" phrases ("that's on us"); the default has none.
    out["ownership"] += [snippet(h) for h in _lex_hits(agent_sents, playbook, "ownership")]
    out["specific"] = []
    for h in clean:
        named = _names_problem(h, agent_sents, customer, playbook)
        if named is not None:
            out["specific"].append(snippet(h, lead=2, through=named))
    out["empathy"] = [snippet(h) for h in _lex_hits(agent_sents, playbook, "empathy")]
    if not out["empathy"]:
        out["empathy"] = [cue_ev(c, sentence_at) for c in cues if c.id == "empathy-shown"]
    follow_ups = _follow_ups(agent_sents, playbook)
    actions = [h for h in _lex_hits(agent_sents, playbook, "action") if h.start >= onset]
    # "I'll call you on Thursday" is the follow-up: shown as the fix only if nothing else is.
    fixes = [h for h in actions if not any(
        f.sentence is h.sentence and f.a < h.b and f.b > h.a for f in follow_ups)]
    out["solution"] = [snippet(h) for h in (fixes or actions)]
    out["follow_up"] = [snippet(h) for h in follow_ups]
    return out


def _delivery(cues: list[Cue], sentence_at: dict[float, Sentence]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for aspect, ids in DELIVERY_ASPECTS.items():
        hits = [c for c in cues if c.id in ids]
        out[aspect] = {
            "status": "fault" if hits else "ok",
            "count": len(hits),
            "evidence": [cue_ev(c, sentence_at) for c in hits],
            "loss": min(DELIVERY_ASPECT_CAP, DELIVERY_DEDUCTION * len(hits)),
        }
    return out


def _judge(step: str, severity: str | None, expected: bool, good: list[dict[str, Any]],
           bad: list[Cue], sentence_at: dict[float, Sentence]) -> StepResult:
    if severity is None:
        return StepResult("n/a", [], "no problem raised in the call", 0.0)
    contradicted = [c for c in bad if c.id in ABSENCE_CUES and (good or not expected)]
    bad = [c for c in bad if c not in contradicted]
    if bad:
        ids = sorted({c.id for c in bad}, key=[c.id for c in bad].index)
        loss = STEP_POINTS + min(VIOLATION_PENALTY_CAP, VIOLATION_PENALTY * len(bad))
        note = "violated: " + ", ".join(ids)
        if good:
            loss -= PARTLY_MET_CREDIT
            note += " (partly met elsewhere)"
        evidence = sorted([cue_ev(c, sentence_at) for c in bad] + good, key=ev_time)
        return StepResult("violated", evidence, note, loss)
    if good:
        note = _MET_NOTES[step]
        if contradicted:
            note += f" (the {contradicted[0].id} cue at the call's end missed these words)"
        return StepResult("met", good, note, 0.0)
    if expected:
        return StepResult("missed", [], _MISSED_NOTES[step], STEP_POINTS)
    return StepResult("n/a", [], f"not expected for a {severity} problem", 0.0)


def score_events(events: Iterable[Any], playbook: Playbook, *,
                 duration_s: float | None = None) -> CallScore:
    """:func:`score_call` on an event stream: event objects or their JSON dicts (as in
    ``events.jsonl`` or ``coach analyze --format jsonl``). Non-final words are ignored."""
    words: list[Word] = []
    cues: list[Cue] = []
    end = 0.0
    for e in events:
        d = e.to_dict() if hasattr(e, "to_dict") else e
        if not isinstance(d, dict):
            continue
        kind = d.get("type")
        try:
            if kind == "word" and d.get("final", True) and d.get("speaker") in (AGENT, CUSTOMER):
                w = Word(d["speaker"], str(d.get("text", "")), float(d["start"]),
                         float(d["end"]), True, float(d.get("probability") or 1.0))
                words.append(w)
                end = max(end, w.end)
            elif kind == "retract":  # the engine withdrew that cue: it is not a fault
                cues = [c for c in cues if not (c.id == d.get("id")
                                                and abs(c.t - float(d["t"])) < 1e-3)]
            elif kind == "cue" and d.get("speaker") in (AGENT, CUSTOMER):
                cues.append(Cue(str(d["id"]), float(d["t"]), d["speaker"],
                                d.get("severity", "nudge"), str(d.get("title", "")),
                                str(d.get("advice", "")), dict(d.get("evidence") or {})))
                end = max(end, cues[-1].t)
        except (KeyError, TypeError, ValueError):
            continue  # a malformed event is not evidence
    return score_call(words, cues, playbook, duration_s=duration_s or end)
