from __future__ import annotations

import pytest

from coach.events import Word
from coach.rate import SpeakingRate


def _words(n: int, *, rate: float, start: float = 0.0, voiced: float = 0.9) -> list[Word]:
    slot = 60.0 / rate
    return [Word("agent", "w", start + i * slot, start + i * slot + slot * voiced, True) for i in range(n)]


@pytest.mark.parametrize("rate", [120.0, 160.0, 230.0])
def test_steady_speech_gives_its_rate(rate: float) -> None:
    r = SpeakingRate()
    for w in _words(80, rate=rate):
        r.add(w)
    assert r.wpm() == pytest.approx(rate, rel=0.03)


def test_none_until_enough_words() -> None:
    r = SpeakingRate(min_words=8)
    for w in _words(7, rate=150):
        r.add(w)
    assert r.wpm() is None
    r.add(_words(8, rate=150)[-1])
    assert r.wpm() is not None


def test_long_pauses_do_not_count_as_speech() -> None:
    # Two bursts at 150 wpm with 10 s of listening between them: still 150, not slower.
    r = SpeakingRate()
    for w in _words(20, rate=150) + _words(20, rate=150, start=20.0):
        r.add(w)
    assert r.wpm() == pytest.approx(150, rel=0.03)


def test_window_follows_recent_speech() -> None:
    r = SpeakingRate(window_s=15.0)
    for w in _words(60, rate=120) + _words(80, rate=240, start=40.0):
        r.add(w)
    assert r.wpm() == pytest.approx(240, rel=0.05)
    assert r.speech_s() == pytest.approx(15.0, abs=0.6)


def test_late_duplicates_are_ignored() -> None:
    r = SpeakingRate()
    ws = _words(30, rate=150)
    for w in ws:
        r.add(w)
    before = r.wpm()
    r.add(ws[5])
    assert r.wpm() == before


def test_bad_window_rejected() -> None:
    with pytest.raises(ValueError):
        SpeakingRate(window_s=0)
