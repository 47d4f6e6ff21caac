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


# -- call store: SQLite and a real PostgreSQL (tests/pgserver.py) --------------------------


@pytest.fixture(scope="session")
def pg_server():
    """One throwaway PostgreSQL server for the whole session (Debian's binaries)."""
    from tests.pgserver import PgServer, PgUnavailable

    try:
        server = PgServer().start()
    except PgUnavailable as exc:
        pytest.skip(f"PostgreSQL store tests need a local PostgreSQL: {exc}")
    yield server
    server.stop()


@pytest.fixture
def pg_url(pg_server, request) -> str:
    """A fresh, empty database on the session's PostgreSQL server."""
    import re
    import uuid

    name = "t_" + re.sub(r"\W", "_", request.node.name.lower())[:40] + "_" + uuid.uuid4().hex[:8]
    url = pg_server.create_database(name)
    yield url
    pg_server.drop_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path) -> str:
    """The URL of an empty call store, once on SQLite (a file) and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'coach.db'}"
    return request.getfixturevalue("pg_url")
