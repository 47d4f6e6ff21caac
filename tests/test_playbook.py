from __future__ import annotations

import re
from pathlib import Path

import pytest

from coach.errors import PlaybookError
from coach.playbook import CUE_IDS, load_playbook

CUES_MD = Path(__file__).resolve().parents[1].parent / "shared" / "CUES.md"


def test_default_loads_and_has_every_cue() -> None:
    pb = load_playbook()
    assert set(pb.cues) == set(CUE_IDS)
    for spec in pb.cues.values():
        assert spec.title and spec.advice and spec.severity in ("info", "nudge", "warn")
        assert len(spec.title.split()) <= 5
        assert '"' in spec.advice or spec.severity == "info"  # a "say instead" example
        assert spec.cooldown_s >= 0


@pytest.mark.skipif(not CUES_MD.exists(), reason="CUES.md not next to the project")
def test_default_covers_every_id_in_cues_md() -> None:
    ids = set(re.findall(r"^\| `([a-z-]+)` \|", CUES_MD.read_text(encoding="utf-8"), re.M))
    assert ids, "no ids parsed from CUES.md"
    assert ids <= set(load_playbook().cues)


def test_defaults_per_cues_md() -> None:
    pb = load_playbook()
    assert pb.cue("tone-flat").enabled is False
    assert pb.cue("qualified-apology").cooldown_s == 30
    assert pb.cue("pace-fast").thresholds["wpm"] == 175
    assert pb.cue("dead-air").thresholds["silence_s"] == 8
    assert pb.cue("over-apology").thresholds["count"] == 3
    assert pb.cue("no-action").windows["speech_s"] == 15
    assert pb.cue("name-frustration").windows["response_s"] == 12


def _write(tmp_path: Path, text: str, name: str = "team.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_override_merges_on_top_of_default(tmp_path: Path) -> None:
    p = _write(tmp_path, """
settings: {warn_gap_s: 12}
cues:
  pace-fast:
    thresholds: {wpm: 160}
  tone-flat: {enabled: true}
  generic-apology:
    advice: 'Say what broke: "I am sorry the router came without a cable."'
lexicon:
  apology+: ['we are gutted']
""")
    pb = load_playbook(p)
    default = load_playbook()
    assert pb.settings.warn_gap_s == 12
    assert pb.settings.skew_s == default.settings.skew_s
    assert pb.cue("pace-fast").thresholds["wpm"] == 160
    assert pb.cue("pace-fast").thresholds["baseline_ratio"] == default.cue("pace-fast").thresholds["baseline_ratio"]
    assert pb.cue("pace-fast").title == default.cue("pace-fast").title
    assert pb.cue("tone-flat").enabled
    assert "router" in pb.cue("generic-apology").advice
    assert pb.lex("apology").search("well we are gutted about it")
    assert pb.lex("apology").search("i am sorry")  # appended, not replaced


def test_replacing_a_list(tmp_path: Path) -> None:
    p = _write(tmp_path, "lexicon:\n  laughter: ['hoho']\n")
    pb = load_playbook(p)
    assert pb.lex("laughter").fullmatch("hoho")
    assert not pb.lex("laughter").fullmatch("haha")


def test_patterns_have_word_boundaries() -> None:
    pb = load_playbook()
    contrast = pb.cue("qualified-apology").pattern("contrast")
    assert contrast.search("press the but button") is not None
    assert contrast.search("press the button") is None


MALFORMED = [
    ("syntax", "cues:\n  pace-fast:\n    thresholds: {wpm: 160\n  dead-air: {}\n", 4, "YAML syntax"),
    ("unknown cue", "cues:\n  pace-fast: {}\n  speak-slower:\n    title: x\n", 3, "unknown cue id"),
    ("unknown key", "cues:\n  pace-fast:\n    title: Slow\n    colour: red\n", 4, "unknown key"),
    ("unknown top key", "setings:\n  skew_s: 1\n", 1, "unknown key"),
    ("unknown setting", "settings:\n  skew: 1\n", 2, "unknown setting"),
    ("wrong type", "cues:\n  pace-fast:\n    cooldown_s: soon\n", 3, "must be a number"),
    ("wrong type bool", "cues:\n  tone-flat:\n    enabled: sometimes\n", 3, "true or false"),
    ("negative cooldown", "cues:\n  dead-air:\n    cooldown_s: -5\n", 3, ">= 0"),
    ("bad severity", "cues:\n  dead-air:\n    severity: loud\n", 3, "severity"),
    ("bad regex", "lexicon:\n  apology:\n    - 'sorry'\n    - 'apolog(ise'\n", 4, "bad regular expression"),
    ("bad regex in cue", "cues:\n  minimizing:\n    patterns:\n      minimizing:\n        - 'ok'\n        - '[abc'\n", 6, "bad regular expression"),
    ("unknown threshold", "cues:\n  pace-fast:\n    thresholds:\n      wpm: 150\n      speed: 3\n", 5, "unknown threshold"),
    ("unknown pattern group", "cues:\n  blame-shift:\n    patterns:\n      excuses: ['x']\n", 4, "unknown pattern"),
    ("unknown lexicon", "lexicon:\n  sorry_words: ['x']\n", 2, "unknown lexicon"),
    ("empty title", "cues:\n  dead-air:\n    title: ''\n", 3, "non-empty string"),
    ("patterns not a list", "lexicon:\n  apology: sorry\n", 2, "list of patterns"),
    ("duplicate key", "cues:\n  dead-air: {}\n  dead-air: {}\n", 3, "duplicate"),
    ("unknown reference", "lexicon:\n  apology: ['<<nope>> sorry']\n", 2, "unknown lexicon <<nope>>"),
]


@pytest.mark.parametrize("text,line,reason", [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_reports_file_and_line(tmp_path: Path, text: str, line: int, reason: str) -> None:
    p = _write(tmp_path, text, "broken_team.yaml")
    with pytest.raises(PlaybookError) as info:
        load_playbook(p)
    err = info.value
    assert "broken_team.yaml" in str(err)
    assert err.line == line, str(err)
    assert f":{line}:" in str(err)
    assert reason in err.reason


def test_standalone_playbook_must_be_complete(tmp_path: Path) -> None:
    p = _write(tmp_path, "extends: null\ncues:\n  dead-air:\n    advice: x\n    severity: nudge\n    speaker: agent\n")
    with pytest.raises(PlaybookError) as info:
        load_playbook(p)
    assert "missing" in info.value.reason


def test_standalone_missing_title_has_the_cue_line(tmp_path: Path) -> None:
    default_text = (Path(__file__).resolve().parents[1] / "coach" / "playbooks" / "default.yaml").read_text()
    lines = default_text.splitlines()
    i = next(n for n, s in enumerate(lines) if s.startswith("  dead-air:"))
    j = next(n for n in range(i + 1, len(lines)) if lines[n].strip().startswith("title:"))
    del lines[j]
    text = "extends: null\n" + "\n".join(lines) + "\n"
    p = _write(tmp_path, text, "standalone.yaml")
    with pytest.raises(PlaybookError) as info:
        load_playbook(p)
    assert "missing title" in info.value.reason
    assert info.value.line == i + 2  # +1 for 1-based, +1 for the extends line


def test_standalone_copy_of_default_loads(tmp_path: Path) -> None:
    default_text = (Path(__file__).resolve().parents[1] / "coach" / "playbooks" / "default.yaml").read_text()
    pb = load_playbook(_write(tmp_path, "extends: null\n" + default_text, "copy.yaml"))
    assert pb.cue("dead-air").thresholds == load_playbook().cue("dead-air").thresholds


def test_missing_file() -> None:
    with pytest.raises(PlaybookError) as info:
        load_playbook("/nonexistent/team.yaml")
    assert "team.yaml" in str(info.value)


def test_empty_file(tmp_path: Path) -> None:
    with pytest.raises(PlaybookError):
        load_playbook(_write(tmp_path, ""))


def test_playbook_is_frozen() -> None:
    pb = load_playbook()
    with pytest.raises(AttributeError):
        pb.cue("dead-air").title = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        pb.cue("dead-air").thresholds["silence_s"] = 1  # type: ignore[index]
