"""Running QA over many calls: the per-call function, the executors, the resumable log.

``analyse_one`` turns one call (audio or transcript) into a result dict (the contract in
DIR/results.jsonl): it analyses, scores with :func:`coach.rubric.score_call` and never
raises for bad input (an unreadable file is a ``skipped`` result with the reason). Model
and VAD are loaded once per process (per thread under Dask) and cached in a module global,
so a pool worker pays for them once.

``run_qa`` is the batch: find and sample the calls, hash each file (its sha256 is its key
in the log), skip keys the log already has, analyse the rest in parallel, append each
result to the log as one whole line (flush + fsync) as soon as it is back, and rewrite the
reports from the log at the end, also after Ctrl-C. A run killed outright (SIGKILL,
power cut) leaves at most a torn last line, which the next run drops and redoes.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import datetime as dt
import json
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

from coach.errors import CoachError
from coach.events import AGENT, CUSTOMER, Activity, Event, Prosody, Turn, Word
from coach.libc import glibc
from coach.qa.sources import (
    CallSource,
    ChannelRules,
    SampleSpec,
    call_name,
    file_key,
    find_calls,
    read_channel_map,
    read_transcript,
    sample_calls,
)

__all__ = [
    "MODES",
    "LocalExecutor",
    "QaOptions",
    "ResultLog",
    "RunSummary",
    "Task",
    "analyse_one",
    "cores",
    "run_qa",
    "run_task",
    "transcript_events",
]

MODES = ("fast", "live")
NO_SPEECH = "no speech"  # a result's status when the call held no agent speech (no score)
ANALYSED = ("ok", NO_SPEECH)  # statuses of calls that were analysed (not skipped)
DEFAULT_MODEL = "tiny.en"


def cores() -> int:
    """CPU cores this process may use (the affinity mask, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


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


def _die_with_parent() -> None:
    """A pool worker must not outlive the run: if ``coach qa`` is killed (SIGKILL), its
    workers would otherwise sit idle forever, holding a model each. The kernel is asked to
    kill this process with its parent (Linux), and a watchdog thread checks anyway."""
    parent = os.getppid()
    libc = glibc()
    if libc is not None:
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before the request took effect
            os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="coach-parent-watch", daemon=True).start()


def init_worker(model: str, threads: int, preload: bool, playbook_path: str | None = None
                ) -> None:
    """Process-pool initializer: Ctrl-C is the parent's to handle (it stops the pool and
    writes the reports); the worker dies with the parent; the model and VAD are loaded
    once, before the first call arrives."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    with contextlib.suppress(CoachError):  # a bad model is reported per call, one line
        _playbook(playbook_path)
        if preload:
            _engine(model, threads)


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


# -- tasks and executors -----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Task:
    """Everything a worker needs for one call (plain values: it crosses processes)."""

    source: CallSource
    key: str
    playbook_path: str | None = None
    model: str = DEFAULT_MODEL
    mode: str = "fast"
    threads: int = 1
    transcript_agent: str | None = None
    want_events: bool = False
    store_id: str | None = None
    audio_path: str | None = None  # where the audio really is (a call from the store)
    beam: int | None = None  # fast mode's decoder beam (None: greedy)


class NotVisible(RuntimeError):
    """The worker cannot see a file the coordinator found: a deployment problem (the
    workers do not share SOURCE), not a property of the call, so it is not logged."""


def run_task(task: Task) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
    """The worker's function (pool and Dask alike): the result, and the events as dicts
    when the call is to be saved in the store."""
    events: list[dict[str, Any]] | None = [] if task.want_events else None
    src = task.source if task.audio_path is None else replace(task.source,
                                                               path=task.audio_path)
    if not os.path.exists(src.path):
        import socket

        raise NotVisible(f"{src.path} is not readable on worker {socket.gethostname()}: "
                         "the workers need SOURCE at the same path (shared storage)")
    res = analyse_one(src, agent_channel=task.source.agent_channel,
                      playbook_path=task.playbook_path, model=task.model,
                      fast=task.mode == "fast", threads=task.threads,
                      transcript_agent=task.transcript_agent, key=task.key, beam=task.beam,
                      on_event=(lambda e: events.append(e.to_dict()))
                      if events is not None else None)
    res["path"] = task.source.path
    if task.store_id is not None:
        res["store_id"] = task.store_id
    return res, (events if res["status"] in ANALYSED else None)


Outcome = tuple[Task, tuple[dict[str, Any], list | None] | None, str | None]
"""(task, (result, events) or None, failure reason or None) as each call finishes."""


class LocalExecutor:
    """A process pool on this machine (or the calling process itself for one worker).

    At most two calls per worker are in flight, so a worker that dies (out of memory, a
    crash in native code) takes few calls with it; the pool is rebuilt and those calls are
    tried once more, then reported as failed.
    """

    def __init__(self, workers: int, *, model: str, threads: int, preload: bool,
                 playbook_path: str | None = None,
                 fn: Callable[[Task], Any] = run_task):
        self.workers = max(1, int(workers))
        self._initargs = (model, threads, preload, playbook_path)
        self._pool: cf.ProcessPoolExecutor | None = None
        self._fn = fn  # the per-call function (a module-level function: it is pickled)

    def _new_pool(self) -> cf.ProcessPoolExecutor:
        import multiprocessing as mp

        # spawn: workers start clean (no copy of the parent's threads or tqdm state) and
        # are children of this process, so they can die with it (see _die_with_parent)
        ctx = mp.get_context("spawn")
        return cf.ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=init_worker,
                                      initargs=self._initargs)

    def run(self, tasks: Iterable[Task]) -> Iterator[Outcome]:
        if self.workers == 1:
            for t in tasks:
                yield self._inline(t)
            return
        pending = iter(tasks)
        suspects: list[Task] = []  # in flight when a worker died: retried one at a time
        inflight: dict[cf.Future, Task] = {}
        isolated = False  # the one call in flight is a suspect
        self._pool = self._new_pool()

        def refill() -> None:
            nonlocal isolated
            if suspects:
                if not inflight:
                    t = suspects.pop()
                    inflight[self._pool.submit(self._fn, t)] = t
                    isolated = True
                return
            isolated = False
            while len(inflight) < 2 * self.workers:
                t = next(pending, None)
                if t is None:
                    return
                inflight[self._pool.submit(self._fn, t)] = t

        refill()
        while inflight:
            done, _ = cf.wait(list(inflight), return_when=cf.FIRST_COMPLETED)
            broken = False
            for fut in done:
                t = inflight.pop(fut)
                try:
                    yield t, fut.result(), None
                except cf.process.BrokenProcessPool:
                    broken = True
                    if isolated:
                        yield t, None, ("the worker process died while analysing it "
                                        "(out of memory or a crash in native code)")
                    else:
                        suspects.append(t)
                except Exception as exc:  # a bug, not bad input: report, keep going
                    yield t, None, f"analysis failed ({type(exc).__name__}: {_one_line(exc)})"
            if broken:
                suspects.extend(inflight.values())
                inflight.clear()
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = self._new_pool()
            refill()
        self._pool.shutdown(wait=True)
        self._pool = None

    def _inline(self, t: Task) -> Outcome:
        try:
            return t, self._fn(t), None
        except Exception as exc:
            return t, None, f"analysis failed ({type(exc).__name__}: {_one_line(exc)})"

    def close(self) -> None:
        """Stop now (Ctrl-C): drop queued calls and end the workers mid-call."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        procs = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            with contextlib.suppress(Exception):
                p.terminate()
        for p in procs:
            with contextlib.suppress(Exception):
                p.join(5)


# -- the resumable log ---------------------------------------------------------------------------

class ResultLog:
    """DIR/results.jsonl: one JSON line per finished call, keyed by content.

    Lines are written whole (one write of line + newline, then flush and fsync), so after
    a kill at most the last line is torn; ``load`` drops it (and cuts it from the file) and
    the call is analysed again.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.dropped = 0  # unreadable lines found by the last load

    def load(self) -> list[dict[str, Any]]:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise CoachError(f"{self.path}: cannot read the results log "
                             f"({exc.strerror or exc})") from exc
        good_end = data.rfind(b"\n") + 1
        if good_end < len(data):  # a torn last line: cut it off, it is redone
            with open(self.path, "r+b") as f:
                f.truncate(good_end)
                f.flush()
                os.fsync(f.fileno())
            self.dropped += 1
        out: list[dict[str, Any]] = []
        seen: set[str] = set()
        for raw in data[:good_end].splitlines():
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except ValueError:
                self.dropped += 1
                continue
            if not isinstance(row, dict) or not isinstance(row.get("key"), str):
                self.dropped += 1
                continue
            if row["key"] in seen:
                continue
            seen.add(row["key"])
            out.append(row)
        return out

    def append(self, row: dict[str, Any]) -> None:
        line = (json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                if os.write(fd, line) != len(line):
                    raise OSError(28, "short write (disk full?)")
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise CoachError(f"{self.path}: cannot write the results log "
                             f"({exc.strerror or exc})") from exc


@contextlib.contextmanager
def _dir_lock(out_dir: Path) -> Iterator[None]:
    """One run per output directory at a time (two would race on the log)."""
    import fcntl

    path = out_dir / ".qa.lock"
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            raise CoachError(f"{out_dir}: another coach qa run is writing there") from exc
        try:  # a run that just finished may have removed the file we locked: lock anew
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        yield
    finally:
        # removed while still held, so no other run can be holding this same file
        with contextlib.suppress(OSError):
            os.unlink(path)
        os.close(fd)


# -- the batch -------------------------------------------------------------------------------------

@dataclass
class QaOptions:
    source: str
    out_dir: Path
    sample: SampleSpec = field(default_factory=lambda: SampleSpec(percent=100.0))
    seed: int = 0
    agent_channel: str = "left"
    channel_map: str | None = None
    workers: int | None = None  # default: one per core
    threads: int | None = None  # model threads per worker; default cores // workers
    executor: str = "local"  # or dask://HOST:PORT
    model: str = DEFAULT_MODEL
    playbook: str | None = None
    mode: str = "fast"
    beam: int | None = None  # fast mode: decoder beam (default greedy)
    replay_url: str | None = None
    transcript_agent: str | None = None
    progress: bool = False
    title: str = "coach QA"
    save_to_store: bool = False  # --store: save each analysed call with its score
    reanalyse: bool = False  # SOURCE store: analyse the stored audio again (else its events)
    store_url: str | None = None  # None: the default store
    store_filters: dict[str, Any] = field(default_factory=dict)  # SOURCE store:


@dataclass
class RunSummary:
    found: int = 0
    sampled: int = 0
    done_before: int = 0
    analysed: int = 0
    skipped: int = 0
    duplicates: int = 0
    failed: int = 0
    interrupted: bool = False
    audio_s: float = 0.0
    wall_s: float = 0.0
    reports: dict[str, Path] = field(default_factory=dict)
    ignored: int = 0
    no_speech: int = 0  # analysed, but no agent speech to score

    @property
    def x_realtime(self) -> float | None:
        return self.audio_s / self.wall_s if self.wall_s > 0 and self.audio_s > 0 else None


def _duration(src: CallSource) -> float:
    if src.kind != "audio":
        return 0.0
    try:
        import soundfile as sf

        info = sf.info(src.path)
        return float(info.frames / info.samplerate) if info.frames < (1 << 40) else 0.0
    except Exception:  # unreadable: analysed (and skipped) like any other
        return 0.0


def _make_executor(opts: QaOptions, workers: int, threads: int, preload: bool):
    if opts.executor == "local":
        return LocalExecutor(workers, model=opts.model, threads=threads, preload=preload,
                             playbook_path=opts.playbook)
    if opts.executor.startswith("dask://") or opts.executor.startswith("tcp://"):
        from coach.qa.dask_executor import DaskExecutor

        return DaskExecutor(opts.executor)
    raise CoachError(f"--executor: expected local or dask://HOST:PORT, not {opts.executor!r}")


def _skip_row(src: CallSource, key: str | None, reason: str) -> dict[str, Any]:
    return {"call": src.call, "path": src.path, "key": key, "kind": src.kind,
            "status": "skipped", "reason": reason, "duration_s": None,
            "agent_channel": src.agent_channel, "model": None, "score": None,
            "problem": None, "steps": {}, "delivery": {}, "cue_counts": {}, "cues": [],
            "transcript": [], "store_id": None, "analysed_at": _now_iso(), "seconds": None}


def _plan(opts: QaOptions, store, done: dict[str, dict], summary: RunSummary, err: TextIO
          ) -> tuple[list[tuple[CallSource, str]], list[dict], dict[str, str],
                     dict[str, float]]:
    """Find, sample and hash the calls: (to do with their keys, rows for files that cannot
    be read or repeat another's content, store ids by path, known durations by path).
    A key already in the log is done, wherever the file is now; a second file with the
    same content in this sample is a duplicate of the first (by path order)."""
    from_store = opts.source.startswith("store:")
    store_ids: dict[str, str] = {}
    keys_of: dict[str, str] = {}
    known_s: dict[str, float] = {}
    if from_store:
        from coach.qa.storesrc import store_calls

        found_calls, store_ids, keys_of, known_s = store_calls(store, opts)
    else:
        cmap = read_channel_map(opts.channel_map) if opts.channel_map else ()
        found = find_calls(opts.source, ChannelRules(opts.agent_channel, cmap))
        found_calls = found.calls
        summary.ignored = len(found.ignored)
    summary.found = len(found_calls)
    picked = sample_calls(found_calls, opts.sample, opts.seed)
    summary.sampled = len(picked)
    todo: list[tuple[CallSource, str]] = []
    extra: list[dict] = []
    first_path: dict[str, str] = {}
    for src in picked:
        try:
            key = keys_of.get(src.path) or file_key(src.path)
        except OSError as exc:
            row = _skip_row(src, None, f"{src.path}: cannot read ({exc.strerror or exc})")
            extra.append(row)
            summary.failed += 1
            print(f"coach: skipped {src.path}: {row['reason']}", file=err)
            continue
        if key in first_path:
            extra.append(_skip_row(src, key, f"same content as {first_path[key]}"))
            summary.duplicates += 1
            continue
        first_path[key] = src.path
        if key in done:
            summary.done_before += 1
            continue
        todo.append((src, key))
    return todo, extra, store_ids, known_s


def run_qa(opts: QaOptions, *, err: TextIO | None = None) -> RunSummary:
    """The whole batch (see the module docstring). Ctrl-C stops it cleanly: what is done
    stays in the log and the reports are written for it; ``interrupted`` is set and
    KeyboardInterrupt is re-raised after the reports are written."""
    err = err or sys.stderr
    t_start = time.perf_counter()
    if opts.mode not in MODES:
        raise CoachError(f"--mode: expected fast or live, not {opts.mode!r}")
    out_dir = Path(opts.out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise CoachError(f"--out {out_dir}: exists and is not a directory")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CoachError(f"--out {out_dir}: cannot create ({exc.strerror or exc})") from exc
    from_store = opts.source.startswith("store:")
    store = None
    if opts.save_to_store or from_store:
        from coach.qa.storesrc import open_qa_store

        store = open_qa_store(opts.store_url, opts.source)
    try:
        with _dir_lock(out_dir):
            return _run_locked(opts, out_dir, store, err, t_start)
    finally:
        if store is not None:
            with contextlib.suppress(Exception):
                store.close()


def _run_locked(opts: QaOptions, out_dir: Path, store, err: TextIO, t_start: float
                ) -> RunSummary:
    summary = RunSummary()
    from_store = opts.source.startswith("store:")
    log = ResultLog(out_dir / "results.jsonl")
    logged = log.load()
    if log.dropped:
        print(f"coach: dropped {log.dropped} unreadable line(s) from {log.path} "
              "(a run was cut off); those calls are redone", file=err)
    extra_rows: list[dict[str, Any]] = []
    tmp_audio: tempfile.TemporaryDirectory | None = None
    executor = None
    bar = None
    try:
        todo, extra_rows, store_ids, known_s = _plan(
            opts, store, {r["key"]: r for r in logged}, summary, err)
        n_workers = max(1, min(opts.workers or cores(), max(1, len(todo))))
        threads = opts.threads or (1 if opts.executor != "local"
                                   else max(1, cores() // n_workers))
        tasks = [Task(s, k, opts.playbook, opts.model, opts.mode, threads,
                      opts.transcript_agent, want_events=store is not None and not from_store,
                      store_id=store_ids.get(s.path), beam=opts.beam) for s, k in todo]
        seconds_of = {s.path: known_s.get(s.path) or _duration(s) for s, _ in todo}
        # longest calls first: the workers then finish together instead of one of them
        # still chewing on a long call at the end (the log's order does not matter)
        tasks.sort(key=lambda t: -seconds_of.get(t.source.path, 0.0))
        if opts.progress and tasks:
            from tqdm import tqdm

            bar = tqdm(total=round(sum(seconds_of.values()), 1), unit="s", file=err,
                       leave=False, desc=f"QA {len(tasks)} calls",
                       bar_format="{desc} {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s "
                                  "audio [{elapsed}<{remaining}, {rate_fmt}]")

        def say(msg: str) -> None:
            if bar is not None:
                bar.write(msg, file=err)
            else:
                print(msg, file=err)

        remote = opts.executor != "local"

        def finish(task: Task, res: dict[str, Any], events: list | None) -> None:
            if res["status"] in ANALYSED:
                summary.analysed += 1
                summary.no_speech += res["status"] == NO_SPEECH
                summary.audio_s += float(res.get("duration_s") or 0.0)
                if store is not None:
                    _store_result(store, task, res, events, say)
            else:
                summary.skipped += 1
                say(f"coach: skipped {task.source.path}: {res['reason']}")
            log.append(res)
            if bar is not None:
                bar.update(round(seconds_of.get(task.source.path, 0.0), 1))

        if from_store and not opts.reanalyse:
            # A stored call keeps the one score it has: scored from the words and cues it
            # was saved with, not from a second analysis of its audio (--reanalyse).
            from coach.qa.storesrc import stored_result

            for t in [t for t in tasks if t.store_id is not None]:
                finish(t, stored_result(store, t), None)
            tasks = [t for t in tasks if t.store_id is None]

        def feed() -> Iterator[Task]:
            """Tasks as the executor takes them; a call from the store has its audio
            fetched only now (into DIR, where local workers can read it). Workers of a
            cluster get absolute paths (they do not share our working directory)."""
            nonlocal tmp_audio
            for t in tasks:
                if t.store_id is None:
                    yield replace(t, audio_path=os.path.abspath(t.source.path)) \
                        if remote else t
                    continue
                from coach.qa.storesrc import export_audio

                if tmp_audio is None:
                    tmp_audio = tempfile.TemporaryDirectory(prefix=".store-audio-",
                                                            dir=out_dir)
                try:
                    audio = export_audio(store, t.store_id, Path(tmp_audio.name))
                except CoachError as exc:
                    row = _skip_row(t.source, t.key, _one_line(exc))
                    row["store_id"] = t.store_id
                    log.append(row)
                    summary.skipped += 1
                    say(f"coach: skipped {t.source.path}: {row['reason']}")
                    continue
                yield replace(t, audio_path=os.path.abspath(audio))

        if tasks:
            executor = _make_executor(opts, n_workers, threads,
                                      any(s.kind == "audio" for s, _ in todo))
            for task, outcome, failure in executor.run(feed()):
                if task.store_id is not None and task.audio_path is not None:
                    with contextlib.suppress(OSError):
                        os.unlink(task.audio_path)
                if outcome is None:
                    row = _skip_row(task.source, task.key, failure or "analysis failed")
                    extra_rows.append(row)
                    summary.failed += 1
                    say(f"coach: failed {task.source.path}: {row['reason']}")
                    continue
                finish(task, *outcome)
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        if executor is not None:
            executor.close()
        if bar is not None:
            bar.close()
        if tmp_audio is not None:
            tmp_audio.cleanup()
        summary.wall_s = time.perf_counter() - t_start
        from coach.qa.report import write_reports

        rows = ResultLog(log.path).load() + extra_rows
        summary.reports = write_reports(rows, out_dir, replay_url=opts.replay_url,
                                        title=opts.title)
    if summary.interrupted:
        raise KeyboardInterrupt
    return summary


def _store_result(store, task: Task, res: dict, events: list | None, say) -> None:
    """Save the analysed call with its score (or, for a call from the store, set its
    score); a store error is reported and the batch goes on."""
    from coach.qa.storesrc import save_result

    try:
        res["store_id"] = save_result(store, task, res, events)
    except CoachError as exc:
        say(f"coach: could not save {task.source.path} in the store: {_one_line(exc)}")


def with_defaults(opts: QaOptions, **changes: Any) -> QaOptions:
    return replace(opts, **changes)
