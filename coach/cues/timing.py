"""Conversation timing: dead air, talk-over and monologues, from who was talking when.

Voice activity is measured on speech, not on the voice detector's hang-over: an utterance
still open is taken to end ``vad_hangover_s`` before now (the detector waits that long in
silence before it closes one), so a customer who just stopped is not "still talking" and a
half-second "mm-hm" never looks like a second of overlap. Short backchannels ("mm-hm",
"yeah", "right": the ``backchannel`` lexicon, or any utterance up to ``backchannel_s``) are
listening: they are not talk-over and do not break a monologue.
"""

from __future__ import annotations

import math

from ..events import AGENT, CUSTOMER, Cue
from ..language import normalise_word
from .hygiene import Hygiene
from .state import SRC_WORD, CallState

__all__ = ["Timing"]


class Timing:
    def __init__(self, state: CallState, hygiene: Hygiene):
        self.st = state
        self.h = hygiene
        self.pb = state.playbook
        s = self.pb.settings
        self.hang = float(getattr(s, "vad_hangover_s", 1.0))
        self._talkover_done: set[float] = set()
        self._monologue_done: set[float] = set()
        self._dead_air_done: set[float] = set()
        bc = self.pb.lexicon.get("backchannel")
        self._backchannel = bc

    def _spans(self, speaker: str, merge_s: float = 0.0) -> list[tuple[float, float, bool]]:
        return self.st.spans(speaker, merge_s, hangover_s=self.hang)

    def tick(self, *, dead_air: bool = True) -> list[Cue]:
        out: list[Cue] = []
        if self.st.customer_channel:
            if dead_air:
                out += self._dead_air()
            out += self._talk_over()
        out += self._monologue()
        return out

    def _dead_air(self) -> list[Cue]:
        lines = list(self.st.timeline.values())
        if any(tl.open_start is not None for tl in lines):
            return []
        ends = [e for tl in lines if (e := tl.last_end()) is not None]
        if not ends:
            return []  # the call has not started yet
        last = max(ends)
        silence = self.pb.cue("dead-air").thresholds.get("silence_s", 8.0)
        # Words arrive late: a timeline built from words needs the skew before we trust it.
        wait = self.pb.settings.skew_s if any(tl.source == SRC_WORD for tl in lines) else 0.0
        if self.st.now < last + silence + wait or last in self._dead_air_done:
            return []
        self._dead_air_done.add(last)
        return self.h.emit("dead-air", last + silence,
                           {"silence_from": round(last, 3), "silence_s": silence})

    def _only_backchannel(self, start: float, end: float) -> bool | None:
        """The agent's words in [start, end] are all backchannel words (None: none heard yet)."""
        # Word times and voice-detector times differ by a few hundred ms: take every word
        # that overlaps the stretch.
        toks = [t for w in self.st.agent.ws if w.end >= start - 0.3 and w.start <= end
                for t in normalise_word(w.text)]
        if not toks:
            return None
        bc = self._backchannel
        return bc is not None and bool(bc.fullmatch(" ".join(toks)))

    def _talk_over(self) -> list[Cue]:
        out: list[Cue] = []
        th = self.pb.cue("talk-over").thresholds
        need = th.get("overlap_s", 1.0)
        lead = th.get("lead_s", 0.1)
        now = self.st.now
        cust = self._spans(CUSTOMER, 0.3)
        for sa, ea, oa in self._spans(AGENT):
            if sa in self._talkover_done or sa < now - 120:
                continue
            for sc, ec, oc in cust:
                if sc > sa - lead or ec <= sa:
                    continue
                overlap = min(ea, ec) - sa
                if overlap >= need:
                    only_bc = self._only_backchannel(sa, min(ea, ec))
                    if only_bc and oa:
                        break  # "right, right, ..." so far: wait for the rest of the stretch
                    if only_bc:
                        self._talkover_done.add(sa)  # "mm-hm", "yeah right": listening
                        break
                    if (only_bc is None and oa and overlap < need + self.hang
                            and self.st.timeline[AGENT].source != SRC_WORD):
                        break  # no words yet for this stretch: wait for them (a while)
                    self._talkover_done.add(sa)
                    out += self.h.emit("talk-over", sa + need, {
                        "agent_start": round(sa, 3), "customer_start": round(sc, 3),
                        "overlap_s": round(overlap, 2)})
                    break
                if not oa and not oc:
                    continue
                break
            else:
                if not oa:
                    self._talkover_done.add(sa)
        return out

    def _monologue(self) -> list[Cue]:
        th = self.pb.cue("monologue").thresholds
        talk = th.get("talk_s", 40.0)
        reset = th.get("reset_gap_s", 3.0)
        agent = self._spans(AGENT)
        if not agent:
            return []
        s = self.pb.settings
        if self.st.customer_channel:
            turns = self.st.customer_turns(hangover_s=self.hang)
            cust = self._spans(CUSTOMER, s.speech_gap_s)
            if cust and cust[-1][2] and cust[-1][1] - cust[-1][0] <= s.backchannel_s:
                return []  # the customer just started: wait to see if it is a real turn
            brk = max((e for _, e, _ in turns), default=-math.inf)
        else:
            brk = -math.inf
            reset = min(reset, th.get("mono_gap_s", 1.5))
        start = None
        prev_end = None
        for a, e, _ in agent:
            if e <= brk:
                continue
            a = max(a, brk)
            if start is None or (prev_end is not None and a - prev_end >= reset):
                start = a
            prev_end = e
        if start is None or prev_end is None or start in self._monologue_done:
            return []
        if prev_end - start < talk:
            return []
        self._monologue_done.add(start)
        return self.h.emit("monologue", start + talk, {"talk_from": round(start, 3), "talk_s": talk})
