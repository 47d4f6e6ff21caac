"""The cue engine: committed words, voice activity, turns and prosody in; coaching cues out.

Pure and deterministic: no clock, no I/O; time is call audio time, carried by the events.
The engine (:mod:`.engine`) keeps the call's facts (:mod:`.state`) and hands each event to
rule families that each own one kind of judgement:

- :mod:`.words` — what the words say: the apology analysis of :mod:`coach.apology` and the
  sentence patterns (casual, minimising, blame, promises), empathy, actions, follow-ups,
  the customer's problems and frustration;
- :mod:`.follow_through` — what follows an apology: over-apology, no-action, no-follow-up;
- :mod:`.feelings` — the customer's feelings and the agent's answer: name-frustration,
  laughter;
- :mod:`.voice` — pace, pitch, loudness, flatness against the agent's baseline;
- :mod:`.timing` — dead air, talk-over, monologues;

and every cue passes through :mod:`.hygiene` (cooldowns, one warn at a time, withdrawal).
"""

from ..language import normalise_word, split_sentences
from .engine import CueEngine
from .state import Baseline

__all__ = ["Baseline", "CueEngine", "normalise_word", "split_sentences"]
