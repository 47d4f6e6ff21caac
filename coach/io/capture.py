"""Live capture: the headset and call line through sounddevice (``DeviceSource``).

A ``DeviceSource`` has the shape of every live source (``Source``, in source.py; the
recording played instead is filesource.py): ``start(on_block, on_status)`` hands 16 kHz
``Block``s to ``on_block`` from a worker thread, roughly every ``block_s`` seconds, with
``t`` counted in samples on the call's timeline (never read off the wall clock).

The PortAudio callback only copies ``indata`` into a ``queue.SimpleQueue``; resampling,
pairing the two devices on one timeline, the watchdog and reopening a lost device all
run on the worker thread.

A device that disappears mid-call is reported once through ``on_status`` (state
``lost``) and in the log; the timeline keeps going on zeros for that side so nothing
already captured is dropped, and the device is reopened about once a second until it is
back (state ``restored``).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from coach.audio import SAMPLE_RATE, ChannelMap, Resampler, choose_channels
from coach.errors import CoachError
from coach.io.source import BLOCK_S, Block, Role, SourceStatus, State, _one_line, _sounddevice

__all__ = ["DeviceSource"]

log = logging.getLogger("coach.capture")

STALL_S = 1.0  # no callback for this long: the device is lost
START_GRACE_S = 2.0  # a freshly opened stream may take this long to deliver
RETRY_S = 1.0  # how often a lost device is tried again
RESCAN_S = 5.0  # re-creating healthy streams to rescan devices glitches them: not too often
QUIET_S = 0.3  # with every device lost, zeros follow the clock this far behind
LATENCY_S = 0.1  # PortAudio input latency: 0.1 s is steady through ALSA's pulse plugin

_Side = Literal["agent", "customer"]


class _Input:
    """One PortAudio input stream feeding one side (or both sides of a stereo device)."""

    def __init__(self, key: int, spec: int | str | None, role: Role, label: str,
                 what: str, samplerate: float | None, cmap: ChannelMap | None):
        self.key = key
        self.spec = spec
        self.role = role
        self.label = label  # "Headset microphone", for messages
        self.what = what  # "--mic", for error messages
        self.samplerate = samplerate
        self.cmap = cmap  # stereo device split; None: downmix to one side
        self.name = ""  # the resolved PortAudio name, used to find it again
        self.index: int | None = None
        self.stream: Any = None
        self.gen = 0
        self.rate = 0
        self.channels = 1
        self.resamplers: dict[_Side, Resampler] = {}
        self.state: Literal["ok", "lost"] = "ok"
        self.opened_at = 0.0
        self.last_data: float | None = None  # monotonic time of the last callback
        self.next_try = 0.0

    @property
    def sides(self) -> tuple[_Side, ...]:
        if self.role == "both":
            return ("agent", "customer") if self.cmap and self.cmap.customer is not None \
                else ("agent",)
        return (self.role,)  # type: ignore[return-value]


class DeviceSource:
    """The headset microphone and the call line, captured with sounddevice.

    Either ``mic`` (and optionally ``line``), each a PortAudio device id or name, or one
    stereo ``device`` split into agent/customer with ``choose_channels``. Nothing given:
    the default input as the agent's microphone. Each stream runs at the device's default
    rate (or ``samplerate``) and is resampled to 16 kHz off the audio thread.
    """

    def __init__(self, *, mic: int | str | None = None, line: int | str | None = None,
                 device: int | str | None = None, agent_channel: str = "left",
                 block_s: float = BLOCK_S, samplerate: float | None = None):
        if device is not None and (mic is not None or line is not None):
            raise CoachError("give either --device (one stereo device) or --mic/--line, "
                             "not both")
        if line is not None and mic is None:
            raise CoachError("--line needs --mic too (the agent's microphone)")
        self._sd = _sounddevice()
        self.block_s = float(block_s)
        self.started_at: float | None = None
        self.error: BaseException | None = None
        self._q: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._inputs: list[_Input] = []
        if device is not None:
            inp = _Input(0, _spec(device), "both", "Audio device", "--device", samplerate, None)
            info = self._resolve(inp)
            nch = min(2, int(info["max_input_channels"]))
            try:
                inp.cmap = choose_channels(nch, agent_channel)
            except ValueError as exc:
                raise CoachError(str(exc)) from exc
            inp.channels = nch
            self._inputs.append(inp)
        else:
            self._inputs.append(_Input(0, _spec(mic), "agent", "Headset microphone", "--mic",
                                       samplerate, None))
            if line is not None:
                self._inputs.append(_Input(1, _spec(line), "customer", "Call audio (line)",
                                           "--line", samplerate, None))
            for inp in self._inputs:
                self._resolve(inp)
        self.customer_channel = any("customer" in inp.sides for inp in self._inputs)
        # per side: audio waiting to be paired, samples put on the timeline so far
        self._buf: dict[_Side, list[np.ndarray]] = {"agent": []}
        self._filled: dict[_Side, int] = {"agent": 0}
        if self.customer_channel:
            self._buf["customer"] = []
            self._filled["customer"] = 0
        self._emitted = 0
        self._t0: float | None = None  # monotonic time of audio time 0
        self._last_rescan = 0.0

    # public ----------------------------------------------------------------------------

    def describe(self) -> str:
        parts = []
        for inp in self._inputs:
            rate = f", {inp.rate} Hz" if inp.rate else ""
            if inp.role == "both":
                cm = inp.cmap.describe() if inp.cmap else "agent"
                parts.append(f"device {inp.name!r} ({cm}{rate})")
            else:
                parts.append(f"{inp.role} = {inp.name!r}{rate}")
        if not self.customer_channel:
            parts.append("no customer channel")
        return "live capture: " + "; ".join(parts)

    def start(self, on_block: Callable[[Block], None],
              on_status: Callable[[SourceStatus], None]) -> None:
        """Open the devices (errors raise ``CoachError`` here) and start delivering."""
        if self._thread is not None:
            raise RuntimeError("DeviceSource already started")
        try:
            for inp in self._inputs:
                self._open(inp)
        except BaseException:
            for inp in self._inputs:
                self._close(inp)
            raise
        self._thread = threading.Thread(target=self._run, args=(on_block, on_status),
                                        name="coach-capture", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop capturing; audio still buffered is delivered before this returns."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    # device handling (worker thread after start) ---------------------------------------

    def _resolve(self, inp: _Input) -> dict[str, Any]:
        sd = self._sd
        spec = inp.name if inp.name else inp.spec
        try:
            info = sd.query_devices(spec, "input")
        except (ValueError, sd.PortAudioError) as exc:
            raise CoachError(f"{inp.what} {inp.spec!r}: {_one_line(exc)} "
                             "(run `coach devices` to see the input devices and their ids)"
                             ) from exc
        inp.index = int(info["index"])
        inp.name = str(info["name"])
        return info

    def _open(self, inp: _Input) -> None:
        sd = self._sd
        info = self._resolve(inp)
        rate = int(inp.samplerate or info["default_samplerate"])
        inp.gen += 1
        gen, key, q = inp.gen, inp.key, self._q

        def callback(indata: np.ndarray, frames: int, _time: Any, status: Any) -> None:
            # the rule: copy and hand off, nothing else on PortAudio's thread
            q.put((key, gen, indata.copy(), time.monotonic()))

        def finished() -> None:
            q.put((key, gen, None, time.monotonic()))

        channels = inp.channels if inp.role == "both" else 1
        try:
            stream = sd.InputStream(device=inp.index, channels=channels, samplerate=rate,
                                    dtype="float32", latency=max(LATENCY_S, self.block_s),
                                    callback=callback, finished_callback=finished)
            stream.start()
        except (sd.PortAudioError, ValueError) as exc:
            raise CoachError(f"{inp.what} {inp.name!r}: cannot open for recording at "
                             f"{rate} Hz: {_one_line(exc)}") from exc
        inp.stream = stream
        inp.rate = rate
        inp.resamplers = {side: Resampler(rate, SAMPLE_RATE) for side in inp.sides}
        inp.opened_at = time.monotonic()
        inp.last_data = None

    def _close(self, inp: _Input) -> None:
        stream, inp.stream = inp.stream, None
        inp.gen += 1  # anything still queued from the old stream is ignored
        if stream is None:
            return
        try:
            stream.abort()
        except Exception:  # a vanished device may fail to stop; it is closed next anyway
            log.debug("aborting %s failed", inp.name, exc_info=True)
        try:
            stream.close()
        except Exception:
            log.debug("closing %s failed", inp.name, exc_info=True)

    # the worker ------------------------------------------------------------------------

    def _run(self, on_block: Callable[[Block], None],
             on_status: Callable[[SourceStatus], None]) -> None:
        try:
            while not self._stop.is_set():
                self._drain(timeout=self.block_s / 2, on_status=on_status)
                now = time.monotonic()
                for inp in self._inputs:
                    self._watch(inp, now, on_status)
                self._pad_lost(now)
                self._emit(on_block, final=False)
            last_gen = {inp.key: inp.gen for inp in self._inputs}
            for inp in self._inputs:
                self._close(inp)
            self._drain(timeout=0.0, on_status=on_status, closing=last_gen)
            for inp in self._inputs:
                self._flush_resamplers(inp)
            self._emit(on_block, final=True)
        except BaseException as exc:
            self.error = exc
            log.exception("live capture stopped")
            for inp in self._inputs:
                self._close(inp)

    def _drain(self, *, timeout: float, on_status: Callable[[SourceStatus], None],
               closing: dict[int, int] | None = None) -> None:
        """Take what the callbacks queued; ``closing``: the streams' generations at stop."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                left = deadline - time.monotonic()
                item = self._q.get(timeout=left) if left > 0 else self._q.get_nowait()
            except queue.Empty:
                return
            key, gen, data, when = item
            inp = self._inputs[key]
            if closing is not None:
                if data is not None and gen == closing[key]:
                    self._take(inp, data, when, on_status)
                continue
            if gen != inp.gen:
                continue
            if data is None:
                self._lost(inp, "the stream stopped", on_status)
                continue
            self._take(inp, data, when, on_status)

    def _take(self, inp: _Input, data: np.ndarray, when: float,
              on_status: Callable[[SourceStatus], None]) -> None:
        frames = data.shape[0]
        if self._t0 is None:
            self._t0 = when - frames / inp.rate
            self.started_at = time.time() - (time.monotonic() - self._t0)
        first = inp.last_data is None
        inp.last_data = when
        if inp.state == "lost":
            inp.state = "ok"
            self._report(inp, "restored", f"{inp.label} reconnected", on_status)
        for side in inp.sides:
            if inp.cmap is not None and inp.role == "both":
                ch = inp.cmap.agent if side == "agent" else inp.cmap.customer
                x = data[:, ch]
            else:
                x = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
            y = inp.resamplers[side].feed(x)
            if first:
                # a stream that (re)starts goes where the wall clock says it belongs
                due = int(round((when - self._t0) * SAMPLE_RATE)) - y.size
                self._append(side, np.zeros(max(0, due - self._filled[side]), np.float32))
            self._append(side, y)

    def _append(self, side: _Side, x: np.ndarray) -> None:
        if x.size:
            self._buf[side].append(x)
            self._filled[side] += x.size

    def _flush_resamplers(self, inp: _Input) -> None:
        for side, r in inp.resamplers.items():
            self._append(side, r.flush())
        inp.resamplers = {side: Resampler(inp.rate or SAMPLE_RATE) for side in inp.sides}

    def _watch(self, inp: _Input, now: float,
               on_status: Callable[[SourceStatus], None]) -> None:
        if inp.state == "ok":
            if inp.stream is not None and not inp.stream.active:
                self._lost(inp, "the stream stopped", on_status)
            elif inp.last_data is not None and now - inp.last_data > STALL_S:
                self._lost(inp, f"no audio for {now - inp.last_data:.1f} s", on_status)
            elif inp.last_data is None and now - inp.opened_at > START_GRACE_S:
                self._lost(inp, "no audio since it was opened", on_status)
            return
        if inp.stream is not None:
            # a reopened stream that does not deliver is closed and tried again
            if inp.last_data is None and now - inp.opened_at > START_GRACE_S:
                self._close(inp)
                inp.next_try = now + RETRY_S
            return
        if now >= inp.next_try:
            self._retry(inp, now)

    def _lost(self, inp: _Input, why: str, on_status: Callable[[SourceStatus], None]) -> None:
        if inp.state == "lost":
            return
        self._close(inp)
        self._flush_resamplers(inp)
        inp.state = "lost"
        inp.next_try = time.monotonic() + RETRY_S
        if self._t0 is None:  # lost before any audio: the timeline starts now, on zeros
            self._t0 = time.monotonic()
            self.started_at = time.time()
        msg = {"agent": "Headset microphone disconnected",
               "customer": "Call audio (line) disconnected"}.get(inp.role,
                                                                 "Audio device disconnected")
        log.warning("%s (%s: %s); keeping the call going and retrying", msg, inp.name, why)
        self._report(inp, "lost", msg, on_status)

    def _retry(self, inp: _Input, now: float) -> None:
        sd = self._sd
        inp.next_try = now + RETRY_S
        try:
            sd.query_devices(inp.name, "input")
            visible = True
        except (ValueError, sd.PortAudioError):
            visible = False
        if not visible:
            # PortAudio only sees a device plugged in again after re-initialising, which
            # invalidates every open stream: do it freely when none of ours is open, and
            # otherwise re-create the healthy ones too, but not too often.
            others = [i for i in self._inputs if i.stream is not None]
            if others and now - self._last_rescan < RESCAN_S:
                return
            self._last_rescan = now
            for other in others:
                self._close(other)
                self._flush_resamplers(other)
            try:
                sd._terminate()
                sd._initialize()
            except sd.PortAudioError:
                log.debug("re-initialising PortAudio failed", exc_info=True)
            for other in others:
                try:
                    self._open(other)
                except CoachError as exc:
                    log.warning("re-opening %s after a device rescan failed: %s",
                                other.name, exc)
                    other.next_try = now + RETRY_S
        try:
            self._open(inp)  # stays "lost" until audio arrives
        except CoachError as exc:
            log.debug("%s still unavailable: %s", inp.name, exc)
            self._close(inp)

    def _report(self, inp: _Input, state: State, message: str,
                on_status: Callable[[SourceStatus], None]) -> None:
        on_status(SourceStatus(inp.name, inp.role, state, message, self._emitted / SAMPLE_RATE))

    # the timeline ----------------------------------------------------------------------

    def _pad_lost(self, now: float) -> None:
        """Fill the side of a lost device with zeros so the timeline keeps moving.

        A side that is merely late (a device still opening, a scheduling hiccup) is not
        padded: its audio is on its way and would land after the zeros, out of step.
        """
        if self._t0 is None:
            return
        lost = {s for s in self._buf
                if all(inp.state == "lost" for inp in self._inputs if s in inp.sides)}
        if not lost:
            return
        live = [self._filled[s] for s in self._buf if s not in lost]
        if live:
            target = max(live)
        else:  # nothing delivers: follow the clock, a little behind in case audio comes
            target = int((now - self._t0 - QUIET_S) * SAMPLE_RATE)
        for s in lost:
            self._append(s, np.zeros(max(0, target - self._filled[s]), np.float32))

    def _emit(self, on_block: Callable[[Block], None], *, final: bool) -> None:
        n_block = max(1, int(round(self.block_s * SAMPLE_RATE)))
        while True:
            have = min(sum(x.size for x in b) for b in self._buf.values())
            if final:
                most = max(sum(x.size for x in b) for b in self._buf.values())
                if most == 0:
                    return
                n = min(n_block, most)
            elif have >= n_block:
                n = n_block
            else:
                return
            parts = {s: _take_samples(self._buf[s], n) for s in self._buf}
            t = self._emitted / SAMPLE_RATE
            self._emitted += n
            on_block(Block(parts["agent"], parts.get("customer"), t))


def _take_samples(buf: list[np.ndarray], n: int) -> np.ndarray:
    """Remove and return ``n`` samples from a list of chunks, zero-padded if short."""
    out = np.zeros(n, np.float32)
    got = 0
    while buf and got < n:
        x = buf[0]
        k = min(n - got, x.size)
        out[got:got + k] = x[:k]
        got += k
        if k == x.size:
            buf.pop(0)
        else:
            buf[0] = x[k:]
    return out


def _spec(device: int | str | None) -> int | str | None:
    """A device as given on the command line: digits are an id, anything else a name."""
    if isinstance(device, str) and device.strip().isdigit():
        return int(device.strip())
    return device
