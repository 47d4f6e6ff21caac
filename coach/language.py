"""The language layer: words as normalised text, sentences, and matches mapped back to words.

Pure. Both the live cue engine and the QA rubric read the agent's and the customer's words
through this module, so they can never disagree on what a sentence said. Matching is over
normalised text: lower case, punctuation stripped, contractions expanded ("I'm" -> "i am",
"can't" -> "can not"), one space between tokens; every match maps back to the words (and so
the times) it covers.
"""

from __future__ import annotations

import bisect
import functools
import re
from dataclasses import dataclass
from typing import Any

import regex

from .events import Word
from .playbook import PatternSet

__all__ = [
    "Hit",
    "Sentence",
    "evidence_words",
    "is_terminal",
    "normalise_word",
    "sentences_of",
    "settled",
    "spans",
    "split_sentences",
]

_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'", "\u00b4": "'", "\u2032": "'"})
_WHOLE = {
    "i'm": "i am", "im": "i am", "won't": "will not", "can't": "can not", "cannot": "can not",
    "shan't": "shall not", "ain't": "is not", "let's": "let us", "y'all": "you all",
    "gonna": "going to", "wanna": "want to", "gotta": "got to", "kinda": "kind of",
    "dunno": "do not know", "'cause": "because", "'bout": "bout", "ok": "okay",
    "dont": "do not", "didnt": "did not", "doesnt": "does not", "cant": "can not",
    "wont": "will not", "isnt": "is not", "wasnt": "was not", "ive": "i have",
    "theyre": "they are", "thats": "that is", "whats": "what is", "youre": "you are",
    "weve": "we have", "shouldve": "should have",
    "should've": "should have", "could've": "could have", "would've": "would have",
    "must've": "must have", "y'know": "you know",
}
# Words whose "'s" is "is" rather than a possessive.
_S_IS = {
    "it", "that", "there", "here", "what", "who", "where", "how", "he", "she", "this",
    "everything", "nothing", "something", "someone", "everyone", "everybody", "somebody",
    "nobody", "why", "when", "which", "refund", "order", "parcel", "payment", "package",
    "delivery", "engineer", "replacement", "one", "money", "credit", "claim", "ticket",
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


def is_terminal(raw: str) -> bool:
    """The word ends a sentence (".", "?", "!", "...")."""
    return bool(_TERMINAL.search(raw.strip()))


def split_sentences(words: list[Word], *, pause_s: float = 0.8) -> list[list[Word]]:
    """Group words into sentences at terminal punctuation or pauses of ``pause_s``."""
    out: list[list[Word]] = []
    cur: list[Word] = []
    for w in words:
        if cur and (is_terminal(cur[-1].text) or w.start - cur[-1].end >= pause_s):
            out.append(cur)
            cur = []
        cur.append(w)
    if cur:
        out.append(cur)
    return out


def evidence_words(words: list[Word]) -> list[dict[str, Any]]:
    """Words as evidence: text and times, each word once, in order."""
    seen: set[int] = set()
    out = []
    for w in words:
        if id(w) in seen:
            continue
        seen.add(id(w))
        out.append({"text": w.text.strip(), "start": round(w.start, 3), "end": round(w.end, 3)})
    return out


class Sentence:
    """The words of one sentence of one speaker, as normalised text. Grows word by word
    (live) or is built whole (QA); matches map back to words through token offsets."""

    def __init__(self, words: list[Word] | None = None) -> None:
        self.words: list[Word] = []
        self.clocks: list[float] = []  # the speaker's speech clock after each word
        self.toks: list[str] = []
        self.tok_word: list[int] = []
        self.offsets: list[int] = []
        self.text = ""
        # audio time up to which the speaker's words are all known, beyond the words
        # themselves (an early look at uncommitted words knows the speaker paused)
        self.heard = 0.0
        for w in words or []:
            self.add(w, normalise_word(w.text))

    def add(self, word: Word, toks: list[str], clock: float = 0.0) -> None:
        self.words.append(word)
        self.clocks.append(clock)
        for tok in toks:
            self.offsets.append(len(self.text) + (1 if self.text else 0))
            self.text = f"{self.text} {tok}" if self.text else tok
            self.toks.append(tok)
            self.tok_word.append(len(self.words) - 1)

    @property
    def start(self) -> float:
        return self.words[0].start

    @property
    def end(self) -> float:
        return self.words[-1].end

    def tok_at(self, char: int) -> int:
        """Index of the token containing character ``char`` of ``text``."""
        return max(0, bisect.bisect_right(self.offsets, char) - 1)

    def span(self, start_char: int, end_char: int) -> tuple[int, int]:
        """Token range [start, end) covered by a character range."""
        return self.tok_at(start_char), self.tok_at(max(start_char, end_char - 1)) + 1

    def char_of(self, tok: int) -> int:
        """Character offset of token ``tok`` (the text's length past the last one)."""
        return self.offsets[tok] if tok < len(self.offsets) else len(self.text)

    def words_of(self, tok_start: int, tok_end: int) -> list[Word]:
        if not self.toks:
            return []
        idx = sorted({self.tok_word[i] for i in range(tok_start, min(tok_end, len(self.toks)))})
        return [self.words[i] for i in idx]

    def tail(self, tok_start: int) -> str:
        return " ".join(self.toks[tok_start:])

    def time_after(self, tok: int) -> float | None:
        """End time of the last word heard after token ``tok`` (None if none yet)."""
        if tok >= len(self.toks):
            return None
        return self.words[-1].end

    def hits(self, ps: PatternSet | None) -> list[Hit]:
        """Every match of ``ps`` in this sentence, as words."""
        if ps is None:
            return []
        out = []
        for m in ps.finditer(self.text):
            if m.end() <= m.start():
                continue
            a, b = self.span(m.start(), m.end())
            ws = self.words_of(a, b)
            if ws:
                out.append(Hit(self, a, b, tuple(ws)))
        return out


def spans(s: Sentence, ps: PatternSet | None) -> list[tuple[int, int]]:
    """Token spans of the matches of ``ps`` in ``s``."""
    if ps is None:
        return []
    return [s.span(m.start(), m.end()) for m in ps.finditer(s.text) if m.end() > m.start()]


@dataclass(frozen=True, slots=True)
class Hit:
    """A match: token span [a, b) of a sentence and the words it covers."""

    sentence: Sentence
    a: int
    b: int
    words: tuple[Word, ...]

    @property
    def start(self) -> float:
        return self.words[0].start

    @property
    def end(self) -> float:
        return self.words[-1].end


def sentences_of(words: list[Word], pause_s: float = 0.8) -> list[Sentence]:
    """One speaker's final words as sentences."""
    return [Sentence(s) for s in split_sentences(words, pause_s=pause_s) if s]


# --- does a match need its right context? --------------------------------------------------

# what in a pattern looks past its own words: an end anchor or a lookahead ("relax(?! and)",
# "nothing more$"); the wrapper's closing "(?!\w)" only checks the match ends a word
_LOOKS_RIGHT = re.compile(r"\$|\\Z|\(\?[=!]")


def _branches(source: str) -> list[str]:
    """The top-level alternatives of one pattern ("calm down|relax(?! and)" -> two)."""
    out, depth, start, i, in_class = [], 0, 0, 0, False
    while i < len(source):
        ch = source[i]
        if ch == "\\":
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            out.append(source[start:i])
            start = i + 1
        i += 1
    out.append(source[start:])
    return out


@functools.lru_cache(maxsize=256)
def _free_alternatives(sources: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    """The alternatives of a pattern set that decide on their own words only."""
    out = []
    for b in (b for p in sources for b in _branches(p)):
        if b and not _LOOKS_RIGHT.search(b):
            try:
                out.append(re.compile(rf"(?<!\w)(?:{b})(?!\w)"))
            except re.error:  # split where it should not have been: such a branch waits
                pass
    return tuple(out)


@functools.lru_cache(maxsize=256)
def _partial(pattern: str) -> Any:
    """The playbook's compiled pattern, for partial matching (None: cannot be read that way)."""
    try:
        return regex.compile(pattern)
    except regex.error:
        return None


def settled(s: Sentence, ps: PatternSet, excepted: PatternSet | None, a: int, b: int) -> bool:
    """Whether the match of ``ps`` over tokens [a, b) of a sentence still being heard stands
    whatever words follow, so a cue need not wait for right context: an alternative that
    reads only its own words (no end anchor, no lookahead) matches there, and no exception overlapping
    it (tokens a-5 to b, as the cue rules read exceptions) matches, or could match once more
    words come (``regex``'s partial matching over the words so far, the last one complete)."""
    at = s.char_of(a)
    if not any(rx.match(s.text, at) for rx in _free_alternatives(ps.sources)):
        return False
    if excepted is None or excepted.regex is None:
        return True
    rx = _partial(excepted.regex.pattern)
    if rx is None:
        return False
    # as if more words follow (partial matches), and as if the sentence ended here ("...$")
    for m in [*rx.finditer(s.text + " ", partial=True), *rx.finditer(s.text)]:
        ea, eb = s.span(m.start(), min(m.end(), len(s.text)))
        if m.end() > m.start() and ea < b and eb > a - 5:
            return False
    return True
