"""The apology analysis: what was apologised for, how, and what spoiled it.

Pure; one analysis for live cues and QA. An apology is found in a sentence first (the
``apology`` lexicon), then classified:

- ``request``: not an apology at all ("sorry?", "sorry, could you repeat that", "no need to
  apologise"): the ``not_apology`` lexicon or a question mark on the apology word;
- ``courtesy``: politeness that neither makes nor answers a problem ("sorry to keep you
  waiting", "sorry to interrupt"): the ``courtesy`` lexicon;
- ``problem``: an apology for something that went wrong.

and its *flaws* are judged from what follows it: a contrast that turns it into an excuse
(``qualified-apology``, unless the contrast leads straight into an action: "sorry, but let
me fix it"), a condition on the customer's feelings or understanding
(``conditional-apology``), a stock object that names no problem (``generic-apology``,
unless something specific follows: "sorry for the mix-up with your address").

The live engine asks while the sentence is still growing: each check answers ``None``
(undecided: the words that could clear it may still come), ``()`` (no flaw) or the words of
the flaw. The QA rubric asks once the sentence is complete, when every check decides. A
live decision taken before the sentence was complete is re-checked when it completes, and
withdrawn if the complete sentence disagrees, so live cues and QA agree on every apology.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .events import Word
from .language import Sentence, spans
from .playbook import PatternSet, Playbook

__all__ = ["FLAWS", "Apology", "ApologyAnalyser", "Verdict", "analyse_apologies"]

FLAWS: tuple[str, ...] = ("qualified-apology", "conditional-apology", "generic-apology")

Verdict = tuple[Word, ...] | None
"""None: not decided yet; ``()``: no flaw; words: the flaw's evidence."""


@dataclass
class Apology:
    """One apology in one sentence (token span [tok_start, tok_end))."""

    sentence: Sentence
    tok_start: int
    tok_end: int
    words: list[Word]
    clock: float = 0.0  # the speaker's speech clock at the apology's end
    kind: str = "pending"  # pending | problem | courtesy | request
    flaws: dict[str, tuple[Word, ...]] = field(default_factory=dict)
    decided: set[str] = field(default_factory=set)  # flaw checks decided

    @property
    def start(self) -> float:
        return self.words[0].start

    @property
    def end(self) -> float:
        return self.words[-1].end

    @property
    def for_problem(self) -> bool:
        return self.kind == "problem"


def _after(ps: PatternSet, lead: float, skip: PatternSet | None = None) -> re.Pattern[str] | None:
    """``ps`` anchored to begin within ``lead`` tokens of the start of a string (not
    counting the ``skip`` words, fillers such as "um" or "you know", before it)."""
    if ps.regex is None:
        return None
    fill = rf"(?:(?:{skip.regex.pattern}) )*" if skip is not None and skip.regex is not None else ""
    return re.compile(rf"{fill}(?:\S+ ){{0,{int(lead)}}}?{fill}(?:{ps.regex.pattern})")


class ApologyAnalyser:
    """Finds and judges apologies with one playbook's lexicon and patterns."""

    def __init__(self, playbook: Playbook):
        pb = self.pb = playbook
        q = pb.cue("qualified-apology")
        c = pb.cue("conditional-apology")
        g = pb.cue("generic-apology")
        self.apology = pb.lex("apology")
        self.not_apology = pb.lex("not_apology")
        self.courtesy = pb.lex("courtesy")
        self._contrast = _after(q.pattern("contrast"), q.windows.get("contrast_words", 8))
        self._contrast_open = _after(q.pattern("contrast"), 1)
        self._action_after = _after(pb.lex("action"), 1, pb.lexicon.get("filler"))
        self._conditional = _after(c.pattern("conditional"), c.windows.get("lead_words", 2))
        self._stock = _after(g.pattern("stock"), g.windows.get("lead_words", 2))
        obj = pb.lexicon.get("apology_object")
        self._object = _after(obj, 0, pb.lexicon.get("filler")) if obj is not None else None
        spec = g.pattern("specific")
        self._specific = None if spec.regex is None else re.compile(spec.regex.pattern)
        # Right context needed before a flaw is decided mid-sentence (audio seconds after
        # the words that could still be cleared by what follows).
        self.action_wait_s = float(q.windows.get("action_wait_s", 0.6))
        self.specific_wait_s = float(g.windows.get("specific_wait_s", 0.5))

    # -- finding and classifying ----------------------------------------------------------

    def find(self, s: Sentence) -> list[tuple[int, int]]:
        """Token spans of apology expressions in ``s``."""
        return spans(s, self.apology)

    def kind(self, s: Sentence, a: int, b: int) -> str:
        """``request``, ``courtesy`` or ``problem`` for the apology at [a, b) of ``s``."""
        words = s.words_of(a, b)
        if words and words[-1].text.strip().endswith("?"):
            return "request"
        if any(x < b and y > a for x, y in spans(s, self.not_apology)):
            return "request"
        if any(x < b and y > a for x, y in spans(s, self.courtesy)):
            return "courtesy"
        if self._asks(s, a, b):
            return "request"
        return "problem"

    def asks_after(self, apo: Apology, nxt: Sentence, gap_s: float = 1.5) -> bool:
        """"Sorry. Could you repeat that?": an apology that is a sentence of its own, with
        a question right after it that names nothing wrong, is a request as well."""
        s = apo.sentence
        if apo.kind != "problem" or nxt is s or not nxt.words:
            return False
        if nxt.start - s.end > gap_s or not nxt.words[-1].text.strip().endswith("?"):
            return False
        filler = self.pb.lexicon.get("filler")
        rest = [t for i, t in enumerate(s.toks) if not apo.tok_start <= i < apo.tok_end
                and t not in ("oh", "i", "am", "so", "really", "very")
                and not (filler is not None and filler.fullmatch(t))]
        if rest:
            return False
        return self._object is None or not self._object.match(nxt.text)

    def _asks(self, s: Sentence, a: int, b: int) -> bool:
        """"Sorry, just to be clear, you want both returned?": an apology opening a question
        and naming nothing that went wrong is a way of asking, not an apology."""
        if not s.words or not s.words[-1].text.strip().endswith("?") or a > 3:
            return False
        if self._object is None:
            return True
        return not self._object.match(s.tail(b))

    # -- flaws: None = undecided, () = none, words = the flaw --------------------------------

    def _settled(self, s: Sentence, tok: int, wait_s: float, complete: bool) -> bool:
        """Enough right context after token ``tok``: the sentence is complete, or words
        were heard ``wait_s`` seconds past the end of the word holding ``tok``."""
        if complete:
            return True
        anchor = s.words[s.tok_word[max(0, tok - 1)]].end if tok > 0 else s.start
        if s.heard >= anchor + wait_s:
            return True  # every word up to there is known: none followed in time
        if tok >= len(s.toks):
            return False
        return s.end >= anchor + wait_s

    def _tail_span(self, s: Sentence, apo: Apology, m: re.Match[str]) -> tuple[int, int]:
        base = s.char_of(apo.tok_end)
        return s.span(base + m.start(), base + m.end())

    def contrast(self, s: Sentence, apo: Apology, *, complete: bool) -> Verdict:
        """"Sorry, but..." in the apology's own sentence."""
        if self._contrast is None:
            return ()
        m = self._contrast.match(s.tail(apo.tok_end))
        if not m:
            return () if complete else None
        _, b = self._tail_span(s, apo, m)
        return self._excuse(s, apo, b, complete)

    def _excuse(self, s: Sentence, apo: Apology, b: int, complete: bool) -> Verdict:
        """A contrast ending at token ``b`` is an excuse unless an action follows it."""
        if not self._settled(s, b, self.action_wait_s, complete):
            return None
        if self._action_after is not None and self._action_after.match(s.tail(b)):
            return ()
        return tuple(apo.words) + tuple(s.words_of(b - 1, b))

    def carried_contrast(self, s: Sentence, apo: Apology, *, complete: bool) -> Verdict:
        """A contrast opening the sentence right after an apology ("I'm sorry it was late.
        However, you chose standard delivery") qualifies it just the same."""
        if self._contrast_open is None:
            return ()
        m = self._contrast_open.match(s.text)
        if not m:
            return () if (complete or len(s.toks) >= 3) else None
        _, b = s.span(m.start(), m.end())
        if not self._settled(s, b, self.action_wait_s, complete):
            return None
        if self._action_after is not None and self._action_after.match(s.tail(b)):
            return ()
        return tuple(apo.words) + tuple(s.words_of(b - 1, b))

    def conditional(self, s: Sentence, apo: Apology, *, complete: bool) -> Verdict:
        """"Sorry if you felt...", "sorry you see it that way"."""
        if self._conditional is None:
            return ()
        m = self._conditional.match(s.tail(apo.tok_end))
        if not m:
            return () if complete else None
        _, b = self._tail_span(s, apo, m)
        return tuple(apo.words) + tuple(s.words_of(apo.tok_end, b))

    def generic(self, s: Sentence, apo: Apology, *, complete: bool) -> Verdict:
        """"Sorry for the inconvenience" with nothing specific after it."""
        if self._stock is None:
            return ()
        m = self._stock.match(s.tail(apo.tok_end))
        if not m:
            return () if complete else None
        _, b = self._tail_span(s, apo, m)
        if not self._settled(s, b, self.specific_wait_s, complete):
            return None
        if self._specific is not None and self._specific.match(s.tail(b)):
            return ()
        return tuple(apo.words) + tuple(s.words_of(apo.tok_end, b))

    def judge(self, s: Sentence, apo: Apology, *, complete: bool) -> dict[str, Verdict]:
        """Every flaw check not yet decided for ``apo``."""
        out: dict[str, Verdict] = {}
        for cue_id, check in (("qualified-apology", self.contrast),
                              ("conditional-apology", self.conditional),
                              ("generic-apology", self.generic)):
            if cue_id not in apo.decided:
                out[cue_id] = check(s, apo, complete=complete)
        return out

    # -- QA: complete sentences -----------------------------------------------------------------

    def analyse(self, sentences: list[Sentence], *, carry_gap_s: float = 2.1) -> list[Apology]:
        """Every apology of one speaker's complete sentences, classified and judged."""
        out: list[Apology] = []
        prev: Apology | None = None
        for s in sentences:
            if prev is not None and "qualified-apology" not in prev.flaws and (
                s.start - prev.sentence.end < carry_gap_s
            ):
                v = self.carried_contrast(s, prev, complete=True)
                if v:
                    prev.flaws["qualified-apology"] = v
            if out and self.asks_after(out[-1], s):
                out[-1].kind = "request"
                out[-1].flaws.clear()
            prev = None
            for a, b in self.find(s):
                apo = Apology(s, a, b, s.words_of(a, b), kind=self.kind(s, a, b))
                if apo.kind == "problem":
                    for cue_id, v in self.judge(s, apo, complete=True).items():
                        apo.decided.add(cue_id)
                        if v:
                            apo.flaws[cue_id] = v
                    prev = apo
                out.append(apo)
        return out


def analyse_apologies(sentences: list[Sentence], playbook: Playbook) -> list[Apology]:
    """Every apology of one speaker's complete sentences (see :meth:`ApologyAnalyser.analyse`)."""
    return ApologyAnalyser(playbook).analyse(sentences)
