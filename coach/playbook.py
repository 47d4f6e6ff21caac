"""The playbook: every phrase, threshold, window, cooldown and word of advice the cue engine
uses, loaded from a YAML data file.

The packaged default (``coach/playbooks/default.yaml``) defines every cue of CUES.md. A team
playbook overrides only what it names on top of it; one with ``extends: null`` stands alone.
Every problem in a file is reported as a :class:`PlaybookError` carrying the file and line,
so a team editing its playbook sees where it went wrong, not a traceback.
"""

from __future__ import annotations

import importlib.resources
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from .errors import PlaybookError

__all__ = [
    "CUE_IDS",
    "CueSpec",
    "PatternSet",
    "Playbook",
    "Settings",
    "load_playbook",
]

CUE_IDS: tuple[str, ...] = (
    "qualified-apology",
    "conditional-apology",
    "generic-apology",
    "casual-apology",
    "minimizing",
    "blame-shift",
    "empty-promise",
    "over-apology",
    "no-action",
    "laughter",
    "name-frustration",
    "empathy-shown",
    "pace-fast",
    "tone-tense",
    "volume-loud",
    "tone-flat",
    "dead-air",
    "talk-over",
    "monologue",
    "no-follow-up",
)
"""Every cue id of CUES.md, in catalogue order."""

SEVERITIES = ("info", "nudge", "warn")
SPEAKERS = ("agent", "customer")

_DEFAULT_NAME = "default.yaml"
_TOP_KEYS = {"version", "extends", "settings", "lexicon", "cues", "hotwords", "hotwords+"}
_CUE_SCALARS = {"enabled", "title", "advice", "severity", "speaker", "cooldown_s"}
_CUE_MAPS = {"patterns", "thresholds", "windows"}
_REQUIRED = ("title", "advice", "severity", "speaker")
# Lexicon names a standalone playbook may leave out (QA's severity words: without them
# every problem counts as a real failure).
_OPTIONAL_LEXICON = frozenset({"problem_minor", "problem_major"})
# <<name>> inside a pattern stands for the lexicon list of that name (one alternation).
_REF = re.compile(r"<<([a-z_]+)>>")


@dataclass(frozen=True, slots=True)
class Settings:
    """Engine-wide settings (see the header of default.yaml for what each means)."""

    cooldown_s: float = 30.0
    warn_gap_s: float = 8.0
    skew_s: float = 3.0
    sentence_pause_s: float = 0.8
    settle_s: float = 2.0
    confirm_s: float = 0.5
    vad_hangover_s: float = 1.0
    backchannel_s: float = 1.0
    speech_gap_s: float = 0.5
    baseline_s: float = 30.0
    baseline_min_readings: float = 10


_SETTING_NAMES = {f.name for f in fields(Settings)}


@dataclass(frozen=True, slots=True)
class PatternSet:
    """A named list of regular expressions over normalised text, compiled into one
    alternation with word boundaries. An empty set never matches."""

    name: str
    sources: tuple[str, ...]
    regex: re.Pattern[str] | None

    def finditer(self, text: str, pos: int = 0) -> list[re.Match[str]]:
        return [] if self.regex is None else list(self.regex.finditer(text, pos))

    def search(self, text: str, pos: int = 0) -> re.Match[str] | None:
        return None if self.regex is None else self.regex.search(text, pos)

    def match(self, text: str, pos: int = 0) -> re.Match[str] | None:
        return None if self.regex is None else self.regex.match(text, pos)

    def fullmatch(self, text: str) -> re.Match[str] | None:
        return None if self.regex is None else self.regex.fullmatch(text)

    def __bool__(self) -> bool:
        return self.regex is not None


@dataclass(frozen=True, slots=True)
class CueSpec:
    """One cue's wording, hygiene and data."""

    id: str
    enabled: bool
    title: str
    advice: str
    severity: str
    speaker: str
    cooldown_s: float
    patterns: Mapping[str, PatternSet]
    thresholds: Mapping[str, float]
    windows: Mapping[str, float]
    # every "say instead" line of the advice (``advice`` is the first); shown in turn
    advice_variants: tuple[str, ...] = ()

    def pattern(self, name: str) -> PatternSet:
        return self.patterns[name]


@dataclass(frozen=True, slots=True)
class Playbook:
    """A validated playbook: settings, shared lexicon and one :class:`CueSpec` per cue id."""

    settings: Settings
    lexicon: Mapping[str, PatternSet]
    cues: Mapping[str, CueSpec]
    sources: tuple[str, ...] = ()
    # words recognition is biased toward (given to the model as a hint before the prompt)
    hotwords: tuple[str, ...] = ()

    def cue(self, cue_id: str) -> CueSpec:
        return self.cues[cue_id]

    def lex(self, name: str) -> PatternSet:
        return self.lexicon[name]


# --- reading YAML with line numbers -------------------------------------------------------

# A leaf value and where it was written: (value, path, line).
_Leaf = tuple[Any, str, int]


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


class _Reader:
    """Walks a composed YAML node tree, checking types and keeping each value's line."""

    def __init__(self, path: str):
        self.path = path
        self._constructor = yaml.SafeLoader("")

    def fail(self, reason: str, node: yaml.Node | None = None) -> PlaybookError:
        return PlaybookError(reason, path=self.path, line=None if node is None else _line(node))

    def mapping(self, node: yaml.Node, what: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(f"{what} must be a mapping", node)
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            key = self.scalar(key_node)
            if not isinstance(key, str):
                raise self.fail(f"{what}: keys must be names, got {key!r}", key_node)
            if key in out:
                raise self.fail(f"{what}: duplicate key {key!r}", key_node)
            out[key] = (key_node, value_node)
        return out

    def scalar(self, node: yaml.Node) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            return node  # callers check the type and report
        return self._constructor.construct_object(node)

    def number(self, node: yaml.Node, what: str, *, minimum: float = 0.0) -> float:
        value = self.scalar(node)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(f"{what} must be a number, got {_show(value)}", node)
        if value < minimum:
            raise self.fail(f"{what} must be >= {minimum:g}, got {value}", node)
        return float(value)

    def string(self, node: yaml.Node, what: str) -> str:
        value = self.scalar(node)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(f"{what} must be a non-empty string, got {_show(value)}", node)
        return value.strip()

    def boolean(self, node: yaml.Node, what: str) -> bool:
        value = self.scalar(node)
        if not isinstance(value, bool):
            raise self.fail(f"{what} must be true or false, got {_show(value)}", node)
        return value

    def patterns(self, node: yaml.Node, what: str) -> list[_Leaf]:
        if isinstance(node, yaml.ScalarNode):
            value = self.scalar(node)
            if value is None:
                return []
            raise self.fail(f"{what} must be a list of patterns, got {_show(value)}", node)
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(f"{what} must be a list of patterns", node)
        out: list[_Leaf] = []
        for item in node.value:
            text = self.string(item, f"{what} entry")
            _check_regex(text, self, item)
            out.append((text, self.path, _line(item)))
        return out


def _show(value: Any) -> str:
    if isinstance(value, yaml.MappingNode):
        return "a mapping"
    if isinstance(value, yaml.SequenceNode):
        return "a list"
    return repr(value)


def _check_regex(text: str, reader: _Reader, node: yaml.Node) -> None:
    # References are checked when the playbook is assembled; here only the syntax.
    try:
        re.compile(_REF.sub("x", text))
    except re.error as exc:
        raise reader.fail(f"bad regular expression {text!r}: {exc}", node) from exc


def _compose(text: str, path: str) -> yaml.Node | None:
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = None if mark is None else mark.line + 1
        reason = " ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
        raise PlaybookError(f"YAML syntax error: {reason}", path=path, line=line) from exc
    except yaml.YAMLError as exc:
        raise PlaybookError(f"YAML syntax error: {exc}", path=path) from exc


# --- the draft: plain values with their locations, merged file over file ------------------


@dataclass
class _Draft:
    extends: bool = True
    settings: dict[str, _Leaf] | None = None
    lexicon: dict[str, tuple[list[_Leaf], bool, str, int]] | None = None  # (items, append, path, line)
    cues: dict[str, dict[str, Any]] | None = None
    cue_lines: dict[str, int] | None = None
    hotwords: tuple[list[str], bool] | None = None  # (words, append to the base's)


def _read_draft(text: str, path: str) -> _Draft:
    root = _compose(text, path)
    reader = _Reader(path)
    if root is None:
        raise PlaybookError("empty playbook", path=path, line=1)
    top = reader.mapping(root, "playbook")
    draft = _Draft(settings={}, lexicon={}, cues={}, cue_lines={})
    for key, (key_node, value_node) in top.items():
        if key not in _TOP_KEYS:
            raise reader.fail(
                f"unknown key {key!r} (expected one of {', '.join(sorted(_TOP_KEYS))})", key_node
            )
        if key == "version":
            if reader.scalar(value_node) != 1:
                raise reader.fail("unsupported playbook version (expected 1)", value_node)
        elif key == "extends":
            value = reader.scalar(value_node)
            if value not in (None, "default"):
                raise reader.fail("extends must be 'default' or null", value_node)
            draft.extends = value == "default"
        elif key == "settings":
            for name, (kn, vn) in reader.mapping(value_node, "settings").items():
                if name not in _SETTING_NAMES:
                    raise reader.fail(f"unknown setting {name!r}", kn)
                draft.settings[name] = (reader.number(vn, f"settings.{name}"), path, _line(vn))
        elif key in ("hotwords", "hotwords+"):
            if not isinstance(value_node, yaml.SequenceNode):
                raise reader.fail(f"{key} must be a list of words", value_node)
            words = [reader.string(n, "hotwords") for n in value_node.value]
            draft.hotwords = (words, key.endswith("+"))
        elif key == "lexicon":
            for name, (kn, vn) in reader.mapping(value_node, "lexicon").items():
                append = name.endswith("+")
                base = name[:-1] if append else name
                items = reader.patterns(vn, f"lexicon.{base}")
                draft.lexicon[base] = (items, append, path, _line(kn))
        else:
            for cue_id, (kn, vn) in reader.mapping(value_node, "cues").items():
                if cue_id not in CUE_IDS:
                    raise reader.fail(f"unknown cue id {cue_id!r}", kn)
                draft.cues[cue_id] = _read_cue(reader, cue_id, vn)
                draft.cue_lines[cue_id] = _line(kn)
    return draft


def _read_cue(reader: _Reader, cue_id: str, node: yaml.Node) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, (kn, vn) in reader.mapping(node, f"cue {cue_id}").items():
        what = f"{cue_id}.{key}"
        if key == "enabled":
            out[key] = (reader.boolean(vn, what), reader.path, _line(vn))
        elif key == "advice" and isinstance(vn, yaml.SequenceNode):
            # several "say instead" lines: the engine takes them in turn within a call
            lines = tuple(reader.string(item, f"{what}[{i}]") for i, item in enumerate(vn.value))
            if not lines:
                raise reader.fail(f"{what} must not be an empty list", vn)
            out[key] = (lines, reader.path, _line(vn))
        elif key in ("title", "advice"):
            out[key] = ((reader.string(vn, what),) if key == "advice" else reader.string(vn, what),
                        reader.path, _line(vn))
        elif key == "severity":
            value = reader.string(vn, what)
            if value not in SEVERITIES:
                raise reader.fail(f"{what} must be one of {', '.join(SEVERITIES)}", vn)
            out[key] = (value, reader.path, _line(vn))
        elif key == "speaker":
            value = reader.string(vn, what)
            if value not in SPEAKERS:
                raise reader.fail(f"{what} must be one of {', '.join(SPEAKERS)}", vn)
            out[key] = (value, reader.path, _line(vn))
        elif key == "cooldown_s":
            out[key] = (reader.number(vn, what), reader.path, _line(vn))
        elif key == "patterns":
            groups: dict[str, tuple[list[_Leaf], bool, str, int]] = {}
            for name, (gk, gv) in reader.mapping(vn, what).items():
                append = name.endswith("+")
                base = name[:-1] if append else name
                groups[base] = (reader.patterns(gv, f"{what}.{base}"), append, reader.path, _line(gk))
            out[key] = groups
        elif key in ("thresholds", "windows"):
            values: dict[str, _Leaf] = {}
            if not (isinstance(vn, yaml.ScalarNode) and reader.scalar(vn) is None):
                for name, (nk, nv) in reader.mapping(vn, what).items():
                    values[name] = (reader.number(nv, f"{what}.{name}"), reader.path, _line(nk))
            out[key] = values
        else:
            known = ", ".join(sorted(_CUE_SCALARS | _CUE_MAPS))
            raise reader.fail(f"unknown key {key!r} in cue {cue_id} (expected one of {known})", kn)
    return out


def _merge(base: _Draft, over: _Draft, path: str) -> _Draft:
    """Lay ``over`` on top of ``base``; only names that exist in the base may be set."""
    settings = dict(base.settings or {})
    settings.update(over.settings or {})
    lexicon = dict(base.lexicon or {})
    for name, (items, append, p, line) in (over.lexicon or {}).items():
        if name not in lexicon:
            raise PlaybookError(f"unknown lexicon name {name!r}", path=p, line=line)
        lexicon[name] = ((lexicon[name][0] + items) if append else items, False, p, line)
    cues = {cid: dict(spec) for cid, spec in (base.cues or {}).items()}
    for cue_id, spec in (over.cues or {}).items():
        merged = cues.setdefault(cue_id, {})
        for key, value in spec.items():
            if key not in _CUE_MAPS:
                merged[key] = value
                continue
            current = dict(merged.get(key, {}))
            for name, entry in value.items():
                if name not in current:
                    line = entry[3] if key == "patterns" else entry[2]
                    raise PlaybookError(
                        f"unknown {key[:-1] if key != 'patterns' else 'pattern'} name {name!r} "
                        f"for cue {cue_id}",
                        path=path,
                        line=line,
                    )
                if key == "patterns" and entry[1]:
                    entry = (current[name][0] + entry[0], False, entry[2], entry[3])
                current[name] = entry
            merged[key] = current
    hotwords = base.hotwords
    if over.hotwords is not None:
        words, append = over.hotwords
        hotwords = ((list(base.hotwords[0]) if base.hotwords and append else []) + words, False)
    return _Draft(True, settings, lexicon, cues, dict(base.cue_lines or {}), hotwords)


def _check_complete(draft: _Draft, schema: _Draft | None, path: str) -> None:
    """A standalone playbook must define every cue and, if a schema is given, every name."""
    cues = draft.cues or {}
    for cue_id in CUE_IDS:
        if cue_id not in cues:
            raise PlaybookError(f"missing cue {cue_id!r}", path=path, line=1)
        line = (draft.cue_lines or {}).get(cue_id, 1)
        for key in _REQUIRED:
            if key not in cues[cue_id]:
                raise PlaybookError(f"cue {cue_id}: missing {key}", path=path, line=line)
        if schema is None:
            continue
        for key in _CUE_MAPS:
            want = set((schema.cues or {}).get(cue_id, {}).get(key, {}))
            have = set(cues[cue_id].get(key, {}))
            if want - have:
                missing = ", ".join(sorted(want - have))
                raise PlaybookError(f"cue {cue_id}: missing {key} {missing}", path=path, line=line)
            if have - want:
                extra = ", ".join(sorted(have - want))
                raise PlaybookError(f"cue {cue_id}: unknown {key} {extra}", path=path, line=line)
    if schema is not None:
        missing = set(schema.lexicon or {}) - set(draft.lexicon or {}) - _OPTIONAL_LEXICON
        if missing:
            raise PlaybookError(f"missing lexicon {', '.join(sorted(missing))}", path=path, line=1)


# --- compiling -------------------------------------------------------------------------------


def _compile(
    name: str, items: list[_Leaf], lexicon_src: Mapping[str, list[_Leaf]], depth: int = 0
) -> PatternSet:
    parts: list[str] = []
    for text, path, line in items:
        def expand(m: re.Match[str], path: str = path, line: int = line) -> str:
            ref = m.group(1)
            if ref not in lexicon_src:
                raise PlaybookError(f"pattern refers to unknown lexicon <<{ref}>>", path=path, line=line)
            if depth > 3:
                raise PlaybookError("lexicon references nest too deeply", path=path, line=line)
            inner = _compile(ref, lexicon_src[ref], lexicon_src, depth + 1)
            return "(?:" + "|".join(f"(?:{s})" for s in inner.sources) + ")" if inner.sources else "(?!)"

        expanded = _REF.sub(expand, text)
        try:
            re.compile(expanded)
        except re.error as exc:
            raise PlaybookError(f"bad regular expression {text!r}: {exc}", path=path, line=line) from exc
        parts.append(expanded)
    if not parts:
        return PatternSet(name, (), None)
    body = "|".join(f"(?:{p})" for p in parts)
    # Word boundaries on both sides so "but" never matches inside "button".
    regex = re.compile(rf"(?<!\w)(?:{body})(?!\w)")
    return PatternSet(name, tuple(parts), regex)


def _build(draft: _Draft, sources: tuple[str, ...]) -> Playbook:
    settings = Settings(**{k: v[0] for k, v in (draft.settings or {}).items()})
    lex_src = {name: entry[0] for name, entry in (draft.lexicon or {}).items()}
    lexicon = {name: _compile(name, items, lex_src) for name, items in lex_src.items()}
    cues: dict[str, CueSpec] = {}
    for cue_id in CUE_IDS:
        raw = (draft.cues or {})[cue_id]
        patterns = {
            name: _compile(name, entry[0], lex_src) for name, entry in raw.get("patterns", {}).items()
        }
        cues[cue_id] = CueSpec(
            id=cue_id,
            enabled=raw.get("enabled", (True,))[0],
            title=raw["title"][0],
            advice=raw["advice"][0][0],
            advice_variants=tuple(raw["advice"][0]),
            severity=raw["severity"][0],
            speaker=raw["speaker"][0],
            cooldown_s=raw.get("cooldown_s", (settings.cooldown_s,))[0],
            patterns=MappingProxyType(patterns),
            thresholds=MappingProxyType({k: v[0] for k, v in raw.get("thresholds", {}).items()}),
            windows=MappingProxyType({k: v[0] for k, v in raw.get("windows", {}).items()}),
        )
    hotwords = tuple(dict.fromkeys(w.strip() for w in (draft.hotwords or ([], False))[0]
                                   if w.strip()))
    return Playbook(settings, MappingProxyType(lexicon), MappingProxyType(cues), sources,
                    hotwords)


def _default_text() -> str:
    return importlib.resources.files("coach").joinpath("playbooks", _DEFAULT_NAME).read_text(
        encoding="utf-8"
    )


def _default_draft() -> _Draft:
    draft = _read_draft(_default_text(), _DEFAULT_NAME)
    _check_complete(draft, None, _DEFAULT_NAME)
    return draft


def load_playbook(path: str | Path | None = None) -> Playbook:
    """Load a playbook. ``None`` loads the packaged default; a file is laid over the default
    (or stands alone if it says ``extends: null``). Raises :class:`PlaybookError` with the
    file and line of the first problem."""
    base = _default_draft()
    if path is None:
        return _build(base, (_DEFAULT_NAME,))
    shown = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PlaybookError(f"cannot read playbook: {exc.strerror or exc}", path=shown) from exc
    except UnicodeDecodeError as exc:
        raise PlaybookError("playbook is not UTF-8 text", path=shown) from exc
    over = _read_draft(text, shown)
    if over.extends:
        merged = _merge(base, over, shown)
        return _build(merged, (_DEFAULT_NAME, shown))
    _check_complete(over, base, shown)
    return _build(over, (shown,))
