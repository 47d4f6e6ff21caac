"""Redaction of personal data in transcripts (pure: word texts in, word texts out).

What a customer reads out on a call and a coach never needs to see again: payment card
numbers, other long digit runs (account, phone and order numbers) and e-mail addresses.
Speech recognition splits them across words ("4111 1111 1111 1111", "five five five one
two three", "john dot smith at gmail dot com"), so detection works on runs of adjacent
words of one speaker, and every covered word is replaced by a label ("[card]",
"[number]", "[email]") while its times are kept, so the replay timeline stays intact.

Short numbers, years, dates, times and amounts ("3", "2024", "March 12, 2024", "10:30",
"19.99") are left alone: they carry the meaning of a call and identify nobody.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CARD",
    "DEFAULT",
    "EMAIL",
    "NUMBER",
    "OFF",
    "RedactOptions",
    "redact_text",
    "redact_texts",
    "redact_words",
    "redaction_labels",
]

CARD = "[card]"
NUMBER = "[number]"
EMAIL = "[email]"

CARD_MIN_DIGITS = 13  # payment card numbers (PANs) have 13 to 19 digits
CARD_MAX_DIGITS = 19


@dataclass(frozen=True, slots=True)
class RedactOptions:
    """What to redact. ``min_digits``: the shortest digit run (across adjacent words)
    that counts as a personal number."""

    cards: bool = True
    digits: bool = True
    emails: bool = True
    min_digits: int = 6

    @classmethod
    def off(cls) -> RedactOptions:
        """Keep transcripts verbatim."""
        return cls(cards=False, digits=False, emails=False)

    @property
    def enabled(self) -> bool:
        return self.cards or self.digits or self.emails


DEFAULT = RedactOptions()
OFF = RedactOptions.off()

_EDGE = ".,;:!?\"'()[]{}<>“”‘’«»…"
_SPOKEN_DIGITS = {"zero": 0, "oh": 0, "o": 0, "one": 1, "two": 2, "three": 3, "four": 4,
                  "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9}
_REPEAT = {"double": 2, "triple": 3}
_MONTHS = {"january", "february", "march", "april", "may", "june", "july", "august",
           "september", "october", "november", "december", "jan", "feb", "mar", "apr",
           "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec"}
# Spoken addresses ("... at gmail dot com") must end in a common top-level domain, so
# "look at the bill dot" never becomes an address; written ones ("a@b.xyz") need not.
_TLDS = {"com", "org", "net", "edu", "gov", "mil", "int", "io", "co", "uk", "us", "ca",
         "au", "nz", "ie", "de", "fr", "es", "it", "nl", "be", "ch", "se", "no", "dk",
         "fi", "pl", "pt", "in", "jp", "cn", "br", "mx", "za", "info", "biz", "me", "tv",
         "ai", "app", "dev", "email", "mail", "online", "xyz"}
_CONNECTORS = {"dot": ".", "underscore": "_", "dash": "-", "hyphen": "-", "at": "@"}

_NUMERIC = re.compile(r"\+?\d+(?:[-.]\d+)*")
_AMOUNT = re.compile(r"[$£€¥]?\d{1,3}(?:,\d{3})+(?:\.\d+)?|[$£€¥]\d+(?:\.\d+)?|\d+\.\d{1,2}"
                     r"|\d+(?:\.\d+)?%")
_ISO_DATE = re.compile(r"(?:19|20)\d\d-\d\d?-\d\d?")
_YEAR = re.compile(r"(?:19|20)\d\d")
_DAY = re.compile(r"(\d{1,2})(?:st|nd|rd|th)?")
_EMAIL = re.compile(r"[a-z0-9][a-z0-9._%+-]*@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.([a-z]{2,24})")
_ALNUM_DIGITS = re.compile(r"\d")
_HAS_DIGIT = re.compile(r"\d")
_HAS_ALPHA = re.compile(r"[^\W\d_]")


def _core(text: str) -> str:
    return text.strip().strip(_EDGE).lower()


# -- digits ---------------------------------------------------------------------------------


def _digit_kind(core: str, raw: str) -> tuple[str, int] | None:
    """A word with digits in a digit run: ("num", n digits) for numerals; None for
    dates, amounts and anything else that is not a plain number."""
    c0 = core[0]
    if c0.isdigit() or c0 == "+":
        if _ISO_DATE.fullmatch(core) or _AMOUNT.fullmatch(raw.strip().strip(_EDGE)):
            return None
        if _NUMERIC.fullmatch(core):
            return ("num", sum(ch.isdigit() for ch in core))
    return None


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _run_digits(kinds: list[tuple[str, int]], cores: list[str]) -> str:
    """The digits a run of words stands for ("double five" -> "55")."""
    out: list[str] = []
    repeat = 1
    for (kind, n), core in zip(kinds, cores, strict=True):
        if kind == "repeat":
            repeat = n
            continue
        if kind == "spoken":
            out.append(str(_SPOKEN_DIGITS[core]) * repeat)
        else:
            out.append("".join(ch for ch in core if ch.isdigit()))
        repeat = 1
    return "".join(out)


def _is_date_pair(cores: list[str], i: int, prev: str | None, raw_day: str) -> bool:
    """cores[i] is a day (1-31) and cores[i + 1] a year, said as a date: after a month
    name ("March 12 2024") or with a comma after the day ("12, 2024")."""
    if i + 1 >= len(cores) or not _YEAR.fullmatch(cores[i + 1]):
        return False
    m = _DAY.fullmatch(cores[i])
    if not m or not 1 <= int(m.group(1)) <= 31:
        return False
    return prev in _MONTHS or raw_day.rstrip().endswith(",")


def _label_run(idx: list[int], kinds: list[tuple[str, int]], cores: list[str],
               opts: RedactOptions, labels: list[str | None]) -> None:
    # a run may not start with "oh" (an exclamation) nor end with "double" (nothing follows)
    while idx and cores[idx[0]] in ("oh", "o"):
        idx = idx[1:]
    while idx and (cores[idx[-1]] in ("oh", "o") or kinds[idx[-1]][0] == "repeat"):
        idx = idx[:-1]
    if not idx:
        return
    ks = [kinds[i] for i in idx]
    cs = [cores[i] for i in idx]
    digits = _run_digits(ks, cs)
    n = len(digits)
    if n > CARD_MAX_DIGITS and opts.cards:
        # a card number followed by its expiry or security code: find the card in it
        for a in range(len(idx)):
            for b in range(a + 1, len(idx) + 1):
                d = _run_digits(ks[a:b], cs[a:b])
                if len(d) > CARD_MAX_DIGITS:
                    break
                if len(d) >= CARD_MIN_DIGITS and _luhn(d):
                    for i in idx[a:b]:
                        labels[i] = CARD
                    _label_run(idx[:a], kinds, cores, opts, labels)
                    _label_run(idx[b:], kinds, cores, opts, labels)
                    return
    label = None
    if opts.cards and CARD_MIN_DIGITS <= n <= CARD_MAX_DIGITS:
        label = CARD
    elif opts.digits and n >= opts.min_digits:
        label = NUMBER
    if label is not None:
        for i in idx:
            labels[i] = label


def _digit_labels(texts: Sequence[str], cores: list[str], opts: RedactOptions,
                  labels: list[str | None]) -> None:
    kinds: list[tuple[str, int] | None] = []
    for i, c in enumerate(cores):
        k = None
        if labels[i] is None:
            if c in _SPOKEN_DIGITS:
                k = ("spoken", 1)
            elif c in _REPEAT:
                k = ("repeat", _REPEAT[c])
            elif _HAS_DIGIT.search(c):
                k = _digit_kind(c, texts[i])
                # a code with letters and many digits in one word ("AB1234567")
                if (k is None and opts.digits and _HAS_ALPHA.search(c)
                        and len(_ALNUM_DIGITS.findall(c)) >= opts.min_digits):
                    labels[i] = NUMBER
        kinds.append(k)
    i = 0
    n = len(texts)
    while i < n:
        if kinds[i] is None:
            i += 1
            continue
        run: list[int] = []
        while i < n and kinds[i] is not None:
            prev = cores[i - 1] if i > 0 else None
            if _is_date_pair(cores, i, prev, texts[i]):
                if run:
                    _label_run(run, kinds, cores, opts, labels)  # type: ignore[arg-type]
                run = []
                i += 2  # the day and the year stay
                continue
            run.append(i)
            i += 1
        if run:
            _label_run(run, kinds, cores, opts, labels)  # type: ignore[arg-type]


# -- e-mail addresses -----------------------------------------------------------------------


def _email_labels(cores: list[str], labels: list[str | None]) -> None:
    """Addresses written ("john.smith@gmail.com") or spoken ("john dot smith at gmail dot
    com"): around each "at"/"@", spoken connectors are joined into one string, which is
    matched as an address, and the matching span is mapped back to the words."""
    n = len(cores)
    lo = hi = -1
    for k in (i for i, c in enumerate(cores) if c == "at" or "@" in c):
        a, b = max(0, k - _EMAIL_WINDOW), min(n, k + _EMAIL_WINDOW + 1)
        if a > hi:  # windows that overlap are matched as one
            if hi > lo:
                _email_window(cores, labels, lo, hi)
            lo = a
        hi = b
    if hi > lo:
        _email_window(cores, labels, lo, hi)


_EMAIL_WINDOW = 16  # words either side of the "at" an address may span


def _email_window(cores: list[str], labels: list[str | None], lo: int, hi: int) -> None:
    parts: list[str] = []
    spans: list[tuple[int, int, int]] = []  # word index, start, end in the joined string
    pos = 0
    prev_joins = True
    for i in range(lo, hi):
        c = cores[i]
        conn = _CONNECTORS.get(c)
        piece = conn if conn is not None else c
        if not piece:
            prev_joins = True
            continue
        if not (prev_joins or conn is not None):
            parts.append(" ")
            pos += 1
        parts.append(piece)
        spans.append((i, pos, pos + len(piece)))
        pos += len(piece)
        prev_joins = conn is not None
    joined = "".join(parts)
    for m in _EMAIL.finditer(joined):
        covered = [i for i, a, b in spans if a < m.end() and b > m.start()]
        if not covered:
            continue
        spoken = any(cores[i] in _CONNECTORS for i in covered)
        if spoken and m.group(1) not in _TLDS:
            continue
        first = covered[0]
        # an address spelled letter by letter ("j o h n at ...") starts further back
        while first > 0 and len(cores[first - 1]) == 1 and cores[first - 1].isalnum():
            first -= 1
        for i in range(first, covered[-1] + 1):
            labels[i] = EMAIL


# -- public ---------------------------------------------------------------------------------


def redaction_labels(texts: Sequence[str], options: RedactOptions | None = None
                     ) -> list[str | None]:
    """For a run of adjacent words of one speaker, the label replacing each word (or None
    where the word stays)."""
    opts = options or DEFAULT
    labels: list[str | None] = [None] * len(texts)
    if not opts.enabled or not texts:
        return labels
    cores = [_core(t) for t in texts]
    if opts.emails:
        _email_labels(cores, labels)
    if opts.cards or opts.digits:
        _digit_labels(texts, cores, opts, labels)
    return labels


def redact_texts(texts: Sequence[str], options: RedactOptions | None = None) -> list[str]:
    """The word texts with personal data replaced (same length, same order)."""
    labels = redaction_labels(texts, options)
    return [t if lab is None else lab for t, lab in zip(texts, labels, strict=True)]


def redact_text(text: str, options: RedactOptions | None = None) -> str:
    """Free text (whitespace-separated words) with personal data replaced."""
    words = text.split()
    return " ".join(redact_texts(words, options))


def redact_words(words: Iterable[dict[str, Any]], options: RedactOptions | None = None
                 ) -> list[dict[str, Any]]:
    """Word dicts (``speaker``, ``text``, ``start``...) with personal data replaced.

    Words are considered per speaker in time order, so a number read out across several
    words is caught even when the other speaker's words interleave. Returns new dicts in
    the input order; times and other keys are kept."""
    ws = [dict(w) for w in words]
    opts = options or DEFAULT
    if not opts.enabled:
        return ws
    by_speaker: dict[Any, list[int]] = {}
    for i, w in enumerate(ws):
        by_speaker.setdefault(w.get("speaker"), []).append(i)
    for idx in by_speaker.values():
        idx.sort(key=lambda i: (_num(ws[i].get("start")), i))
        texts = [str(ws[i].get("text", "")) for i in idx]
        for i, lab in zip(idx, redaction_labels(texts, opts), strict=True):
            if lab is not None:
                ws[i]["text"] = lab
    return ws


def _num(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return 0.0
