from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from coach.audio import Resampler, choose_channels, db_fs
from coach.errors import AudioError
from coach.io.audiofile import open_call


def tone(sr: int, seconds: float, f: float = 440.0) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return (0.3 * np.sin(2 * np.pi * f * t)).astype(np.float32)


@pytest.mark.parametrize("fmt,subtype,ext", [
    ("WAV", "PCM_16", "wav"), ("FLAC", "PCM_16", "flac"), ("OGG", "OPUS", "ogg"),
    ("WAV", "ULAW", "wav"), ("MP3", "MPEG_LAYER_III", "mp3"), ("OGG", "VORBIS", "ogg"),
])
def test_formats_decode_to_16k(tmp_path, fmt, subtype, ext):
    sr = 48000 if subtype == "OPUS" else 8000 if subtype == "ULAW" else 22050
    y = np.stack([tone(sr, 2.0, 300), tone(sr, 2.0, 500)], axis=1)
    p = tmp_path / f"call.{ext}"
    sf.write(p, y, sr, format=fmt, subtype=subtype)
    call = open_call(p)
    blocks = list(call.blocks(0.5))
    agent = np.concatenate([b.agent for b in blocks])
    customer = np.concatenate([b.customer for b in blocks])
    assert abs(agent.size / 16000 - 2.0) < 0.1  # codecs may pad a little
    assert agent.size == customer.size
    # the left channel (300 Hz) is the agent: check the dominant frequency
    spec = np.abs(np.fft.rfft(agent[:16000]))
    assert abs(np.argmax(spec) - 300) < 10
    spec = np.abs(np.fft.rfft(customer[:16000]))
    assert abs(np.argmax(spec) - 500) < 10


@pytest.mark.parametrize("rate", [8000, 11025, 16000, 44100, 48000])
def test_any_rate_resamples_to_16k_in_blocks(rate):
    y = tone(rate, 3.0, 200)
    r = Resampler(rate)
    out = np.concatenate([r.feed(y[i:i + 1234]) for i in range(0, y.size, 1234)] + [r.flush()])
    assert abs(out.size - 48000) <= 2
    spec = np.abs(np.fft.rfft(out[8000:24000]))
    assert abs(np.argmax(spec) - 200) <= 1


def test_right_channel_agent(tmp_path):
    y = np.stack([tone(8000, 1.0, 300), tone(8000, 1.0, 500)], axis=1)
    p = tmp_path / "c.wav"
    sf.write(p, y, 8000)
    b = next(open_call(p, agent_channel="right").blocks(1.0))
    assert abs(np.argmax(np.abs(np.fft.rfft(b.agent[:8000]))) * 2 - 500) < 20


def test_mono_is_agent_only(tmp_path):
    p = tmp_path / "m.wav"
    sf.write(p, tone(16000, 1.0), 16000)
    call = open_call(p)
    assert call.info.channels.customer is None
    assert all(b.customer is None for b in call.blocks())


def test_six_channels_uses_first_pair_and_says_so(tmp_path):
    y = np.stack([tone(16000, 1.0, 100 * (i + 1)) for i in range(6)], axis=1)
    p = tmp_path / "six.wav"
    sf.write(p, y, 16000)
    call = open_call(p)
    assert call.info.channels.describe() == "agent = channel 1, customer = channel 2 of 6"
    b = next(call.blocks(1.0))
    assert abs(np.argmax(np.abs(np.fft.rfft(b.customer))) - 200) < 5


def test_channel_choice_validation():
    assert choose_channels(2, "right").agent == 1
    assert choose_channels(6, "3").agent == 2
    with pytest.raises(ValueError, match="left, right or a channel number"):
        choose_channels(2, "middle")


def test_db_fs():
    assert db_fs(np.zeros(0)) is None
    assert db_fs(np.ones(100, np.float32)) == pytest.approx(0.0)
    assert db_fs(np.full(100, 0.1, np.float32)) == pytest.approx(-20.0)


# --- bad input: each gives one AudioError line naming the file -----------------------------

def test_missing_path(tmp_path):
    with pytest.raises(AudioError, match="no such file"):
        open_call(tmp_path / "nope.wav")


def test_directory(tmp_path):
    with pytest.raises(AudioError, match="is a directory"):
        open_call(tmp_path)


def test_empty_file(tmp_path):
    p = tmp_path / "empty.wav"
    p.write_bytes(b"")
    with pytest.raises(AudioError, match="empty"):
        open_call(p)


def test_zero_length_audio(tmp_path):
    p = tmp_path / "zero.wav"
    sf.write(p, np.zeros((0, 2), np.float32), 16000)
    with pytest.raises(AudioError, match="no audio"):
        open_call(p)


def test_not_audio(tmp_path):
    p = tmp_path / "notes.wav"
    p.write_text("this is a shopping list, not a recording\n" * 20)
    with pytest.raises(AudioError, match="not a readable audio file"):
        open_call(p)


def test_corrupt_header(tmp_path):
    p = tmp_path / "c.flac"
    sf.write(p, tone(16000, 1.0), 16000)
    data = bytearray(p.read_bytes())
    data[0:4] = b"XXXX"
    p.write_bytes(bytes(data))
    with pytest.raises(AudioError, match=str(p.name)):
        open_call(p)


def test_rate_too_low(tmp_path):
    p = tmp_path / "low.wav"
    sf.write(p, tone(4000, 1.0, 200), 4000)
    with pytest.raises(AudioError, match="4000 Hz is outside"):
        open_call(p)


@pytest.mark.parametrize("ext", ["wav", "flac"])
def test_truncated_file_yields_what_was_there(tmp_path, ext):
    p = tmp_path / f"t.{ext}"
    sf.write(p, np.stack([tone(16000, 10.0)] * 2, axis=1), 16000)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    call = open_call(p)
    got = sum(b.agent.size for b in call.blocks()) / 16000
    assert 3.0 < got < 7.0
    assert call.ended_early_at is not None and 3.0 < call.ended_early_at < 7.0


def test_flac_of_a_killed_recorder_is_readable(tmp_path):
    """A live recording cut off by SIGKILL has no length in its header."""
    import signal
    import subprocess
    import sys
    import time

    p = tmp_path / "cut.flac"
    code = (
        "import soundfile as sf, numpy as np, time, sys\n"
        f"f = sf.SoundFile({str(p)!r}, 'w', 16000, 2, format='FLAC', subtype='PCM_16')\n"
        "t = np.arange(16000) / 16000\n"
        "x = np.stack([0.3*np.sin(2*np.pi*300*t), 0.3*np.sin(2*np.pi*500*t)], 1)\n"
        "for i in range(5):\n"
        "    f.write(x); f.flush()\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    call = open_call(p)
    assert 4.5 <= call.info.duration_s <= 5.0
    blocks = list(call.blocks(0.5))
    agent = np.concatenate([b.agent for b in blocks])
    assert 4.5 * 16000 <= agent.size <= 5 * 16000
    assert abs(np.argmax(np.abs(np.fft.rfft(agent[:16000]))) - 300) < 5
