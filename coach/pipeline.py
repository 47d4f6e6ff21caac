"""The one pipeline that live coaching, ``coach analyze`` and QA all run (pure).

Blocks of 16 kHz audio per speaker in, events out, in audio time. The model and the
voice detectors are handed in, so this module never touches a sound card, a file, a
socket, a thread or the clock. Blocks of any length are worked through in steps of
``BLOCK_S`` (0.1 s, what live capture delivers): prosody readings, the speaking state they
use and the order of the two speakers' events are settled per step, so ``coach analyze``
and QA, which read files in bigger blocks, give exactly the events live coaching gave.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from coach.asr import DEFAULT_POLICY, StreamingOptions, StreamingRecognizer
from coach.asr_types import Transcriber, VoiceDetector
from coach.audio import BLOCK_S, SAMPLE_RATE
from coach.cues import Baseline, CueEngine
from coach.cues.early import EarlyCues
from coach.cues.voice import stretch_rate_for
from coach.events import AGENT, CUSTOMER, CallEvent, Event, Speaker, Word
from coach.playbook import Playbook
from coach.prosody import ProsodyOptions, ProsodyTracker

__all__ = ["Pipeline", "PipelineOptions"]

_STEP = int(round(BLOCK_S * SAMPLE_RATE))  # samples per step


@dataclass(frozen=True, slots=True)
class PipelineOptions:
    streaming: StreamingOptions = field(
        default_factory=lambda: StreamingOptions.for_policy(DEFAULT_POLICY))
    prosody: ProsodyOptions = field(default_factory=ProsodyOptions)


class _Channel:
    def __init__(self, speaker: Speaker, transcriber: Transcriber, vad: VoiceDetector,
                 options: PipelineOptions, playbook: Playbook):
        streaming = options.streaming
        if speaker != AGENT:  # early cues are about the agent's words: no look passes
            streaming = replace(streaming, look_s=None, finals_only=(
                streaming.finals_only or streaming.customer_finals_only))
        self.options = streaming  # full quality, restored after degrading
        self.recognizer = StreamingRecognizer(speaker, transcriber, vad, options=streaming)
        # early cues look at every agent pass before the next frame: identical decisions
        # whatever the block size (live capture and `coach analyze` feed different ones)
        self.recognizer.pause_after_pass = speaker == AGENT and bool(streaming.early_prob)
        # the agent's pace gauge shows the figure the pace cue judges
        pace = stretch_rate_for(playbook) if speaker == AGENT else None
        self.prosody = ProsodyTracker(speaker, options=options.prosody, pace=pace)


class Pipeline:
    """``start()``, then ``feed(agent, customer)`` per block, then ``finish()``."""

    def __init__(self, transcriber: Transcriber, make_vad: Callable[[], VoiceDetector],
                 playbook: Playbook, *, customer_channel: bool = True,
                 options: PipelineOptions | None = None,
                 agent_baseline: Baseline | None = None):
        self.options = options or PipelineOptions()
        if self.options.streaming.hotwords is None:  # the playbook's, unless told otherwise
            self.options = replace(self.options, streaming=replace(
                self.options.streaming, hotwords=tuple(getattr(playbook, "hotwords", ()))))
        self.channels: dict[Speaker, _Channel] = {
            AGENT: _Channel(AGENT, transcriber, make_vad(), self.options, playbook)}
        if customer_channel:
            self.channels[CUSTOMER] = _Channel(CUSTOMER, transcriber, make_vad(),
                                               self.options, playbook)
        # the agent's voice baseline learned from earlier calls (coach.team.baselines), so
        # pace and pitch are judged from the first second; None: calibrate from this call
        self.cues = CueEngine(playbook, customer_channel=customer_channel,
                              agent_baseline=agent_baseline)
        # policy "early": word cues from the words a pass is sure of, before commitment
        self.early = EarlyCues(self.cues) if self.options.streaming.early_prob else None
        self._samples = 0
        self._held = (np.zeros(0, np.float32), np.zeros(0, np.float32))  # less than a step
        self.finished = False

    @property
    def now(self) -> float:
        """Audio time fed so far, in seconds."""
        return self._samples / SAMPLE_RATE

    def start(self, **info) -> list[Event]:
        info.setdefault("channels", list(self.channels))
        return [CallEvent("start", 0.0, info)]

    def feed(self, agent: np.ndarray, customer: np.ndarray | None = None) -> list[Event]:
        """One block per speaker (the customer's as long as the agent's; None: silence),
        worked through in steps of ``BLOCK_S``; a remainder waits for the next block or
        :meth:`finish`."""
        agent = np.asarray(agent, dtype=np.float32).reshape(-1)
        n = agent.size
        if customer is None:
            customer = np.zeros(n, np.float32)
        else:
            customer = np.asarray(customer, dtype=np.float32).reshape(-1)[:n]
            if customer.size < n:
                customer = np.pad(customer, (0, n - customer.size))
        held_a, held_c = self._held
        if held_a.size:
            agent = np.concatenate([held_a, agent])
            customer = np.concatenate([held_c, customer])
        out: list[Event] = []
        end = agent.size - agent.size % _STEP
        for i in range(0, end, _STEP):
            out += self._step(agent[i:i + _STEP], customer[i:i + _STEP])
        self._held = (agent[end:], customer[end:])
        return out

    def _step(self, agent: np.ndarray, customer: np.ndarray) -> list[Event]:
        """One step of audio per speaker; the agent's channel is served first."""
        out: list[Event] = []
        blocks: dict[Speaker, np.ndarray] = {AGENT: agent, CUSTOMER: customer}
        for speaker, ch in self.channels.items():
            block = blocks[speaker]
            r = ch.recognizer
            before = r.passes
            events = r.feed(block)
            while True:  # pass by pass: a look decides before the next frame is heard
                out += self._route(ch, events)
                if self.early is not None and r.passes != before:
                    out += self._look(ch)
                if not r.paused:
                    break
                before = r.passes
                events = r.resume()
            out += self._route(ch, ch.prosody.feed(block, speaking=r.speaking))
        self._samples += len(agent)
        out += self._confirmed(self.cues.advance(self.now))
        return out

    def finish(self, **info) -> list[Event]:
        """End of the call: finalise open utterances, end-of-call cues, the ``call`` end."""
        out: list[Event] = []
        held_a, held_c = self._held
        if held_a.size:  # the last part of a step
            self._held = (held_a[:0], held_c[:0])
            out += self._step(held_a, held_c)
        for ch in self.channels.values():
            out += self._route(ch, ch.recognizer.flush())
        out += self._confirmed(self.cues.advance(self.now))
        out += self._confirmed(self.cues.flush(self.now))
        if self.early is not None:
            out += self.early.end(self.now)
        info.setdefault("duration", round(self.now, 3))
        out.append(CallEvent("end", self.now, info))
        self.finished = True
        return out

    def _route(self, ch: _Channel, events: list) -> list[Event]:
        out: list[Event] = []
        for e in events:
            out.append(e)
            if isinstance(e, Word) and e.final:
                ch.prosody.add_word(e)
            out += self._confirmed(self.cues.feed(e))
        return out

    def _confirmed(self, events: list) -> list[Event]:
        return events if self.early is None else self.early.confirm(events)

    def _look(self, ch: _Channel) -> list[Event]:
        """After a pass of the agent's recogniser: cues the sure, uncommitted words raise."""
        r = ch.recognizer
        if r.speaker != AGENT:
            return []
        out = self.early.look(r.speaker, r.tail, sure_until=r.sure_until, heard=r.heard_until)
        r.look_wanted = self.early.wanted
        return list(out)

    def recover(self) -> None:
        """Back to full quality after :meth:`degrade`."""
        for ch in self.channels.values():
            ch.recognizer.set_options(step_s=ch.options.step_s, look_s=ch.options.look_s,
                                      finals_only=ch.options.finals_only)

    def degrade(self, *, step_s: float | None = None, customer_finals_only: bool | None = None
                ) -> None:
        """Shed load when the machine falls behind (used by the live service)."""
        for speaker, ch in self.channels.items():
            changes: dict = {}
            if step_s is not None:
                changes["step_s"] = step_s
                changes["look_s"] = None  # no look passes while shedding load
            if customer_finals_only is not None and speaker == CUSTOMER:
                changes["finals_only"] = customer_finals_only or ch.options.finals_only
            if changes:
                ch.recognizer.set_options(**changes)
