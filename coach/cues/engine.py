"""The cue engine: routes each event to the rule families and returns what they raise.

The two channels' events interleave with a few seconds of skew (each channel commits its
words when its own transcription is sure), so every decision involving both speakers is
made from event times, and waits ``settings.skew_s`` past the end of its window before it
concludes that something did *not* happen — unless the event stream itself shows the
window is over (the agent spoke past it, or finished the utterance).
"""

from __future__ import annotations

import copy

from ..events import AGENT, CUSTOMER, Activity, Cue, Event, Prosody, Retraction, Turn, Word
from ..playbook import Playbook
from .feelings import Feelings
from .follow_through import FollowThrough
from .hygiene import Hygiene
from .state import Baseline, CallState
from .timing import Timing
from .voice import Voice
from .words import WordRules

__all__ = ["CueEngine"]


class CueEngine:
    """Streaming cue engine over one call.

    ``feed(event)`` takes committed words, activity, turns and prosody (anything else is
    ignored) and returns the cues it triggers, and :class:`~coach.events.Retraction` events
    for cues the following words showed wrong; ``advance(t)`` says audio time has reached
    ``t`` (time-based cues such as dead air fire here); ``flush(t_end)`` ends the call.
    """

    def __init__(self, playbook: Playbook, *, agent_baseline: Baseline | None = None,
                 customer_channel: bool = True):
        self.pb = playbook
        self.s = playbook.settings
        self.customer_channel = customer_channel
        self.state = CallState(playbook, customer_channel=customer_channel)
        self.hygiene = Hygiene(playbook)
        self.follow = FollowThrough(self.state, self.hygiene)
        self.words = WordRules(self.state, self.hygiene, self.follow.apology)
        self.feelings = Feelings(self.state, self.hygiene)
        self.voice = Voice(self.state, self.hygiene, agent_baseline)
        self.timing = Timing(self.state, self.hygiene)

    @property
    def retractions(self) -> int:
        """Cues withdrawn so far in this call."""
        return self.hygiene.retractions

    def fork(self) -> CueEngine:
        """An independent copy of the engine as it stands (the playbook is shared): what
        would the engine say if these words came next? (:mod:`coach.cues.early`)"""
        return copy.deepcopy(self, {id(self.pb): self.pb})

    def undecided(self, speaker: str) -> bool:
        """The speaker's open sentence holds something more words could make a cue."""
        return self.words.undecided(speaker)

    def baseline(self, speaker: str) -> Baseline:
        """The speaker's baseline as known so far (given, then calibrated)."""
        return self.voice.baseline(speaker)

    # -- public API -----------------------------------------------------------------------

    def feed(self, event: object) -> list[Cue | Retraction]:
        """Take one event; return the cues (and retractions) it triggers, in time order."""
        out: list[Event] = []
        st = self.state
        speaker = getattr(event, "speaker", None)
        if speaker == CUSTOMER and not self.customer_channel:
            return []
        if isinstance(event, Word):
            if not event.final:
                return []  # partial hypotheses may still change: never cue on them
            st.now = max(st.now, event.end)
            self.voice.word(event)
            out += self.words.word(event)
        elif isinstance(event, Activity):
            st.now = max(st.now, event.t)
            st.timeline[event.speaker].activity(event.t, event.speaking)
            if not event.speaking:
                # The utterance is over: once its final words are in, its sentence is done.
                out += self.words.settle(event.speaker, utterance_end=event.t)
        elif isinstance(event, Turn):
            st.now = max(st.now, event.end)
            st.timeline[event.speaker].turn(event.start, event.end)
            out += self.words.settle(event.speaker, utterance_end=event.end)
        elif isinstance(event, Prosody):
            st.now = max(st.now, event.t)
            out += self._prosody(event)
        else:
            return []
        out += self._tick()
        return _ordered(out)

    def advance(self, t: float) -> list[Cue | Retraction]:
        """Audio time has reached ``t``: let time-based cues fire."""
        self.state.now = max(self.state.now, t)
        return _ordered(self._tick())

    def flush(self, t_end: float) -> list[Cue | Retraction]:
        """The call is over at ``t_end``: settle every pending window."""
        st = self.state
        st.now = max(st.now, t_end)
        out: list[Event] = self._tick(dead_air=False)
        st.ended = True
        for speaker in (AGENT, CUSTOMER):
            out += self.words.complete(speaker)
        out += self._tick(dead_air=False)
        out += self.follow.end(t_end)
        return _ordered(out)

    # -- routing --------------------------------------------------------------------------

    def _prosody(self, p: Prosody) -> list[Event]:
        if p.speaker == CUSTOMER:
            base = self.voice.customer(p)
            if base is not None:
                self.feelings.customer_prosody(p, base)
            return []
        return list(self.voice.agent(p))

    def _tick(self, *, dead_air: bool = True) -> list[Event]:
        out: list[Event] = []
        for speaker in (AGENT, CUSTOMER):
            out += self.words.settle(speaker)
        out += self.follow.tick()
        out += self.feelings.tick()
        out += self.feelings.laughter(self.words.laughs, self.state.problems)
        out += self.timing.tick(dead_air=dead_air)
        return out


def _ordered(events: list[Event]) -> list[Cue | Retraction]:
    def key(e: Event) -> tuple[float, int, str]:
        if isinstance(e, Retraction):
            return (e.at, 1, e.id)
        return (getattr(e, "t", 0.0), 0, getattr(e, "id", ""))

    return sorted(events, key=key)  # type: ignore[return-value]
