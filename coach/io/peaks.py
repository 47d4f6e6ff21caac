"""Waveform peaks of a stored call, computed on the server.

The replay page draws one waveform per speaker. Letting the browser fetch and decode the
whole FLAC would hold an hour-long call in memory as floats (hundreds of MB) before
anything is drawn; instead the server streams the FLAC out of the store once, keeps the
loudest sample of each of a few thousand buckets per channel, and the page plays the
audio with ordinary range requests. The result is small (a few kB) and cached.

The FLAC is read through :class:`StoreAudioReader`, a seekable file over
``Store.read_audio`` buffered in 1 MiB reads (the store's chunk size), so libsndfile's
many small reads do not each become a database query.
"""

from __future__ import annotations

import io
import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import soundfile as sf

from coach.errors import AudioError

__all__ = ["Peaks", "PeaksCache", "StoreAudioReader", "compute_peaks", "open_store_audio"]

READ_BUFFER = 1 << 20
DEFAULT_BUCKETS = 2000
MAX_BUCKETS = 20000


class StoreAudioReader(io.RawIOBase):
    """A read-only, seekable raw file over ``read(start, end) -> bytes`` of ``size`` bytes."""

    def __init__(self, read: Callable[[int, int], bytes], size: int) -> None:
        super().__init__()
        self._read = read
        self._size = size
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        want = min(len(buffer), self._size - self._pos)
        if want <= 0:
            return 0
        data = self._read(self._pos, self._pos + want)
        n = len(data)
        buffer[:n] = data
        self._pos += n
        return n


def open_store_audio(read: Callable[[int, int], bytes], size: int) -> io.BufferedReader:
    """A buffered, seekable file over stored audio bytes (for soundfile)."""
    return io.BufferedReader(StoreAudioReader(read, size), buffer_size=READ_BUFFER)


@dataclass(frozen=True, slots=True)
class Peaks:
    """The loudest absolute sample of each bucket, per channel (0..1), and the length."""

    duration_s: float
    sample_rate: int
    channels: list[list[float]]

    def to_dict(self) -> dict:
        return {"duration_s": round(self.duration_s, 3), "sample_rate": self.sample_rate,
                "channels": self.channels}


def compute_peaks(fileobj, buckets: int = DEFAULT_BUCKETS) -> Peaks:  # type: ignore[no-untyped-def]
    """Peaks of the audio in ``fileobj`` in at most ``buckets`` buckets per channel, read
    a block at a time (memory stays bounded for long calls). AudioError if undecodable."""
    buckets = max(1, min(int(buckets), MAX_BUCKETS))
    try:
        with sf.SoundFile(fileobj) as f:
            rate, nch, frames = f.samplerate, f.channels, f.frames
            per = max(1, math.ceil(frames / buckets)) if frames > 0 else 1
            out: list[list[np.ndarray]] = [[] for _ in range(nch)]
            block = per * max(1, (1 << 18) // per)  # whole buckets, about 256 k frames
            done = 0
            while True:
                data = f.read(block, dtype="float32", always_2d=True)
                if len(data) == 0:
                    break
                done += len(data)
                pad = (-len(data)) % per
                mag = np.abs(data)
                if pad:
                    mag = np.concatenate([mag, np.zeros((pad, nch), dtype=np.float32)])
                mx = mag.reshape(-1, per, nch).max(axis=1)
                for c in range(nch):
                    out[c].append(mx[:, c])
    except (sf.LibsndfileError, RuntimeError, ValueError) as e:
        reason = getattr(e, "error_string", None) or str(e)
        raise AudioError(f"the stored audio cannot be decoded ({reason})") from e
    chans = [
        [round(float(v), 3) for v in (np.concatenate(parts) if parts else np.zeros(0))]
        for parts in out
    ]
    return Peaks(done / rate if rate else 0.0, int(rate), chans)


class PeaksCache:
    """A small LRU of computed peaks: stored audio never changes once a call is saved."""

    def __init__(self, size: int = 32) -> None:
        self._size = size
        self._items: OrderedDict[tuple[str, int], Peaks] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int], compute: Callable[[], Peaks]) -> Peaks:
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                return hit
        value = compute()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return value
