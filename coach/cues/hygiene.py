"""Cue hygiene: cooldowns, severity, one warn at a time, and withdrawing a wrong cue.

Every rule family raises its cues through :meth:`Hygiene.emit`, so no family can nag on its
own: a cue id within its cooldown is held back, a second warn close to another is shown as
a nudge, and a disabled cue never fires. :meth:`Hygiene.retract` withdraws a cue already
sent (a :class:`~coach.events.Retraction` the overlays honour) and frees its cooldown.
"""

from __future__ import annotations

from typing import Any

from ..events import Cue, Retraction
from ..playbook import Playbook

__all__ = ["Hygiene"]


class Hygiene:
    def __init__(self, playbook: Playbook):
        self.pb = playbook
        self._last_fired: dict[str, float] = {}
        self._prev_fired: dict[str, float | None] = {}
        self._last_warn: float | None = None
        self._advice_used: dict[str, int] = {}
        self.sent: list[Cue] = []
        self.retractions = 0

    def emit(self, cue_id: str, t: float, evidence: dict[str, Any]) -> list[Cue]:
        spec = self.pb.cue(cue_id)
        if not spec.enabled:
            return []
        last = self._last_fired.get(cue_id)
        if last is not None and abs(t - last) < spec.cooldown_s:
            return []
        severity = spec.severity
        if severity == "warn":
            # One warn on screen at a time: a second one close by is shown as a nudge.
            if self._last_warn is not None and abs(t - self._last_warn) < self.pb.settings.warn_gap_s:
                severity = "nudge"
                evidence = {**evidence, "downgraded_from": "warn"}
            else:
                self._last_warn = t
        self._prev_fired[cue_id] = last
        self._last_fired[cue_id] = t
        cue = Cue(
            id=cue_id,
            t=round(t, 3),
            speaker=spec.speaker,  # type: ignore[arg-type]
            severity=severity,  # type: ignore[arg-type]
            title=spec.title,
            advice=self._advice(cue_id, spec.advice_variants or (spec.advice,)),
            evidence=evidence,
        )
        self.sent.append(cue)
        return [cue]

    def _advice(self, cue_id: str, advice: tuple[str, ...]) -> str:
        """The cue's advice; with several "say instead" lines in the playbook, the next
        one each time, so a call does not hear the same example twice in a row."""
        n = self._advice_used.get(cue_id, 0)
        self._advice_used[cue_id] = n + 1
        return advice[n % len(advice)] if advice else ""

    def retract(self, cue: Cue, at: float, reason: str) -> list[Retraction]:
        """Withdraw ``cue`` (already sent): the words after it showed it was wrong."""
        if cue not in self.sent:
            return []
        self.sent.remove(cue)
        self.retractions += 1
        if self._last_fired.get(cue.id) == cue.t:
            prev = self._prev_fired.get(cue.id)
            if prev is None:
                self._last_fired.pop(cue.id, None)
            else:
                self._last_fired[cue.id] = prev
        return [Retraction(cue.id, cue.t, round(at, 3), reason)]
