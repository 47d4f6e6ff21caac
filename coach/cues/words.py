"""Word rules: what the agent's and the customer's committed words say.

The agent's sentences go through the apology analysis (:mod:`coach.apology`) and the
sentence-level patterns (casual apology, minimising, blame, absolute promises); what they
find that other families need — apologies, actions, follow-ups, expressions of empathy —
goes into the :class:`~coach.cues.state.CallState`. The customer's sentences add problems
and expressions of frustration.

A decision that could still be overturned by the words that follow ("sorry, could you...",
"..., but let me fix that") waits for ``confirm_s`` / the pattern's own wait of right
context in audio time, or for the sentence to end; a sentence-level match no following
words can undo (no exception could still overlap it, nothing in it looks past its words:
:func:`~coach.language.settled`) is decided at once. When the sentence ends it is analysed
whole, exactly as QA analyses it, and a cue the whole sentence does not bear out is
withdrawn.
"""

from __future__ import annotations

from collections.abc import Callable

from ..apology import Apology, ApologyAnalyser
from ..events import AGENT, CUSTOMER, Cue, Event, Word
from ..language import Hit, Sentence, evidence_words, is_terminal, normalise_word, settled, spans
from ..playbook import CueSpec
from .hygiene import Hygiene
from .state import CallState

__all__ = ["WordRules"]

_LAUGH_SYLLABLES = {"ha", "hah", "he", "heh", "ho"}
_SENTENCE_CUES = (("casual-apology", "casual"), ("minimizing", "minimizing"),
                  ("blame-shift", "blame"), ("empty-promise", "promise"))


class _Open:
    """Bookkeeping for the sentence being heard: matches already handled, apologies in
    it, cues raised from it (for withdrawal), the apology it may carry from the last one."""

    def __init__(self, carry: Apology | None = None):
        self.seen: set[tuple[str, int]] = set()
        self.apologies: list[Apology] = []
        self.raised: list[tuple[str, int, Cue, Apology | None]] = []
        self.carry = carry
        self.settled = False


class WordRules:
    def __init__(self, state: CallState, hygiene: Hygiene,
                 on_apology: Callable[[Apology], list[Cue]]):
        self.st = state
        self.h = hygiene
        self.pb = state.playbook
        self.s = self.pb.settings
        self.an = ApologyAnalyser(self.pb)
        self._on_apology = on_apology
        self._open = {AGENT: _Open(), CUSTOMER: _Open()}
        self._laugh_re = self.pb.lex("laughter")
        self.laughs: list[Word] = []
        self._repairs: list[Hit] = []
        self._last_bare: tuple[Apology, _Open] | None = None

    # -- feeding ----------------------------------------------------------------------------

    def word(self, w: Word) -> list[Event]:
        out: list[Event] = []
        sp = w.speaker
        words = self.st.words[sp]
        prev = words.last
        self.st.timeline[sp].word(w.start, w.end)
        words.add(w)
        sentence = self.st.sentence[sp]
        if sentence.words and prev is not None and (
            is_terminal(prev.text) or w.start - prev.end >= self.s.sentence_pause_s
        ):
            out += self.complete(sp)
            sentence = self.st.sentence[sp]
        raw = w.text.strip().lower().rstrip(".,!?;:")
        if sp == AGENT and self._laugh_re.fullmatch(raw):
            self.laughs.append(w)
            return out
        if sp == AGENT and raw in _LAUGH_SYLLABLES and prev is not None and (
            prev.text.strip().lower().rstrip(".,!?;:") in _LAUGH_SYLLABLES
        ):
            self.laughs.append(w)  # "ha ha": one "ha" is an interjection, two are laughter
        sentence.add(w, normalise_word(w.text), words.clock)
        out += self._scan(sp, complete=False)
        if is_terminal(w.text):
            out += self.complete(sp)
        return out

    def settle(self, speaker: str, *, utterance_end: float | None = None) -> list[Event]:
        """Time passed: an unpunctuated sentence is complete once its speaker has finished
        the utterance whose words have all arrived (the last one ends near
        ``utterance_end``), or has been quiet for ``settle_s`` + skew."""
        s = self.st.sentence[speaker]
        last = self.st.words[speaker].last
        if not s.toks or last is None:
            return []
        if utterance_end is not None and last.end >= utterance_end - self.s.sentence_pause_s:
            return self.complete(speaker)
        opened = self.st.timeline[speaker].open_start
        if opened is not None and opened <= last.end + self.s.sentence_pause_s:
            return []  # still in the utterance of its last word: the rest is on its way
        if self.st.now >= last.end + self.s.settle_s + self.s.skew_s:
            return self.complete(speaker)
        return []

    def complete(self, speaker: str) -> list[Event]:
        """The sentence is over: analyse it whole, withdraw what it does not bear out."""
        s = self.st.sentence[speaker]
        if not s.toks:
            return []
        out: list[Event] = list(self._scan(speaker, complete=True))
        op = self._open[speaker]
        if speaker == AGENT:
            out += self._withdraw(s, op)
        # "Sorry." then "Could you repeat that?": the bare apology was a request after all
        if speaker == AGENT and self._last_bare is not None and self.an.asks_after(
                self._last_bare[0], s):
            apo, prev_op = self._last_bare
            out += self._reclassify(s, prev_op, apo, "request")
        self._last_bare = None
        if speaker == AGENT:
            bare = [a for a in op.apologies if a.kind == "problem"]
            if bare:
                self._last_bare = (bare[-1], op)
        gap_carry = None
        apologies = [a for a in op.apologies if a.kind == "problem"]
        if apologies:
            gap_carry = apologies[-1]
        self.st.sentence[speaker] = Sentence()
        self._open[speaker] = _Open(carry=gap_carry)
        return out

    def undecided(self, speaker: str) -> bool:
        """Something in the speaker's open sentence could still become a cue with more words:
        an apology not yet judged, or a phrase waiting for its right context."""
        s, op = self.st.sentence[speaker], self._open[speaker]
        if not s.toks or speaker != AGENT:
            return False
        if op.carry is not None or any(
                a.kind == "pending" or (a.kind == "problem" and len(a.decided) < 3)
                for a in op.apologies):
            return True
        return any((spec.id, h.a) not in op.seen
                   for spec, group in ((self.pb.cue(c), g) for c, g in _SENTENCE_CUES)
                   for h in s.hits(spec.patterns.get(group)))

    # -- scanning ---------------------------------------------------------------------------------

    def _scan(self, speaker: str, *, complete: bool) -> list[Event]:
        s = self.st.sentence[speaker]
        if not s.toks:
            return []
        s.heard = self.st.heard[speaker]
        if speaker == CUSTOMER:
            self._scan_customer(s, self._open[CUSTOMER])
            return []
        return self._scan_agent(s, self._open[AGENT], complete)

    def _new(self, s: Sentence, op: _Open, kind: str, hits: list[Hit]) -> list[Hit]:
        out = []
        for h in hits:
            if (kind, h.a) not in op.seen:
                op.seen.add((kind, h.a))
                out.append(h)
        return out

    def _scan_customer(self, s: Sentence, op: _Open) -> None:
        for h in self._new(s, op, "problem", s.hits(self.pb.lex("problem"))):
            self.st.problems.append(h)
        self._repair_held(s, op)
        negated = spans(s, self.pb.lex("not_frustration"))
        for name in ("frustration", "complaint"):
            ps = self.pb.lexicon.get(name)
            for h in self._new(s, op, name, s.hits(ps)):
                if any(na < h.b and nb > h.a for na, nb in negated):
                    continue
                self.st.problems.append(h)
                self.st.frustrated(h.start, h.end, list(h.words), {})

    def _repair_held(self, s: Sentence, op: _Open) -> None:
        """"I just left your shop ... and the light is still on": a repair that did not
        hold is a complaint even when the customer states it calmly and over several
        sentences (within ``repair_window_s`` of each other)."""
        for h in self._new(s, op, "after_repair", s.hits(self.pb.lexicon.get("after_repair"))):
            self._repairs.append(h)
        window = self.pb.cue("name-frustration").windows.get("repair_window_s", 30.0)
        for h in self._new(s, op, "still_broken", s.hits(self.pb.lexicon.get("still_broken"))):
            before = [r for r in self._repairs if h.start - window <= r.start <= h.start]
            if before:
                words = list(before[-1].words) + list(h.words)
                self.st.problems.append(h)
                self.st.frustrated(before[-1].start, h.end, words, {})

    def _ripe(self, s: Sentence, tok_end: int, complete: bool) -> bool:
        if complete:
            return True
        anchor = s.words[s.tok_word[tok_end - 1]].end
        if s.heard >= anchor + self.s.confirm_s:
            return True  # every word up to there is known: none followed in time
        return s.end >= anchor + self.s.confirm_s and len(s.toks) > tok_end

    def _scan_agent(self, s: Sentence, op: _Open, complete: bool) -> list[Event]:
        out: list[Event] = []
        # 1. apologies: decided once right context rules out "sorry, could you..."
        for a, b in self.an.find(s):
            if ("apology", a) not in op.seen:
                op.seen.add(("apology", a))
                op.apologies.append(Apology(s, a, b, s.words_of(a, b), s.clocks[s.tok_word[b - 1]]))
        for apo in op.apologies:
            if apo.kind == "pending" and self._ripe(s, apo.tok_end, complete):
                apo.kind = self.an.kind(s, apo.tok_start, apo.tok_end)
                if apo.kind != "request":
                    self.st.apologies.append(apo)
                    out += self._raise_all(op, self._on_apology(apo), apo)
            elif apo.kind in ("problem", "courtesy"):
                now = self.an.kind(s, apo.tok_start, apo.tok_end)
                if now != apo.kind:
                    out += self._reclassify(s, op, apo, now)
        for apo in op.apologies:
            if apo.kind != "problem":
                continue
            for cue_id, verdict in self.an.judge(s, apo, complete=complete).items():
                if verdict is None:
                    continue
                apo.decided.add(cue_id)
                if verdict:
                    apo.flaws[cue_id] = verdict
                    out += self._raise(op, cue_id, apo.tok_start, apo,
                                       {"words": evidence_words(list(verdict))}, verdict[-1].end)
        if op.carry is not None:
            out += self._carried(s, op, complete)
        # 2. sentence-level cues, each waiting for right context for its exceptions
        for cue_id, group in _SENTENCE_CUES:
            out += self._sentence_cue(s, op, self.pb.cue(cue_id), group, complete)
        # 3. what other families need
        for h in self._new(s, op, "action", s.hits(self.pb.lex("action"))):
            self.st.actions.append(h)
        vague = spans(s, self.pb.lexicon.get("follow_up_vague"))
        for h in self._new(s, op, "follow_up", s.hits(self.pb.lex("follow_up"))):
            # "someone will be in touch at some point" says neither how nor when
            if not any(h.a <= va <= h.a + 10 for va, _ in vague):
                self.st.follow_ups.append(h)
        for h in self._new(s, op, "empathy", s.hits(self.pb.lex("empathy"))):
            self.st.empathy.append(h)
            out += self.h.emit("empathy-shown", h.end, {"words": evidence_words(list(h.words))})
        return out

    def _carried(self, s: Sentence, op: _Open, complete: bool) -> list[Event]:
        apo = op.carry
        if apo is None or "qualified-apology" in apo.flaws or apo.sentence is s:
            return []
        if s.start - apo.sentence.end >= 2 * self.s.sentence_pause_s + 0.5:
            op.carry = None
            return []
        verdict = self.an.carried_contrast(s, apo, complete=complete)
        if verdict is None:
            return []
        op.carry = None
        if not verdict:
            return []
        apo.flaws["qualified-apology"] = verdict
        return self._raise(op, "qualified-apology", -1, apo,
                           {"words": evidence_words(list(verdict))}, verdict[-1].end)

    def _sentence_cue(self, s: Sentence, op: _Open, spec: CueSpec, group: str,
                      complete: bool) -> list[Event]:
        ps = spec.patterns.get(group)
        if ps is None or not ps:
            return []
        out: list[Event] = []
        for h in s.hits(ps):
            key = (spec.id, h.a)
            if key in op.seen or not (self._ripe(s, h.b, complete)
                                      or settled(s, ps, spec.patterns.get("except"), h.a, h.b)):
                continue  # an exception ("...only a matter of time") may still follow
            op.seen.add(key)
            if self._excepted(s, spec, h.a, h.b):
                continue
            out += self._raise(op, spec.id, h.a, None, {"words": evidence_words(list(h.words))},
                               h.end)
        return out

    @staticmethod
    def _excepted(s: Sentence, spec: CueSpec, a: int, b: int) -> bool:
        excepted = spec.patterns.get("except")
        return bool(excepted) and any(ea < b and eb > a - 5 for ea, eb in spans(s, excepted))

    # -- raising and withdrawing ------------------------------------------------------------------

    def _raise(self, op: _Open, cue_id: str, tok: int, apo: Apology | None,
               evidence: dict, t: float) -> list[Event]:
        cues = self.h.emit(cue_id, t, evidence)
        for c in cues:
            op.raised.append((cue_id, tok, c, apo))
        return list(cues)

    def _raise_all(self, op: _Open, cues: list[Cue], apo: Apology) -> list[Event]:
        for c in cues:
            op.raised.append((c.id, apo.tok_start, c, apo))
        return list(cues)

    def _reclassify(self, s: Sentence, op: _Open, apo: Apology, kind: str) -> list[Event]:
        """More words changed what the apology was ("sorry, um, could you repeat that" is a
        request; "sorry to keep you waiting" a courtesy): undo what it started."""
        out: list[Event] = []
        old = apo.kind
        apo.kind = kind
        if kind == "request" and apo in self.st.apologies:
            self.st.apologies.remove(apo)
        why = ("it was a request to repeat, not an apology" if kind == "request"
               else "it was a courtesy, not an apology for a problem")
        for cue_id, tok, c, owner in list(op.raised):
            if owner is apo and (kind == "request" or cue_id in (
                    "qualified-apology", "conditional-apology", "generic-apology")):
                op.raised.remove((cue_id, tok, c, owner))
                out += self.h.retract(c, s.end, why)
        if old == "problem":
            apo.flaws.clear()
        return out

    def _withdraw(self, s: Sentence, op: _Open) -> list[Event]:
        """The whole sentence is known: withdraw cues it does not bear out."""
        out: list[Event] = []
        for cue_id, tok, c, apo in list(op.raised):
            wrong = None
            if apo is not None and apo.sentence is s and cue_id in (
                    "qualified-apology", "conditional-apology", "generic-apology"):
                if apo.kind != "problem":
                    wrong = "the apology turned out not to be about a problem"
                else:
                    check = {"qualified-apology": self.an.contrast,
                             "conditional-apology": self.an.conditional,
                             "generic-apology": self.an.generic}[cue_id]
                    if not check(s, apo, complete=True) and tok >= 0:
                        wrong = {"qualified-apology": "an action followed the 'but'",
                                 "conditional-apology": "the apology was not conditional",
                                 "generic-apology": "the apology went on to name the problem",
                                 }[cue_id]
            elif apo is None and tok >= 0:
                spec = self.pb.cue(cue_id)
                hit = next((h for h in s.hits(spec.patterns.get(dict(_SENTENCE_CUES)[cue_id]))
                            if h.a == tok), None)
                if hit is not None and self._excepted(s, spec, hit.a, hit.b):
                    wrong = "the words that followed made it harmless"
            if wrong is not None:
                op.raised.remove((cue_id, tok, c, apo))
                if apo is not None:
                    apo.flaws.pop(cue_id, None)
                out += self.h.retract(c, s.end, wrong)
        return out
