"""Running QA over many calls: the batch, its options and summary, the resumable log.

``run_qa`` is the batch: find and sample the calls, hash each file (its sha256 is its key
in the log), skip keys the log already has, analyse the rest in parallel, append each
result to the log as one whole line (flush + fsync) as soon as it is back, and rewrite the
reports from the log at the end, also after Ctrl-C. A run killed outright (SIGKILL,
power cut) leaves at most a torn last line, which the next run drops and redoes.

One call is analysed by :mod:`coach.qa.analyse_call`; the tasks, the worker processes and
the local pool are in :mod:`coach.qa.workers`.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

from coach.errors import CoachError
from coach.qa.analyse_call import (
    ANALYSED,
    DEFAULT_MODEL,
    MODES,
    NO_SPEECH,
    _now_iso,
    _one_line,
)
from coach.qa.sources import (
    CallSource,
    ChannelRules,
    SampleSpec,
    file_key,
    find_calls,
    read_channel_map,
    sample_calls,
)
from coach.qa.workers import LocalExecutor, Task, cores

__all__ = [
    "QaOptions",
    "ResultLog",
    "RunSummary",
    "run_qa",
]


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
