"""Finding the calls of a QA run: files, sampling, each file's agent channel, transcripts.

A SOURCE is a directory (searched recursively) or one file. Audio is anything
``coach analyze`` reads; a transcript from another system (a JSON word list with times,
or WebVTT) is a call of its own when no audio of the same call name sits beside it, and
is scored from its words alone. Files that are neither are not calls (a README, a
manifest) and are only counted.

Sampling is reproducible: paths are sorted, then ``random.Random(seed).sample`` picks.
The seed has a fixed default, so rerunning the same command (to resume) picks the same
calls.

The agent's channel of a stereo file, first rule that applies:

1. a sidecar manifest ``<call>.json`` beside the audio with ``"agent_channel"`` or
   ``"channels": {"left": "agent", ...}`` (the demo calls have one);
2. a hint in the file name: ``R-agent`` / ``L-agent`` (or ``L-caller``, ``R-customer``...
   naming the other side);
3. the first matching line of a ``--channel-map`` CSV (``glob,channel``);
4. ``--agent-channel`` (default left).
"""

from __future__ import annotations

import csv
import fnmatch
import hashlib
import json
import math
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coach.errors import CoachError
from coach.events import AGENT, CUSTOMER, Word

__all__ = [
    "AUDIO_EXTENSIONS",
    "TRANSCRIPT_EXTENSIONS",
    "CallSource",
    "ChannelRules",
    "Found",
    "SampleSpec",
    "TranscriptError",
    "file_key",
    "find_calls",
    "parse_sample",
    "read_channel_map",
    "read_transcript",
    "sample_calls",
]

AUDIO_EXTENSIONS = frozenset({
    ".wav", ".wave", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".aif", ".aiff", ".aifc",
    ".au", ".snd", ".caf", ".w64", ".rf64", ".voc", ".sph", ".nist",
})
TRANSCRIPT_EXTENSIONS = frozenset({".json", ".vtt"})
# secondary suffixes of transcripts named after their call: MUL1423.words.json
_TRANSCRIPT_TAGS = (".words", ".transcript", ".captions")
_CHANNELS_OK = re.compile(r"^(left|right|\d+)$")


class TranscriptError(CoachError):
    """A transcript file that cannot be read as words with times."""


@dataclass(frozen=True, slots=True)
class CallSource:
    """One call to analyse."""

    path: str
    call: str  # the call name: the file's stem (transcripts without .words etc.)
    kind: str  # "audio" | "transcript"
    agent_channel: str = "left"
    channel_rule: str = "default"  # manifest | name | map | default | transcript

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "call": self.call, "kind": self.kind,
                "agent_channel": self.agent_channel, "channel_rule": self.channel_rule}


@dataclass(frozen=True, slots=True)
class Found:
    """What a SOURCE holds: the calls, and the other files that were not taken as calls."""

    calls: list[CallSource]
    ignored: list[str]  # neither audio nor a transcript (READMEs, manifests...)
    covered: list[str]  # transcripts whose call has audio beside them


def call_name(path: Path) -> str:
    stem = path.stem
    if path.suffix.lower() in TRANSCRIPT_EXTENSIONS:
        for tag in _TRANSCRIPT_TAGS:
            if stem.lower().endswith(tag):
                return stem[: -len(tag)]
    return stem


# -- channel rules ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ChannelRules:
    default: str = "left"
    channel_map: tuple[tuple[str, str], ...] = ()  # (glob, channel), first match wins
    root: str | None = None  # globs are tried against paths relative to this too

    def resolve(self, audio: Path) -> tuple[str, str]:
        """(agent channel, which rule said so) for one audio file."""
        side = _manifest_channel(audio)
        if side is not None:
            return side, "manifest"
        side = _name_hint(audio.name)
        if side is not None:
            return side, "name"
        names = [audio.name, str(audio)]
        if self.root is not None:
            try:
                names.append(audio.resolve().relative_to(Path(self.root).resolve()).as_posix())
            except ValueError:
                pass
        for glob, channel in self.channel_map:
            if any(fnmatch.fnmatchcase(n, glob) for n in names):
                return channel, "map"
        return self.default, "default"


def check_channel(value: str, where: str = "--agent-channel") -> str:
    v = str(value).strip().lower()
    if not _CHANNELS_OK.match(v) or v == "0":
        raise CoachError(f"{where}: the agent channel must be left, right or a channel "
                         f"number from 1, not {value!r}")
    return v


def read_channel_map(path: str | Path) -> tuple[tuple[str, str], ...]:
    """``glob,channel`` lines; blank lines, ``#`` comments and a ``glob,channel`` header
    are skipped. Raises CoachError naming the line of a bad entry."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise CoachError(f"{path}: cannot read the channel map ({exc.strerror or exc})") from exc
    except UnicodeDecodeError as exc:
        raise CoachError(f"{path}: the channel map is not UTF-8 text") from exc
    out: list[tuple[str, str]] = []
    for n, row in enumerate(csv.reader(text.splitlines()), start=1):
        cells = [c.strip() for c in row]
        if not cells or not any(cells) or cells[0].startswith("#"):
            continue
        if n == 1 and [c.lower() for c in cells[:2]] == ["glob", "channel"]:
            continue
        if len(cells) < 2 or not cells[0]:
            raise CoachError(f"{path}:{n}: expected 'glob,channel', got {','.join(row)!r}")
        out.append((cells[0], check_channel(cells[1], f"{path}:{n}")))
    return tuple(out)


def _manifest_channel(audio: Path) -> str | None:
    side = audio.with_suffix(".json")
    if not side.is_file():
        return None
    try:
        m = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(m, dict):
        return None
    ac = m.get("agent_channel")
    if isinstance(ac, str | int) and _CHANNELS_OK.match(str(ac).strip().lower()):
        return str(ac).strip().lower()
    chans = m.get("channels")
    if isinstance(chans, dict):
        for side_name, role in chans.items():
            if str(role).strip().lower() == AGENT:
                s = str(side_name).strip().lower()
                if _CHANNELS_OK.match(s):
                    return s
    return None


_HINT = re.compile(r"(?<![a-z])(l|r|left|right)[-_ ]?(agent|caller|customer|client)(?![a-z])",
                   re.IGNORECASE)


def _name_hint(name: str) -> str | None:
    """``..._L-caller_R-agent.flac`` -> right. An agent hint wins over a caller hint."""
    other = None
    for m in _HINT.finditer(name):
        side = "left" if m.group(1).lower().startswith("l") else "right"
        if m.group(2).lower() == AGENT:
            return side
        other = other or ("right" if side == "left" else "left")
    return other


# -- finding and sampling ----------------------------------------------------------------------

def find_calls(source: str | Path, rules: ChannelRules | None = None) -> Found:
    """The calls under ``source`` (a directory, recursively, or one file), sorted by path."""
    rules = rules or ChannelRules()
    root = Path(source)
    if not root.exists():
        raise CoachError(f"{source}: no such file or directory")
    if root.is_file():
        files = [root]
        rules = ChannelRules(rules.default, rules.channel_map, str(root.parent))
    else:
        rules = ChannelRules(rules.default, rules.channel_map, str(root))
        try:
            files = sorted((p for p in root.rglob("*") if p.is_file()),
                           key=lambda p: p.as_posix())
        except OSError as exc:
            raise CoachError(f"{source}: cannot list the directory ({exc})") from exc
    audio_names = {(p.parent, call_name(p)) for p in files
                   if p.suffix.lower() in AUDIO_EXTENSIONS}
    calls: list[CallSource] = []
    ignored: list[str] = []
    covered: list[str] = []
    for p in files:
        ext = p.suffix.lower()
        if ext in AUDIO_EXTENSIONS or (root.is_file() and ext not in TRANSCRIPT_EXTENSIONS):
            channel, rule = rules.resolve(p)
            calls.append(CallSource(str(p), call_name(p), "audio", channel, rule))
        elif ext in TRANSCRIPT_EXTENSIONS:
            if (p.parent, call_name(p)) in audio_names:
                covered.append(str(p))
            elif ext == ".json" and not root.is_file() and not _looks_like_transcript(p):
                ignored.append(str(p))  # a manifest or some other JSON, not a call
            else:
                calls.append(CallSource(str(p), call_name(p), "transcript", "-", "transcript"))
        else:
            ignored.append(str(p))
    return Found(calls, ignored, covered)


def _looks_like_transcript(p: Path) -> bool:
    """A JSON file is taken as a call only if it holds words or turns with times; other
    JSON files in a folder of calls (manifests, settings) are not calls. One that fails
    to parse is taken (and skipped with the reason), since it may be a broken transcript."""
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return True
    items = _word_items(data)
    return bool(items) and any(isinstance(it, dict) and "start" in it for it in items[:5])


@dataclass(frozen=True, slots=True)
class SampleSpec:
    count: int | None = None
    percent: float | None = None

    def size(self, population: int) -> int:
        if self.count is not None:
            return min(self.count, population)
        pct = self.percent if self.percent is not None else 100.0
        if population == 0 or pct <= 0:
            return 0
        return min(population, max(1, math.floor(population * pct / 100 + 0.5)))


def parse_sample(text: str) -> SampleSpec:
    """``10%`` or ``25``; raises CoachError for anything else."""
    s = str(text).strip()
    try:
        if s.endswith("%"):
            pct = float(s[:-1])
            if not 0 < pct <= 100 or math.isnan(pct):
                raise ValueError
            return SampleSpec(percent=pct)
        n = int(s)
        if n < 1:
            raise ValueError
        return SampleSpec(count=n)
    except ValueError:
        raise CoachError(f"--sample: expected a percentage (10%) or a number of calls (25), "
                         f"not {text!r}") from None


def sample_calls(calls: list[CallSource], spec: SampleSpec, seed: int = 0
                 ) -> list[CallSource]:
    """Sort by path, then draw ``spec`` of them with ``random.Random(seed)``; the result
    stays in path order."""
    ordered = sorted(calls, key=lambda c: c.path)
    k = spec.size(len(ordered))
    if k >= len(ordered):
        return ordered
    picked = random.Random(seed).sample(range(len(ordered)), k)
    return [ordered[i] for i in sorted(picked)]


def file_key(path: str | Path, chunk: int = 1 << 20) -> str:
    """sha256 of the file's bytes: the call's identity in the resume log."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while b := f.read(chunk):
            h.update(b)
    return h.hexdigest()


# -- transcripts ---------------------------------------------------------------------------------

_AGENT_NAMES = {"agent", "rep", "representative", "operator", "advisor", "adviser",
                "associate", "support", "system", "staff", "csr", "employee"}
_CUSTOMER_NAMES = {"customer", "caller", "client", "user", "consumer", "member", "guest",
                   "patient"}


def _word_items(data: Any) -> list[Any]:
    if isinstance(data, dict):
        for k in ("words", "items", "results", "segments", "turns"):
            if isinstance(data.get(k), list):
                return data[k]
        return []
    return data if isinstance(data, list) else []


def _role(name: str, agent_name: str | None) -> str | None:
    n = name.strip().lower()
    if agent_name is not None:
        return AGENT if n == agent_name.strip().lower() else CUSTOMER
    if n in _AGENT_NAMES or n.startswith("agent"):
        return AGENT
    if n in _CUSTOMER_NAMES or n.startswith(("customer", "caller")):
        return CUSTOMER
    return None


def _transcript_meta(path: Path) -> dict[str, Any]:
    """A sidecar ``<call>.json`` beside a VTT / ``.words.json`` transcript: it may say
    which speaker label is the agent (``"agent_speaker": "B"``)."""
    side = path.parent / f"{call_name(path)}.json"
    if side == path or not side.is_file():
        return {}
    try:
        m = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return {}
    return m if isinstance(m, dict) else {}


def _assign_roles(labels: list[str], agent: str | None, path: Path) -> dict[str, str]:
    """Speaker label -> agent/customer. Role names are understood (Agent, Caller...);
    otherwise ``agent`` (``--transcript-agent`` or the sidecar's ``agent_speaker``) names
    the agent's label; otherwise, with two unnamed speakers, the agent is the one who did
    not open the call... unless the labels are SpokenWOZ's A/B (B is the agent there)."""
    distinct = list(dict.fromkeys(labels))
    if agent is not None:
        if agent.strip().lower() not in {d.strip().lower() for d in distinct}:
            raise TranscriptError(f"{path}: no speaker {agent!r} in the transcript "
                                  f"(speakers: {', '.join(distinct) or 'none'})")
        return {d: _role(d, agent) or CUSTOMER for d in distinct}
    named = {d: _role(d, None) for d in distinct}
    if any(r == AGENT for r in named.values()):
        return {d: r or CUSTOMER for d, r in named.items()}
    if any(r == CUSTOMER for r in named.values()):
        return {d: r or AGENT for d, r in named.items()}
    if len(distinct) == 1:
        return {distinct[0]: AGENT}
    upper = {d.strip().upper() for d in distinct}
    if upper == {"A", "B"}:  # SpokenWOZ: A is the caller, B the agent
        return {d: AGENT if d.strip().upper() == "B" else CUSTOMER for d in distinct}
    # Unnamed speakers: whoever talks most is taken as the agent (agents explain, confirm
    # and close); the result records the choice so a wrong guess is visible.
    counts: dict[str, int] = {}
    for lab in labels:
        counts[lab] = counts.get(lab, 0) + 1
    top = max(distinct, key=lambda d: counts[d])
    return {d: AGENT if d == top else CUSTOMER for d in distinct}


def read_transcript(path: str | Path, *, agent: str | None = None
                    ) -> tuple[list[Word], dict[str, str]]:
    """Final words (agent/customer, times in seconds) of a JSON or WebVTT transcript and
    the label -> role map used. Raises TranscriptError with a one-line reason."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise TranscriptError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    if not raw.strip():
        raise TranscriptError(f"{path}: the file is empty")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TranscriptError(f"{path}: not UTF-8 text") from exc
    if agent is None:
        meta = _transcript_meta(p)
        a = meta.get("agent_speaker") or meta.get("transcript_agent")
        agent = str(a) if isinstance(a, str | int) else None
    if p.suffix.lower() == ".vtt" or text.lstrip().startswith("WEBVTT"):
        spans = _vtt_spans(text, p)
    else:
        spans = _json_spans(text, p)
    if not spans:
        raise TranscriptError(f"{path}: no timed words in the transcript")
    roles = _assign_roles([s[0] for s in spans], agent, p)
    words: list[Word] = []
    for label, token, start, end in spans:
        words.append(Word(roles[label], token, start, end, True))  # type: ignore[arg-type]
    words.sort(key=lambda w: (w.start, w.end))
    return words, roles


def _num(x: Any) -> float | None:
    if isinstance(x, bool):
        return None
    if isinstance(x, int | float) and math.isfinite(x):
        return float(x)
    if isinstance(x, str):
        try:
            v = float(x)
        except ValueError:
            return None
        return v if math.isfinite(v) else None
    return None


def _json_spans(text: str, p: Path) -> list[tuple[str, str, float, float]]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise TranscriptError(f"{p}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    items = _word_items(data)
    if not items:
        raise TranscriptError(f"{p}: expected a list of words with speaker, word/text, "
                              "start and end")
    out: list[tuple[str, str, float, float]] = []
    for i, it in enumerate(items):
        if not isinstance(it, dict):
            raise TranscriptError(f"{p}: item {i + 1} is not an object")
        token = it.get("word", it.get("text"))
        start, end = _num(it.get("start")), _num(it.get("end"))
        if not isinstance(token, str) or start is None:
            raise TranscriptError(f"{p}: item {i + 1} needs a word (or text) and a start time")
        end = start if end is None or end < start else end
        label = str(it.get("speaker", it.get("role", it.get("channel", "agent"))))
        pieces = token.split()
        if len(pieces) > 1:  # a turn or segment: spread its words over its span
            out += _spread(label, pieces, start, end)
        elif pieces:
            out.append((label, pieces[0], start, end))
    return out


def _spread(label: str, words: list[str], start: float, end: float
            ) -> list[tuple[str, str, float, float]]:
    """A line's words spread over its span in proportion to their length (a cue gives no
    word times; long words take longer to say)."""
    weights = [len(w) + 1 for w in words]
    total = sum(weights)
    out = []
    t = start
    for w, k in zip(words, weights, strict=True):
        d = (end - start) * k / total
        out.append((label, w, round(t, 3), round(t + d * 0.9, 3)))
        t += d
    return out


_VTT_TIME = re.compile(
    r"^\s*((?:\d+:)?\d{1,2}:\d{2}[.,]\d{1,3})\s*-->\s*((?:\d+:)?\d{1,2}:\d{2}[.,]\d{1,3})")
_VOICE = re.compile(r"<v(?:\.[\w.-]+)?\s+([^>]+)>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")
_PREFIX = re.compile(r"^\s*([A-Za-z][\w .'-]{0,30}?)\s*:\s+(.*)$")


def _vtt_seconds(s: str) -> float:
    parts = s.replace(",", ".").split(":")
    secs = 0.0
    for part in parts:
        secs = secs * 60 + float(part)
    return secs


def _vtt_spans(text: str, p: Path) -> list[tuple[str, str, float, float]]:
    """WebVTT cues; the speaker from a voice tag (``<v Agent>``) or a ``NAME:`` prefix, the
    last one known carrying over to unlabelled cues."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if not lines or not lines[0].lstrip("\ufeff").startswith("WEBVTT"):
        raise TranscriptError(f"{p}: not a WebVTT file (no WEBVTT header)")
    out: list[tuple[str, str, float, float]] = []
    label = None
    i = 0
    while i < len(lines):
        m = _VTT_TIME.match(lines[i])
        if not m:
            i += 1
            continue
        start, end = _vtt_seconds(m.group(1)), _vtt_seconds(m.group(2))
        i += 1
        body: list[str] = []
        while i < len(lines) and lines[i].strip():
            body.append(lines[i])
            i += 1
        # one cue may hold several voices: split at each voice tag
        chunks: list[tuple[str | None, str]] = []
        for ln in body:
            pos = 0
            for vm in _VOICE.finditer(ln):
                if ln[pos:vm.start()].strip():
                    chunks.append((None, ln[pos:vm.start()]))
                chunks.append((vm.group(1).strip(), ""))
                pos = vm.end()
            rest = ln[pos:]
            if chunks and chunks[-1][1] == "" and chunks[-1][0] is not None:
                chunks[-1] = (chunks[-1][0], rest)
            else:
                chunks.append((None, rest))
        pieces: list[tuple[str, list[str]]] = []
        for who, chunk in chunks:
            plain = _TAG.sub("", chunk).strip()
            if who is None:
                pm = _PREFIX.match(plain)
                if pm and (_role(pm.group(1), None) or pm.group(1).isupper()):
                    who, plain = pm.group(1).strip(), pm.group(2)
            if who is not None:
                label = who
            toks = plain.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">").split()
            if toks:
                pieces.append((label or "speaker", toks))
        n_words = sum(len(t) for _, t in pieces)
        if not n_words or end <= start:
            continue
        t = start
        for who, toks in pieces:  # the cue's span shared by word count among its voices
            d = (end - start) * len(toks) / n_words
            out += _spread(who, toks, t, t + d)
            t += d
    return out
