"""A cue's evidence as a person reads it (pure).

The cue engine attaches evidence to every cue as a plain dict: the words that triggered it
(``[{"text", "start", "end"}, ...]``) and/or the figures it measured (``{"wpm": 191.3,
"over_s": 15.2, "baseline_wpm": None, ...}``). :func:`describe` turns that dict into one
short line for the terminal, the replay cue cards, ``coach calls show`` and the QA
report: words quoted as words with their call time, every figure with a label and its
unit, missing values left out, never a Python repr::

    >>> describe({"words": [{"text": "sorry,", "start": 42.1, "end": 42.4},
    ...                     {"text": "but", "start": 42.4, "end": 42.6}]})
    '“sorry, but” at 0:42'
    >>> describe({"wpm": 191.3, "over_s": 15.24, "threshold_wpm": 175, "baseline_wpm": None})
    'pace 191 words/min, over 15.2 s, limit 175 words/min'

Keys the engine uses today are in :data:`KNOWN` (label and kind). A key not in it is still
read correctly from its suffix (``_s`` seconds, ``_hz`` Hz, ``_db`` dB, ``wpm`` words per
minute, ``_st`` semitones, ``_from``/``_start``/``_end``/``_at`` a moment of the call,
``rise``/``_pct`` a percentage, a list of words quoted), so evidence keys can be added to
the engine without touching this module.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["BY_CUE", "KNOWN", "clock", "describe", "figures", "parts", "quote_words",
           "is_withdrawn", "split_withdrawn", "withdrawal"]

# kind -> (unit suffix, decimals). "time" is a moment of the call shown as m:ss,
# "count" a plain whole number, "pct" a fraction shown as a percentage.
_UNITS: dict[str, tuple[str, int]] = {
    "s": (" s", 1),
    "hz": (" Hz", 0),
    "db": (" dB", 1),
    "wpm": (" words/min", 0),
    "st": (" semitones", 1),
    "pct": (" %", 0),
    "count": ("", 0),
    "number": ("", 1),
}

KNOWN: dict[str, tuple[str, str]] = {
    # words
    "words": ("", "words"),
    "problem_words": ("the problem:", "words"),
    # pace
    "wpm": ("pace", "wpm"),
    "over_s": ("over", "s"),
    "word_count": ("{} words", "count"),
    "threshold_wpm": ("limit", "wpm"),
    "baseline_wpm": ("usual pace", "wpm"),
    # pitch and loudness (the agent's; the customer's for name-frustration)
    "median_f0_hz": ("pitch", "hz"),
    "f0_hz": ("pitch", "hz"),
    "baseline_f0_hz": ("usual pitch", "hz"),
    "rise": ("{} above usual", "pct"),
    "median_loudness_db": ("level", "db"),
    "loudness_db": ("level", "db"),
    "baseline_loudness_db": ("usual level", "db"),
    "f0_sd_st": ("pitch variation", "st"),
    "readings": ("{} readings", "count"),
    # apologies
    "count": ("count", "count"),
    "window_speech_s": ("within {} of agent speech", "s"),
    "window_end": ("no fix offered by {}", "time"),
    "agent_speech_s": ("{} of agent speech after it", "s"),
    "response_window": ("not acknowledged in the reply {}", "span"),
    "reply_from_s": ("not acknowledged in the reply from {}", "time"),
    "reply_to_s": ("to {}", "time"),
    # timing
    "silence_from": ("silent from {}", "time"),
    "silence_s": ("{} of silence", "s"),
    "agent_start": ("agent started at {}", "time"),
    "customer_start": ("customer talking since {}", "time"),
    "overlap_s": ("both talking for {}", "s"),
    "talk_from": ("agent talking from {}", "time"),
    "talk_s": ("{} of agent talk", "s"),
    # cue hygiene
    "downgraded_from": ("shown as a nudge: another warning was on screen", "flag"),
    # a cue the words after it showed wrong (a retraction): {"at": s, "reason": "..."}
    "withdrawn": ("withdrawn", "withdrawn"),
}
"""Evidence key -> (label, kind). Kinds: words, time (a moment of the call), span (two
moments), flag (the label alone when the value is set), count, number, and the units of
``_UNITS``. A ``{}`` in a label is where the value goes; otherwise it follows the label."""

BY_CUE: dict[str, dict[str, tuple[str, str]]] = {
    "over-apology": {"count": ("{} apologies", "count")},
    "name-frustration": {
        "f0_hz": ("customer's pitch", "hz"),
        "baseline_f0_hz": ("their usual", "hz"),
        "loudness_db": ("customer's level", "db"),
        "baseline_loudness_db": ("their usual", "db"),
    },
}
"""Labels that depend on the cue (cue id -> key -> (label, kind)), over :data:`KNOWN`."""

_TIME_SUFFIXES = ("_from", "_start", "_end", "_at")
_WORD_GAP_S = 1.5  # evidence words further apart than this are quoted separately


def clock(t: float) -> str:
    """A moment of the call: 42.7 -> "0:42", 3725 -> "1:02:05" (whole seconds, floored)."""
    s = int(max(float(t), 0.0))
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _is_word(v: Any) -> bool:
    return isinstance(v, Mapping) and isinstance(v.get("text"), str) and _is_num(v.get("start"))


def quote_words(words: Iterable[Any]) -> str:
    """Words quoted as said, with their time: “sorry, but” at 0:42. Words more than 1.5 s
    apart are quoted separately (“sorry” at 0:12, “so sorry” at 0:30)."""
    ws = sorted((w for w in words if _is_word(w) and w["text"].strip()),
                key=lambda w: float(w["start"]))
    runs: list[list[Mapping[str, Any]]] = []
    for w in ws:
        last = runs[-1][-1] if runs else None
        last_end = None if last is None else float(last.get("end", last["start"]))
        if last_end is None or float(w["start"]) - last_end > _WORD_GAP_S:
            runs.append([w])
        else:
            runs[-1].append(w)
    return ", ".join(
        f"“{' '.join(w['text'].strip() for w in run)}” at {clock(float(run[0]['start']))}"
        for run in runs)


def _kind(key: str, cue_id: str | None = None) -> tuple[str, str]:
    """Label and kind of an evidence key: from the tables, else from its suffix."""
    if cue_id is not None and key in BY_CUE.get(cue_id, {}):
        return BY_CUE[cue_id][key]
    if key in KNOWN:
        return KNOWN[key]
    k = key.lower()
    for suffix, kind in (("_s", "s"), ("_hz", "hz"), ("_db", "db"), ("_wpm", "wpm"),
                         ("_st", "st"), ("_pct", "pct")):
        if k.endswith(suffix):
            return _label(key[: -len(suffix)]), kind
    if k == "wpm" or k.endswith("wpm"):
        return _label(key[:-3]) or "pace", "wpm"
    if k == "rise" or k.endswith("_rise"):
        return _label(key), "pct"
    if k.endswith(_TIME_SUFFIXES):
        return _label(key), "time"
    if k.endswith("words"):
        return _label(key[:-5]) + ":", "words"
    return _label(key), "number"


def _label(key: str) -> str:
    return key.replace("_", " ").strip()


def _put(label: str, value: str) -> str:
    """``label`` with ``value`` in its ``{}``, else after it."""
    if "{}" in label:
        return label.replace("{}", value)
    return f"{label} {value}".strip()


def _number(v: float, kind: str) -> str:
    unit, decimals = _UNITS.get(kind, ("", 1))
    if kind == "hz" and abs(v) < 20:
        decimals = 1  # a rate (syllables per second), not a pitch
    if kind == "pct":
        v = v * 100
    if kind == "count" or (kind == "number" and float(v).is_integer()):
        return f"{round(v):d}{unit}"
    text = f"{v:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return ("0" if text == "-0" else text) + unit


def _pair(value: Any) -> bool:
    return isinstance(value, list | tuple) and len(value) == 2 and all(map(_is_num, value))


def _figure(key: str, value: Any, cue_id: str | None = None) -> str | None:
    """One figure as ``label value unit``, or None when there is nothing to say."""
    label, kind = _kind(key, cue_id)
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    if kind == "words" or (isinstance(value, list | tuple) and value
                           and all(map(_is_word, value))):
        q = quote_words(value) if isinstance(value, list | tuple) else ""
        return _put(label, q) if q else None
    if kind == "flag":
        return label if value not in (False, "", 0) else None
    if kind == "withdrawn":
        return _put(label, withdrawal(value)) if isinstance(value, Mapping) or value else None
    if kind == "span" or (kind in ("number", "time") and _pair(value)):
        return _put(label, f"{clock(value[0])}–{clock(value[1])}") if _pair(value) else None
    if isinstance(value, bool):
        return f"{label}: {'yes' if value else 'no'}"
    if _is_num(value):
        return _put(label, clock(value) if kind == "time" else _number(float(value), kind))
    if isinstance(value, str):
        return f"{label}: {value.strip()}" if value.strip() else None
    if isinstance(value, Mapping):
        inner = figures(value)
        return f"{label} ({', '.join(inner)})" if inner else None
    if isinstance(value, list | tuple):
        items = [x for x in (_plain(v) for v in value) if x]
        return f"{label}: {', '.join(items)}" if items else None
    return None


def withdrawal(value: Any) -> str:
    """When and why a cue was withdrawn, as a person reads it: "at 0:03: the agent fixed
    it straight after" ("" when nothing is known)."""
    if not isinstance(value, Mapping):
        return ""
    at, reason = value.get("at"), str(value.get("reason") or "").strip()
    when = f"at {clock(at)}" if _is_num(at) else ""
    return ": ".join(x for x in (when, reason) if x)


def is_withdrawn(evidence: Any) -> bool:
    """Whether a stored cue's evidence says live coaching withdrew it: it carries a
    ``withdrawn`` key (the importer's ``{"at", "reason"}``, whatever its content). The
    rubric, the review API and the exports test this; the store's counts and cue filter
    make the same test in SQL (``coach.store.schema``)."""
    return isinstance(evidence, Mapping) and "withdrawn" in evidence


def split_withdrawn(evidence: Any) -> tuple[dict[str, Any], str | None]:
    """A stored cue's evidence without its withdrawal (the ``withdrawn`` key a retraction
    adds), and the withdrawal as :func:`withdrawal` words it: None for a standing cue."""
    if not isinstance(evidence, Mapping):
        return {}, None
    standing = {k: v for k, v in evidence.items() if k != "withdrawn"}
    return standing, withdrawal(evidence["withdrawn"]) if is_withdrawn(evidence) else None


def _plain(v: Any) -> str | None:
    if _is_num(v):
        return _number(float(v), "number")
    if isinstance(v, str) and v.strip():
        return v.strip()
    return None


def figures(evidence: Mapping[str, Any], *, cue_id: str | None = None,
            skip: Sequence[str] = ("words",)) -> list[str]:
    """The evidence's figures (and any other word lists), each as ``label value unit``,
    in the order the engine gave them; ``skip`` keys are left out. ``cue_id`` picks
    labels that depend on the cue (the customer's pitch for name-frustration)."""
    out = []
    for key, value in evidence.items():
        if key in skip:
            continue
        text = _figure(str(key), value, cue_id)
        if text:
            out.append(text)
    return out


def parts(evidence: Mapping[str, Any] | None, *, cue_id: str | None = None) -> list[str]:
    """The quoted trigger words (if any), then the figures as one comma-separated part."""
    if not isinstance(evidence, Mapping):
        return []
    out = []
    words = evidence.get("words")
    if isinstance(words, list | tuple):
        q = quote_words(words)
        if q:
            out.append(q)
    figs = figures(evidence, cue_id=cue_id)
    if figs:
        out.append(", ".join(figs))
    return out


def describe(evidence: Mapping[str, Any] | None, *, cue_id: str | None = None) -> str:
    """The whole evidence as one line ("" when it holds nothing worth saying)."""
    return "; ".join(parts(evidence, cue_id=cue_id))
