"""The overlay's place: --geometry, the remembered prefs file, clamping to the screen."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from coach.errors import CoachError
from coach.io.overlay import _merge
from coach.io.overlay.prefs import (
    Geometry,
    clamp,
    load_prefs,
    parse_geometry,
    prefs_path,
    save_prefs,
)


@pytest.mark.parametrize("text, want", [
    ("380x150+40+40", Geometry(380, 150, 40, 40)),
    ("500X200", Geometry(500, 200)),
    ("+10+20", Geometry(None, None, 10, 20)),
    ("400x160-0-30", Geometry(400, 160, 0, 30, from_right=True, from_bottom=True)),
    (" 400x160+5-6 ", Geometry(400, 160, 5, 6, from_bottom=True)),
])
def test_parse_geometry(text, want):
    assert parse_geometry(text) == want
    assert parse_geometry(str(want)) == want


@pytest.mark.parametrize("text, says", [
    ("", "expected WIDTHxHEIGHT+X+Y"),
    ("wide", "expected WIDTHxHEIGHT+X+Y"),
    ("380x", "expected WIDTHxHEIGHT+X+Y"),
    ("380x150+40", "expected WIDTHxHEIGHT+X+Y"),
    ("380x150+-4+4", "expected WIDTHxHEIGHT+X+Y"),
    ("100x50", "at least 260x120 pixels"),
    ("99999x150", "at least 260x120 pixels"),
])
def test_bad_geometry_is_a_one_line_error(text, says):
    with pytest.raises(CoachError, match=re.escape(says)) as info:
        parse_geometry(text)
    assert "\n" not in str(info.value) and str(info.value).startswith("--geometry ")


def test_clamp_keeps_the_whole_window_on_screen():
    screen = (1920, 1080)
    assert clamp(Geometry(380, 150, 40, 40), screen) == Geometry(380, 150, 40, 40)
    assert clamp(Geometry(380, 150, 3000, 2000), screen) == Geometry(380, 150, 1540, 930)
    assert clamp(Geometry(380, 150, -500, -20), screen) == Geometry(380, 150, 0, 0)
    assert clamp(Geometry(5000, 9000, 10, 10), screen) == Geometry(1920, 1080, 0, 0)
    assert clamp(Geometry(380, 150, 0, 0, True, True), screen) == Geometry(380, 150, 1540, 930)
    assert clamp(Geometry(), screen) == Geometry(380, 150)  # no place: the default size
    assert clamp(Geometry(None, None, 5, 6), screen) == Geometry(380, 150, 5, 6)
    # a screen smaller than the minimum size: the window fills it
    assert clamp(Geometry(380, 150, 9, 9), (200, 100)) == Geometry(200, 100, 0, 0)


def test_given_geometry_wins_and_the_remembered_place_fills_in():
    saved = Geometry(420, 160, 150, 100)
    assert _merge(None, saved) == saved
    assert _merge(None, None) == Geometry()
    assert _merge(Geometry(500, 200), saved) == Geometry(500, 200, 150, 100)
    assert _merge(Geometry(None, None, 5, 6), saved) == Geometry(420, 160, 5, 6)
    edge = Geometry(500, 200, 0, 0, True, True)
    assert _merge(edge, saved) == edge


def test_prefs_live_in_the_xdg_config_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    assert prefs_path() == tmp_path / "cfg" / "coach" / "overlay.json"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert prefs_path() == tmp_path / "home" / ".config" / "coach" / "overlay.json"


def test_save_then_load(tmp_path):
    path = tmp_path / "coach" / "overlay.json"
    assert load_prefs(path) == (None, None)  # nothing remembered yet: no note
    assert save_prefs(Geometry(420, 160, 150, 100), path) is None
    assert json.loads(path.read_text()) == {"width": 420, "height": 160, "x": 150, "y": 100}
    assert load_prefs(path) == (Geometry(420, 160, 150, 100), None)
    assert not list(path.parent.glob("*.tmp"))


@pytest.mark.parametrize("content, why", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "expected whole numbers for width, height, x and y"),
    ('{"width": 300, "height": 150, "x": "left", "y": 0}', "expected whole numbers"),
    ('{"width": true, "height": 150, "x": 0, "y": 0}', "expected whole numbers"),
    ('{"width": 0, "height": 150, "x": 0, "y": 0}', "a size of 0x150 pixels"),
    (b"\xff\xfe\x00", "not readable text"),
])
def test_a_corrupt_prefs_file_is_ignored_with_one_line(tmp_path, content, why):
    path = tmp_path / "overlay.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    geometry, note = load_prefs(path)
    assert geometry is None
    assert note.startswith(f"ignored {path} ({why}")
    assert note.endswith("); the overlay starts at its default place") and "\n" not in note


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_a_prefs_file_that_cannot_be_written_is_a_note(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        note = save_prefs(Geometry(400, 150, 1, 1), locked / "coach" / "overlay.json")
    finally:
        locked.chmod(0o700)
    assert note.startswith("cannot remember the overlay's place in ") and "\n" not in note


def test_a_prefs_path_that_is_a_folder_is_a_note(tmp_path):
    path = tmp_path / "overlay.json"
    path.mkdir()
    geometry, note = load_prefs(path)
    assert geometry is None and note.startswith(f"ignored {path} (") and "\n" not in note
    note = save_prefs(Geometry(400, 150, 1, 1), path)
    assert note.startswith(f"cannot remember the overlay's place in {path}")


def test_unknown_extra_keys_are_fine(tmp_path):
    path = Path(tmp_path / "overlay.json")
    path.write_text('{"width": 400, "height": 150, "x": 3, "y": 4, "theme": "dark"}')
    assert load_prefs(path) == (Geometry(400, 150, 3, 4), None)
