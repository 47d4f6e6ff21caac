"""The phrasing corpus (``tests/corpus/*.yaml``): loading, checking and turning items into
call scripts, shared by ``bench/judge_bench.py`` and ``tests/test_corpus.py``.

Each item is one short exchange: optional customer lines ``before`` the agent line, the
``agent`` line, optional turns ``after`` it (``{customer: ...}`` or ``{agent: ...}``), the
word cues it should raise (``expect``, empty for an innocent item), the cue family it was
written for (``written_for``) and its ``split`` (``tune`` or ``heldout``), assigned once
when the item was written and never changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
CORPUS_DIR = ROOT / "tests" / "corpus"

# The cues judged from the words; the corpus scores exactly these.
WORD_CUES: tuple[str, ...] = (
    "qualified-apology", "conditional-apology", "generic-apology", "casual-apology",
    "minimizing", "blame-shift", "empty-promise", "no-action", "name-frustration",
)
SPLITS = ("tune", "heldout")
INNOCENT = "innocent"


@dataclass(frozen=True, slots=True)
class Item:
    id: str
    written_for: str
    turns: tuple[tuple[str, str], ...]  # (speaker, text), in order
    expect: frozenset[str]
    split: str
    source: str

    def script(self) -> dict[str, Any]:
        """The item as a call script (coach.scripted) of its turns."""
        return {"title": self.id, "turns": [{"speaker": s, "text": t} for s, t in self.turns]}


class CorpusError(ValueError):
    """A corpus file that does not follow the item format (one line says where)."""


def _item(raw: Any, where: str) -> Item:
    if not isinstance(raw, dict):
        raise CorpusError(f"{where}: an item must be a mapping")
    for key in ("id", "written_for", "agent", "expect", "split"):
        if key not in raw:
            raise CorpusError(f"{where}: item {raw.get('id', '?')} has no '{key}'")
    if raw["split"] not in SPLITS:
        raise CorpusError(f"{where}: item {raw['id']} has split {raw['split']!r}, "
                          f"expected tune or heldout")
    expect = raw["expect"] or []
    unknown = [c for c in expect if c not in WORD_CUES]
    if unknown:
        raise CorpusError(f"{where}: item {raw['id']} expects unknown cue(s) {', '.join(unknown)}")
    turns = [("customer", str(t)) for t in raw.get("before") or []]
    turns.append(("agent", str(raw["agent"])))
    for t in raw.get("after") or []:
        if not (isinstance(t, dict) and len(t) == 1 and next(iter(t)) in ("agent", "customer")):
            raise CorpusError(f"{where}: item {raw['id']}: each 'after' turn is "
                              f"{{agent: text}} or {{customer: text}}")
        (speaker, text), = t.items()
        turns.append((speaker, str(text)))
    return Item(str(raw["id"]), str(raw["written_for"]), tuple(turns), frozenset(expect),
                raw["split"], where)


def load_corpus(directory: str | Path = CORPUS_DIR) -> list[Item]:
    """Every item of every ``*.yaml`` file in ``directory``, in file order."""
    items: list[Item] = []
    files = sorted(Path(directory).glob("*.yaml"))
    if not files:
        raise CorpusError(f"{directory}: no corpus files (*.yaml)")
    for path in files:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(data, list):
            raise CorpusError(f"{path.name}: expected a list of items")
        items += [_item(raw, path.name) for raw in data]
    seen: set[str] = set()
    for it in items:
        if it.id in seen:
            raise CorpusError(f"{it.source}: duplicate item id {it.id}")
        seen.add(it.id)
    return items
