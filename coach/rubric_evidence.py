"""Evidence for the QA rubric (:mod:`coach.rubric`): the words and cues a reader is shown.

Pure. A step's positive evidence is the agent's words in context (``snippet``); a violation
is the cue that fired (``cue_ev``), with the sentence around its words and its measured
figures in a short phrase. A cue that only says something was absent (``no-follow-up``)
quotes nothing: its words are the apology it was raised about, not what was missing.
"""

from __future__ import annotations

from typing import Any

from .events import Cue, Word
from .language import Hit, Sentence

__all__ = ["ABSENCE_CUES", "cue_detail", "cue_ev", "cue_word_spans", "dedupe", "ev_time",
           "snippet", "ts", "words_ev"]

# Cues that only say something was absent: on a step the problem does not call for, they
# are not a fault (the live engine cannot tell a short wait from a real failure).
ABSENCE_CUES = frozenset({"no-follow-up"})
_SNIPPET_WORDS = 14
_CONTEXT_WORDS, _CONTEXT_BEFORE = 18, 6  # the sentence shown around a cue's words


def ts(t: float) -> str:
    m, s = divmod(max(float(t), 0.0), 60)
    return f"{int(m):02d}:{int(s):02d}"


def words_ev(words: tuple[Word, ...] | list[Word]) -> dict[str, Any]:
    return {
        "text": " ".join(w.text.strip() for w in words),
        "start": round(words[0].start, 3),
        "end": round(words[-1].end, 3),
        "speaker": words[0].speaker,
    }


def cue_detail(c: Cue) -> str:
    """The measured figures of a cue, as a short phrase for a reader."""
    e = c.evidence

    def num(key: str, fmt: str = ".0f") -> str | None:
        v = e.get(key)
        return None if not isinstance(v, int | float) else format(float(v), fmt)

    if c.id == "pace-fast" and num("wpm"):
        limit = num("threshold_wpm")
        return f"{num('wpm')} wpm over {num('over_s')} s" + (f" (limit {limit})" if limit else "")
    if c.id == "tone-tense" and num("median_f0_hz"):
        return f"pitch {num('median_f0_hz')} Hz against a usual {num('baseline_f0_hz')} Hz"
    if c.id == "volume-loud" and num("median_loudness_db"):
        return (f"level {num('median_loudness_db')} dB against a usual "
                f"{num('baseline_loudness_db')} dB")
    if c.id == "tone-flat" and num("f0_sd_st"):
        return f"pitch varied only {num('f0_sd_st', '.1f')} semitones"
    if c.id == "dead-air" and num("silence_s"):
        return f"{num('silence_s')} s of silence from {ts(float(e.get('silence_from', c.t)))}"
    if c.id == "talk-over" and num("overlap_s"):
        return f"both talking for {num('overlap_s', '.1f')} s"
    if c.id == "monologue" and num("talk_s"):
        return f"{num('talk_s')} s of talk without a customer turn"
    if c.id == "over-apology" and num("count"):
        return f"{num('count')} apologies within {num('window_speech_s')} s of speech"
    if c.id == "name-frustration":
        rose = "the customer's pitch and volume rose; " if "f0_hz" in e else ""
        return rose + "the feeling was not acknowledged"
    if c.id == "no-action":
        return "no fix offered after this apology"
    if c.id == "no-follow-up":
        return f"the call ended at {ts(c.t)} with no follow-up arranged"
    return ""


def cue_ev(c: Cue, sentence_at: dict[float, Sentence]) -> dict[str, Any]:
    """A cue as evidence: its id, time and title, the words it quotes (whose they are, and
    the sentence around them, since "sorry," alone says little) and its figures."""
    out: dict[str, Any] = {"cue": c.id, "t": round(c.t, 3), "title": c.title,
                           "severity": c.severity}
    words = [w for w in (c.evidence.get("words") or []) if isinstance(w, dict) and "start" in w]
    if c.id in ABSENCE_CUES:
        words = []  # its words are the apology it answers, not the follow-up that is missing
    if words:
        start = round(float(words[0]["start"]), 3)
        out["text"] = " ".join(str(w.get("text", "")).strip() for w in words)
        out["start"] = start
        out["end"] = round(float(words[-1].get("end", words[-1]["start"])), 3)
        out["speaker"] = c.speaker
        sentence = sentence_at.get(start)
        if sentence is not None:
            out["speaker"] = sentence.words[0].speaker
            i = next(k for k, w in enumerate(sentence.words) if round(w.start, 3) == start)
            lo = max(0, i - _CONTEXT_BEFORE)
            around = sentence.words[lo:lo + _CONTEXT_WORDS]
            if len(around) > len(words):
                out["context"] = " ".join(w.text.strip() for w in around)
    detail = cue_detail(c)
    if detail:
        out["detail"] = detail
    return out


def cue_word_spans(c: Cue) -> list[tuple[float, float]]:
    out = []
    for w in c.evidence.get("words") or []:
        start = w.get("start") if isinstance(w, dict) else None
        if isinstance(start, int | float):
            end = w.get("end", start)
            out.append((float(start), float(end) if isinstance(end, int | float) else start))
    return out


def ev_time(ev: dict[str, Any]) -> float:
    return float(ev.get("start", ev.get("t", 0.0)))


def snippet(h: Hit, *, lead: int = 0, through: Word | None = None) -> dict[str, Any]:
    """The hit read in context: from ``lead`` words before it to the end of its sentence
    (at most ``_SNIPPET_WORDS`` words), or on to ``through`` when that is further."""
    s = h.sentence
    first = s.words.index(h.words[0])
    lo = max(0, first - lead)
    last = s.words.index(h.words[-1])
    hi = max(last + 1, min(len(s.words), lo + _SNIPPET_WORDS))
    words = list(s.words[lo:hi])
    if through is not None and through.start > words[-1].start:
        words = [w for w in s.words[lo:] if w.start <= through.start] or words
        if through not in words:
            words.append(through)
    return words_ev(words)


def dedupe(evidence: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Evidence in time order, dropping snippets that start inside an earlier one."""
    out: list[dict[str, Any]] = []
    for ev in sorted(evidence, key=ev_time):
        if out and ev_time(ev) <= float(out[-1].get("end", ev_time(out[-1]))):
            continue
        out.append(ev)
    return out
