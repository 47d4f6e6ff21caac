from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SAMPLES = ROOT / "audio_samples"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA.is_dir():
        pytest.skip(f"{DATA} is absent: the shared real-speech data is not beside the project")
    return DATA


@pytest.fixture(scope="session")
def transcriber():
    from coach.io.whisper import WhisperTranscriber

    return WhisperTranscriber()


@pytest.fixture(scope="session")
def vad():
    from coach.io.vad import SileroVad

    return SileroVad()
