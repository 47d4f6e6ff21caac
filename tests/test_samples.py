"""The demo calls in audio_samples/ and the call scripts in tests/scripts/.

Fast tests check every script's shape and cue ids, the committed FLAC files and manifests, and
the renderer's timeline arithmetic (with a fake synthesiser). Tests marked ``slow`` run
espeak-ng for real.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "audio_samples"
DEMO_SCRIPTS = SAMPLES / "scripts"
TEST_SCRIPTS = ROOT / "tests" / "scripts"

CUE_IDS = frozenset(
    """qualified-apology conditional-apology generic-apology casual-apology minimizing
    blame-shift empty-promise over-apology no-action laughter name-frustration empathy-shown
    pace-fast tone-tense volume-loud tone-flat dead-air talk-over monologue no-follow-up""".split()
)
WORD_CUES = (
    "qualified-apology conditional-apology generic-apology casual-apology minimizing "
    "blame-shift empty-promise over-apology no-action laughter name-frustration "
    "empathy-shown no-follow-up"
).split()
TIMING_CUES = ["dead-air", "talk-over", "monologue", "pace-fast"]
FAULT_CUES = sorted(CUE_IDS - {"empathy-shown"})

# the committed demo audio must stay small enough for the repository
MAX_DEMO_BYTES = 4_500_000


def _load_make_calls():
    spec = importlib.util.spec_from_file_location("make_calls", SAMPLES / "make_calls.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_calls = _load_make_calls()

DEMO_FILES = sorted(DEMO_SCRIPTS.glob("*.yaml"))
TEST_FILES = sorted(TEST_SCRIPTS.glob("*.yaml"))
ALL_FILES = DEMO_FILES + TEST_FILES


def _id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


def _raw(path: Path) -> dict:
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


# --- every script --------------------------------------------------------------------------


def test_there_are_enough_scripts():
    assert 5 <= len(DEMO_FILES) <= 6
    assert len(TEST_FILES) >= 40
    assert not list(DEMO_SCRIPTS.glob("*.yml")) and not list(TEST_SCRIPTS.glob("*.yml"))


@pytest.mark.parametrize("path", ALL_FILES, ids=_id)
def test_script_parses_with_known_cue_ids(path):
    raw = _raw(path)
    assert set(raw) <= {"title", "description", "expect", "forbid", "turns"}, path
    script = make_calls.load_script(path)  # raises ScriptError on a bad shape
    assert isinstance(raw["expect"], list), "expect must be present (use [] for none)"
    for key in ("expect", "forbid"):
        ids = script[key]
        assert set(ids) <= CUE_IDS, f"unknown cue id(s) in {key}: {set(ids) - CUE_IDS}"
        assert len(ids) == len(set(ids)), f"duplicate cue id in {key}"
    assert not set(script["expect"]) & set(script["forbid"])
    assert script["title"].strip() and script["description"].strip()
    speakers = {t["speaker"] for t in script["turns"] if "speaker" in t}
    assert speakers == {"agent", "customer"}, "a call needs both speakers"


def test_script_titles_are_unique():
    titles = [_raw(p)["title"] for p in ALL_FILES]
    assert len(titles) == len(set(titles))


def test_test_scripts_cover_every_cue():
    pos = {cue: 0 for cue in WORD_CUES + TIMING_CUES}
    neg = dict(pos)
    for path in TEST_FILES:
        raw = _raw(path)
        for cue in raw.get("expect") or []:
            if cue in pos:
                pos[cue] += 1
        for cue in raw.get("forbid") or []:
            if cue in neg:
                neg[cue] += 1
    short = {c: (pos[c], neg[c]) for c in WORD_CUES if pos[c] < 3 or neg[c] < 2}
    short |= {c: (pos[c], neg[c]) for c in TIMING_CUES if pos[c] < 2 or neg[c] < 2}
    assert not short, f"cues with too few positive/negative scripts: {short}"


def test_timing_cues_use_timing_markup():
    """A script expecting a timing cue must contain the markup that produces it."""
    for path in ALL_FILES:
        raw = _raw(path)
        turns = raw["turns"]
        expect = set(raw.get("expect") or [])
        if "dead-air" in expect:
            assert any(t.get("pause", 0) >= 8 for t in turns), path
        if "talk-over" in expect:
            assert any(t.get("speaker") == "agent" and t.get("overlap", 0) > 1 for t in turns), path
        if "pace-fast" in expect:
            assert any(t.get("speaker") == "agent" and t.get("rate", 0) >= 190 for t in turns), path
        if "dead-air" in (raw.get("forbid") or []):
            assert all(t.get("pause", 0) < 8 for t in turns), path


def test_load_script_rejects_bad_shapes(tmp_path):
    bad = {
        "unknown_key": "{speaker: agent, text: hi, volume: 3}",
        "unknown_speaker": "{speaker: manager, text: hi}",
        "empty_text": "{speaker: agent, text: ''}",
        "pause_with_text": "{pause: 9, text: hi}",
    }
    for name, turn in bad.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(f"title: t\ndescription: d\nexpect: []\nturns:\n  - {turn}\n")
        with pytest.raises(make_calls.ScriptError):
            make_calls.load_script(path)
    path = tmp_path / "both.yaml"
    path.write_text(
        "title: t\ndescription: d\nexpect: [dead-air]\nforbid: [dead-air]\n"
        "turns:\n  - {speaker: agent, text: hi}\n"
    )
    with pytest.raises(make_calls.ScriptError):
        make_calls.load_script(path)


# --- the renderer's timeline (fake synthesiser, no espeak-ng needed) -------------------------


def test_render_timeline(monkeypatch):
    sr = make_calls.SAMPLE_RATE
    monkeypatch.setattr(
        make_calls, "synthesise", lambda text, voice, rate: np.full(2 * sr, 0.5, np.float32)
    )
    script = {
        "turns": [
            {"speaker": "agent", "text": "a"},
            {"speaker": "customer", "text": "b"},
            {"pause": 9},
            {"speaker": "agent", "text": "c"},
            {"speaker": "customer", "text": "d", "overlap": 1.5},
        ]
    }
    pcm, turns = make_calls.render(script)
    lead, gap = make_calls.LEAD_IN_S, make_calls.GAP_S
    starts = [t["start"] for t in turns]
    assert starts == pytest.approx([lead, lead + 2 + gap, lead + 4 + gap + 9, lead + 4.5 + gap + 9])
    assert [t["end"] - t["start"] for t in turns] == pytest.approx([2, 2, 2, 2])
    assert [t["channel"] for t in turns] == ["left", "right", "left", "right"]
    assert pcm.dtype == np.int16 and pcm.shape[1] == 2
    assert len(pcm) / sr == pytest.approx(turns[-1]["end"] + make_calls.TAIL_S)
    left, right = pcm[:, 0], pcm[:, 1]
    first = slice(int(lead * sr), int((lead + 2) * sr))
    assert np.all(left[first] != 0) and np.all(right[first] == 0)


# --- the committed demo calls ----------------------------------------------------------------


def _manifest(path: Path) -> dict:
    with open(SAMPLES / f"{path.stem}.json", encoding="utf-8") as fh:
        return json.load(fh)


@pytest.mark.parametrize("path", DEMO_FILES, ids=_id)
def test_demo_has_audio_and_matching_manifest(path):
    flac = SAMPLES / f"{path.stem}.flac"
    assert flac.is_file(), f"missing {flac.name}: run python audio_samples/make_calls.py"
    manifest = _manifest(path)
    script = make_calls.load_script(path)
    assert manifest["audio"] == flac.name
    assert manifest["expect"] == script["expect"]
    assert manifest["forbid"] == script["forbid"]
    spoken = [t for t in script["turns"] if "speaker" in t]
    assert [(t["speaker"], t["text"]) for t in manifest["turns"]] == [
        (t["speaker"], t["text"]) for t in spoken
    ], "manifest is stale: re-run python audio_samples/make_calls.py"
    for turn in manifest["turns"]:
        assert 0 <= turn["start"] < turn["end"] <= manifest["duration"]


@pytest.mark.parametrize("path", DEMO_FILES, ids=_id)
def test_demo_audio_channels(path):
    flac = SAMPLES / f"{path.stem}.flac"
    manifest = _manifest(path)
    info = sf.info(flac)
    assert (info.format, info.subtype) == ("FLAC", "PCM_16")
    assert info.channels == 2 and info.samplerate == 16000
    assert 30 <= info.duration <= 70
    assert info.duration == pytest.approx(manifest["duration"], abs=0.01)

    pcm, sr = sf.read(flac, dtype="int16")
    slack = sr // 1000 + 1  # manifest times are rounded to the millisecond
    active = {"agent": np.zeros(len(pcm), bool), "customer": np.zeros(len(pcm), bool)}
    for turn in manifest["turns"]:
        a, b = int(turn["start"] * sr), int(turn["end"] * sr)
        active[turn["speaker"]][max(0, a - slack) : b + slack] = True
    for channel, speaker in ((0, "agent"), (1, "customer")):
        signal = pcm[:, channel].astype(np.float64)
        # nothing at all on this channel outside this speaker's turns
        assert np.max(np.abs(signal[~active[speaker]]), initial=0) == 0, speaker
        for turn in manifest["turns"]:
            a, b = int(turn["start"] * sr), int(turn["end"] * sr)
            rms = np.sqrt(np.mean(signal[a:b] ** 2))
            if turn["speaker"] == speaker:
                assert rms > 300, f"{speaker} turn at {turn['start']} s is too quiet: {rms:.0f}"
                # the speech really starts and ends at the manifest times
                assert np.any(signal[a - slack : a + slack] != 0)
                assert np.any(signal[b - slack : b + slack] != 0)
            else:
                # the other speaker's turn: silent here apart from any genuine overlap
                own = active[speaker][a:b]
                assert np.max(np.abs(signal[a:b][~own]), initial=0) == 0


def test_demo_expectations_and_size():
    expects = {p.stem: _manifest(p)["expect"] for p in DEMO_FILES}
    assert any(e == ["empathy-shown"] for e in expects.values()), "an exemplary call"
    assert any(e == [] for e in expects.values()), "a routine call with nothing to flag"
    covered = set().union(*expects.values())
    missing = set(WORD_CUES + TIMING_CUES) - {"laughter", "monologue"} - covered
    assert not missing, f"demo calls never show {missing}"
    exemplary = next(p for p in DEMO_FILES if expects[p.stem] == ["empathy-shown"])
    assert set(_manifest(exemplary)["forbid"]) >= set(FAULT_CUES) - {
        "tone-tense",
        "volume-loud",
        "tone-flat",
    }
    total = sum((SAMPLES / f"{p.stem}.flac").stat().st_size for p in DEMO_FILES)
    assert total < MAX_DEMO_BYTES, f"demo audio is {total} bytes"
    assert not {f.stem for f in SAMPLES.glob("*.flac")} - set(expects), "orphan FLAC file"


# --- real synthesis ------------------------------------------------------------------------

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None,
    reason="espeak-ng is not installed (apt-get install espeak-ng); needed to render calls",
)


@pytest.mark.slow
@needs_espeak
def test_rendering_is_deterministic(tmp_path):
    script = TEST_SCRIPTS / "timing_talkover_pos_jumps_in.yaml"
    outputs = []
    for run in ("one", "two"):
        make_calls.main([str(script), "--out", str(tmp_path / run)])
        outputs.append(
            [(tmp_path / run / f"{script.stem}{ext}").read_bytes() for ext in (".flac", ".json")]
        )
    assert outputs[0] == outputs[1]


def _timeline(manifest: dict) -> dict:
    turns = sorted(manifest["turns"], key=lambda t: t["start"])
    silence, reach = 0.0, turns[0]["end"]
    for t in turns[1:]:
        silence = max(silence, t["start"] - reach)
        reach = max(reach, t["end"])
    overlap = 0.0
    for a in turns:
        for c in turns:
            if a["speaker"] == "agent" and c["speaker"] == "customer":
                if c["start"] < a["start"] < c["end"]:
                    overlap = max(overlap, min(a["end"], c["end"]) - a["start"])
    talk = longest = 0.0
    for t in turns:
        if t["speaker"] == "customer":
            if t["end"] - t["start"] > 1.5:  # longer than a backchannel
                talk = 0.0
        else:
            talk += t["end"] - t["start"]
            longest = max(longest, talk)
    agent = [t for t in turns if t["speaker"] == "agent"]
    pace = 0.0
    for i in range(len(agent)):  # words per minute over the last ~15 s of agent speech
        words = secs = 0.0
        for t in reversed(agent[: i + 1]):
            words += len(t["text"].split())
            secs += t["end"] - t["start"]
            if secs >= 15:
                break
        if secs >= 8:
            pace = max(pace, 60 * words / secs)
    return {"dead-air": silence, "talk-over": overlap, "monologue": longest, "pace-fast": pace}


@pytest.mark.slow
@needs_espeak
def test_rendered_timing_matches_labels(tmp_path):
    """Timing labels agree with the rendered timeline, with a margin either side."""
    fires = {"dead-air": 8.5, "talk-over": 1.4, "monologue": 45.0, "pace-fast": 190.0}
    quiet = {"dead-air": 7.5, "talk-over": 0.7, "monologue": 35.0, "pace-fast": 170.0}
    scripts = [p for p in ALL_FILES if set(_raw(p).get("expect") or []) & set(fires)]
    scripts += [p for p in TEST_FILES if p.stem.startswith("timing_") and p not in scripts]
    scripts += DEMO_FILES
    problems = []
    for path in dict.fromkeys(scripts):
        make_calls.render_file(path, tmp_path)
        manifest = json.loads((tmp_path / f"{path.stem}.json").read_text())
        measured = _timeline(manifest)
        for cue, value in measured.items():
            if cue in manifest["expect"] and value < fires[cue]:
                problems.append(f"{path.stem}: expects {cue} but measures {value:.1f}")
            if cue in manifest["forbid"] and value > quiet[cue]:
                problems.append(f"{path.stem}: forbids {cue} but measures {value:.1f}")
    assert not problems, "\n".join(problems)
