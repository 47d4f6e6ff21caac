"""Early word cues: judge the words the recogniser is sure of before they are committed.

The transcript commits a word once two recognition passes agree on it (accuracy), which
is one to two seconds after it was said; a cue about "sorry, but" is worth most while the
agent is still in that sentence. So after each recognition pass, a copy of the engine
(:meth:`CueEngine.fork`) is shown the pass's uncommitted words as if committed, and told
how far the pass heard (``heard``: a pause shows as no words up to there). A word cue the
copy raises is sent at once if the words it rests on are ones the model is sure of
(probability and distance from the buffer's edge, decided by the recogniser: ``sure_until``)
or if the look before saw the same cue (in words that may differ). Look passes cost a
recognition pass each, so the recogniser makes one only while the copy says a cue is in
the balance (``wanted``: an apology not yet judged, a phrase waiting for right context).

The real engine then judges the committed words as always. When it raises the same cue,
nothing more is sent (the early one stands for it; a later withdrawal of it withdraws the
early one). When its sentence is over without that cue, the early cue is withdrawn with a
:class:`~coach.events.Retraction` the overlays honour. Pure, deterministic, audio time
only: ``coach analyze`` gives exactly what live coaching gave.
"""

from __future__ import annotations

from dataclasses import replace

from ..events import Cue, Event, Retraction, Word
from .engine import CueEngine

__all__ = ["EARLY_CUES", "EarlyCues"]

# the cues decided by the words of one sentence (coach.cues.words and the apology it holds)
EARLY_CUES = frozenset({
    "qualified-apology", "conditional-apology", "generic-apology", "casual-apology",
    "minimizing", "blame-shift", "empty-promise", "over-apology", "empathy-shown",
})
MATCH_S = 1.5  # an early cue and the committed one are the same within this much time
START_S = 0.5  # ...or if their evidence starts this close (the same first word)


class EarlyCues:
    """Wraps the real engine's output: ``look(...)`` after a pass, ``confirm(...)`` on
    everything the real engine emits, ``end()`` when the call is over."""

    def __init__(self, engine: CueEngine):
        self.engine = engine
        self.pending: list[Cue] = []  # sent early, not yet raised by the real engine
        self._stands_for: dict[tuple[str, float], Cue] = {}  # real (id, t) -> early cue
        self._last: list[Cue] = []  # what the last look raised
        # after the last look: is a cue in the balance (an apology not yet judged, a phrase
        # waiting for its right context)? Only then is the next look pass worth its cost
        self.wanted = False
        self.sent = 0
        self.withdrawn = 0

    def look(self, speaker: str, tail: list[Word], *, sure_until: float,
             heard: float) -> list[Cue]:
        """A pass left ``tail`` uncommitted; words ending by ``sure_until`` are sure, and the
        pass heard the speaker up to ``heard``. Returns the cues to send now."""
        if not tail:
            self._last = []
            self.wanted = self.engine.undecided(speaker)
            return []
        fork = self.engine.fork()
        fork.state.heard[speaker] = max(fork.state.heard[speaker], heard)
        raised: list[Cue] = []
        for w in tail:
            raised += [e for e in fork.feed(replace(w, final=True)) if isinstance(e, Cue)]
        self.wanted = fork.undecided(speaker)
        raised = [c for c in raised if c.id in EARLY_CUES and c.speaker == speaker]
        out: list[Cue] = []
        for c in raised:
            if any(_same(p, c) for p in self.pending):
                continue  # sent at an earlier pass, still standing
            # sure words, or two passes in a row saw the cue (in words that may differ:
            # "I guarantee" / "I guaranteed" each unsure, a promise either way)
            if c.t <= sure_until + 1e-6 or any(_same(p, c) for p in self._last):
                self.pending.append(c)
                self.sent += 1
                out.append(c)
        self._last = raised
        # look again while a cue is in the balance or was seen in words not yet sure
        self.wanted = self.wanted or any(c not in out for c in raised)
        return out

    def confirm(self, events: list[Cue | Retraction]) -> list[Event]:
        """The real engine's cues and retractions, less what was already sent early, plus
        the withdrawal of early cues the committed words did not bear out."""
        out: list[Event] = []
        for e in events:
            if isinstance(e, Cue):
                early = next((p for p in self.pending if _same(p, e)), None)
                if early is None:
                    out.append(e)
                    continue
                self.pending.remove(early)
                self._stands_for[(e.id, e.t)] = early
            elif isinstance(e, Retraction) and (e.id, e.t) in self._stands_for:
                early = self._stands_for.pop((e.id, e.t))
                out.append(replace(e, t=early.t))
            else:
                out.append(e)
        out += self._decided()
        return out

    def end(self, t_end: float) -> list[Retraction]:
        """The call is over: early cues never confirmed are withdrawn."""
        out = [self._withdraw(p, t_end) for p in self.pending]
        self.pending = []
        return out

    def _decided(self) -> list[Retraction]:
        """Early cues whose sentence the real engine has judged without raising them."""
        st = self.engine.state
        out: list[Retraction] = []
        for p in list(self.pending):
            last = st.words[p.speaker].last
            s = st.sentence[p.speaker]
            if last is None or last.end < p.t or (s.toks and s.start <= p.t):
                continue  # the committed words have not reached past it yet
            self.pending.remove(p)
            out.append(self._withdraw(p, max(st.now, last.end)))
        return out

    def _withdraw(self, cue: Cue, at: float) -> Retraction:
        self.withdrawn += 1
        return Retraction(cue.id, cue.t, round(at, 3),
                          "the words, once certain, did not bear it out")


def _same(a: Cue, b: Cue) -> bool:
    """The same cue about the same words: its trigger ends close by, or its evidence starts
    at the same word (a phrase the committed words carry further, "...for any trouble this
    may have caused", ends later but starts where it did)."""
    if a.id != b.id:
        return False
    if abs(a.t - b.t) <= MATCH_S:
        return True
    sa, sb = _first_word_start(a), _first_word_start(b)
    return sa is not None and sb is not None and abs(sa - sb) <= START_S


def _first_word_start(c: Cue) -> float | None:
    ws = c.evidence.get("words") if isinstance(c.evidence, dict) else None
    try:
        return float(ws[0]["start"]) if ws else None
    except (KeyError, TypeError, ValueError, IndexError):
        return None
