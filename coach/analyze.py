"""``coach analyze``: a recording through the streaming pipeline at full speed."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from coach.events import Cue, Event
from coach.evidence import describe
from coach.io.audiofile import open_call
from coach.pipeline import Pipeline, PipelineOptions
from coach.playbook import Playbook
from coach.summary import CallSummary, transcript_lines

__all__ = ["AnalysisResult", "analyze_file", "format_text", "jsonl_line"]


@dataclass
class AnalysisResult:
    path: str
    duration_s: float
    channels: str
    sample_rate: int
    summary: CallSummary
    notices: list[str]


def jsonl_line(e: Event) -> str:
    return json.dumps(e.to_dict(), ensure_ascii=False)


def analyze_file(path: str | os.PathLike[str], *, transcriber, make_vad, playbook: Playbook,
                 agent_channel: str = "left", options: PipelineOptions | None = None,
                 on_event: Callable[[Event], None] | None = None,
                 progress: Callable[[float], None] | None = None,
                 block_s: float = 0.5) -> AnalysisResult:
    """Stream ``path`` through the pipeline. Events go to ``on_event`` as they happen;
    ``progress`` gets seconds of audio done. Raises ``AudioError`` for unreadable input."""
    call = open_call(path, agent_channel=agent_channel)
    info = call.info
    notices: list[str] = []
    if info.n_channels > 2:
        notices.append(f"{info.n_channels} channels: using {info.channels.describe()}; "
                       "the other channels are ignored")
    pipe = Pipeline(transcriber, make_vad, playbook,
                    customer_channel=info.channels.customer is not None, options=options)
    summary = CallSummary(duration_s=info.duration_s)

    def emit(events: list[Event]) -> None:
        for e in events:
            summary.add(e)
            if on_event is not None:
                on_event(e)

    emit(pipe.start(source=os.path.basename(str(path)), sample_rate=info.sample_rate,
                    channel_map=info.channels.describe()))
    for block in call.blocks(block_s):
        emit(pipe.feed(block.agent, block.customer))
        if progress is not None:
            progress(pipe.now)
    end_info = {}
    if call.ended_early_at is not None:
        notices.append(f"the file ends early at {call.ended_early_at:.1f} s of "
                       f"{info.duration_s:.1f} s (truncated or corrupt); analysed what "
                       "could be decoded")
        end_info["ended_early_at"] = round(call.ended_early_at, 3)
    emit(pipe.finish(**end_info))
    summary.duration_s = pipe.now
    return AnalysisResult(str(path), pipe.now, info.channels.describe(), info.sample_rate,
                          summary, notices)


def _ts(t: float) -> str:
    m, s = divmod(max(t, 0.0), 60)
    return f"{int(m):02d}:{s:04.1f}"


def _evidence(c: Cue) -> str:
    return describe(c.evidence, cue_id=c.id)


def _cue_counts(cues: list[Cue]) -> str:
    """"Avoid the 'but' (qualified-apology) ×2, Slow down (pace-fast)" or "none"."""
    titles: dict[str, str] = {}
    counts: dict[str, int] = {}
    for c in cues:
        titles.setdefault(c.id, c.title)
        counts[c.id] = counts.get(c.id, 0) + 1
    if not counts:
        return "none"
    return ", ".join(f"{titles[k]} ({k})" + (f" ×{n}" if n > 1 else "")
                     for k, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _delivery_lines(d: dict) -> list[str]:
    """The delivery figures with labels and units; missing ones left out."""
    def some(*items: str | None) -> str:
        return ", ".join(x for x in items if x)

    def fig(key: str, fmt: str) -> str | None:
        v = d.get(key)
        return None if v is None else fmt.format(v)

    share = d.get("agent_talk_share")
    talk = some(fig("agent_talk_s", "agent {:.0f} s")
                + (f" ({share * 100:.0f} % of the talk)" if share is not None else ""),
                fig("customer_talk_s", "customer {:.0f} s"))
    agent = some(fig("agent_words", "{} words"),
                 fig("agent_wpm_median", "median pace {:.0f} words/min"),
                 fig("agent_f0_median_hz", "median pitch {:.0f} Hz"),
                 fig("agent_loudness_median_db", "median level {:.1f} dB"))
    customer = some(fig("customer_f0_median_hz", "median pitch {:.0f} Hz"))
    return [f"{label}: {text}" for label, text in
            (("talk time", talk), ("agent", agent), ("customer", customer)) if text]


def format_text(res: AnalysisResult, out: TextIO = sys.stdout) -> None:
    s = res.summary
    w = out.write
    w(f"{res.path}: {res.duration_s:.1f} s, {res.sample_rate} Hz, {res.channels}\n\n")
    items: list[tuple[float, int, object]] = [(ln.start, 0, ln) for ln in
                                              transcript_lines(s.words)]
    items += [(c.t, 1, c) for c in s.cues]
    items.sort(key=lambda x: (x[0], x[1]))
    if not s.words:
        w("(no speech recognised)\n")
    marks = {"warn": "!!", "nudge": "! ", "info": "+ "}
    for _, kind, item in items:
        if kind == 0:
            w(f"[{_ts(item.start)}] {item.speaker.upper():<8} {item.text}\n")
        else:
            c = item
            w(f"           {marks.get(c.severity, '  ')} {c.title}  ({c.id}, {c.severity}, "
              f"{c.speaker} at {_ts(c.t)})\n")
            w(f"              {c.advice}\n")
            ev = _evidence(c)
            if ev:
                w(f"              evidence: {ev}\n")
    w("\nSummary\n")
    w(f"  cues: {_cue_counts(s.cues)}\n")
    rate = s.faults_per_agent_minute()
    if rate is not None:
        w(f"  nudge and warn cues per minute of agent talk: {rate:.2f}\n")
    for line in _delivery_lines(s.delivery()):
        w(f"  {line}\n")
    for n in res.notices:
        w(f"  note: {n}\n")
