"""The documents a newcomer reads: the README's first screen, the docs it links to (in the
repository, not outside it), the cue catalogue against the playbook, the licence."""

from __future__ import annotations

import re
import struct
import tomllib

from coach.playbook import load_playbook
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_first_screen_has_the_two_commands_and_two_screenshots():
    top = README[: README.index("## Your first hour")]
    assert "make demo" in top and "make test" in top
    shots = re.findall(r"!\[[^\]]+\]\(([^)]+\.png)\)", top)
    assert shots == ["docs/overlay.png", "docs/replay.png"]
    for shot in shots:
        data = (ROOT / shot).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n", shot
        width, height = struct.unpack(">II", data[16:24])
        assert 300 <= width <= 1600 and 100 <= height <= 1000, (shot, width, height)
        assert len(data) < 250_000, f"{shot}: {len(data)} bytes; keep screenshots small"


def test_readme_links_stay_inside_the_repository():
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README):
        if target.startswith(("http://", "https://")):
            continue
        assert (ROOT / target).exists(), f"README links to {target}, which is not in the repo"
    assert "../shared/DESIGN.md" not in README and "CUES.md`" not in README
    assert "`DESIGN.md`" not in README


def test_the_makefile_targets_the_readme_promises_exist():
    makefile = (ROOT / "Makefile").read_text()
    for target in ("demo", "test"):
        assert re.search(rf"^{target}:", makefile, re.M), target


def test_cue_catalogue_documents_every_playbook_cue():
    doc = (ROOT / "docs" / "cues.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `([a-z-]+)` \| [^|]+ \| (info|nudge|warn) \|", doc, re.M))
    pb = load_playbook()
    assert set(rows) == set(pb.cues), set(rows) ^ set(pb.cues)
    for cue_id, severity in rows.items():
        assert pb.cue(cue_id).severity == severity, f"docs/cues.md: {cue_id} is {severity}"


def test_licence_is_mit_as_the_package_says():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT"  # an SPDX expression, as packaging now wants


def test_design_doc_names_modules_that_exist():
    doc = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
    for name in re.findall(r"^\| `([a-z_/]+(?:\.py)?)`", doc, re.M):
        for part in name.split(", "):
            path = ROOT / "coach" / part
            assert path.exists() or path.with_suffix(".py").exists(), name


def test_examples_in_the_docs_name_real_cue_ids():
    ids = set(load_playbook().cues)
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for cue_id in re.findall(r"--cue[ =]([a-z]+(?:-[a-z]+)+)", path.read_text()):
            assert cue_id in ids, f"{path.name}: --cue {cue_id} is not a cue id"
