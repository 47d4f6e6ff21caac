"""A recording played through the live interface (``coach live --source FILE``).

``FileSource`` has the shape of every live source (``Source``, in source.py): it hands
16 kHz ``Block``s on the call's timeline from a worker thread, paced like a headset at
``speed`` times real time, or as fast as the consumer takes them; with ``audible=True``
the call is also played on the default output device (``_Player``, best effort).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from coach.audio import SAMPLE_RATE
from coach.errors import CoachError
from coach.io.source import BLOCK_S, Block, SourceStatus, _one_line, _sounddevice

__all__ = ["FileSource"]

log = logging.getLogger("coach.capture")


class FileSource:
    """A recording played through the live interface, paced like a headset.

    Block ``k`` is handed over when its last sample is due on a monotonic clock (at
    ``speed`` times real time), as a device would deliver it; ``realtime=False`` delivers
    as fast as the consumer takes them (tests). ``audible=True`` also plays the call on
    the default output device.
    """

    def __init__(self, path: str, *, agent_channel: str = "left", realtime: bool = True,
                 audible: bool = False, block_s: float = BLOCK_S, speed: float = 1.0):
        from coach.io.audiofile import open_call

        if speed <= 0:
            raise CoachError(f"speed must be positive, not {speed}")
        self.path = str(path)
        self._call = open_call(path, agent_channel=agent_channel)
        self.realtime = realtime
        self.audible = audible
        self.block_s = block_s
        self.speed = float(speed)
        self.started_at: float | None = None
        self.customer_channel = self._call.info.channels.customer is not None
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def describe(self) -> str:
        i = self._call.info
        pace = "real time" if self.realtime else "as fast as possible"
        if self.realtime and self.speed != 1.0:
            pace = f"{self.speed:g}x real time"
        return (f"recording {self.path} ({i.duration_s:.1f} s, {i.channels.describe()}), "
                f"played at {pace}{', audible' if self.audible else ''}")

    def start(self, on_block: Callable[[Block], None],
              on_status: Callable[[SourceStatus], None]) -> None:
        if self._thread is not None:
            raise RuntimeError("FileSource already started")
        self._thread = threading.Thread(target=self._run, args=(on_block, on_status),
                                        name="coach-file-source", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the whole file was delivered (or the source stopped)."""
        return self._done.wait(timeout)

    @property
    def ended_early_at(self) -> float | None:
        return self._call.ended_early_at

    def _run(self, on_block: Callable[[Block], None],
             on_status: Callable[[SourceStatus], None]) -> None:
        player = _Player(self.customer_channel, self.speed, on_status) if self.audible else None
        try:
            n = 0
            t0 = time.monotonic()
            wall0 = time.time()
            for b in self._call.blocks(self.block_s):
                if self._stop.is_set():
                    break
                t = n / SAMPLE_RATE
                if self.realtime:
                    due = t0 + (n + b.agent.size) / SAMPLE_RATE / self.speed
                    if self._stop.wait(max(0.0, due - time.monotonic())):
                        break
                if self.started_at is None:
                    self.started_at = wall0 if self.realtime else time.time()
                if player is not None:
                    player.play(b.agent, b.customer)
                n += b.agent.size
                on_block(Block(b.agent, b.customer, t))
        except BaseException as exc:  # the consumer's error must not vanish with the thread
            self.error = exc
            log.exception("file source %s stopped", self.path)
        finally:
            if player is not None:
                player.close()
            self._done.set()


class _Player:
    """Best-effort playback of delivered blocks on the default output."""

    def __init__(self, stereo: bool, speed: float, on_status: Callable[[SourceStatus], None]):
        self._q: queue.SimpleQueue[np.ndarray] = queue.SimpleQueue()
        self._pending = np.zeros((0, 2 if stereo else 1), np.float32)
        self._stream = None
        try:
            sd = _sounddevice()
            self._stream = sd.OutputStream(samplerate=int(SAMPLE_RATE * speed),
                                           channels=2 if stereo else 1, dtype="float32",
                                           callback=self._callback)
            self._stream.start()
        except Exception as exc:  # no output device: the call still runs, silently
            self._stream = None
            msg = f"No audio output to play the recording on; continuing silently ({_one_line(exc)})"
            log.warning("%s", msg)
            on_status(SourceStatus("default output", "both", "lost", msg, 0.0))

    def play(self, agent: np.ndarray, customer: np.ndarray | None) -> None:
        if self._stream is not None:
            frame = agent[:, None] if customer is None else np.stack([agent, customer], 1)
            self._q.put(frame.astype(np.float32, copy=False))

    def _callback(self, outdata: np.ndarray, frames: int, _time: Any, _status: Any) -> None:
        buf = self._pending
        while buf.shape[0] < frames:
            try:
                buf = np.concatenate([buf, self._q.get_nowait()])
            except queue.Empty:
                break
        n = min(frames, buf.shape[0])
        outdata[:n] = buf[:n]
        outdata[n:] = 0
        self._pending = buf[n:]

    def close(self) -> None:
        if self._stream is not None:
            try:
                self._stream.close()
            except Exception:  # closing a vanished output must not mask the call's result
                log.debug("closing the playback stream failed", exc_info=True)
