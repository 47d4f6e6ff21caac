"""Live sources: the file source, and the device source against a real virtual PulseAudio
device (a private server: a null sink ``line`` whose monitor feeds a virtual source
``headset``; ``paplay --device=line`` is what the headset hears)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from coach.audio import SAMPLE_RATE
from coach.errors import CoachError
from coach.io.audiofile import open_call
from coach.io.filesource import FileSource
from coach.io.source import Block, DeviceInfo, SourceStatus, format_devices

SAMPLES = Path(__file__).resolve().parents[1] / "audio_samples"
CALL = SAMPLES / "01_owned_and_fixed.flac"  # agent on the LEFT


def _whole(path: Path) -> tuple[np.ndarray, np.ndarray]:
    blocks = list(open_call(path).blocks(1.0))
    return (np.concatenate([b.agent for b in blocks]),
            np.concatenate([b.customer for b in blocks]))


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


# --- FileSource ---------------------------------------------------------------------------

def test_file_source_delivers_16k_blocks_on_the_timeline() -> None:
    blocks: list[Block] = []
    statuses: list[SourceStatus] = []
    src = FileSource(str(CALL), realtime=False, block_s=0.1)
    assert src.customer_channel
    src.start(blocks.append, statuses.append)
    assert src.wait(30)
    src.stop()
    assert not statuses and src.error is None
    assert src.started_at is not None and abs(src.started_at - time.time()) < 60
    t = 0.0
    for b in blocks:
        assert b.agent.dtype == np.float32 and b.customer is not None
        assert b.customer.dtype == np.float32 and b.agent.shape == b.customer.shape
        assert b.t == pytest.approx(t, abs=1e-9)
        t += b.agent.size / SAMPLE_RATE
    assert t == pytest.approx(open_call(CALL).info.duration_s, abs=0.01)
    agent, customer = _whole(CALL)
    assert np.array_equal(np.concatenate([b.agent for b in blocks]), agent)
    assert np.array_equal(np.concatenate([b.customer for b in blocks]), customer)
    assert not np.array_equal(agent[: customer.size], customer)  # really two speakers


def test_file_source_agent_channel_right_swaps_the_speakers() -> None:
    blocks: list[Block] = []
    src = FileSource(str(CALL), realtime=False, agent_channel="right")
    src.start(blocks.append, lambda s: None)
    assert src.wait(30)
    agent, customer = _whole(CALL)
    assert np.array_equal(np.concatenate([b.agent for b in blocks]), customer)


def test_file_source_realtime_is_paced_like_a_headset() -> None:
    got = threading.Event()
    times: list[tuple[float, float]] = []

    def on_block(b: Block) -> None:
        times.append((b.t + b.agent.size / SAMPLE_RATE, time.monotonic()))
        if b.t >= 2.0:
            got.set()

    src = FileSource(str(CALL), realtime=True, block_s=0.1)
    start = time.monotonic()
    src.start(on_block, lambda s: None)
    assert got.wait(10)
    src.stop()
    wall = time.monotonic() - start
    assert wall >= 1.9
    end_audio, end_wall = times[-1]
    assert end_wall - start >= end_audio / 1.05  # never ahead of the audio clock
    assert src.started_at is not None


# --- DeviceSource errors and listing ------------------------------------------------------

def _portaudio_or_skip() -> None:
    try:
        import sounddevice  # noqa: F401
    except (ImportError, OSError) as exc:
        pytest.skip(f"sounddevice/PortAudio unusable here ({exc}); CI installs libportaudio2")


def test_bad_device_name_is_one_line_coach_error() -> None:
    _portaudio_or_skip()
    from coach.io.capture import DeviceSource

    with pytest.raises(CoachError) as err:
        DeviceSource(mic="no-such-headset-xyz")
    msg = str(err.value)
    assert "\n" not in msg and "no-such-headset-xyz" in msg and "coach devices" in msg
    with pytest.raises(CoachError) as err:
        DeviceSource(device=9999)
    assert "\n" not in str(err.value) and "coach devices" in str(err.value)
    with pytest.raises(CoachError):
        DeviceSource(mic="1", device="2")


def test_missing_portaudio_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    import coach.io.source as source

    def no_portaudio(name: str):
        raise OSError("PortAudio library not found")

    monkeypatch.setattr(source, "import_module", no_portaudio)
    with pytest.raises(CoachError, match="libportaudio2"):
        source.list_devices()


def test_format_devices_marks_defaults_and_loopbacks() -> None:
    devs = [DeviceInfo(0, "USB Headset Mic", "ALSA", 1, 0, 48000.0, True),
            DeviceInfo(1, "Monitor of Built-in Audio", "PulseAudio", 2, 0, 44100.0, False),
            DeviceInfo(2, "Speakers", "ALSA", 0, 2, 48000.0, False, True)]
    text = format_devices(devs)
    lines = text.splitlines()
    assert lines[0].startswith("Input devices")
    assert "*  0  USB Headset Mic" in text
    mon = next(x for x in lines if "Monitor of" in x)
    assert "--line" in mon
    assert text.index("Monitor of") < text.index("Speakers")
    assert "--mic" in text


# --- DeviceSource against a real virtual PulseAudio device ---------------------------------

_CHILD = r'''
import json, sys, threading, numpy as np
from coach.io.capture import DeviceSource
from coach.io.source import format_devices
out = sys.stdout
lock = threading.Lock()
def emit(obj):
    with lock:
        out.write(json.dumps(obj) + "\n"); out.flush()
if sys.argv[1] == "devices":
    emit({"devices": format_devices()}); sys.exit(0)
agent, customer = [], []
def on_block(b):
    agent.append(b.agent); customer.append(b.customer)
    emit({"t": b.t, "n": int(b.agent.size), "rms": float(np.sqrt(np.mean(b.agent ** 2))),
          "rms_c": float(np.sqrt(np.mean(b.customer ** 2)))})
def on_status(s):
    emit({"status": s.state, "message": s.message, "role": s.role, "at": s.t})
src = DeviceSource(device="pulse")
src.start(on_block, on_status)
emit({"started": src.describe()})
sys.stdin.readline()  # the test says when to stop
src.stop()
np.savez(sys.argv[2], agent=np.concatenate(agent), customer=np.concatenate(customer))
emit({"stopped": src.started_at, "error": repr(src.error) if src.error else None})
'''


class _Pulse:
    """A private PulseAudio server with a null sink ``line`` and virtual source ``headset``."""

    def __init__(self, tmp: Path):
        self.dir = tmp / "pulse-run"
        self.dir.mkdir()
        self.env = {**os.environ, "XDG_RUNTIME_DIR": str(self.dir), "HOME": str(self.dir),
                    "PULSE_SOURCE": "headset"}
        self.env.pop("PULSE_SERVER", None)
        self.players: list[subprocess.Popen[bytes]] = []
        r = subprocess.run(
            ["pulseaudio", "-D", "--exit-idle-time=-1", "-n", "--disallow-exit",
             "--load=module-native-protocol-unix"],
            env=self.env, capture_output=True, text=True, timeout=20)
        if r.returncode != 0:
            pytest.fail(f"pulseaudio did not start: {r.stderr.strip()}")
        self.load_devices()

    def pactl(self, *args: str) -> str:
        return subprocess.run(["pactl", *args], env=self.env, capture_output=True, text=True,
                              check=True, timeout=10).stdout

    def load_devices(self) -> None:
        self.pactl("load-module", "module-null-sink", "sink_name=line")
        self.pactl("load-module", "module-virtual-source", "source_name=headset",
                   "master=line.monitor")

    def unload_devices(self) -> None:
        # the virtual source goes with its master: nothing is left to move the stream to
        for line in self.pactl("list", "short", "modules").splitlines():
            if "module-null-sink" in line:
                self.pactl("unload-module", line.split()[0])

    def play(self, path: Path) -> None:
        # a low-latency player keeps the null sink rendering in small chunks; without it
        # the sink renders up to 2 s at once and a new recording waits that long for audio
        self.players.append(subprocess.Popen(
            ["paplay", "--latency-msec=30", "--device=line", str(path)], env=self.env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def close(self) -> None:
        for p in self.players:
            p.kill()
            p.wait()
        subprocess.run(["pulseaudio", "--kill"], env=self.env, capture_output=True, timeout=10)
        pid_file = self.dir / "pulse" / "pid"
        deadline = time.monotonic() + 5
        while pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)


@pytest.fixture
def pulse(tmp_path: Path):
    if shutil.which("pulseaudio") is None or shutil.which("pactl") is None:
        pytest.skip("pulseaudio/pulseaudio-utils not installed (CI: apt-get install "
                    "pulseaudio pulseaudio-utils libportaudio2)")
    _portaudio_or_skip()
    server = _Pulse(tmp_path)
    try:
        yield server
    finally:
        server.close()


class _Child:
    """The capture runs in a subprocess: PortAudio reads the environment when it starts."""

    def __init__(self, pulse: _Pulse, tmp: Path, *args: str):
        self.npz = tmp / "captured.npz"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD, *args, str(self.npz)], env=pulse.env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True, cwd=Path(__file__).resolve().parents[1])
        self.lines: list[dict] = []
        self._cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            with self._cond:
                self.lines.append(json.loads(raw))
                self._cond.notify_all()

    def wait_for(self, pred, timeout: float, what: str) -> dict:
        deadline = time.monotonic() + timeout
        exited = False
        with self._cond:
            while True:
                for obj in self.lines:
                    if pred(obj):
                        return obj
                left = deadline - time.monotonic()
                if left <= 0 or exited:
                    pytest.fail(f"no {what} (child exit code {self.proc.poll()}); "
                                f"last lines: {self.lines[-5:]}")
                exited = self.proc.poll() is not None  # one more look at its last lines
                self._cond.wait(min(left, 0.2))

    def blocks(self) -> list[dict]:
        with self._cond:
            return [x for x in self.lines if "t" in x]

    def stop(self) -> dict[str, np.ndarray]:
        assert self.proc.stdin is not None
        self.proc.stdin.write("stop\n")
        self.proc.stdin.flush()
        self.wait_for(lambda x: "stopped" in x, 10, "the capture to stop")
        self.proc.wait(10)
        data = np.load(self.npz)
        return {"agent": data["agent"], "customer": data["customer"]}

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _best_match(captured: np.ndarray, reference: np.ndarray) -> tuple[float, int]:
    """Peak normalised cross-correlation of ``captured`` inside ``reference`` and its lag."""
    n = captured.size + reference.size
    size = 1 << (n - 1).bit_length()
    xc = np.fft.irfft(np.fft.rfft(reference, size) * np.conj(np.fft.rfft(captured, size)),
                      size)[: reference.size - captured.size + 1]
    lag = int(np.argmax(xc))
    seg = reference[lag: lag + captured.size]
    corr = float(np.dot(seg, captured) / (np.linalg.norm(seg) * np.linalg.norm(captured)))
    return corr, lag


def _chunk_matches(captured: np.ndarray, reference: np.ndarray, *, chunk_s: float = 1.0
                   ) -> list[tuple[float, int, int]]:
    """(correlation, lag, offset) of each spoken 1 s chunk of ``captured`` at its best place
    in ``reference``. The test's own player (paplay) can be starved on a busy machine and
    leave a gap in what it plays; chunk by chunk, a gap costs one chunk, not the match."""
    n = int(chunk_s * SAMPLE_RATE)
    out = []
    for off in range(0, captured.size - n + 1, n):
        piece = captured[off: off + n]
        if _rms(piece) > 0.003:
            corr, lag = _best_match(piece, reference)
            out.append((corr, lag, off))
    return out


@pytest.mark.slow
def test_device_source_captures_the_call_from_a_virtual_headset(pulse: _Pulse,
                                                                tmp_path: Path) -> None:
    listing = _Child(pulse, tmp_path, "devices")
    text = listing.wait_for(lambda x: "devices" in x, 20, "the device list")["devices"]
    listing.kill()
    assert "pulse" in text and "Input devices" in text

    pulse.play(CALL)
    child = _Child(pulse, tmp_path, "capture")
    try:
        child.wait_for(lambda x: "started" in x, 20, "the capture to start")
        child.wait_for(lambda x: x.get("t", 0) >= 4.0, 15, "4 s of captured audio")
        got = child.stop()
    finally:
        child.kill()
    blocks = child.blocks()
    assert all(b["n"] == 1600 for b in blocks[:-1])
    assert all(abs(b2["t"] - b1["t"] - b1["n"] / SAMPLE_RATE) < 1e-9
               for b1, b2 in zip(blocks, blocks[1:], strict=False))
    assert not [x for x in child.lines if "status" in x]
    agent, customer = _whole(CALL)
    a = got["agent"]
    assert a.size >= 4 * SAMPLE_RATE
    # the captured audio is the call, left channel as the agent: same waveform, same level
    tail = a[SAMPLE_RATE // 2:]  # the first moments may hold resampler warm-up
    assert _rms(tail) > 0.003  # speech, not silence
    matches = _chunk_matches(tail, agent[: 20 * SAMPLE_RATE])
    assert len(matches) >= 2
    assert float(np.median([m[0] for m in matches])) > 0.9, matches
    c = got["customer"][SAMPLE_RATE // 2:]
    n = SAMPLE_RATE
    for corr, lag, off in matches:
        if corr < 0.9:
            continue  # a chunk with a gap of the player's in it
        # same level as the call, and the customer's side in the same place
        assert abs(20 * np.log10(_rms(tail[off: off + n]) / _rms(agent[lag: lag + n]))) < 3
        ref_c, got_c = customer[lag: lag + n], c[off: off + n]
        if _rms(ref_c) > 0.003:  # the customer may not have spoken in those seconds
            assert float(np.dot(ref_c, got_c)
                         / (np.linalg.norm(ref_c) * np.linalg.norm(got_c))) > 0.9
        else:
            assert _rms(got_c) < 0.003


@pytest.mark.slow
def test_device_lost_mid_call_keeps_the_timeline_and_comes_back(pulse: _Pulse,
                                                                tmp_path: Path) -> None:
    pulse.play(CALL)
    child = _Child(pulse, tmp_path, "capture")
    try:
        child.wait_for(lambda x: "started" in x, 20, "the capture to start")
        # enough before the loss for several 1 s chunks: one chunk with a gap of the test's
        # own player in it (a starved paplay on a busy machine) must not decide the match
        child.wait_for(lambda x: x.get("t", 0) >= 4.5, 20, "4.5 s of captured audio")
        before = child.blocks()
        pulse.unload_devices()  # the headset is unplugged
        lost = child.wait_for(lambda x: x.get("status") == "lost", 5, "a 'lost' status")
        # the timeline keeps going on zeros while the device is away
        at = lost["at"]
        child.wait_for(lambda x: x.get("t", 0) >= at + 1.5, 5, "blocks while the device is lost")
        pulse.load_devices()  # plugged back in
        pulse.play(CALL)
        back = child.wait_for(lambda x: x.get("status") == "restored", 10, "a 'restored' status")
        child.wait_for(lambda x: x.get("t", 0) >= back["at"] + 1.5, 10, "audio after restoring")
        got = child.stop()
    finally:
        child.kill()
    assert lost["message"] and lost["role"] == "both"
    statuses = [x["status"] for x in child.lines if "status" in x]
    assert statuses == ["lost", "restored"]  # reported once each
    blocks = child.blocks()
    assert all(abs(b2["t"] - b1["t"] - b1["n"] / SAMPLE_RATE) < 1e-9
               for b1, b2 in zip(blocks, blocks[1:], strict=False))
    # nothing captured before the loss is gone: the saved audio starts with it, unchanged
    a = got["agent"]
    assert a.size == sum(b["n"] for b in blocks)
    n_before = sum(b["n"] for b in before)
    assert _rms(a[SAMPLE_RATE // 2: n_before]) > 0.003
    matches = _chunk_matches(a[SAMPLE_RATE // 2: n_before], _whole(CALL)[0][: 20 * SAMPLE_RATE])
    assert len(matches) >= 3 and float(np.median([m[0] for m in matches])) > 0.9, matches
    # zeros while lost, real audio again after
    gap = [b for b in blocks if lost["at"] + 0.3 <= b["t"] < back["at"] - 0.3]
    assert gap and all(b["rms"] == 0.0 for b in gap)
    after = a[int((back["at"] + 0.3) * SAMPLE_RATE):]
    assert after.size >= SAMPLE_RATE and _rms(after) > 0.003
