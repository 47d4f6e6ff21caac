"""A short shift of back-to-back live calls (the 8-hour version is bench/shift_bench.py)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from bench.shift_bench import run_shift
from tests.conftest import SAMPLES


@pytest.mark.slow
def test_back_to_back_calls_keep_resources_flat_and_all_land_in_the_store(tmp_path):
    from coach.io.vad import SileroVad
    from coach.io.whisper import WhisperTranscriber
    from coach.playbook import load_playbook
    from coach.store import open_store

    y, sr = sf.read(SAMPLES / "02_every_apology_wrong.flac", dtype="float32")
    clips = []
    for i, seconds in enumerate((12, 2, 2, 12, 2, 12)):  # short ones start within a second
        p = tmp_path / f"clip{i}.wav"
        sf.write(p, y[int(3 * sr): int((3 + seconds) * sr)], sr)
        clips.append((p, "left"))
    pb = load_playbook()
    with open_store(f"sqlite:///{tmp_path / 'coach.db'}") as store:
        recs = run_shift(clips, total_s=41.0, speed=4.0, store=store,
                         record_dir=tmp_path / "live", transcriber=WhisperTranscriber(),
                         make_vad=SileroVad().shared, playbook=pb)
        rows, total = store.list_calls(limit=50)
    assert len(recs) == 6 and all(r["stored"] for r in recs)
    assert total == 6
    assert len(list((tmp_path / "live").iterdir())) == 6  # one folder per call, none shared
    # nothing accumulates from call to call: open files and memory after the first call
    # are those after the last (a leaked recorder, store session or model would show)
    assert recs[-1]["open_files"] <= recs[0]["open_files"] + 1, recs
    assert recs[-1]["rss_mb"] - recs[0]["rss_mb"] < 40, recs
    # the 12 s calls were really transcribed and stored with their words
    durations = sorted(round(r["duration_s"]) for r in rows if r.get("duration_s"))
    assert durations == [2, 2, 2, 12, 12, 12], durations
    assert np.isfinite([r["max_lag_s"] for r in recs]).all()
