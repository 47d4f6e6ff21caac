"""What follows an apology: too many apologies, no fix offered, no follow-up arranged.

Reads the apologies, actions and follow-ups the word rules put into the call state; decides
``over-apology`` when an apology is confirmed, ``no-action`` once the apology's window of
agent speech is over (its own turn and the agent's next one, capped in seconds of agent
speech), and ``no-follow-up`` when the call ends.
"""

from __future__ import annotations

import math

from ..apology import Apology
from ..events import Cue
from ..language import evidence_words, spans
from .hygiene import Hygiene
from .state import CallState

__all__ = ["FollowThrough"]


class FollowThrough:
    def __init__(self, state: CallState, hygiene: Hygiene):
        self.st = state
        self.h = hygiene
        self.pb = state.playbook
        self._pending: list[Apology] = []

    def apology(self, apo: Apology) -> list[Cue]:
        """An apology was confirmed (any kind but a request)."""
        if apo.kind == "problem":
            self._pending.append(apo)
        spec = self.pb.cue("over-apology")
        window = spec.windows.get("speech_s", 60.0)
        recent = [a for a in self.st.apologies
                  if a.kind != "request" and apo.clock - window <= a.clock <= apo.clock]
        if len(recent) >= spec.thresholds.get("count", 3):
            words = [w for a in recent for w in a.words]
            return self.h.emit("over-apology", apo.end,
                               {"words": evidence_words(words), "count": len(recent),
                                "window_speech_s": window})
        return []

    def _window_end(self, apo: Apology, turns: list[tuple[float, float, bool]]) -> float | None:
        """Where the apology's window closes: ``speech_s`` of agent speech after it, or the
        end of the agent's next turn after the customer's reply, whichever is first."""
        agent = self.st.agent
        span = self.pb.cue("no-action").windows.get("speech_s", 15.0)
        ends: list[float] = []
        i = agent.index_after(apo.start) or 0
        by_clock = agent.clock_end(i, apo.clock, span)
        if by_clock is not None:
            ends.append(by_clock)
        reply = next((t for t in turns if t[0] > apo.end), None)
        if reply is not None and not reply[2]:
            k = agent.index_after(reply[1])
            if k is not None:
                nxt = agent.items[k][0]
                second = next((t for t in turns if t[0] > nxt), None)
                if second is not None:
                    j = agent.index_after(second[0])
                    j = len(agent.items) if j is None else j
                    ends.append(agent.items[j - 1][1] if j > 0 else second[0])
        return min(ends) if ends else None

    def tick(self) -> list[Cue]:
        out: list[Cue] = []
        if not self._pending:
            return out
        turns = self.st.customer_turns() if self.st.customer_channel else []
        agent = self.st.agent
        last = agent.items[-1] if agent.items else None
        skew = self.pb.settings.skew_s
        for apo in list(self._pending):
            if apo.kind != "problem":  # turned out a courtesy or a request to repeat
                self._pending.remove(apo)
                continue
            end = self._window_end(apo, turns)
            if end is not None:
                # The window is over when the agent has spoken past it, or when the audio
                # has gone on past it by the time words may lag behind.
                settled = (last is not None and last[0] > end) or self.st.now >= end + skew
                if not settled and not self.st.ended:
                    continue
            elif self.st.ended:
                end = last[1] if last else apo.end
            else:
                continue
            self._pending.remove(apo)
            own_start = max((e for _, e, _ in turns if e <= apo.start), default=-math.inf)
            if any(own_start <= h.start <= end for h in self.st.actions):
                continue
            out += self.h.emit("no-action", max(end, apo.end),
                               {"words": evidence_words(apo.words),
                                "window_end": round(end, 3),
                                "agent_speech_s": self.pb.cue("no-action").windows.get(
                                    "speech_s", 15.0)})
        return out

    def end(self, t_end: float) -> list[Cue]:
        """The call ended: was a follow-up arranged after the problem?"""
        problem = [a for a in self.st.apologies if a.kind == "problem"]
        if not problem:
            return []  # no problem owned: nothing to follow up
        first = problem[0]
        vague = self.pb.lexicon.get("follow_up_vague")
        for hit in self.st.follow_ups:
            if any(va >= hit.a and va - hit.a <= 10 for va, _ in spans(hit.sentence, vague)):
                continue
            if hit.start >= first.start - 60:
                return []
        evidence: dict = {"words": evidence_words(first.words)}
        if self.st.problems:
            evidence["problem_words"] = evidence_words(list(self.st.problems[0].words))
        return self.h.emit("no-follow-up", t_end, evidence)
