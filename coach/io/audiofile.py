"""Reading recordings in blocks (an I/O adapter around libsndfile via soundfile).

Decoding streams: an hour-long call is read a block at a time, so memory stays bounded.
Every failure becomes one ``AudioError`` line naming the file and the reason.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from coach.audio import SAMPLE_RATE, ChannelMap, Resampler, choose_channels
from coach.errors import AudioError

__all__ = ["MAX_RATE", "MIN_RATE", "AudioInfo", "CallFile", "StereoBlock", "open_call"]

MIN_RATE = 8_000
MAX_RATE = 192_000


@dataclass(frozen=True, slots=True)
class AudioInfo:
    path: str
    sample_rate: int
    n_channels: int
    frames: int
    duration_s: float
    format: str
    subtype: str
    channels: ChannelMap


@dataclass(frozen=True, slots=True)
class StereoBlock:
    """One block of a call at 16 kHz: agent samples and customer samples (None for mono)."""

    agent: np.ndarray
    customer: np.ndarray | None


class CallFile:
    """An opened recording: ``info`` now, ``blocks()`` to stream it at 16 kHz."""

    def __init__(self, path: str | os.PathLike[str], *, agent_channel: str = "left"):
        self.path = str(path)
        p = Path(path)
        if not p.exists():
            raise AudioError(f"{path}: no such file")
        if p.is_dir():
            raise AudioError(f"{path}: is a directory, not an audio file")
        if p.stat().st_size == 0:
            raise AudioError(f"{path}: the file is empty (0 bytes)")
        try:
            with sf.SoundFile(self.path) as f:
                rate, nch, frames = f.samplerate, f.channels, f.frames
                fmt, subtype = f.format, f.subtype
        except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
            raise AudioError(f"{path}: not a readable audio file ({_reason(exc)})") from exc
        if rate < MIN_RATE or rate > MAX_RATE:
            raise AudioError(f"{path}: sample rate {rate} Hz is outside the supported "
                             f"{MIN_RATE}-{MAX_RATE} Hz")
        # A FLAC whose writer was killed (a live recording cut off) has no length in its
        # header and libsndfile cannot read it to the end; ffmpeg (PyAV) can.
        self._via_av = frames >= _UNKNOWN_FRAMES
        if self._via_av:
            frames = _av_frames(p)
        if frames == 0:
            raise AudioError(f"{path}: contains no audio (0 samples)")
        try:
            cmap = choose_channels(nch, agent_channel)
        except ValueError as exc:
            raise AudioError(f"{path}: {exc}") from exc
        self.info = AudioInfo(self.path, rate, nch, frames, frames / rate, fmt, subtype, cmap)
        self.ended_early_at: float | None = None
        declared = _declared_wav_bytes(p) if fmt == "WAV" else None
        block_align = nch * _BYTES.get(subtype, 0)
        if declared and block_align and declared // block_align > frames:
            # libsndfile quietly shortens a cut-off WAV to the data that is there
            self._truncated_at: float | None = frames / rate
        else:
            self._truncated_at = None

    def blocks(self, block_s: float = 0.5) -> Iterator[StereoBlock]:
        """Yield 16 kHz blocks of about ``block_s`` seconds until the end of the file.

        A file that is cut short (truncated download, crashed recorder) yields what could
        be decoded and sets ``ended_early_at`` to the audio time at which decoding stopped.
        """
        info = self.info
        cmap = info.channels
        block = max(1, int(round(block_s * info.sample_rate)))
        ra = Resampler(info.sample_rate, SAMPLE_RATE)
        rc = Resampler(info.sample_rate, SAMPLE_RATE) if cmap.customer is not None else None
        done = 0
        if self._via_av:
            for x in _av_blocks(Path(self.path), block):
                done += x.shape[0]
                a = ra.feed(x[:, cmap.agent])
                c = rc.feed(x[:, cmap.customer]) if rc is not None else None
                if a.size:
                    yield StereoBlock(a, c)
            a = ra.flush()
            c = rc.flush() if rc is not None else None
            if a.size:
                yield StereoBlock(a, c)
            return
        try:
            with sf.SoundFile(self.path) as f:
                while True:
                    try:
                        x = f.read(block, dtype="float32", always_2d=True)
                    except (sf.LibsndfileError, RuntimeError) as exc:
                        self.ended_early_at = done / info.sample_rate
                        _ = exc
                        break
                    if x.shape[0] == 0:
                        break
                    done += x.shape[0]
                    x = np.nan_to_num(x, nan=0.0, posinf=1.0, neginf=-1.0)
                    a = ra.feed(x[:, cmap.agent])
                    c = rc.feed(x[:, cmap.customer]) if rc is not None else None
                    if a.size:
                        yield StereoBlock(a, c)
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise AudioError(f"{self.path}: cannot decode ({_reason(exc)})") from exc
        if done < info.frames and self.ended_early_at is None:
            self.ended_early_at = done / info.sample_rate
        if self.ended_early_at is None and self._truncated_at is not None:
            self.ended_early_at = self._truncated_at
        a = ra.flush()
        c = rc.flush() if rc is not None else None
        if a.size:
            yield StereoBlock(a, c)


def open_call(path: str | os.PathLike[str], *, agent_channel: str = "left") -> CallFile:
    """Open a recording for streaming; raises ``AudioError`` with a one-line reason."""
    return CallFile(path, agent_channel=agent_channel)


_UNKNOWN_FRAMES = 1 << 40


def _av_frames(path: Path) -> int:
    """Frames of a file whose header does not say, by decoding it (PyAV)."""
    return sum(x.shape[0] for x in _av_blocks(path, 1 << 16))


def _av_blocks(path: Path, block: int) -> Iterator[np.ndarray]:
    """Decode with PyAV (ffmpeg) into float32 (frames, channels) blocks of ``block`` frames."""
    try:
        import av
    except ImportError as exc:  # pragma: no cover - faster-whisper depends on av
        raise AudioError(f"{path}: needs PyAV to decode (pip install av)") from exc
    pending: list[np.ndarray] = []
    have = 0
    try:
        with av.open(str(path)) as container:
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="flt", layout=stream.layout.name)
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    x = out.to_ndarray().reshape(-1, stream.channels)
                    pending.append(x)
                    have += x.shape[0]
                    while have >= block:
                        buf = np.concatenate(pending)
                        yield buf[:block]
                        pending, have = [buf[block:]], buf.shape[0] - block
    except av.error.FFmpegError:
        pass  # a cut-off recording ends where the data ends
    if have:
        yield np.concatenate(pending)


_BYTES = {"PCM_U8": 1, "PCM_S8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4,
          "DOUBLE": 8, "ULAW": 1, "ALAW": 1}


def _declared_wav_bytes(path: Path) -> int | None:
    """The size the WAV header gives its data chunk (None if it cannot be found)."""
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 16)
    except OSError:
        return None
    if head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
        return None
    order = "little" if head[:4] == b"RIFF" else "big"
    i = 12
    while i + 8 <= len(head):
        cid, size = head[i:i + 4], int.from_bytes(head[i + 4:i + 8], order)
        if cid == b"data":
            return size if size not in (0, 0xFFFFFFFF) else None
        i += 8 + size + (size & 1)
    return None


def _reason(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    # libsndfile prefixes messages with the path; keep only the reason
    if "Error opening" in msg and ":" in msg:
        msg = msg.rsplit(":", 1)[-1].strip()
    return msg
