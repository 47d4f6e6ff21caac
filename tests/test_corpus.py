"""The phrasing corpus's structure (not its figures, which move as the playbook is tuned)
and the judgement benchmark's counting and error handling."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from bench import judge_bench
from bench.corpus import INNOCENT, WORD_CUES, CorpusError, Item, load_corpus

ITEMS = load_corpus()


def test_every_word_cue_has_at_least_40_phrasings():
    per_cue = Counter(it.written_for for it in ITEMS)
    for cue in WORD_CUES:
        assert per_cue[cue] >= 40, f"{cue}: only {per_cue[cue]} items"
    assert per_cue[INNOCENT] >= 300


def test_items_expect_what_they_were_written_for():
    for it in ITEMS:
        if it.written_for == INNOCENT:
            assert not it.expect, it.id
        else:
            assert it.written_for in it.expect, it.id
        assert any(s == "agent" for s, _ in it.turns), it.id


def test_halves_are_balanced_within_each_family():
    by_family: dict[str, Counter] = {}
    for it in ITEMS:
        by_family.setdefault(it.written_for, Counter())[it.split] += 1
    for family, c in by_family.items():
        n = c["tune"] + c["heldout"]
        assert abs(c["tune"] - c["heldout"]) <= max(2, n // 10), (family, dict(c))


def test_ids_are_unique_and_texts_not_repeated():
    assert len({it.id for it in ITEMS}) == len(ITEMS)
    texts = Counter(it.turns for it in ITEMS)
    assert [t for t, n in texts.items() if n > 1] == []


def _write(tmp_path: Path, body: str) -> Path:
    (tmp_path / "c.yaml").write_text(body, encoding="utf-8")
    return tmp_path


def test_missing_split_is_a_clear_error(tmp_path):
    d = _write(tmp_path, "- {id: a, written_for: innocent, agent: Hello., expect: []}\n")
    with pytest.raises(CorpusError, match="c.yaml: item a has no 'split'"):
        load_corpus(d)


def test_unknown_cue_is_a_clear_error(tmp_path):
    d = _write(tmp_path, "- {id: a, written_for: x, agent: Hi., expect: [rude], split: tune}\n")
    with pytest.raises(CorpusError, match="unknown cue"):
        load_corpus(d)


def test_bench_on_a_bad_corpus_says_so_in_one_line(tmp_path, capsys):
    assert judge_bench.main(["--corpus", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("judge_bench: ") and "\n" not in err


def _item(expect: set[str], split: str = "heldout") -> Item:
    return Item("x", "t", (("agent", "Hello."),), frozenset(expect), split, "t.yaml")


def test_scoring_counts_true_false_and_missed_cues():
    res = judge_bench.score([
        (_item({"blame-shift"}), {"blame-shift"}),            # TP
        (_item({"blame-shift"}), set()),                      # FN
        (_item(set()), {"no-action"}),                        # FP on an innocent item
        (_item({"minimizing"}), {"minimizing", "no-action"}),  # TP + FP
    ])
    assert res["per_cue"]["blame-shift"] == {"tp": 1, "fn": 1, "fp": 0, "precision": 1.0,
                                             "recall": 0.5, "f1": pytest.approx(2 / 3)}
    assert res["per_cue"]["no-action"]["fp"] == 2
    assert res["pooled"]["tp"] == 2 and res["pooled"]["fp"] == 2 and res["pooled"]["fn"] == 1
    assert res["innocent_items_with_a_cue"] == 1
    assert [e["false"] for e in res["errors"]] == [[], ["no-action"], ["no-action"]]


def test_bench_runs_the_engine_and_writes_json(tmp_path, capsys):
    d = _write(tmp_path, (
        "- {id: p, written_for: casual-apology, agent: \"Oops, my bad, I'll redo it now.\","
        " expect: [casual-apology], split: heldout}\n"
        "- {id: n, written_for: innocent, agent: Your parcel left the depot today.,"
        " expect: [], split: heldout}\n"))
    out = tmp_path / "r.json"
    assert judge_bench.main(["--corpus", str(d), "--split", "heldout", "--json", str(out),
                             "--show-errors"]) == 0
    res = json.loads(out.read_text())["text"]["splits"]["heldout"]
    assert res["items"] == 2 and res["innocent_items"] == 1
    assert set(res["per_cue"]) == set(WORD_CUES)
    assert "heldout P" in capsys.readouterr().out


# --- audio level: call plan, phone line, attribution (no model) ---------------------------

def test_calls_never_hold_two_items_expecting_the_same_cue():
    from bench.judge_audio import APOLOGIES_PER_CALL, _apologises, plan_calls

    held = [it for it in ITEMS if it.split == "heldout"]
    calls = plan_calls(held)
    assert sorted(it.id for call in calls for it in call) == sorted(it.id for it in held)
    for call in calls:
        cues = [c for it in call for c in it.expect]
        assert len(cues) == len(set(cues))
        assert sum(map(_apologises, call)) <= APOLOGIES_PER_CALL


def test_phone_line_keeps_the_voice_band_only(tmp_path):
    import numpy as np
    import soundfile as sf

    from bench.render import PHONE_RATE, SAMPLE_RATE, write_phone

    t = np.arange(SAMPLE_RATE // 2) / SAMPLE_RATE

    def level_db(hz: float) -> float:
        path = tmp_path / f"{hz}.wav"
        write_phone(path, (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32))
        y, sr = sf.read(path, dtype="float32")
        assert sr == PHONE_RATE and sf.info(path).subtype == "ULAW"
        mid = y[len(y) // 4: 3 * len(y) // 4]
        return 20 * np.log10(np.sqrt(np.mean(mid ** 2)) + 1e-12)

    inband = level_db(1000)
    assert inband > -15
    assert level_db(100) < inband - 20     # below the 300 Hz edge
    assert level_db(3900) < inband - 20    # above 3400 Hz (and near Nyquist at 8 kHz)


def test_a_cue_belongs_to_the_item_whose_span_holds_it():
    from bench.judge_audio import attribute
    from coach.events import Cue

    manifest = {"items": [{"id": "a", "start": 0.5, "end": 4.0, "span_end": 7.0},
                          {"id": "b", "start": 7.0, "end": 12.0, "span_end": 15.0}]}

    def cue(cid: str, t: float) -> Cue:
        return Cue(cid, t, "agent", "nudge", "T", "A")

    got = attribute([cue("blame-shift", 3.0), cue("no-action", 6.4),
                     cue("minimizing", 9.0), cue("dead-air", 9.5)], manifest)
    assert got == {"a": {"blame-shift", "no-action"}, "b": {"minimizing"}}


def test_bench_rejects_an_unknown_audio_part(capsys):
    assert judge_bench.main(["--audio", "--parts", "corpus,voices"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "judge_bench: unknown part(s) voices; expected corpus, voice, real"


def test_lagged_words_still_reach_the_engine():
    items = [it for it in ITEMS if it.id in ("casual-apology-001", "innocent-070")]
    from coach.playbook import load_playbook

    pb = load_playbook()
    for it in items:
        # the same words arriving 3 s late: the engine must still see them (the figure
        # may differ, which is what --lag measures, but a late word is not lost)
        assert judge_bench.text_fired(it, pb, 3.0) <= set(WORD_CUES)
    assert "casual-apology" in judge_bench.text_fired(items[0], pb, 3.0)
