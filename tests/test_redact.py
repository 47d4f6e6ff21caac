"""Redaction of personal data in transcripts (pure)."""

from __future__ import annotations

import pytest

from coach.redact import (
    CARD,
    EMAIL,
    NUMBER,
    RedactOptions,
    redact_text,
    redact_texts,
    redact_words,
    redaction_labels,
)


@pytest.mark.parametrize("said, expected", [
    # card numbers, however the recogniser splits them
    ("my card is 4111 1111 1111 1111 thanks", "my card is [card] [card] [card] [card] thanks"),
    ("4111-1111-1111-1111", "[card]"),
    ("it's 4111, 1111, 1111, 1111.", "it's [card] [card] [card] [card]"),
    ("3782 822463 10005 amex", "[card] [card] [card] amex"),
    ("four one one one one one one one one one one one one one one one",
     "[card]" + " [card]" * 15),
    # card then expiry and security code: the card is found inside the longer run
    ("4111 1111 1111 1111 12 25 123", "[card] [card] [card] [card] [number] [number] [number]"),
    # other long digit runs
    ("call me on 555 123 4567", "call me on [number] [number] [number]"),
    ("555-123-4567", "[number]"),
    ("five five five one two three four", " ".join([NUMBER] * 7)),
    ("double five one two three four", " ".join([NUMBER] * 6)),
    ("account 12345678 please", "account [number] please"),
    ("order AB1234567 ok", "order [number] ok"),
    # what stays: short numbers, years, dates, times, amounts, ordinary speech
    ("it is 3 items in 2024", "it is 3 items in 2024"),
    ("on March 12, 2024 at 10:30", "on March 12, 2024 at 10:30"),
    ("on 12/03/2024 or 2024-03-05", "on 12/03/2024 or 2024-03-05"),
    ("it costs $1,250.00 or 19.99", "it costs $1,250.00 or 19.99"),
    ("one two three", "one two three"),
    ("oh one two", "oh one two"),
    ("room 12345 please", "room 12345 please"),
    ("look at the bill dot please", "look at the bill dot please"),
    ("we met at noon", "we met at noon"),
    # e-mail addresses, written or spoken
    ("write to john.smith@gmail.com.", "write to [email]"),
    ("email john dot smith at gmail dot com please",
     "email [email] [email] [email] [email] [email] [email] [email] please"),
    ("it's jane underscore doe at example dot co dot uk",
     "it's " + " ".join([EMAIL] * 9)),
    ("j o h n at gmail dot com", " ".join([EMAIL] * 8)),
    ("john.smith at gmail.com", "[email] [email] [email]"),
])
def test_redact_text(said: str, expected: str) -> None:
    assert redact_text(said) == expected


def test_redaction_keeps_length_and_marks_each_word() -> None:
    texts = ["my", "number", "is", "4111", "1111", "1111", "1111"]
    labels = redaction_labels(texts)
    assert labels == [None, None, None, CARD, CARD, CARD, CARD]
    assert len(redact_texts(texts)) == len(texts)


def test_options_switch_each_kind_off() -> None:
    s = "4111 1111 1111 1111 and 123456 and a@b.com"
    assert redact_text(s, RedactOptions(digits=False)) == \
        "[card] [card] [card] [card] and 123456 and [email]"
    assert redact_text(s, RedactOptions(cards=False)) == \
        "[number] [number] [number] [number] and [number] and [email]"
    assert redact_text(s, RedactOptions(emails=False)) == \
        "[card] [card] [card] [card] and [number] and a@b.com"
    assert redact_text(s, RedactOptions.off()) == s
    assert not RedactOptions.off().enabled


def test_min_digits() -> None:
    assert redact_text("code 12345") == "code 12345"
    assert redact_text("code 12345", RedactOptions(min_digits=5)) == "code [number]"
    assert redact_text("code 123 456", RedactOptions(min_digits=7)) == "code 123 456"


def test_redact_words_per_speaker_in_time_order_keeps_times() -> None:
    # the customer reads a card while the agent says "okay" in between: still one run
    words = [
        {"speaker": "customer", "text": "4111", "start": 1.0, "end": 1.4},
        {"speaker": "agent", "text": "okay", "start": 1.5, "end": 1.7},
        {"speaker": "customer", "text": "1111", "start": 1.6, "end": 2.0},
        {"speaker": "customer", "text": "1111", "start": 2.1, "end": 2.5},
        {"speaker": "customer", "text": "1111", "start": 2.6, "end": 3.0},
        {"speaker": "agent", "text": "123", "start": 3.1, "end": 3.3},
    ]
    out = redact_words(words)
    assert [w["text"] for w in out] == [CARD, "okay", CARD, CARD, CARD, "123"]
    assert [(w["start"], w["end"]) for w in out] == [(w["start"], w["end"]) for w in words]
    assert words[0]["text"] == "4111"  # the input is not modified


def test_digits_of_two_speakers_do_not_join() -> None:
    words = [{"speaker": "agent", "text": "123", "start": 0.0, "end": 0.1},
             {"speaker": "customer", "text": "456", "start": 0.2, "end": 0.3}]
    assert [w["text"] for w in redact_words(words)] == ["123", "456"]


def test_redacting_twice_changes_nothing() -> None:
    once = redact_text("card 4111 1111 1111 1111 mail a at b dot com 555 1234")
    assert redact_text(once) == once
