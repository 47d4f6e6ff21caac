"""A stored call as files: JSON, WebVTT and SRT transcripts, CSV of cues (pure functions
on the dict ``Store.get_call`` returns).

Transcripts are redacted on the way out too (``redact=None``: the defaults), so a call
stored with redaction off still leaves as it should unless the caller says otherwise;
redacting twice changes nothing.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from typing import Any

from coach.events import Word
from coach.evidence import split_withdrawn
from coach.redact import RedactOptions, redact_texts, redact_words
from coach.store.schema import StoreError
from coach.summary import Line, transcript_lines

__all__ = ["CSV_COLUMNS", "FORMATS", "evidence_text", "export", "lines", "timestamp",
           "to_csv", "to_json", "to_srt", "to_vtt"]

CSV_COLUMNS = ["call_id", "idx", "id", "t", "speaker", "severity", "title", "evidence",
               "feedback", "withdrawn"]
VOICES = {"agent": "Agent", "customer": "Customer"}


def _redacted(call: dict[str, Any], redact: RedactOptions | None) -> dict[str, Any]:
    opts = redact or RedactOptions()
    if not opts.enabled:
        return call
    out = dict(call)
    out["words"] = redact_words(call.get("words") or [], opts)
    cues = []
    for c in call.get("cues") or []:
        ev = c.get("evidence")
        if isinstance(ev, dict):
            ev = {k: _redact_list(v, opts) for k, v in ev.items()}
        cues.append({**c, "evidence": ev})
    out["cues"] = cues
    return out


def _is_words(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(w, dict) and "text" in w
                                                   for w in v)


def _redact_list(v: Any, opts: RedactOptions) -> Any:
    if _is_words(v):
        texts = redact_texts([str(w["text"]) for w in v], opts)
        return [{**w, "text": t} for w, t in zip(v, texts, strict=True)]
    return v


def lines(call: dict[str, Any], *, gap_s: float = 1.2) -> list[Line]:
    """Transcript lines: consecutive words of one speaker without a pause over ``gap_s``
    (the rule of ``coach analyze``'s transcript)."""
    ws = [Word(w["speaker"], str(w["text"]), float(w["start"]), float(w["end"]), True,
               float(w.get("probability") or 1.0))
          for w in call.get("words") or [] if w.get("speaker") in VOICES]
    return transcript_lines(ws, gap_s=gap_s)


def timestamp(t: float, sep: str = ".") -> str:
    """HH:MM:SS.mmm (WebVTT) or, with ``sep=","``, HH:MM:SS,mmm (SRT)."""
    ms = max(0, int(round(t * 1000)))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def _span(ln: Line) -> tuple[float, float]:
    # a cue must end after it starts: a one-word line of zero length gets a millisecond
    return ln.start, max(ln.end, ln.start + 0.001)


def _vtt_escape(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_vtt(call: dict[str, Any], *, redact: RedactOptions | None = None) -> str:
    """WebVTT: one cue per transcript line, the speaker as a voice tag (``<v Agent>``)."""
    call = _redacted(call, redact)
    out = ["WEBVTT", ""]
    if call.get("id"):
        out += [f"NOTE call {call['id']}" + (f", agent {call['agent']}" if call.get("agent")
                                             else ""), ""]
    for i, ln in enumerate(lines(call), 1):
        a, b = _span(ln)
        out += [str(i), f"{timestamp(a)} --> {timestamp(b)}",
                f"<v {VOICES[ln.speaker]}>{_vtt_escape(ln.text)}", ""]
    return "\n".join(out)


def to_srt(call: dict[str, Any], *, redact: RedactOptions | None = None) -> str:
    """SubRip: numbered cues, ``AGENT: `` / ``CUSTOMER: `` before each line's text."""
    call = _redacted(call, redact)
    out = []
    for i, ln in enumerate(lines(call), 1):
        a, b = _span(ln)
        out += [str(i), f"{timestamp(a, ',')} --> {timestamp(b, ',')}",
                f"{ln.speaker.upper()}: {ln.text}", ""]
    return "\n".join(out)


def to_json(call: dict[str, Any], *, redact: RedactOptions | None = None) -> str:
    return json.dumps(_redacted(call, redact), indent=2, ensure_ascii=False) + "\n"


def evidence_text(evidence: Any) -> str:
    """Evidence in words: the quoted words, then any measured figures (k=v). A withdrawal
    is not evidence: it has its own column."""
    if not isinstance(evidence, dict):
        return ""
    evidence, _ = split_withdrawn(evidence)
    parts = [" ".join(str(w["text"]) for w in v) for v in evidence.values() if _is_words(v)]
    figures = [f"{k}={v}" for k, v in evidence.items() if not _is_words(v)]
    if figures:
        parts.append(", ".join(figures))
    return "; ".join(parts)


def _withdrawn(evidence: Any) -> str:
    """"" for a standing cue; else "withdrawn", with when and why if known."""
    _, withdrawn = split_withdrawn(evidence)
    if withdrawn is None:
        return ""
    return " ".join(x for x in ("withdrawn", withdrawn) if x)


def to_csv(call: dict[str, Any], *, redact: RedactOptions | None = None) -> str:
    """The call's cues, one row each, with the columns of ``CSV_COLUMNS``."""
    call = _redacted(call, redact)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(CSV_COLUMNS)
    for c in call.get("cues") or []:
        w.writerow([call.get("id", ""), c.get("idx"), c.get("id"), c.get("t"),
                    c.get("speaker"), c.get("severity"), c.get("title"),
                    evidence_text(c.get("evidence")), c.get("feedback") or "",
                    _withdrawn(c.get("evidence"))])
    return buf.getvalue()


# format -> (writer, media type)
FORMATS: dict[str, tuple[Callable[..., str], str]] = {
    "json": (to_json, "application/json"),
    "vtt": (to_vtt, "text/vtt; charset=utf-8"),
    "srt": (to_srt, "application/x-subrip; charset=utf-8"),
    "csv": (to_csv, "text/csv; charset=utf-8"),
}


def export(call: dict[str, Any], fmt: str, *, redact: RedactOptions | None = None) -> str:
    """The call in ``fmt`` (json, vtt, srt or csv)."""
    try:
        writer = FORMATS[fmt][0]
    except KeyError:
        raise StoreError(f"unknown export format {fmt!r} (one of "
                         f"{', '.join(FORMATS)})") from None
    return writer(call, redact=redact)
