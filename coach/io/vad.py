"""Silero VAD (the ONNX model that ships inside faster-whisper), run incrementally.

faster-whisper runs Silero over a whole file at once; live audio arrives in blocks, so
this keeps the model's recurrent state and 64-sample context between calls.
"""

from __future__ import annotations

import numpy as np

from coach.errors import MissingDependency

__all__ = ["SileroVad"]

_FRAME = 512
_CONTEXT = 64


def _session():
    try:
        import onnxruntime
        from faster_whisper.utils import get_assets_path
    except ImportError as exc:
        raise MissingDependency("voice activity detection needs faster-whisper and "
                                "onnxruntime (pip install faster-whisper)") from exc
    import os

    opts = onnxruntime.SessionOptions()
    opts.inter_op_num_threads = 1
    opts.intra_op_num_threads = 1
    opts.enable_cpu_mem_arena = False
    opts.log_severity_level = 4
    path = os.path.join(get_assets_path(), "silero_vad_v6.onnx")
    return onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"],
                                        sess_options=opts)


class SileroVad:
    """Speech probability for each 32 ms frame of a 16 kHz stream (one instance per channel)."""

    frame_samples = _FRAME

    def __init__(self, session=None):
        self._session = session if session is not None else _session()
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(_CONTEXT, dtype=np.float32)

    def shared(self) -> SileroVad:
        """A fresh detector (own state) sharing this one's ONNX session."""
        return SileroVad(self._session)

    def probs(self, audio: np.ndarray) -> np.ndarray:
        n = len(audio) // _FRAME
        if n == 0:
            return np.zeros(0, dtype=np.float32)
        frames = np.asarray(audio[: n * _FRAME], dtype=np.float32).reshape(n, _FRAME)
        ctx = np.empty((n, _CONTEXT), dtype=np.float32)
        ctx[0] = self._context
        ctx[1:] = frames[:-1, -_CONTEXT:]
        self._context = frames[-1, -_CONTEXT:].copy()
        batch = np.concatenate([ctx, frames], axis=1)
        out, self._h, self._c = self._session.run(
            None, {"input": batch, "h": self._h, "c": self._c})
        return np.asarray(out, dtype=np.float32).reshape(-1)[:n]
