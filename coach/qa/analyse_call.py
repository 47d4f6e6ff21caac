"""Analysing one call: audio or transcript in, the result dict of DIR/results.jsonl out.

``analyse_one`` turns one call (audio or transcript) into a result dict (the contract in
DIR/results.jsonl): it analyses, scores with :func:`coach.rubric.score_call` and never
raises for bad input (an unreadable file is a ``skipped`` result with the reason). Model
and VAD are loaded once per process (per thread under Dask) and cached in a module global,
so a pool worker pays for them once.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from coach.errors import CoachError
from coach.events import AGENT, CUSTOMER, Activity, Event, Prosody, Turn, Word
from coach.libc import glibc
from coach.qa.sources import CallSource, call_name, file_key, read_transcript
from coach.rubric import NO_SPEECH  # a call that held no agent speech: analysed, no score

__all__ = [
    "ANALYSED",
    "DEFAULT_MODEL",
    "MODES",
    "NO_SPEECH",
    "analyse_one",
    "new_result",
    "score_summary",
    "transcript_events",
]

MODES = ("fast", "live")
ANALYSED = ("ok", NO_SPEECH)  # statuses of calls that were analysed (not skipped)
DEFAULT_MODEL = "tiny.en"


# -- per-process model cache ---------------------------------------------------------------

_CACHE: dict[tuple, Any] = {}
_CACHE_LOCK = threading.Lock()


def _tune_malloc() -> None:
    """Undo a malloc setting that makes analysis ~1.6x slower in Dask workers.

    Dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536`` (to hand memory back
    to the OS); setting it switches off glibc's adaptive mmap threshold, so every block
    over 128 KiB (audio windows, mel features, model buffers) is mmap'd and unmapped
    afresh, page faults and all. Measured on the demo calls: 1.6x the time per call. A
    larger mmap threshold puts those blocks back on the heap; memory is still trimmed,
    above 64 MiB of free heap."""
    libc = glibc()
    if "MALLOC_TRIM_THRESHOLD_" not in os.environ or libc is None:  # not glibc: nothing to undo
        return
    libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD
    libc.mallopt(-1, 64 << 20)  # M_TRIM_THRESHOLD


def _pin_blas() -> None:
    """One BLAS thread in an analysing process. numpy's BLAS (the mel filterbank of the
    Whisper features) gives slightly different sums with 1 or 2 threads, enough to change
    a word now and then ("Right line" / "Bright line"), so without this the same call
    could read differently on the pool, on Dask (whose nanny sets one thread) and in one
    process; the model's own thread count does not change its output. One thread is also
    what a worker per core wants. threadpoolctl comes with scikit-learn (librosa's)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - then results may differ between executors
        return
    threadpool_limits(limits=1, user_api="blas")


def _engine(model: str, threads: int) -> tuple[Any, Any]:
    """(transcriber, VAD) for this process and thread, loaded on first use. Dask runs
    several tasks of one worker process on threads; each thread gets its own model so
    they decode in parallel rather than queue on one."""
    key = ("engine", str(model), int(threads), threading.get_ident())
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
    if hit is not None:
        return hit
    from coach.io.vad import SileroVad
    from coach.io.whisper import WhisperTranscriber

    _tune_malloc()
    _pin_blas()
    pair = (WhisperTranscriber(model, cpu_threads=max(1, int(threads))), SileroVad())
    with _CACHE_LOCK:
        _CACHE[key] = pair
    return pair


def _playbook(path: str | None):
    key = ("playbook", path)
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
    if hit is None:
        from coach.playbook import load_playbook

        hit = load_playbook(path)
        with _CACHE_LOCK:
            _CACHE[key] = hit
    return hit


# -- one call --------------------------------------------------------------------------------

def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def transcript_events(words: list[Word], *, turn_gap_s: float = 1.0
                      ) -> tuple[list[Event], float]:
    """The events the pipeline would emit for a call known only by its words (another
    system's transcript): per speaker, turns of words no more than ``turn_gap_s`` apart
    (the pipeline's end-of-utterance silence) with Activity on/off and Turn, committed
    words at their end time, and a Prosody reading per second carrying the speaking rate
    (pitch and loudness are unknown without audio). Sorted in emission order, as
    :func:`coach.scripted.run_engine` wants them."""
    from coach.rate import SpeakingRate

    timed: list[tuple[float, int, int, Event]] = []

    def put(t: float, prio: int, e: Event) -> None:
        timed.append((t, prio, len(timed), e))

    end_all = max((w.end for w in words), default=0.0)
    for sp in (AGENT, CUSTOMER):
        mine = sorted((w for w in words if w.speaker == sp), key=lambda w: (w.start, w.end))
        spans: list[tuple[float, float]] = []
        turn: list[Word] = []
        for w in [*mine, None]:
            if turn and (w is None or w.start - turn[-1].end > turn_gap_s):
                a, b = turn[0].start, max(x.end for x in turn)
                put(a, 0, Activity(sp, a, True))
                for x in turn:
                    put(x.end, 1, x)
                put(b, 2, Activity(sp, b, False))
                put(b, 3, Turn(sp, a, b))
                spans.append((a, b))
                turn = []
            if w is not None:
                turn.append(w)
        if not mine:
            continue
        rate = SpeakingRate()
        k = 0
        for second in range(1, int(end_all) + 2):
            while k < len(mine) and mine[k].end <= second:
                rate.add(mine[k])
                k += 1
            speaking = any(a < second and b > second - 1 for a, b in spans)
            put(float(second), 4, Prosody(sp, float(second), None, None, rate.wpm(),
                                          speaking=speaking))
    timed.sort(key=lambda x: (x[0], x[1], x[2]))
    return [e for _, _, _, e in timed], end_all


def _score_into(out: dict, summary, playbook, duration_s: float) -> None:
    from coach.rubric import score_call
    from coach.summary import transcript_lines

    sc = score_call(summary.words, summary.cues, playbook, duration_s=duration_s,
                    delivery=summary.delivery()).to_dict()
    if sc.get("status") == NO_SPEECH:  # nothing to score: kept out of the averages
        out.update(status=NO_SPEECH, reason=NO_SPEECH)
    out.update({
        "duration_s": round(float(duration_s), 3),
        "score": sc["score"],
        "problem": sc["problem"],
        "severity": sc.get("severity"),
        "steps": sc["steps"],
        "delivery": sc["delivery"],
        "notes": sc.get("notes", []),
        "cue_counts": dict(sorted(summary.cue_counts().items())),
        "cues": [c.to_dict() for c in summary.cues],
        "transcript": [{"speaker": ln.speaker, "start": round(ln.start, 3),
                        "end": round(ln.end, 3), "text": ln.text}
                       for ln in transcript_lines(summary.words)],
        "figures": summary.delivery(),
    })


def new_result(src: CallSource, key: str | None, model: str | None, mode: str
               ) -> dict[str, Any]:
    """An empty result dict of the contract. ``mode`` is the path that scores the call:
    ``fast`` or ``live`` (audio analysed), ``text`` (a transcript), ``stored`` (the events
    a stored call was saved with)."""
    return {
        "call": src.call, "path": src.path, "key": key, "kind": src.kind, "status": "ok",
        "reason": None, "duration_s": None, "agent_channel": src.agent_channel,
        "channel_rule": src.channel_rule, "model": model,
        "mode": mode, "score": None, "problem": None, "steps": {}, "delivery": {},
        "cue_counts": {}, "cues": [], "transcript": [], "store_id": None,
        "analysed_at": None, "seconds": None,
    }


def score_summary(out: dict, summary, playbook_path: str | None, duration_s: float) -> None:
    """Score a call's words and cues (a :class:`~coach.summary.CallSummary`) into ``out``
    with the run's playbook."""
    _score_into(out, summary, _playbook(playbook_path), duration_s)


def analyse_one(path_or_transcript: str | os.PathLike[str] | CallSource, *,
                agent_channel: str = "left", playbook_path: str | None = None,
                model: str = DEFAULT_MODEL, fast: bool = True, threads: int | None = None,
                transcript_agent: str | None = None, key: str | None = None,
                beam: int | None = None,
                on_event: Callable[[Event], None] | None = None) -> dict[str, Any]:
    """One call's result dict (see the contract). Audio is analysed with the fast path
    (``fast``, greedy unless ``beam``) or the live streaming pipeline; a transcript
    (.json/.vtt) from its words.
    Bad input never raises: it comes back with ``status: skipped`` and a one-line reason.
    ``on_event`` sees every event (to save the call in the store)."""
    t0 = time.perf_counter()
    if isinstance(path_or_transcript, CallSource):
        src = path_or_transcript
    else:
        p = Path(path_or_transcript)
        kind = "transcript" if p.suffix.lower() in (".json", ".vtt") else "audio"
        src = CallSource(str(p), call_name(p), kind,
                         agent_channel if kind == "audio" else "-")
    mode = "text" if src.kind == "transcript" else ("fast" if fast else "live")
    out = new_result(src, key, None if src.kind == "transcript" else model, mode)
    try:
        if key is None:
            try:
                out["key"] = file_key(src.path)
            except OSError as exc:
                raise CoachError(f"{src.path}: cannot read ({exc.strerror or exc})") from exc
        playbook = _playbook(playbook_path)
        if src.kind == "transcript":
            _analyse_transcript(src, out, playbook, transcript_agent, on_event)
        else:
            _analyse_audio(src, out, playbook, model, fast, threads or 1, beam, on_event)
    except CoachError as exc:
        out.update(status="skipped", reason=_one_line(exc))
    out["analysed_at"] = _now_iso()
    out["seconds"] = round(time.perf_counter() - t0, 3)
    return out


def _analyse_audio(src: CallSource, out: dict, playbook, model: str, fast: bool,
                   threads: int, beam: int | None, on_event) -> None:
    from coach.io.audiofile import open_call

    open_call(src.path, agent_channel=src.agent_channel)  # bad input fails before the model
    tx, vad = _engine(model, threads)
    if fast:
        from coach.qa.fast import FastOptions, analyze_fast

        fo = FastOptions() if beam is None else FastOptions(beam_size=max(1, int(beam)))
        res = analyze_fast(src.path, transcriber=tx, make_vad=vad.shared, playbook=playbook,
                           agent_channel=src.agent_channel, options=fo, on_event=on_event)
    else:
        from coach.analyze import analyze_file

        res = analyze_file(src.path, transcriber=tx, make_vad=vad.shared, playbook=playbook,
                           agent_channel=src.agent_channel, on_event=on_event)
    _score_into(out, res.summary, playbook, res.duration_s)
    out["channels"] = res.channels
    if res.notices:
        out["notices"] = list(res.notices)


def _analyse_transcript(src: CallSource, out: dict, playbook, agent: str | None,
                        on_event) -> None:
    from coach.scripted import run_engine
    from coach.summary import CallSummary

    words, roles = read_transcript(src.path, agent=agent)
    events, end = transcript_events(words)
    has_customer = any(w.speaker == CUSTOMER for w in words)
    cues = run_engine(events, playbook, customer_channel=has_customer, t_end=end)
    summary = CallSummary(duration_s=end)
    for e in [*events, *cues]:
        summary.add(e)
        if on_event is not None:
            on_event(e)
    _score_into(out, summary, playbook, end)
    out["speakers"] = roles
    out["agent_channel"] = next((k for k, v in roles.items() if v == AGENT), "-")
