"""Every `--help` a user can read: each option says what it does and its default; the
examples name real cue ids."""

from __future__ import annotations

import argparse
import re

import pytest

from coach.cli import _build_parser
from coach.playbook import CUE_IDS


def _parsers(p: argparse.ArgumentParser, path: str = "coach"):
    yield path, p
    for a in p._actions:
        if isinstance(a, argparse._SubParsersAction):
            for name, sub in a.choices.items():
                yield from _parsers(sub, f"{path} {name}")


PARSERS = dict(_parsers(_build_parser()))


@pytest.mark.parametrize("command", sorted(PARSERS))
def test_every_option_has_a_description_and_its_default(command):
    p = PARSERS[command]
    for a in p._actions:
        if a.help == argparse.SUPPRESS or isinstance(a, (argparse._HelpAction,
                                                         argparse._VersionAction,
                                                         argparse._SubParsersAction)):
            continue
        name = "/".join(a.option_strings) or a.dest
        assert a.help and len(a.help) > 10, f"{command} {name}: no description"
        if not a.option_strings:
            continue  # a positional argument has no default
        if isinstance(a, argparse._StoreTrueAction | argparse._StoreFalseAction):
            continue  # a switch: off unless given
        assert "default" in a.help.lower() or a.required, f"{command} {name}: no default named"


@pytest.mark.parametrize("command", sorted(PARSERS))
def test_help_prints_and_names_only_real_cue_ids(command, capsys):
    with pytest.raises(SystemExit) as exc:
        _build_parser().parse_args([*command.split()[1:], "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for m in re.finditer(r"\b(?:e\.g\.|--cue)\s+([a-z]+(?:-[a-z]+)+)", text):
        assert m.group(1) in CUE_IDS, f"{command}: {m.group(1)} is not a cue id"


def test_coach_cues_lists_ids_titles_and_severities(capsys, tmp_path):
    from coach.cli import main

    assert main(["cues"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["ID", "SEVERITY", "TITLE"]
    rows = {ln.split()[0]: ln for ln in out[1:] if ln.strip() and not ln.startswith(("20 ", "2"))}
    assert set(CUE_IDS) <= set(rows)
    assert "warn" in rows["qualified-apology"] and 'Avoid the "but"' in rows["qualified-apology"]
    assert "off" in rows["tone-flat"]
    team = tmp_path / "team.yaml"
    team.write_text("cues:\n  tone-flat: {enabled: true}\n  pace-fast:\n    title: Breathe\n")
    assert main(["cues", "--playbook", str(team)]) == 0
    text = capsys.readouterr().out
    line = next(ln for ln in text.splitlines() if ln.startswith("pace-fast"))
    assert line.endswith("Breathe") and str(team) in text
    assert "off" not in next(ln for ln in text.splitlines() if ln.startswith("tone-flat"))
    team.write_text("cues:\n  pace-fast: [oops\n")
    assert main(["cues", "--playbook", str(team)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("coach: error: ") and "team.yaml" in err[0]
