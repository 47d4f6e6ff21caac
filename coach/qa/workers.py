"""The per-process side of a QA run: the tasks, the worker process, the local pool.

A :class:`Task` is one call in plain values (it crosses processes); :func:`run_task` is
the function a worker runs on it, the same for the local pool and for Dask
(:mod:`coach.qa.dask_executor`), built on :func:`coach.qa.analyse_call.analyse_one`.
:class:`LocalExecutor` is the process pool on this machine: spawned workers that ignore
Ctrl-C, die with the run, load the model once, and a pool rebuilt when a worker dies.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from coach.errors import CoachError
from coach.libc import glibc
from coach.qa.analyse_call import (
    ANALYSED,
    DEFAULT_MODEL,
    _engine,
    _one_line,
    _playbook,
    analyse_one,
)
from coach.qa.sources import CallSource

__all__ = [
    "LocalExecutor",
    "NotVisible",
    "Outcome",
    "Task",
    "cores",
    "init_worker",
    "run_task",
]


def cores() -> int:
    """CPU cores this process may use (the affinity mask, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


# -- the worker process ---------------------------------------------------------------------

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


