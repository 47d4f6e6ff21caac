"""The cue engine: committed words, voice activity, turns and prosody in; coaching cues out.

Pure and deterministic: no clock, no I/O. Time is call audio time, carried by the events.
The two channels' events interleave with a few seconds of skew (each channel commits its
words when its own transcription agrees), so every decision that involves both speakers is
made from event times, and waits ``settings.skew_s`` past the end of its window before it
concludes that something did *not* happen.

Text is matched as meaning-bearing patterns over normalised sentences: an apology is found
first, then what follows it decides whether it was qualified ("sorry, but..."), conditional
("sorry if you felt..."), generic ("sorry for any inconvenience") or fine. All phrases,
thresholds and windows come from the :class:`~coach.playbook.Playbook`.
"""

from __future__ import annotations

import bisect
import math
import re
import statistics
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from .events import AGENT, CUSTOMER, Activity, Cue, Prosody, Speaker, Turn, Word
from .playbook import CueSpec, PatternSet, Playbook

__all__ = ["Baseline", "CueEngine", "normalise_word", "split_sentences"]


@dataclass(frozen=True, slots=True)
class Baseline:
    """A speaker's own typical delivery: median pitch, loudness and speaking rate. Any field
    left ``None`` is calibrated from the first ``settings.baseline_s`` of their speech."""

    f0_hz: float | None = None
    loudness_db: float | None = None
    wpm: float | None = None


# --- text normalisation ------------------------------------------------------------------

_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'", "\u00b4": "'", "\u2032": "'"})
_WHOLE = {
    "i'm": "i am", "im": "i am", "won't": "will not", "can't": "can not", "cannot": "can not",
    "shan't": "shall not", "ain't": "is not", "let's": "let us", "y'all": "you all",
    "gonna": "going to", "wanna": "want to", "gotta": "got to", "kinda": "kind of",
    "dunno": "do not know", "'cause": "because", "'bout": "bout", "ok": "okay",
    "dont": "do not", "didnt": "did not", "doesnt": "does not", "cant": "can not",
    "wont": "will not", "isnt": "is not", "wasnt": "was not", "ive": "i have",
}
# Words whose "'s" is "is" rather than a possessive.
_S_IS = {
    "it", "that", "there", "here", "what", "who", "where", "how", "he", "she", "this",
    "everything", "nothing", "something", "someone", "everyone", "everybody", "somebody",
    "nobody", "why", "when", "which",
}
_SUFFIXES = (("n't", " not"), ("'re", " are"), ("'ve", " have"), ("'ll", " will"),
             ("'d", " would"), ("'m", " am"))
_EDGE = re.compile(r"^[^\w']+|[^\w']+$")
_INNER = re.compile(r"[^\w' ]")
_TERMINAL = re.compile(r"(?:[.?!]|\.\.\.|\u2026)[\"')\]]*$")


def normalise_word(raw: str) -> list[str]:
    """Normalised tokens of one transcribed word: lower case, punctuation stripped,
    contractions expanded (``"I'm,"`` -> ``["i", "am"]``)."""
    text = raw.translate(_QUOTES).lower().strip()
    out: list[str] = []
    for piece in re.split(r"[\s\-\u2013\u2014/]+", text):
        piece = _EDGE.sub("", piece)
        piece = _INNER.sub("", piece)
        if not piece:
            continue
        if piece in _WHOLE:
            out.extend(_WHOLE[piece].split())
            continue
        for suffix, repl in _SUFFIXES:
            if piece.endswith(suffix) and len(piece) > len(suffix):
                stem = piece[: -len(suffix)]
                if suffix == "n't" and stem in ("ca", "wo", "sha"):
                    stem = {"ca": "can", "wo": "will", "sha": "shall"}[stem]
                piece = stem + repl
                break
        else:
            if piece.endswith("'s") and len(piece) > 2:
                stem = piece[:-2]
                piece = f"{stem} is" if stem in _S_IS else f"{stem}s"
        piece = piece.replace("'", "")
        out.extend(piece.split())
    return out


_LAUGH_SYLLABLES = {"ha", "hah", "he", "heh", "ho"}


def _terminal(raw: str) -> bool:
    return bool(_TERMINAL.search(raw.strip()))


def split_sentences(words: list[Word], *, pause_s: float = 0.8) -> list[list[Word]]:
    """Group words into sentences at terminal punctuation or pauses of ``pause_s``."""
    out: list[list[Word]] = []
    cur: list[Word] = []
    for w in words:
        if cur and (_terminal(cur[-1].text) or w.start - cur[-1].end >= pause_s):
            out.append(cur)
            cur = []
        cur.append(w)
    if cur:
        out.append(cur)
    return out


def _ev(words: list[Word]) -> list[dict[str, Any]]:
    seen: set[int] = set()
    out = []
    for w in words:
        if id(w) in seen:
            continue
        seen.add(id(w))
        out.append({"text": w.text.strip(), "start": round(w.start, 3), "end": round(w.end, 3)})
    return out


# --- sentences -------------------------------------------------------------------------------


@dataclass
class _Apology:
    sentence: _Sentence
    tok_start: int
    tok_end: int
    words: list[Word]
    clock: float
    state: str = "pending"  # pending -> yes | no
    courtesy: bool = False
    done: set[str] = field(default_factory=set)  # cue ids already judged for this apology

    @property
    def start(self) -> float:
        return self.words[0].start

    @property
    def end(self) -> float:
        return self.words[-1].end


class _Sentence:
    """The committed words of one sentence of one speaker, as normalised text."""

    def __init__(self) -> None:
        self.words: list[Word] = []
        self.clocks: list[float] = []  # speaker's speech clock after each word
        self.toks: list[str] = []
        self.tok_word: list[int] = []
        self.offsets: list[int] = []
        self.text = ""
        self.seen: set[tuple[str, int]] = set()
        self.apologies: list[_Apology] = []
        self.settled = False
        # The last apology of the sentence just before, for a contrast opening this one.
        self.carry: _Apology | None = None

    def add(self, word: Word, toks: list[str], clock: float) -> None:
        self.words.append(word)
        self.clocks.append(clock)
        for tok in toks:
            self.offsets.append(len(self.text) + (1 if self.text else 0))
            self.text = f"{self.text} {tok}" if self.text else tok
            self.toks.append(tok)
            self.tok_word.append(len(self.words) - 1)

    def tok_at(self, char: int) -> int:
        """Index of the token containing character ``char`` of ``text``."""
        return max(0, bisect.bisect_right(self.offsets, char) - 1)

    def span(self, start_char: int, end_char: int) -> tuple[int, int]:
        """Token range [start, end) covered by a character range."""
        return self.tok_at(start_char), self.tok_at(max(start_char, end_char - 1)) + 1

    def words_of(self, tok_start: int, tok_end: int) -> list[Word]:
        if not self.toks:
            return []
        idx = sorted({self.tok_word[i] for i in range(tok_start, min(tok_end, len(self.toks)))})
        return [self.words[i] for i in idx]

    def tail(self, tok_start: int) -> str:
        return " ".join(self.toks[tok_start:])


# --- per-speaker voice activity ----------------------------------------------------------------

_SRC_WORD, _SRC_TURN, _SRC_ACTIVITY = 1, 2, 3


class _Timeline:
    """When one speaker was talking, from the best source available: Activity events, else
    Turn events, else committed words."""

    def __init__(self, word_merge_s: float):
        self.source = 0
        self.spans: list[list[float]] = []
        self.open_start: float | None = None
        self._word_merge_s = word_merge_s

    def _add(self, start: float, end: float, merge_s: float) -> None:
        i = bisect.bisect_left(self.spans, [start, end])
        self.spans.insert(i, [start, end])
        merged: list[list[float]] = []
        for s, e in self.spans:
            if merged and s <= merged[-1][1] + merge_s:
                merged[-1][1] = max(merged[-1][1], e)
            else:
                merged.append([s, e])
        self.spans = merged

    def activity(self, t: float, speaking: bool) -> None:
        self.source = _SRC_ACTIVITY
        if speaking:
            if self.open_start is None:
                self.open_start = t
        elif self.open_start is not None:
            self._add(self.open_start, max(t, self.open_start), 0.0)
            self.open_start = None

    def turn(self, start: float, end: float) -> None:
        if self.source <= _SRC_TURN:
            self.source = _SRC_TURN
            self._add(start, end, 0.0)

    def word(self, start: float, end: float) -> None:
        if self.source <= _SRC_WORD:
            self.source = _SRC_WORD
            self._add(start, end, self._word_merge_s)

    def intervals(self, now: float, merge_s: float = 0.0) -> list[tuple[float, float, bool]]:
        """(start, end, still_open) spans, open one ending at ``now``; gaps < merge_s merged."""
        raw = [(s, e, False) for s, e in self.spans]
        if self.open_start is not None:
            raw.append((self.open_start, max(now, self.open_start), True))
        out: list[tuple[float, float, bool]] = []
        for s, e, o in raw:
            if out and s <= out[-1][1] + merge_s:
                ps, pe, po = out[-1]
                out[-1] = (ps, max(pe, e), po or o)
            else:
                out.append((s, e, o))
        return out

    def last_end(self) -> float | None:
        return self.spans[-1][1] if self.spans else None


# --- baselines ---------------------------------------------------------------------------------


class _Calibration:
    """Medians of a speaker's first seconds of speech."""

    def __init__(self, given: Baseline | None, need_s: float, min_readings: int):
        self.given = given or Baseline()
        self.need = need_s
        self.min = min_readings
        self.seen = 0
        self.f0: list[float] = []
        self.loud: list[float] = []
        self.wpm: list[float] = []
        self._fixed: Baseline | None = None

    def add(self, p: Prosody) -> None:
        if self._fixed is not None:
            return
        self.seen += 1
        if p.f0_hz is not None and p.f0_hz > 0:
            self.f0.append(p.f0_hz)
        if p.loudness_db is not None and math.isfinite(p.loudness_db):
            self.loud.append(p.loudness_db)
        if p.wpm is not None:
            self.wpm.append(p.wpm)
        if self.seen >= self.need:
            self._fixed = self._current()

    def _median(self, values: list[float]) -> float | None:
        return statistics.median(values) if len(values) >= self.min else None

    def _current(self) -> Baseline:
        g = self.given
        return Baseline(
            f0_hz=g.f0_hz if g.f0_hz is not None else self._median(self.f0),
            loudness_db=g.loudness_db if g.loudness_db is not None else self._median(self.loud),
            wpm=g.wpm if g.wpm is not None else self._median(self.wpm),
        )

    def value(self) -> Baseline:
        """The baseline: given values now, calibrated ones once enough speech was heard."""
        if self._fixed is not None:
            return self._fixed
        g = self.given
        return Baseline(g.f0_hz, g.loudness_db, g.wpm)


def _speaking(p: Prosody) -> bool:
    return p.speaking or p.voiced_s > 0


# --- pending decisions -------------------------------------------------------------------------


@dataclass
class _Frustration:
    start: float
    end: float
    words: list[Word]
    figures: dict[str, Any]
    decided: bool = False


@dataclass
class _Hit:
    """A matched span in an agent's sentence (action, empathy, follow-up...)."""

    start: float
    end: float
    words: list[Word]


class CueEngine:
    """Streaming cue engine over one call.

    ``feed(event)`` takes committed words, activity, turns and prosody (anything else is
    ignored) and returns the cues it triggers; ``advance(t)`` says audio time has reached
    ``t`` (time-based cues such as dead air fire here); ``flush(t_end)`` ends the call.
    """

    def __init__(
        self,
        playbook: Playbook,
        *,
        agent_baseline: Baseline | None = None,
        customer_channel: bool = True,
    ):
        self.pb = playbook
        self.s = playbook.settings
        self.customer_channel = customer_channel
        s = self.s
        self._calib = {
            AGENT: _Calibration(agent_baseline, s.baseline_s, int(s.baseline_min_readings)),
            CUSTOMER: _Calibration(None, s.baseline_s, int(s.baseline_min_readings)),
        }
        self._now = 0.0
        self._ended = False
        # text
        self._sentence = {AGENT: _Sentence(), CUSTOMER: _Sentence()}
        self._last_word: dict[str, Word | None] = {AGENT: None, CUSTOMER: None}
        self._clock = {AGENT: 0.0, CUSTOMER: 0.0}
        self._agent_words: list[tuple[float, float, float, float]] = []  # start, end, clock0, clock1
        self._apologies: list[_Apology] = []
        self._no_action: list[_Apology] = []
        self._actions: list[_Hit] = []
        self._empathy: list[_Hit] = []
        self._follow_ups: list[tuple[_Hit, _Sentence, int]] = []
        self._problems: list[_Hit] = []
        self._frustrations: list[_Frustration] = []
        self._laughs: list[Word] = []
        # timing
        self._timeline = {AGENT: _Timeline(s.speech_gap_s), CUSTOMER: _Timeline(s.speech_gap_s)}
        self._talkover_done: set[float] = set()
        self._monologue_done: set[float] = set()
        self._dead_air_done: set[float] = set()
        # voice
        self._pace_run = 0
        self._agent_run_start: float | None = None  # start of the agent's current stretch
        self._agent_quiet = 0  # consecutive readings without agent speech
        self._pace_words: deque[tuple[float, float]] = deque(maxlen=400)
        self._tense_run = 0
        self._loud_run = 0
        self._rise_run = 0
        self._f0: deque[float] = deque()
        self._loud: deque[float] = deque()
        # hygiene
        self._last_fired: dict[str, float] = {}
        self._last_warn: float | None = None
        self._precompile()

    # -- set-up ---------------------------------------------------------------------------

    def _precompile(self) -> None:
        def after(ps: PatternSet, lead: float) -> re.Pattern[str] | None:
            # The pattern may begin up to ``lead`` words after the apology.
            if ps.regex is None:
                return None
            return re.compile(rf"(?:\S+ ){{0,{int(lead)}}}?(?:{ps.regex.pattern})")

        q = self.pb.cue("qualified-apology")
        c = self.pb.cue("conditional-apology")
        g = self.pb.cue("generic-apology")
        self._re_contrast = after(q.pattern("contrast"), q.windows.get("contrast_words", 8))
        self._re_contrast_open = after(q.pattern("contrast"), 1)
        self._re_action_after = after(self.pb.lex("action"), 1)
        self._re_conditional = after(c.pattern("conditional"), c.windows.get("lead_words", 2))
        self._re_stock = after(g.pattern("stock"), g.windows.get("lead_words", 2))
        spec = g.pattern("specific")
        self._re_specific = None if spec.regex is None else re.compile(spec.regex.pattern)
        self._laugh_re = self.pb.lex("laughter")

    def baseline(self, speaker: Speaker) -> Baseline:
        """The speaker's baseline as known so far (given, then calibrated)."""
        return self._calib[speaker].value()

    # -- public API -----------------------------------------------------------------------

    def feed(self, event: object) -> list[Cue]:
        """Take one event; return the cues it triggers (in time order)."""
        out: list[Cue] = []
        if isinstance(event, Word):
            if not event.final:
                return []  # partial hypotheses may still change: never cue on them
            if event.speaker == CUSTOMER and not self.customer_channel:
                return []
            self._now = max(self._now, event.end)
            out += self._word(event)
        elif isinstance(event, Activity):
            if event.speaker == CUSTOMER and not self.customer_channel:
                return []
            self._now = max(self._now, event.t)
            self._timeline[event.speaker].activity(event.t, event.speaking)
        elif isinstance(event, Turn):
            if event.speaker == CUSTOMER and not self.customer_channel:
                return []
            self._now = max(self._now, event.end)
            self._timeline[event.speaker].turn(event.start, event.end)
        elif isinstance(event, Prosody):
            if event.speaker == CUSTOMER and not self.customer_channel:
                return []
            self._now = max(self._now, event.t)
            out += self._prosody(event)
        else:
            return []
        out += self._tick()
        return _ordered(out)

    def advance(self, t: float) -> list[Cue]:
        """Audio time has reached ``t``: let time-based cues fire."""
        self._now = max(self._now, t)
        return _ordered(self._tick())

    def flush(self, t_end: float) -> list[Cue]:
        """The call is over at ``t_end``: settle every pending window."""
        self._now = max(self._now, t_end)
        out = self._tick(check_dead_air=False)
        self._ended = True
        for speaker in (AGENT, CUSTOMER):
            out += self._scan(speaker, self._sentence[speaker], final=True)
            self._sentence[speaker] = _Sentence()
        out += self._tick(check_dead_air=False)
        out += self._no_follow_up(t_end)
        return _ordered(out)

    # -- hygiene --------------------------------------------------------------------------

    def _emit(self, cue_id: str, t: float, evidence: dict[str, Any]) -> list[Cue]:
        spec = self.pb.cue(cue_id)
        if not spec.enabled:
            return []
        last = self._last_fired.get(cue_id)
        if last is not None and abs(t - last) < spec.cooldown_s:
            return []
        severity = spec.severity
        if severity == "warn":
            # One warn on screen at a time: a second one close by is shown as a nudge.
            if self._last_warn is not None and abs(t - self._last_warn) < self.s.warn_gap_s:
                severity = "nudge"
                evidence = {**evidence, "downgraded_from": "warn"}
            else:
                self._last_warn = t
        self._last_fired[cue_id] = t
        return [
            Cue(
                id=cue_id,
                t=round(t, 3),
                speaker=spec.speaker,  # type: ignore[arg-type]
                severity=severity,  # type: ignore[arg-type]
                title=spec.title,
                advice=spec.advice,
                evidence=evidence,
            )
        ]

    # -- words ----------------------------------------------------------------------------

    def _word(self, w: Word) -> list[Cue]:
        out: list[Cue] = []
        speaker = w.speaker
        self._timeline[speaker].word(w.start, w.end)
        if speaker == AGENT:
            self._pace_words.append((w.start, w.end))
        prev = self._last_word[speaker]
        # Speech clock: word time plus short gaps, as in coach.rate.
        gap = 0.0 if prev is None else w.start - prev.end
        clock0 = self._clock[speaker]
        self._clock[speaker] += max(0.0, w.end - w.start) + (gap if 0 < gap < self.s.speech_gap_s else 0)
        self._last_word[speaker] = w
        if speaker == AGENT:
            self._agent_words.append((w.start, w.end, clock0, self._clock[AGENT]))
        sentence = self._sentence[speaker]
        if sentence.words and prev is not None and (
            _terminal(prev.text) or w.start - prev.end >= self.s.sentence_pause_s
        ):
            out += self._scan(speaker, sentence, final=True)
            sentence = self._sentence[speaker] = self._next_sentence(sentence, w.start - prev.end)
        raw = w.text.strip().lower().rstrip(".,!?;:")
        if speaker == AGENT and self._laugh_re.fullmatch(raw):
            self._laughs.append(w)
            return out
        if speaker == AGENT and raw in _LAUGH_SYLLABLES:
            # "Ha ha": one "ha" is an interjection, two in a row are laughter.
            if prev is not None and prev.text.strip().lower().rstrip(".,!?;:") in _LAUGH_SYLLABLES:
                self._laughs.append(w)
        sentence.add(w, normalise_word(w.text), self._clock[speaker])
        final = _terminal(w.text)
        out += self._scan(speaker, sentence, final=final)
        if final:
            self._sentence[speaker] = self._next_sentence(sentence, 0.0)
        return out

    def _next_sentence(self, done: _Sentence, gap: float) -> _Sentence:
        nxt = _Sentence()
        apologies = [a for a in done.apologies if a.state == "yes" and not a.courtesy]
        if apologies and gap < 2 * self.s.sentence_pause_s + 0.5:
            nxt.carry = apologies[-1]
        return nxt

    def _scan(self, speaker: str, s: _Sentence, *, final: bool) -> list[Cue]:
        if not s.toks:
            return []
        if speaker == CUSTOMER:
            return self._scan_customer(s)
        return self._scan_agent(s, final=final)

    def _new_matches(self, s: _Sentence, kind: str, ps: PatternSet) -> list[tuple[int, int]]:
        """Token spans of matches of ``ps`` in ``s`` not seen before (keyed by start)."""
        out = []
        for m in ps.finditer(s.text):
            a, b = s.span(m.start(), m.end())
            if (kind, a) in s.seen:
                continue
            s.seen.add((kind, a))
            out.append((a, b))
        return out

    def _scan_customer(self, s: _Sentence) -> list[Cue]:
        for a, b in self._new_matches(s, "problem", self.pb.lex("problem")):
            ws = s.words_of(a, b)
            self._problems.append(_Hit(ws[0].start, ws[-1].end, ws))
        negated = _spans(s, self.pb.lex("not_frustration"))
        for a, b in self._new_matches(s, "frustration", self.pb.lex("frustration")):
            if any(na < b and nb > a for na, nb in negated):
                continue
            ws = s.words_of(a, b)
            self._problems.append(_Hit(ws[0].start, ws[-1].end, ws))
            self._frustrated(ws[0].start, ws[-1].end, ws, {})
        return []

    def _frustrated(self, start: float, end: float, words: list[Word], figures: dict) -> None:
        for f in self._frustrations:
            # Keep one pending window per outburst: more frustration before the agent has
            # answered extends the evidence instead of opening a second window.
            if not f.decided and self._agent_index_after(f.end) is None:
                f.words += words
                f.figures.update(figures)
                f.end = max(f.end, end)
                return
        self._frustrations.append(_Frustration(start, end, list(words), dict(figures)))

    def _scan_agent(self, s: _Sentence, *, final: bool) -> list[Cue]:
        out: list[Cue] = []
        confirm = int(self.s.confirm_words)
        ripe = final or s.settled
        # 1. apologies, confirmed once enough words follow to rule out "sorry, could you..."
        for a, b in self._new_matches(s, "apology", self.pb.lex("apology")):
            ws = s.words_of(a, b)
            s.apologies.append(_Apology(s, a, b, ws, s.clocks[s.tok_word[b - 1]]))
        for apo in s.apologies:
            if apo.state == "pending" and (ripe or len(s.toks) - apo.tok_end >= confirm):
                out += self._confirm_apology(s, apo)
        for apo in s.apologies:
            if apo.state == "yes" and self._clarifying(s, apo):
                self._retract(apo)
            elif apo.state == "yes" and not apo.courtesy and self._courtesy(s, apo):
                # "sorry to keep ... you waiting": the words that make it a courtesy came
                # after the apology was confirmed; it no longer asks for a fix
                apo.courtesy = True
                if apo in self._no_action:
                    self._no_action.remove(apo)
        for apo in s.apologies:
            if apo.state == "yes":
                out += self._judge_apology(s, apo, ripe)
        if s.carry is not None:
            out += self._carried_contrast(s, ripe)
        # 2. sentence-level cues and hits
        out += self._sentence_cue(s, "casual-apology", "casual", ripe)
        out += self._sentence_cue(s, "minimizing", "minimizing", ripe)
        out += self._sentence_cue(s, "blame-shift", "blame", ripe)
        out += self._sentence_cue(s, "empty-promise", "promise", ripe)
        for a, b in self._new_matches(s, "action", self.pb.lex("action")):
            ws = s.words_of(a, b)
            self._actions.append(_Hit(ws[0].start, ws[-1].end, ws))
        for a, b in self._new_matches(s, "follow_up", self.pb.lex("follow_up")):
            ws = s.words_of(a, b)
            self._follow_ups.append((_Hit(ws[0].start, ws[-1].end, ws), s, a))
        for a, b in self._new_matches(s, "empathy", self.pb.lex("empathy")):
            ws = s.words_of(a, b)
            self._empathy.append(_Hit(ws[0].start, ws[-1].end, ws))
            out += self._emit("empathy-shown", ws[-1].end, {"words": _ev(ws)})
        return out

    def _clarifying(self, s: _Sentence, apo: _Apology) -> bool:
        """"Sorry?", "sorry, could you repeat that", "no need to apologise"..."""
        if apo.words[-1].text.strip().endswith("?"):
            return True
        return any(
            a < apo.tok_end and b > apo.tok_start for a, b in _spans(s, self.pb.lex("not_apology"))
        )

    def _courtesy(self, s: _Sentence, apo: _Apology) -> bool:
        """"Sorry to keep you waiting", "sorry to interrupt": politeness, not a problem."""
        return any(
            a < apo.tok_end and b > apo.tok_start for a, b in _spans(s, self.pb.lex("courtesy"))
        )

    def _retract(self, apo: _Apology) -> None:
        # More words showed it was a request to repeat: undo before its windows are judged.
        apo.state = "no"
        for store in (self._apologies, self._no_action):
            if apo in store:
                store.remove(apo)

    def _confirm_apology(self, s: _Sentence, apo: _Apology) -> list[Cue]:
        if self._clarifying(s, apo):
            apo.state = "no"
            return []
        apo.state = "yes"
        apo.courtesy = self._courtesy(s, apo)
        self._apologies.append(apo)
        if not apo.courtesy:
            self._no_action.append(apo)
        # over-apology: the Nth apology within a window of agent speech time
        spec = self.pb.cue("over-apology")
        window = spec.windows.get("speech_s", 60.0)
        recent = [a for a in self._apologies if apo.clock - a.clock <= window and a.clock <= apo.clock]
        if len(recent) >= spec.thresholds.get("count", 3):
            words = [w for a in recent for w in a.words]
            return self._emit(
                "over-apology",
                apo.end,
                {"words": _ev(words), "count": len(recent), "window_speech_s": window},
            )
        return []

    def _judge_apology(self, s: _Sentence, apo: _Apology, ripe: bool) -> list[Cue]:
        out: list[Cue] = []
        tail = s.tail(apo.tok_end)
        if "qualified-apology" not in apo.done and self._re_contrast is not None:
            m = self._re_contrast.match(tail)
            if m:
                a, b = self._tail_span(s, apo, m)
                out += self._contrast(s, apo, b, ripe)
        if "conditional-apology" not in apo.done and self._re_conditional is not None:
            m = self._re_conditional.match(tail)
            if m:
                apo.done.add("conditional-apology")
                a, b = self._tail_span(s, apo, m)
                ws = apo.words + s.words_of(apo.tok_end, b)
                out += self._emit("conditional-apology", ws[-1].end, {"words": _ev(ws)})
        if "generic-apology" not in apo.done and self._re_stock is not None:
            m = self._re_stock.match(tail)
            if m:
                a, b = self._tail_span(s, apo, m)
                after = s.tail(b)
                waited = len(s.toks) - b >= self.pb.cue("generic-apology").windows.get(
                    "specific_words", 2
                )
                if waited or ripe:
                    apo.done.add("generic-apology")
                    specific = self._re_specific is not None and self._re_specific.match(after)
                    if not specific:
                        ws = apo.words + s.words_of(apo.tok_end, b)
                        out += self._emit("generic-apology", ws[-1].end, {"words": _ev(ws)})
        return out

    def _contrast(self, s: _Sentence, apo: _Apology, b: int, ripe: bool) -> list[Cue]:
        """An apology followed by a contrast ending at token ``b``: an excuse, unless what
        follows the contrast is the agent taking action ("..., but let me fix that")."""
        wait = int(self.pb.cue("qualified-apology").windows.get("action_words", 3))
        if not ripe and len(s.toks) - b < wait:
            return []
        apo.done.add("qualified-apology")
        if self._re_action_after is not None and self._re_action_after.match(s.tail(b)):
            return []
        ws = apo.words + s.words_of(b - 1, b)
        return self._emit("qualified-apology", ws[-1].end, {"words": _ev(ws)})

    def _carried_contrast(self, s: _Sentence, ripe: bool) -> list[Cue]:
        """A contrast opening the sentence right after an apology ("I'm sorry it was late.
        However, you chose standard delivery") qualifies it just the same."""
        apo = s.carry
        if apo is None or "qualified-apology" in apo.done or self._re_contrast_open is None:
            return []
        m = self._re_contrast_open.match(s.text)
        if not m:
            if len(s.toks) >= 3:
                s.carry = None
            return []
        _, b = s.span(m.start(), m.end())
        ws_before = len(apo.words)
        out = self._contrast(s, apo, b, ripe)
        if out:
            ev = apo.words[:ws_before] + s.words_of(b - 1, b)
            out = [Cue(c.id, c.t, c.speaker, c.severity, c.title, c.advice,
                       {**c.evidence, "words": _ev(ev)}) for c in out]
        return out

    @staticmethod
    def _tail_span(s: _Sentence, apo: _Apology, m: re.Match[str]) -> tuple[int, int]:
        base = s.offsets[apo.tok_end] if apo.tok_end < len(s.offsets) else len(s.text)
        return s.span(base + m.start(), base + m.end())

    def _sentence_cue(self, s: _Sentence, cue_id: str, group: str, ripe: bool) -> list[Cue]:
        spec: CueSpec = self.pb.cue(cue_id)
        ps = spec.patterns.get(group)
        if ps is None or not ps:
            return []
        confirm = int(self.s.confirm_words)
        out: list[Cue] = []
        for m in ps.finditer(s.text):
            a, b = s.span(m.start(), m.end())
            key = (cue_id, a)
            if key in s.seen:
                continue
            if not ripe and len(s.toks) - b < confirm:
                continue  # an exception ("...only a matter of time") may still follow
            s.seen.add(key)
            excepted = spec.patterns.get("except")
            if excepted and any(
                ea < b and eb > a - 5 for ea, eb in _spans(s, excepted)
            ):
                continue
            ws = s.words_of(a, b)
            out += self._emit(cue_id, ws[-1].end, {"words": _ev(ws)})
        return out

    # -- prosody --------------------------------------------------------------------------

    def _prosody(self, p: Prosody) -> list[Cue]:
        if p.speaker == AGENT:
            self._track_agent_stretch(p)
        if not _speaking(p):
            return []
        calib = self._calib[p.speaker]
        base = calib.value()
        calib.add(p)
        if p.speaker == CUSTOMER:
            return self._customer_rise(p, base)
        out: list[Cue] = []
        out += self._pace(p, base)
        spec = self.pb.cue("tone-tense")
        n = int(max(spec.windows.get("speech_s", 10), self.pb.cue("tone-flat").windows.get("speech_s", 20)))
        if p.f0_hz is not None and p.f0_hz > 0:
            self._f0.append(p.f0_hz)
            while len(self._f0) > n:
                self._f0.popleft()
        if p.loudness_db is not None and math.isfinite(p.loudness_db):
            self._loud.append(p.loudness_db)
            lw = int(self.pb.cue("volume-loud").windows.get("speech_s", 5))
            while len(self._loud) > lw:
                self._loud.popleft()
        out += self._tense(p, base)
        out += self._volume(p, base)
        out += self._flat(p)
        return out

    def _track_agent_stretch(self, p: Prosody) -> None:
        """A stretch of agent talk: speech whose pauses are shorter than ``stretch_gap_s``."""
        gap = self.pb.cue("pace-fast").windows.get("stretch_gap_s", 2.0)
        if _speaking(p):
            if self._agent_run_start is None or self._agent_quiet >= gap:
                self._agent_run_start = p.t - 1.0
            self._agent_quiet = 0
        else:
            self._agent_quiet += 1

    def _pace(self, p: Prosody, base: Baseline) -> list[Cue]:
        if p.wpm is None:
            return []
        spec = self.pb.cue("pace-fast")
        th = spec.thresholds
        # Quick short replies ("okay, anything else?") are naturally fast; rushing is a
        # matter of a longer stretch of talk (measured on real calls: short-turn agents
        # were flagged all call long otherwise).
        run = p.t - self._agent_run_start if self._agent_run_start is not None else 0.0
        if run < spec.windows.get("min_stretch_s", 6.0):
            self._pace_run = 0
            return []
        # The rate that counts is the one within this stretch (last ~15 s of it): the
        # speaker's overall rate (p.wpm, for the gauge) mixes in earlier quick replies.
        lo = max(self._agent_run_start, p.t - spec.windows.get("speech_s", 15.0)) - 0.5
        ws = [(a, b) for a, b in self._pace_words if a >= lo and b <= p.t + 0.5]
        span = ws[-1][1] - ws[0][0] if ws else 0.0
        if len(ws) < th.get("min_words", 12) or span < spec.windows.get("min_stretch_s", 6.0):
            self._pace_run = 0
            return []
        wpm = len(ws) * 60.0 / span
        limit = th.get("wpm", 175.0)
        if base.wpm is not None:
            limit = min(limit, base.wpm * th.get("baseline_ratio", 1.2))
        apology_s = spec.windows.get("apology_s", 10.0)
        if any(p.t - apology_s <= a.end <= p.t + 0.5 for a in self._apologies[-5:]):
            limit = min(limit, th.get("apology_wpm", limit))
        if wpm <= limit:
            self._pace_run = 0
            return []
        self._pace_run += 1
        if self._pace_run < th.get("sustain_readings", 2):
            return []
        return self._emit(
            "pace-fast",
            p.t,
            {"wpm": round(wpm, 1), "word_count": len(ws), "over_s": round(span, 1),
             "threshold_wpm": round(limit, 1), "baseline_wpm": _r(base.wpm)},
        )

    def _tense(self, p: Prosody, base: Baseline) -> list[Cue]:
        spec = self.pb.cue("tone-tense")
        th = spec.thresholds
        window = int(spec.windows.get("speech_s", 10))
        recent = list(self._f0)[-window:]
        if base.f0_hz is None or p.f0_hz is None or len(recent) < th.get("min_voiced", 5):
            return []
        med = statistics.median(recent)
        if med < base.f0_hz * (1 + th.get("f0_rise", 0.25)):
            self._tense_run = 0
            return []
        self._tense_run += 1
        if self._tense_run < th.get("sustain_readings", 3):
            return []
        return self._emit(
            "tone-tense",
            p.t,
            {"median_f0_hz": round(med, 1), "baseline_f0_hz": round(base.f0_hz, 1),
             "rise": round(med / base.f0_hz - 1, 3)},
        )

    def _volume(self, p: Prosody, base: Baseline) -> list[Cue]:
        spec = self.pb.cue("volume-loud")
        th = spec.thresholds
        if base.loudness_db is None or p.loudness_db is None or len(self._loud) < th.get("min_readings", 3):
            return []
        med = statistics.median(self._loud)
        if med < base.loudness_db + th.get("loudness_rise_db", 6.0):
            self._loud_run = 0
            return []
        self._loud_run += 1
        if self._loud_run < th.get("sustain_readings", 3):
            return []
        return self._emit(
            "volume-loud",
            p.t,
            {"median_loudness_db": round(med, 1), "baseline_loudness_db": round(base.loudness_db, 1)},
        )

    def _flat(self, p: Prosody) -> list[Cue]:
        spec = self.pb.cue("tone-flat")
        if not spec.enabled or p.f0_hz is None:
            return []
        th = spec.thresholds
        recent = list(self._f0)[-int(spec.windows.get("speech_s", 20)):]
        if len(recent) < th.get("min_voiced", 15):
            return []
        ref = statistics.median(recent)
        sd = statistics.pstdev([12 * math.log2(f / ref) for f in recent])
        if sd >= th.get("max_sd_st", 1.0):
            return []
        return self._emit("tone-flat", p.t, {"f0_sd_st": round(sd, 2), "readings": len(recent)})

    def _customer_rise(self, p: Prosody, base: Baseline) -> list[Cue]:
        th = self.pb.cue("name-frustration").thresholds
        if (
            base.f0_hz is None or base.loudness_db is None
            or p.f0_hz is None or p.loudness_db is None
        ):
            return []
        rising = (
            p.f0_hz >= base.f0_hz * (1 + th.get("f0_rise", 0.2))
            and p.loudness_db >= base.loudness_db + th.get("loudness_rise_db", 6.0)
        )
        self._rise_run = self._rise_run + 1 if rising else 0
        need = int(th.get("sustain_readings", 2))
        if self._rise_run == need:
            self._frustrated(
                p.t - need, p.t, [],
                {"f0_hz": round(p.f0_hz, 1), "baseline_f0_hz": round(base.f0_hz, 1),
                 "loudness_db": round(p.loudness_db, 1),
                 "baseline_loudness_db": round(base.loudness_db, 1)},
            )
        return []

    # -- time-based decisions -------------------------------------------------------------

    def _tick(self, *, check_dead_air: bool = True) -> list[Cue]:
        out: list[Cue] = []
        now = self._now
        # An unpunctuated sentence is judged once its speaker has been quiet long enough
        # (plus the skew, since that speaker's words may simply not have arrived yet).
        for speaker in (AGENT, CUSTOMER):
            s = self._sentence[speaker]
            last = self._last_word[speaker]
            if s.toks and not s.settled and last is not None and (
                now >= last.end + self.s.settle_s + self.s.skew_s
            ):
                s.settled = True
                out += self._scan(speaker, s, final=True)
        out += self._check_no_action(now)
        out += self._check_frustration(now)
        out += self._check_laughter(now)
        if self.customer_channel:
            if check_dead_air:
                out += self._check_dead_air(now)
            out += self._check_talk_over(now)
        out += self._check_monologue(now)
        return out

    def _agent_index_after(self, t: float) -> int | None:
        """Index of the first agent word starting at or after ``t``."""
        i = bisect.bisect_left(self._agent_words, (t, -math.inf, 0.0, 0.0))
        return i if i < len(self._agent_words) else None

    def _customer_turns(self, now: float) -> list[tuple[float, float, bool]]:
        """Customer turns longer than a backchannel (open ones included)."""
        bc = self.s.backchannel_s
        return [
            (s, e, o)
            for s, e, o in self._timeline[CUSTOMER].intervals(now, merge_s=self.s.speech_gap_s)
            if e - s > bc
        ]

    def _clock_end(self, start_index: int, clock0: float, span_s: float) -> float | None:
        """End time of the agent word at which ``span_s`` of speech after ``clock0`` is reached."""
        target = clock0 + span_s
        for j in range(start_index, len(self._agent_words)):
            if self._agent_words[j][3] >= target:
                return self._agent_words[j][1]
        return None

    def _check_no_action(self, now: float) -> list[Cue]:
        out: list[Cue] = []
        if not self._no_action:
            return out
        span = self.pb.cue("no-action").windows.get("speech_s", 15.0)
        turns = self._customer_turns(now) if self.customer_channel else []
        last_agent = self._agent_words[-1] if self._agent_words else None
        for apo in list(self._no_action):
            # The window: the rest of the apology's turn and the agent's next turn, capped
            # at ``span`` seconds of agent speech.
            ends: list[float] = []
            i = self._agent_index_after(apo.start) or 0
            by_clock = self._clock_end(i, apo.clock, span)
            if by_clock is not None:
                ends.append(by_clock)
            first = next((t for t in turns if t[0] > apo.end), None)
            if first is not None and not first[2]:
                k = self._agent_index_after(first[1])
                if k is not None:
                    nxt = self._agent_words[k][0]
                    second = next((t for t in turns if t[0] > nxt), None)
                    if second is not None:
                        j = bisect.bisect_left(self._agent_words, (second[0], -math.inf, 0.0, 0.0))
                        ends.append(self._agent_words[j - 1][1] if j > 0 else second[0])
            if ends:
                end = min(ends)
                settled = (last_agent is not None and last_agent[0] > end) or now >= end + self.s.skew_s
                if not settled and not self._ended:
                    continue
            elif self._ended:
                end = last_agent[1] if last_agent else apo.end
            else:
                continue
            self._no_action.remove(apo)
            own_start = max((e for s_, e, _ in turns if e <= apo.start), default=-math.inf)
            if any(own_start <= h.start <= end for h in self._actions):
                continue
            out += self._emit(
                "no-action",
                max(end, apo.end),
                {"words": _ev(apo.words), "window_end": round(end, 3), "agent_speech_s": span},
            )
        return out

    def _check_frustration(self, now: float) -> list[Cue]:
        out: list[Cue] = []
        spec = self.pb.cue("name-frustration")
        span = spec.windows.get("response_s", 12.0)
        grace = spec.windows.get("grace_s", 1.5)
        tol = spec.windows.get("onset_tolerance_s", 0.5)
        last_agent = self._agent_words[-1] if self._agent_words else None
        for f in self._frustrations:
            if f.decided:
                continue
            answered = [h for h in self._empathy if h.start >= f.start - tol]
            i = self._agent_index_after(f.end - tol)
            if i is None:
                if self._ended:
                    f.decided = True  # the agent never spoke again: nothing to coach
                continue
            w_start = self._agent_words[i][0]
            end = self._clock_end(i, self._agent_words[i][2], span)
            if end is None:
                if not self._ended:
                    if answered:
                        f.decided = True
                    continue
                end = last_agent[1] if last_agent else w_start
            answered = [h for h in answered if h.start <= end + grace]
            if answered:
                f.decided = True
                continue
            settled = (last_agent is not None and last_agent[0] > end + grace) or (
                now >= end + grace + self.s.skew_s
            )
            if not settled and not self._ended:
                continue
            f.decided = True
            out += self._emit(
                "name-frustration",
                end,
                {
                    "words": _ev(f.words),
                    **f.figures,
                    "response_window": [round(w_start, 3), round(end, 3)],
                },
            )
        return out

    def _check_laughter(self, now: float) -> list[Cue]:
        out: list[Cue] = []
        ctx = self.pb.cue("laughter").windows.get("context_s", 30.0)
        for w in list(self._laughs):
            if self.customer_channel:
                hits = [h for h in self._problems if w.start - ctx <= h.end and h.start <= w.end + 2.0]
            else:
                hits = [
                    _Hit(a.start, a.end, a.words)
                    for a in self._apologies
                    if not a.courtesy and w.start - ctx <= a.end <= w.end + 5.0
                ]
            if hits:
                self._laughs.remove(w)
                words = [w] + [x for h in hits[-2:] for x in h.words]
                out += self._emit("laughter", w.end, {"words": _ev(words)})
            elif self._ended or now >= w.end + self.s.skew_s + 5.0:
                self._laughs.remove(w)
        return out

    def _check_dead_air(self, now: float) -> list[Cue]:
        lines = list(self._timeline.values())
        if any(tl.open_start is not None for tl in lines):
            return []
        ends = [e for tl in lines if (e := tl.last_end()) is not None]
        if not ends:
            return []  # the call has not started yet
        last = max(ends)
        silence = self.pb.cue("dead-air").thresholds.get("silence_s", 8.0)
        # Words arrive late: a timeline built from words needs the skew before we trust it.
        wait = self.s.skew_s if any(tl.source == _SRC_WORD for tl in lines) else 0.0
        if now < last + silence + wait or last in self._dead_air_done:
            return []
        self._dead_air_done.add(last)
        return self._emit("dead-air", last + silence, {"silence_from": round(last, 3), "silence_s": silence})

    def _check_talk_over(self, now: float) -> list[Cue]:
        out: list[Cue] = []
        th = self.pb.cue("talk-over").thresholds
        need = th.get("overlap_s", 1.0)
        lead = th.get("lead_s", 0.1)
        cust = self._timeline[CUSTOMER].intervals(now, merge_s=0.3)
        for sa, ea, oa in self._timeline[AGENT].intervals(now):
            if sa in self._talkover_done or sa < now - 120:
                continue
            for sc, ec, oc in cust:
                if sc > sa - lead or ec <= sa:
                    continue
                overlap = min(ea, ec) - sa
                if overlap >= need:
                    self._talkover_done.add(sa)
                    out += self._emit(
                        "talk-over",
                        sa + need,
                        {"agent_start": round(sa, 3), "customer_start": round(sc, 3),
                         "overlap_s": round(overlap, 2)},
                    )
                    break
                if not oa and not oc:
                    continue
                break
            else:
                if not oa:
                    self._talkover_done.add(sa)
        return out

    def _check_monologue(self, now: float) -> list[Cue]:
        th = self.pb.cue("monologue").thresholds
        talk = th.get("talk_s", 40.0)
        reset = th.get("reset_gap_s", 3.0)
        agent = self._timeline[AGENT].intervals(now)
        if not agent:
            return []
        if self.customer_channel:
            turns = self._customer_turns(now)
            cust = self._timeline[CUSTOMER].intervals(now, merge_s=self.s.speech_gap_s)
            if cust and cust[-1][2] and cust[-1][1] - cust[-1][0] <= self.s.backchannel_s:
                return []  # the customer just started: wait to see if it is a real turn
            brk = max((e for _, e, _ in turns), default=-math.inf)
        else:
            brk = -math.inf
            reset = min(reset, th.get("mono_gap_s", 1.5))
        start = None
        prev_end = None
        for s, e, _ in agent:
            if e <= brk:
                continue
            s = max(s, brk)
            if start is None or (prev_end is not None and s - prev_end >= reset):
                start = s
            prev_end = e
        if start is None or prev_end is None or start in self._monologue_done:
            return []
        if prev_end - start < talk:
            return []
        self._monologue_done.add(start)
        return self._emit("monologue", start + talk, {"talk_from": round(start, 3), "talk_s": talk})

    def _no_follow_up(self, t_end: float) -> list[Cue]:
        problem = [a for a in self._apologies if not a.courtesy]
        if not problem:
            return []  # no problem owned: nothing to follow up
        first = problem[0]
        vague = self.pb.lex("follow_up_vague")
        for hit, s, a in self._follow_ups:
            # "Someone will be in touch at some point" says neither how nor when.
            if any(va >= a and va - a <= 10 for va, _ in _spans(s, vague)):
                continue
            if hit.start >= first.start - 60:
                return []
        evidence: dict[str, Any] = {"words": _ev(first.words)}
        if self._problems:
            evidence["problem_words"] = _ev(self._problems[0].words)
        return self._emit("no-follow-up", t_end, evidence)


def _spans(s: _Sentence, ps: PatternSet) -> list[tuple[int, int]]:
    return [s.span(m.start(), m.end()) for m in ps.finditer(s.text)]


def _ordered(cues: list[Cue]) -> list[Cue]:
    return sorted(cues, key=lambda c: (c.t, c.id))


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 1)
