"""``coach live``: a live source through the pipeline, out to the hub and to disk.

Threads: the source delivers blocks from its own capture thread (the PortAudio callback
only copies); one worker thread here runs the pipeline, so recognition never blocks
capture; the hub's event loop (uvicorn's) fans events out to clients. Audio time is the
pipeline's clock; wall time only measures lag, which triggers graceful degradation.
"""

from __future__ import annotations

import json
import os
import queue
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from coach.events import Cue, Event
from coach.libc import glibc
from coach.pipeline import Pipeline, PipelineOptions
from coach.playbook import Playbook

__all__ = ["LiveOptions", "LiveSession", "Recorder"]


@dataclass(frozen=True, slots=True)
class LiveOptions:
    degrade_after_s: float = 2.0  # lag that makes the service shed load
    recover_below_s: float = 0.5  # ...and the lag at which it returns to full quality,
    recover_after_s: float = 8.0  # once it has stayed there this long (audio time): shedding
    # load makes the lag drop at once, and returning at the first low reading flapped
    # (ten switches in a minute on a loaded machine)
    degraded_step_s: float = 2.0
    status_every_s: float = 1.0


class Recorder:
    """Writes a live call as it happens: ``audio.flac`` (agent, customer), ``events.jsonl``
    and ``call.json``, flushed about once a second so a killed process loses at most that.
    The folder is what the call store imports."""

    def __init__(self, directory: Path, *, customer_channel: bool, meta: dict[str, Any]):
        import soundfile as sf

        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # pid and host tell the store's recovery a live call from a crashed one
        self._meta = dict(meta, finished=False, pid=os.getpid(), host=socket.gethostname())
        self._channels = 2 if customer_channel else 1
        self._audio = sf.SoundFile(self.dir / "audio.flac", "w", 16000, self._channels,
                                   format="FLAC", subtype="PCM_16")
        self._events = open(self.dir / "events.jsonl", "a", encoding="utf-8")
        self._last_flush = time.monotonic()
        self._write_meta()

    def _write_meta(self) -> None:
        tmp = self.dir / "call.json.tmp"
        tmp.write_text(json.dumps(self._meta, indent=2))
        tmp.replace(self.dir / "call.json")

    def audio(self, agent: np.ndarray, customer: np.ndarray | None) -> None:
        x = agent[:, None] if self._channels == 1 else np.stack(
            [agent, customer if customer is not None else np.zeros_like(agent)], axis=1)
        with self._lock:
            self._audio.write(np.clip(x, -1.0, 1.0))
            self._maybe_flush()

    def event(self, message: dict[str, Any]) -> None:
        with self._lock:
            self._events.write(json.dumps(message, ensure_ascii=False) + "\n")
            self._maybe_flush()

    def update(self, **meta: Any) -> None:
        with self._lock:
            self._meta.update(meta)
            self._write_meta()

    def _maybe_flush(self) -> None:
        if time.monotonic() - self._last_flush >= 1.0:
            self._audio.flush()
            self._events.flush()
            self._last_flush = time.monotonic()

    def close(self, **meta: Any) -> None:
        with self._lock:
            self._audio.close()
            self._events.close()
            self._meta.update(meta, finished=True)
            self._write_meta()


class LiveSession:
    """Runs one call: ``run()`` blocks until the source ends or ``stop()`` is called."""

    def __init__(self, source, *, transcriber, make_vad, playbook: Playbook,
                 publish: Callable[[dict[str, Any]], None],
                 record_dir: Path | None = None, meta: dict[str, Any] | None = None,
                 options: LiveOptions | None = None,
                 pipeline_options: PipelineOptions | None = None,
                 on_event: Callable[[Event], None] | None = None,
                 agent_baseline: Any = None):
        self.source = source
        self.options = options or LiveOptions()
        self.pipeline = Pipeline(transcriber, make_vad, playbook,
                                 customer_channel=source.customer_channel,
                                 options=pipeline_options, agent_baseline=agent_baseline)
        self._publish = publish
        self._on_event = on_event
        self._meta = dict(meta or {})
        self._record_dir = record_dir
        self.recorder: Recorder | None = None
        self._blocks: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._started = False
        self.degraded = False
        self._calm_since: float | None = None  # audio time the lag fell low while degraded
        self.lag_s = 0.0
        self.max_lag_s = 0.0
        self.cues: list[Cue] = []
        self.statuses: list[dict[str, Any]] = []
        self._last_status = 0.0

    # -- feedback from clients (hub thread) ------------------------------------------------
    def feedback(self, message: dict[str, Any]) -> None:
        if self.recorder is not None:
            self.recorder.event(message)

    def stop(self) -> None:
        self._stop.set()
        self._blocks.put(None)

    # -- the worker -----------------------------------------------------------------------
    def run(self) -> None:
        self.source.start(self._blocks.put, self._on_status)
        try:
            while not self._stop.is_set():
                try:
                    block = self._blocks.get(timeout=0.25)  # stays responsive to Ctrl-C
                except queue.Empty:
                    if self._source_done():
                        break
                    continue
                if block is None:
                    break
                if isinstance(block, dict):  # a status from the source
                    self._status(block)
                    continue
                self._feed(block)
        finally:
            self.source.stop()
            self._finish()

    def _source_done(self) -> bool:
        """A finite source (a recording) has delivered everything."""
        wait = getattr(self.source, "wait", None)
        return bool(wait is not None and wait(0) and self._blocks.empty())

    def _on_status(self, status) -> None:
        d = {k: getattr(status, k) for k in ("device", "role", "state", "message", "t")}
        self._blocks.put(d)

    def _begin(self) -> None:
        started_at = self.source.started_at or time.time()
        info = dict(self._meta, started_at=round(started_at, 3), source=self.source.describe())
        if self._record_dir is not None:
            stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(started_at))
            folder, k = self._record_dir / stamp, 1
            while folder.exists():  # back-to-back calls may start within the same second
                k += 1
                folder = self._record_dir / f"{stamp}-{k}"
            self.recorder = Recorder(folder,
                                     customer_channel=self.source.customer_channel,
                                     meta=info)
            info["recording"] = str(self.recorder.dir)
        self._emit(self.pipeline.start(**info))
        self._started = True

    def _feed(self, block) -> None:
        if not self._started:
            self._begin()
        if self.recorder is not None:
            self.recorder.audio(block.agent, block.customer)
        self._emit(self.pipeline.feed(block.agent, block.customer))
        started_at = self.source.started_at
        if started_at is not None:
            # audio time is wall time, or a multiple of it for a recording played faster
            speed = getattr(self.source, "speed", 1.0) or 1.0
            self.lag_s = max(0.0, time.time() - (started_at + self.pipeline.now / speed))
            self.max_lag_s = max(self.max_lag_s, self.lag_s)
            self._adapt()

    def _adapt(self) -> None:
        o = self.options
        if not self.degraded and self.lag_s > o.degrade_after_s:
            self.degraded = True
            self.pipeline.degrade(step_s=o.degraded_step_s, customer_finals_only=True)
            self._status({"message": f"falling behind by {self.lag_s:.1f} s: fewer "
                                     "recognition passes, customer side finals only"})
        elif self.degraded and self.lag_s >= o.recover_below_s:
            self._calm_since = None
            self._maybe_status()
        elif self.degraded and (self._calm_since is None
                                or self.pipeline.now - self._calm_since < o.recover_after_s):
            if self._calm_since is None:
                self._calm_since = self.pipeline.now
            self._maybe_status()
        elif self.degraded:
            self.degraded = False
            self._calm_since = None
            self.pipeline.recover()
            self._status({"message": None})
        else:
            self._maybe_status()

    def _maybe_status(self) -> None:
        if time.monotonic() - self._last_status >= self.options.status_every_s:
            self._status({})

    def _status(self, extra: dict[str, Any]) -> None:
        msg = {"type": "status", "lag_s": round(self.lag_s, 3), "degraded": self.degraded,
               "message": None, **extra}
        msg.setdefault("devices", {})
        self._last_status = time.monotonic()
        if extra.get("state") or extra.get("message"):
            self.statuses.append(msg)
            if self.recorder is not None:
                self.recorder.event(msg)
        self._publish(msg)

    def _emit(self, events: list[Event]) -> None:
        for e in events:
            d = e.to_dict()
            if isinstance(e, Cue):
                self.cues.append(e)
            if self.recorder is not None and not (d["type"] == "word" and not d["final"]):
                self.recorder.event(d)  # partial words are not worth keeping
            self._publish(d)
            if self._on_event is not None:
                self._on_event(e)

    def _finish(self) -> None:
        if not self._started:
            return
        end = self.pipeline.finish(max_lag_s=round(self.max_lag_s, 3))
        self._emit(end)
        if self.recorder is not None:
            self.recorder.close(duration=round(self.pipeline.now, 3))
        release_freed_memory()


def release_freed_memory() -> bool:
    """Give the heap memory a finished call freed back to the system. glibc keeps freed
    pages in its arenas, and calls of different lengths fragment them: over a shift of
    back-to-back calls the service grew ~13 MB a round of ten calls (bench/shift_bench.py);
    trimmed after each call, a call's memory goes back. False where there is no glibc."""
    libc = glibc()
    if libc is None:  # macOS, Windows, musl
        return False
    libc.malloc_trim(0)
    return True
