"""The team's written policy: what leaves an agent's machine, and when the board alerts.

The admin writes it (``coach serve --team --policy team-policy.yaml``); the server sends
it to every agent's coach when it connects, and the agent's machine applies it before
anything is sent (:meth:`TeamPolicy.live_event`, :meth:`TeamPolicy.stored_event`). The
server applies the same filters again to what arrives, so a modified client gains nothing.

Pure: no files but :func:`load_policy`, no sockets. The README explains each choice.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from coach.errors import CoachError

__all__ = ["AlertRules", "LiveSharing", "PolicyError", "StoredSharing", "TeamPolicy",
           "load_policy"]

VOICE_FIELDS = ("f0_hz", "loudness_db", "f0_sd_st", "voiced_s")
"""Prosody fields that are readings of a voice (as opposed to the rate of speech)."""


class PolicyError(CoachError):
    """A policy file that cannot be read or does not validate (file and reason)."""


@dataclass(frozen=True, slots=True)
class LiveSharing:
    """What the board receives while a call is live. Call facts (agent, start, duration,
    connection, lag, device messages, call end) always go: without them there is no board."""

    cues: bool = True
    """Cue id, title, severity and time; their evidence words only with ``words``."""
    talk_split: bool = True
    """Who is speaking when (speech on/off and turn times, no content)."""
    pace: bool = True
    """The agent's speaking rate in words per minute (the figure the pace cue judges)."""
    words: bool = False
    """The transcript of both sides, as it is committed."""
    voice: bool = False
    """Pitch, loudness and pitch spread readings of either speaker."""
    customer_signals: bool = True
    """"The customer asked for a supervisor" and counts of frustration phrases, decided on
    the agent's machine from the customer's words (the words themselves stay there)."""
    private_cues: tuple[str, ...] = ("tone-tense", "tone-flat")
    """Cues shown to the agent only: never sent to the board nor stored on the server."""


@dataclass(frozen=True, slots=True)
class StoredSharing:
    """What goes into the team's call store when a call ends."""

    store: bool = True
    """Store the finished call at all (replay, reviews, per-agent pages, QA)."""
    audio: bool = True
    """The call's audio, for replay."""
    words: bool = True
    """The transcript (redacted: card numbers, long digit runs, e-mail addresses)."""
    voice: bool = True
    """Pitch and loudness readings: replay curves and the agent's voice baseline."""


@dataclass(frozen=True, slots=True)
class AlertRules:
    """When the board raises an alert on a live call."""

    warn_cues: int = 3
    """This many warn cues (withdrawn ones not counted) within ``warn_window_s``..."""
    warn_window_s: float = 120.0
    frustration: int = 2
    """...this many customer frustration phrases within ``frustration_window_s``..."""
    frustration_window_s: float = 60.0
    supervisor_request: bool = True
    """...or the customer asks for a supervisor or a manager (the playbook's
    ``supervisor_request`` lexicon)."""
    sound: bool = False
    """The board's sound starts on (each viewer can still switch it)."""


@dataclass(frozen=True, slots=True)
class TeamPolicy:
    live: LiveSharing = field(default_factory=LiveSharing)
    stored: StoredSharing = field(default_factory=StoredSharing)
    alerts: AlertRules = field(default_factory=AlertRules)
    source: str = "the default policy"

    # -- what leaves the machine ----------------------------------------------------------
    def live_event(self, e: dict[str, Any]) -> dict[str, Any] | None:
        """``e`` as the board may see it, or None when it stays on the agent's machine."""
        kind = e.get("type")
        live = self.live
        if kind in ("call", "status"):
            return _without(e, ("recording", "source")) if kind == "call" else e
        if kind in ("cue", "retract"):
            if not live.cues or e.get("id") in live.private_cues:
                return None
            if kind == "cue" and not live.words:
                return {**e, "evidence": _figures_only(e.get("evidence"))}
            return e
        if kind in ("activity", "turn"):
            return e if live.talk_split else None
        if kind == "prosody":
            if not (live.pace or live.voice):
                return None
            d = dict(e)
            if not live.voice:
                for k in VOICE_FIELDS:
                    d.pop(k, None)
            if not live.pace:
                d.pop("wpm", None)
                d.pop("pace_wpm", None)
            return d
        if kind == "word":
            return e if live.words and e.get("final") else None
        if kind == "signal":
            return e if live.customer_signals else None
        return None

    def stored_event(self, e: dict[str, Any]) -> dict[str, Any] | None:
        """``e`` as the team's store may keep it, or None."""
        kind = e.get("type")
        st = self.stored
        if kind in ("cue", "retract"):
            if e.get("id") in self.live.private_cues:
                return None
            if kind == "cue" and not st.words:
                return {**e, "evidence": _figures_only(e.get("evidence"))}
            return e
        if kind == "word":
            return e if st.words else None
        if kind == "prosody":
            if st.voice:
                return e
            d = dict(e)
            for k in VOICE_FIELDS:
                d.pop(k, None)
            return d
        if kind in ("dismiss", "flag", "feedback") and e.get("cue_id") in self.live.private_cues:
            return None
        return e

    # -- telling people -------------------------------------------------------------------
    def sharing(self) -> dict[str, list[str]]:
        """What the board gets and what stays on the agent's machine, in words."""
        live = self.live
        shared = ["call facts (start, duration, connection)"]
        kept = []
        for on, what in ((live.cues, "cues"), (live.talk_split, "talk split"),
                         (live.pace, "pace"), (live.customer_signals, "customer alerts"),
                         (live.words, "words"), (live.voice, "voice readings")):
            (shared if on else kept).append(what)
        if live.cues and live.private_cues:
            kept.append(", ".join(live.private_cues) + " cues")
        return {"shared": shared, "kept": kept}

    def sharing_line(self) -> str:
        s = self.sharing()
        line = "Shared live with your team: " + ", ".join(s["shared"]) + "."
        if s["kept"]:
            line += " Not shared: " + ", ".join(s["kept"]) + "."
        return line

    def to_dict(self) -> dict[str, Any]:
        return {"live": {**asdict(self.live), "private_cues": list(self.live.private_cues)},
                "stored": asdict(self.stored), "alerts": asdict(self.alerts)}

    @classmethod
    def from_dict(cls, d: Any, *, source: str = "the server's policy") -> TeamPolicy:
        """A policy from its JSON/YAML mapping (PolicyError, one line, if malformed)."""
        if d is None:
            d = {}
        if not isinstance(d, dict):
            raise PolicyError(f"{source}: expected a mapping with live, stored and alerts")
        unknown = set(d) - {"version", "live", "stored", "alerts"}
        if unknown:
            raise PolicyError(f"{source}: unknown section {sorted(unknown)[0]!r} "
                              "(live, stored, alerts)")
        if d.get("version", 1) != 1:
            raise PolicyError(f"{source}: version {d.get('version')!r} is not known (1)")
        return cls(_section(LiveSharing, d.get("live"), "live", source),
                   _section(StoredSharing, d.get("stored"), "stored", source),
                   _section(AlertRules, d.get("alerts"), "alerts", source), source)


def _section(kind: type, d: Any, name: str, source: str) -> Any:
    if d is None:
        return kind()
    if not isinstance(d, dict):
        raise PolicyError(f"{source}: {name} must be a mapping")
    known = {f.name: f for f in fields(kind)}
    values: dict[str, Any] = {}
    for key, value in d.items():
        f = known.get(key)
        if f is None:
            raise PolicyError(f"{source}: unknown setting {name}.{key} "
                              f"({', '.join(known)})")
        default = getattr(kind(), key)
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise PolicyError(f"{source}: {name}.{key} must be true or false")
        elif isinstance(default, tuple):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise PolicyError(f"{source}: {name}.{key} must be a list of cue ids")
            value = tuple(value)
        elif isinstance(default, (int, float)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise PolicyError(f"{source}: {name}.{key} must be a positive number")
            value = type(default)(value)
            if isinstance(default, int) and value != d[key]:
                raise PolicyError(f"{source}: {name}.{key} must be a whole number")
        values[key] = value
    return kind(**values)


def _without(e: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in e.items() if k not in keys}


def _figures_only(ev: Any) -> dict[str, Any]:
    """Cue evidence without its words: measured figures stay (pace 190 wpm, 6 s of
    silence), quoted words go."""
    if not isinstance(ev, dict):
        return {}
    out = {}
    for k, v in ev.items():
        if isinstance(v, (int, float, bool)) or v is None:
            out[k] = v
        elif isinstance(v, dict):
            inner = _figures_only(v)
            if inner:
                out[k] = inner
    return out


def load_policy(path: str | Path | None) -> TeamPolicy:
    """The policy in ``path`` (YAML), or the default policy for None."""
    if path is None:
        return TeamPolicy()
    import yaml

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError(f"{p}: no such policy file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise PolicyError(f"{p}: cannot read the policy ({e})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{p}:{mark.line + 1}" if mark is not None else str(p)
        raise PolicyError(f"{where}: not valid YAML ({getattr(e, 'problem', None) or e})"
                          ) from None
    return TeamPolicy.from_dict(data, source=str(p))
