"""The customer's feelings and the agent's answer: ``name-frustration`` and ``laughter``.

The customer's frustration comes from their words (the ``frustration`` lexicon, and the
``complaint`` lexicon of facts that are a complaint whatever the tone: still broken after a
repair, a repeat contact, money taken, a promise missed) or from their voice (pitch and
loudness together well above their own baseline). The agent then has their first reply to
name or acknowledge it (capped at ``response_s`` of agent speech): when that reply ends
without it, the cue fires, early enough for the agent to say it in their next breath.
"""

from __future__ import annotations

from typing import Any

from ..events import AGENT, Cue, Prosody
from ..language import Hit, evidence_words
from .hygiene import Hygiene
from .state import SRC_ACTIVITY, Baseline, CallState, Frustration

__all__ = ["Feelings"]


class Feelings:
    def __init__(self, state: CallState, hygiene: Hygiene):
        self.st = state
        self.h = hygiene
        self.pb = state.playbook
        self._rise_run = 0

    # -- the customer's voice ----------------------------------------------------------------

    def customer_prosody(self, p: Prosody, base: Baseline) -> None:
        th = self.pb.cue("name-frustration").thresholds
        if None in (base.f0_hz, base.loudness_db, p.f0_hz, p.loudness_db):
            return
        rising = (
            p.f0_hz >= base.f0_hz * (1 + th.get("f0_rise", 0.2))  # type: ignore[operator]
            and p.loudness_db >= base.loudness_db + th.get("loudness_rise_db", 6.0)  # type: ignore[operator]
        )
        self._rise_run = self._rise_run + 1 if rising else 0
        need = int(th.get("sustain_readings", 2))
        if self._rise_run == need:
            self.st.frustrated(
                p.t - need, p.t, [],
                {"f0_hz": round(p.f0_hz, 1), "baseline_f0_hz": round(base.f0_hz, 1),  # type: ignore[arg-type]
                 "loudness_db": round(p.loudness_db, 1),  # type: ignore[arg-type]
                 "baseline_loudness_db": round(base.loudness_db, 1)},  # type: ignore[arg-type]
            )

    # -- the agent's answer ------------------------------------------------------------------

    def _reply(self, f: Frustration) -> tuple[float, float, bool] | None:
        """The agent's first reply after the frustration: (start, end, over)."""
        spec = self.pb.cue("name-frustration")
        span = spec.windows.get("response_s", 12.0)
        tol = spec.windows.get("onset_tolerance_s", 0.5)
        gap = spec.windows.get("reply_gap_s", 1.2)
        agent = self.st.agent
        i = agent.index_after(f.end - tol)
        if i is None:
            return None
        start = agent.items[i][0]
        cap = agent.clock_end(i, agent.items[i][2], span)
        tl = self.st.timeline[AGENT]
        end, is_open = agent.items[-1][1], True
        for s, e, o in tl.intervals(self.st.now, merge_s=gap):
            if s <= start + 0.05 and e >= start - 0.05:
                end, is_open = e, o
                break
        if tl.source == SRC_ACTIVITY:
            over = not is_open
        else:
            # From words alone a reply is over once the agent has been quiet past the gap
            # for as long as words may lag behind the audio.
            last = agent.items[-1]
            over = last[0] > end + gap or self.st.now >= end + gap + self.pb.settings.skew_s
        if cap is not None and cap < end:
            return start, cap, True
        return start, end, over

    def tick(self) -> list[Cue]:
        out: list[Cue] = []
        spec = self.pb.cue("name-frustration")
        grace = spec.windows.get("grace_s", 1.5)
        tol = spec.windows.get("onset_tolerance_s", 0.5)
        for f in self.st.frustrations:
            if f.decided:
                continue
            reply = self._reply(f)
            if reply is None:
                if self.st.ended:
                    f.decided = True  # the agent never spoke again: nothing to coach
                continue
            start, end, over = reply
            answered = [h for h in self.st.empathy if f.start - tol <= h.start <= end + grace]
            if answered:
                f.decided = True
                continue
            if not over and not self.st.ended:
                continue
            f.decided = True
            out += self.h.emit("name-frustration", end, {
                "words": evidence_words(f.words), **f.figures,
                "reply_from_s": round(start, 3), "reply_to_s": round(end, 3),
            })
        return out

    def laughter(self, laughs: list, problems: list[Hit]) -> list[Cue]:
        out: list[Cue] = []
        ctx = self.pb.cue("laughter").windows.get("context_s", 30.0)
        for w in list(laughs):
            if self.st.customer_channel:
                hits: list[Any] = [h for h in problems
                                   if w.start - ctx <= h.end and h.start <= w.end + 2.0]
            else:
                hits = [a for a in self.st.apologies
                        if a.kind == "problem" and w.start - ctx <= a.end <= w.end + 5.0]
            if hits:
                laughs.remove(w)
                words = [w] + [x for h in hits[-2:] for x in h.words]
                out += self.h.emit("laughter", w.end, {"words": evidence_words(words)})
            elif self.st.ended or self.st.now >= w.end + self.pb.settings.skew_s + 5.0:
                laughs.remove(w)
        return out
