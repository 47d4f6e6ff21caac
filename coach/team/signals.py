"""Customer signals for the board, decided on the agent's machine from the customer's
words (pure): "asked for a supervisor or a manager" and "said something frustrated".

Only the signal leaves the machine (``{"type": "signal", "kind", "t"}``), never the
words, so the board can alert even when the team's policy keeps transcripts private. The
phrases are the playbook's: lexicon ``supervisor_request`` for the first, ``frustration``
(minus ``not_frustration``) for the second; a team changes them in its playbook.
"""

from __future__ import annotations

from typing import Any

from coach.cues import normalise_word
from coach.playbook import Playbook

__all__ = ["CustomerSignals", "FRUSTRATION", "SUPERVISOR_REQUEST"]

SUPERVISOR_REQUEST = "supervisor-request"
FRUSTRATION = "frustration"
_TERMINAL = (".", "?", "!", "…")


class CustomerSignals:
    """Feed event dicts in call order; returns signal events as customer sentences end."""

    def __init__(self, playbook: Playbook):
        lex = playbook.lexicon
        self._supervisor = lex.get("supervisor_request")
        self._frustration = lex.get("frustration")
        self._not_frustration = lex.get("not_frustration")
        self._pause = float(getattr(playbook.settings, "sentence_pause_s", 0.8))
        self._words: list[tuple[str, float, float]] = []

    def feed(self, e: dict[str, Any]) -> list[dict[str, Any]]:
        kind = e.get("type")
        if kind == "word" and e.get("speaker") == "customer" and e.get("final"):
            out: list[dict[str, Any]] = []
            start = float(e.get("start") or 0.0)
            if self._words and (self._words[-1][0].rstrip().endswith(_TERMINAL)
                                or start - self._words[-1][2] >= self._pause):
                out = self._sentence()
            self._words.append((str(e.get("text", "")), start, float(e.get("end") or start)))
            return out
        if (kind == "turn" and e.get("speaker") == "customer") or \
                (kind == "call" and e.get("state") == "end"):
            return self._sentence()
        return []

    def _sentence(self) -> list[dict[str, Any]]:
        words, self._words = self._words, []
        if not words:
            return []
        text = " ".join(t for w in words for t in normalise_word(w[0]))
        t = round(words[-1][2], 3)
        out = []
        if self._supervisor and self._supervisor.search(text):
            out.append({"type": "signal", "kind": SUPERVISOR_REQUEST, "t": t})
        if self._frustration:
            negated = [m.span() for m in self._not_frustration.finditer(text)] \
                if self._not_frustration else []
            hits = [m for m in self._frustration.finditer(text)
                    if not any(a < m.end() and m.start() < b for a, b in negated)]
            if hits:
                out.append({"type": "signal", "kind": FRUSTRATION, "t": t, "n": len(hits)})
        return out
