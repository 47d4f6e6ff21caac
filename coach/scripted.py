"""Call scripts as event streams: the events the real pipeline would produce for a scripted
call, at text level (no audio, no model), for unit tests and the cue benchmark.

A script (YAML) lists turns; each spoken turn becomes Activity on, evenly spaced committed
words at the turn's rate (punctuation attached, as Whisper gives it), Activity off and a
Turn; each speaker gets a Prosody reading once a second with ``wpm`` from
:class:`~coach.rate.SpeakingRate` (pitch and loudness are unknown at text level). The
timeline follows ``audio_samples/make_calls.py`` so a script's events line up with its
rendered audio: 0.5 s lead-in, 0.4 s between turns, ``pause`` replaces that gap,
``overlap`` starts a turn that many seconds before the previous one ends.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .cues import Baseline, CueEngine
from .events import AGENT, CUSTOMER, Activity, Cue, Event, Prosody, Turn, Word
from .playbook import Playbook
from .rate import SpeakingRate

__all__ = [
    "DEFAULT_RATES",
    "Script",
    "event_time",
    "load_script",
    "run_engine",
    "script_events",
]

LEAD_IN_S = 0.5
GAP_S = 0.4
DEFAULT_RATES = {AGENT: 150, CUSTOMER: 160}
# The share of each word's slot that is voiced; the rest is the gap to the next word.
_VOICED_SHARE = 0.88


@dataclass(frozen=True, slots=True)
class Script:
    """A parsed call script."""

    title: str
    expect: tuple[str, ...]
    forbid: tuple[str, ...]
    turns: tuple[Mapping[str, Any], ...]
    path: str | None = None


def load_script(source: str | Path | Mapping[str, Any]) -> Script:
    """Read a script from a YAML file or an already-parsed mapping."""
    path = None
    if isinstance(source, Mapping):
        data = dict(source)
    else:
        path = str(source)
        data = yaml.safe_load(Path(source).read_text(encoding="utf-8"))
    if not isinstance(data, Mapping) or not isinstance(data.get("turns"), list):
        raise ValueError(f"{path or '<script>'}: a script needs a list of turns")
    return Script(
        title=str(data.get("title", path or "")),
        expect=tuple(data.get("expect") or ()),
        forbid=tuple(data.get("forbid") or ()),
        turns=tuple(data["turns"]),
        path=path,
    )


def event_time(event: Event) -> float:
    """The audio time at which the pipeline would emit ``event``."""
    if isinstance(event, Word):
        return event.end
    if isinstance(event, Turn):
        return event.end
    return float(getattr(event, "t", 0.0))


def script_events(
    source: str | Path | Mapping[str, Any] | Script,
    *,
    lag_s: Mapping[str, float] | None = None,
) -> list[Event]:
    """The event stream for a script, in emission order.

    ``lag_s`` delays one speaker's committed words (e.g. ``{"customer": 2.5}``) the way a
    slower transcription pass on that channel would: the words keep their audio times but
    arrive later, interleaved with the other channel's events.
    """
    script = source if isinstance(source, Script) else load_script(source)
    lag = dict(lag_s or {})
    timed: list[tuple[float, int, int, Event]] = []  # (emit time, priority, seq, event)
    seq = 0

    def put(t: float, prio: int, ev: Event) -> None:
        nonlocal seq
        timed.append((t, prio, seq, ev))
        seq += 1

    cursor = LEAD_IN_S
    pending_gap: float | None = None
    first = True
    spans: dict[str, list[tuple[float, float]]] = {AGENT: [], CUSTOMER: []}
    words_by: dict[str, list[Word]] = {AGENT: [], CUSTOMER: []}
    for turn in script.turns:
        if "pause" in turn:
            pending_gap = float(turn["pause"])
            continue
        speaker = turn["speaker"]
        rate = float(turn.get("rate", DEFAULT_RATES[speaker]))
        texts = str(turn["text"]).split()
        slot = 60.0 / rate
        duration = slot * len(texts)
        if "overlap" in turn and not first:
            start = max(0.0, cursor - float(turn["overlap"]))
        elif first:
            start = cursor + (pending_gap or 0.0)
        else:
            start = cursor + (pending_gap if pending_gap is not None else GAP_S)
        pending_gap = None
        first = False
        end = start + duration
        put(start, 0, Activity(speaker, round(start, 3), True))
        for i, text in enumerate(texts):
            ws = start + i * slot
            we = ws + slot * _VOICED_SHARE
            w = Word(speaker, text, round(ws, 3), round(we, 3), True)
            words_by[speaker].append(w)
            put(we + lag.get(speaker, 0.0), 1, w)
        put(end, 2, Activity(speaker, round(end, 3), False))
        put(end, 3, Turn(speaker, round(start, 3), round(end, 3)))
        spans[speaker].append((start, end))
        cursor = max(cursor, end)
    t_end = cursor
    for speaker in (AGENT, CUSTOMER):
        rate = SpeakingRate()
        words = sorted(words_by[speaker], key=lambda w: w.start)
        k = 0
        for second in range(1, int(math.ceil(t_end)) + 1):
            while k < len(words) and words[k].end <= second:
                rate.add(words[k])
                k += 1
            speaking = any(s < second and e > second - 1 for s, e in spans[speaker])
            put(
                float(second),
                4,
                Prosody(speaker, float(second), None, None, rate.wpm(), speaking=speaking),
            )
    timed.sort(key=lambda x: (x[0], x[1], x[2]))
    return [ev for _, _, _, ev in timed]


def run_engine(
    events: Iterable[Event],
    playbook: Playbook,
    *,
    customer_channel: bool = True,
    agent_baseline: Baseline | None = None,
    t_end: float | None = None,
) -> list[Cue]:
    """Feed ``events`` to a fresh :class:`CueEngine` the way the pipeline does: audio time
    advances to each event's emission time before it is fed, and the call is flushed at
    the end (``t_end``, default the last event's time)."""
    engine = CueEngine(playbook, agent_baseline=agent_baseline, customer_channel=customer_channel)
    out: list[Cue] = []
    last = 0.0
    for ev in events:
        t = event_time(ev)
        if t > last:
            out += engine.advance(t)
            last = t
        out += engine.feed(ev)
    out += engine.flush(t_end if t_end is not None else last)
    return out
