"""Event streams to table rows: ``build_rows`` turns a call's metadata and events into
the rows ``Store.add_call`` inserts (pure: no files, no database). Word texts, cue evidence
and the search text are redacted on the way; cue feedback is applied to its cue.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from coach.redact import RedactOptions, redact_texts, redaction_labels
from coach.store.schema import StoreError, count_cues

__all__ = [
    "PROSODY_COLUMNS",
    "WORD_COLUMNS",
    "CallRows",
    "build_rows",
    "search_text",
    "to_datetime",
]

STATUSES = ("complete", "recovered", "truncated")
SPEAKERS = ("agent", "customer")
FEEDBACK = {"dismiss": "dismissed", "flag": "flagged", "dismissed": "dismissed",
            "flagged": "flagged"}
WORD_COLUMNS = ("idx", "speaker", "text", "start", "end", "probability")
PROSODY_COLUMNS = ("seq", "speaker", "t", "f0_hz", "loudness_db", "wpm")


@dataclass
class CallRows:
    """The rows of one call, ready to insert (audio columns are filled by the store).
    Words and prosody are tuples in the order of ``WORD_COLUMNS`` / ``PROSODY_COLUMNS``
    (a call has thousands: tuples insert in bulk without per-row dicts)."""

    call: dict[str, Any]
    words: list[tuple[Any, ...]] = field(default_factory=list)
    prosody: list[tuple[Any, ...]] = field(default_factory=list)
    cues: list[dict[str, Any]] = field(default_factory=list)


def to_datetime(value: Any, *, what: str = "time") -> datetime:
    """A timezone-aware UTC datetime from a datetime (naive = UTC), Unix seconds or an
    ISO 8601 string."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise StoreError(f"bad {what}: {value!r}")
        return datetime.fromtimestamp(float(value), UTC)
    if isinstance(value, str):
        s = value.strip()
        try:
            return datetime.fromtimestamp(float(s), UTC)
        except ValueError:
            pass
        try:
            dt = datetime.fromisoformat(s[:-1] + "+00:00" if s.endswith("Z") else s)
        except ValueError:
            raise StoreError(f"bad {what}: {value!r} (expected ISO 8601, e.g. "
                             "2024-05-01 or 2024-05-01T09:30:00Z)") from None
        return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    raise StoreError(f"bad {what}: {value!r}")


def _num(x: Any) -> float | None:
    if type(x) is float:  # the common case, first
        return x if math.isfinite(x) else None
    if x is None or isinstance(x, bool):
        return None
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _as_dict(e: Any) -> dict[str, Any] | None:
    if isinstance(e, dict):
        return e
    to_dict = getattr(e, "to_dict", None)
    return to_dict() if callable(to_dict) else None


_TERM = re.compile(r"[^\W_]+")


def search_text(texts: Iterable[str]) -> str:
    """The search form of a transcript: lower-case words (letters and digits) separated by
    single spaces, so SQLite's FTS5 and PostgreSQL's tsvector split it identically and a
    phrase is a plain substring."""
    return " ".join(_TERM.findall(" ".join(texts).lower()))


def _words_of(d: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if d.get("type") == "word":
        yield d
    elif d.get("type") == "transcript":  # utterance-level events carrying their words
        for w in d.get("words") or []:
            if isinstance(w, dict):
                yield {"speaker": d.get("speaker"), **w}


def build_rows(meta: dict[str, Any], events: Iterable[Any],
               redact: RedactOptions | None = None) -> CallRows:
    """Rows for one call from its metadata and event stream (see ``Store.add_call``).

    Only final words, prosody, cues, call start/end and cue feedback are kept; word texts,
    cue evidence and the search text are redacted (``redact=None``: the defaults)."""
    start_info: dict[str, Any] = {}
    end_info: dict[str, Any] = {}
    raw_words: list[tuple[float, int, str, float, float | None, str]] = []
    prosody: list[tuple[int, str, float, float | None, float | None, float | None]] = []
    cue_rows: list[dict[str, Any]] = []
    feedback: list[dict[str, Any]] = []
    last_t = 0.0
    for e in events:
        d = _as_dict(e)
        if not d:
            continue
        kind = d.get("type")
        if kind in ("word", "transcript"):
            for w in _words_of(d):
                sp = w.get("speaker")
                if w.get("final", True) is False or sp not in SPEAKERS:
                    continue
                start, end = _num(w.get("start")), _num(w.get("end"))
                if start is None or end is None:
                    continue
                end = max(end, start)
                raw_words.append((start, SPEAKERS.index(sp), str(w.get("text", "")).strip(),
                                  end, _num(w.get("probability")), sp))
                if end > last_t:
                    last_t = end
        elif kind == "prosody":
            t = _num(d.get("t"))
            sp = d.get("speaker")
            if t is None or sp not in SPEAKERS:
                continue
            prosody.append((len(prosody), sp, t, _num(d.get("f0_hz")),
                            _num(d.get("loudness_db")), _num(d.get("wpm"))))
            if t > last_t:
                last_t = t
        elif kind == "cue":
            t = _num(d.get("t"))
            if t is None or not d.get("id"):
                continue
            ev = d.get("evidence")
            cue_rows.append({"idx": len(cue_rows), "cue_id": str(d["id"])[:64], "t": t,
                             "speaker": str(d.get("speaker") or "agent")[:16],
                             "severity": str(d.get("severity") or "info")[:16],
                             "title": str(d.get("title") or ""),
                             "advice": str(d.get("advice") or ""),
                             "evidence": ev if isinstance(ev, dict) else {},
                             "feedback": None, "feedback_at": None})
            last_t = max(last_t, t)
        elif kind == "retract":
            # kept, so withdrawals can be counted, and marked so the score ignores the cue
            t = _num(d.get("t"))
            for row in cue_rows:
                if row["cue_id"] == d.get("id") and t is not None and abs(row["t"] - t) < 1e-3:
                    row["evidence"] = {**row["evidence"], "withdrawn": {
                        "at": _num(d.get("at")), "reason": str(d.get("reason") or "")}}
        elif kind == "call":
            (start_info if d.get("state") == "start" else end_info).update(d)
        elif kind in ("dismiss", "flag", "feedback"):
            feedback.append(d)

    # words in time order (agent first at equal times), redacted per speaker
    raw_words.sort(key=lambda w: (w[0], w[1]))
    opts = redact or RedactOptions()
    texts = [w[2] for w in raw_words]
    changed: dict[tuple[float, float, str], str] = {}  # (start, end, said) -> label
    if opts.enabled:
        for sp in range(len(SPEAKERS)):
            idx = [i for i, w in enumerate(raw_words) if w[1] == sp]
            labels = redaction_labels([texts[i] for i in idx], opts)
            for i, lab in zip(idx, labels, strict=True):
                if lab is not None:
                    w = raw_words[i]
                    changed[(w[0], w[3], w[2])] = lab
                    texts[i] = lab
    words = [(i, w[5], texts[i], w[0], w[3], w[4]) for i, w in enumerate(raw_words)]
    for c in cue_rows:
        c["evidence"] = json.dumps(_redact_evidence(c["evidence"], changed, opts),
                                   ensure_ascii=False, allow_nan=False, default=str)
    for d in feedback:
        _apply_feedback(cue_rows, d)

    def pick(key: str, *alts: str) -> Any:
        for src in (meta, start_info):
            for k in (key, *alts):
                v = src.get(k)
                if v not in (None, ""):
                    return v
        return None

    started = pick("started_at")
    duration = _num(meta.get("duration_s"))
    if duration is None:
        duration = _num(end_info.get("duration"))
    if duration is None:
        duration = _num(end_info.get("t"))
    if duration is None:
        duration = last_t
    status = meta.get("status") or "complete"
    if status not in STATUSES:
        raise StoreError(f"bad call status {status!r} (one of {', '.join(STATUSES)})")
    channels = pick("channels")
    if isinstance(channels, (list, tuple)):
        channels = ",".join(str(c) for c in channels)
    agent = pick("agent")
    call_id = str(meta.get("id") or uuid.uuid4().hex)
    if len(call_id) > 32:
        raise StoreError(f"bad call id {call_id[:40]!r}: at most 32 characters")
    call = {
        "id": call_id,
        "agent": (str(agent).strip()[:200] or None) if agent is not None else None,
        "started_at": to_datetime(started, what="started_at") if started is not None
        else datetime.now(UTC),
        "duration_s": round(max(duration, 0.0), 3),
        "source": str(pick("source") or "unknown"),
        "source_key": meta.get("source_key") or None,
        "channels": str(channels)[:40] if channels else None,
        "model": str(pick("model"))[:200] if pick("model") else None,
        "status": status,
        "score": _num(meta.get("score")),
        "cue_counts": count_cues((c["cue_id"], c["evidence"]) for c in cue_rows),
        "n_words": len(words),
        "transcript": search_text(texts),
        "audio_bytes": 0,
        "audio_mime": None,
        "created_at": datetime.now(UTC),
    }
    return CallRows(call, words, prosody, cue_rows)


def _redact_evidence(ev: dict[str, Any], changed: dict[tuple, str],
                     opts: RedactOptions) -> dict[str, Any]:
    """Cue evidence with its word lists redacted like the transcript: each evidence word
    takes the redacted text of the transcript word it is (same times and text), so a card
    number cut in half by the evidence window is still caught; words not found in the
    transcript are redacted on their own."""
    if not opts.enabled:
        return ev
    out: dict[str, Any] = {}
    for k, v in ev.items():
        if isinstance(v, list) and v and all(isinstance(w, dict) and "text" in w for w in v):
            texts = [str(w.get("text", "")) for w in v]
            alone = redact_texts(texts, opts)
            new = []
            for w, t, a in zip(v, texts, alone, strict=True):
                mapped = changed.get((_num(w.get("start")), _num(w.get("end")), t.strip()))
                new.append({**w, "text": mapped if mapped is not None else a})
            out[k] = new
        elif isinstance(v, dict):
            out[k] = _redact_evidence(v, changed, opts)
        else:
            out[k] = v
    return out


def _apply_feedback(cues: list[dict[str, Any]], d: dict[str, Any]) -> None:
    """A dismiss/flag from an overlay, as LiveSession records it (``{"type": "dismiss" |
    "flag", "cue_id", "t"}``) or as ``{"type": "feedback", "action", "cue_index" | "id" +
    "t"}``: the matching cue gets the feedback (the latest wins)."""
    action = d.get("type") if d.get("type") in ("dismiss", "flag") else d.get("action")
    value = FEEDBACK.get(str(action)) if action is not None else None
    if value is None and action not in (None, "clear"):
        return
    target = None
    idx = d.get("cue_index")
    if isinstance(idx, int) and not isinstance(idx, bool) and 0 <= idx < len(cues):
        target = cues[idx]
    else:
        cue_id = d.get("cue_id") or d.get("id")
        t = _num(d.get("t"))
        if cue_id is None or t is None:
            return
        near = [c for c in cues if c["cue_id"] == cue_id and abs(c["t"] - t) <= 0.05]
        if near:
            target = min(near, key=lambda c: abs(c["t"] - t))
    if target is None:
        return
    target["feedback"] = value
    at = _num(d.get("received_at"))
    target["feedback_at"] = datetime.fromtimestamp(at, UTC) if at is not None else \
        datetime.now(UTC)
