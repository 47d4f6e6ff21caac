"""Audio level of the judgement benchmark: the corpus rendered as calls and analysed by the
same pipeline as ``coach analyze``, at 16 kHz and on a phone line.

Items are grouped into calls of a few items: no two items in a call expect the same cue
(so a cue's cooldown never hides a true positive) and at most two hold an apology (so the
calls do not pile up more apologies a minute than a real call would). Each call pairs an
agent voice and a customer voice (``bench.render``); an item's turns are 0.5 s apart and
items 3 s apart, with a neutral customer line between two items where the customer would
otherwise not speak (so the agent's lines of two items are never one turn). A word cue counts
for the item whose time span holds the cue's time (from the item's first word to the next
item's first word, less 0.5 s). Rendered calls are cached under ``bench/out/judge_audio/``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path

import soundfile as sf

from bench.corpus import WORD_CUES, Item
from bench.render import (
    AGENT_VOICES,
    CUSTOMER_VOICES,
    SAMPLE_RATE,
    Voice,
    available,
    cache_key,
    lay_out,
    synthesise,
    write_phone,
)

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "judge_audio"
BANDS = ("16k", "phone")
ITEM_GAP_S = 3.0
TURN_GAP_S = 0.5
PER_CALL = 6
APOLOGIES_PER_CALL = 2
_APOLOGY = re.compile(r"\b(sorry|soz|apolog\w*|my bad|oops\w*|whoops\w*)\b", re.IGNORECASE)
# Said by the customer between two items whose turns would otherwise run together.
SEPARATORS = (
    "Okay, I see what you mean.",
    "Right, that makes sense to me.",
    "Alright, I'm following you so far.",
    "Okay, and what happens after that?",
    "Sure, that sounds fine to me.",
    "Okay, thanks for explaining it.",
)
NEGATIVE = ("nudge", "warn")
SPOKENWOZ = ROOT.parent / "shared" / "data" / "calls" / "spokenwoz"


def plan_calls(items: list[Item], per_call: int = PER_CALL) -> list[list[Item]]:
    """Deterministic grouping: items in hash order, each into the first call that does not
    yet expect any of its cues and has room."""
    order = sorted(items, key=lambda it: hashlib.sha1(it.id.encode()).hexdigest())
    calls: list[list[Item]] = []
    for it in order:
        for call in calls:
            used = set().union(*(c.expect for c in call))
            sorry = sum(1 for c in call if _apologises(c)) + _apologises(it)
            if len(call) < per_call and not (used & it.expect) and sorry <= APOLOGIES_PER_CALL:
                call.append(it)
                break
        else:
            calls.append([it])
    return calls


def _apologises(item: Item) -> bool:
    return any(s == "agent" and _APOLOGY.search(t) for s, t in item.turns)


def voices_for(k: int) -> tuple[Voice, Voice]:
    agents = [v for v in AGENT_VOICES if available(v)]
    customers = [v for v in CUSTOMER_VOICES if available(v)]
    agent = agents[k % len(agents)]
    customer = customers[k % len(customers)]
    if customer == agent:
        customer = customers[(k + 1) % len(customers)]
    return agent, customer


def render_call(items: list[Item], agent: Voice, customer: Voice, stem: Path) -> dict:
    """Write ``<stem>.16k.flac`` and ``<stem>.phone.wav``; return the manifest."""
    turns, owners = [], []
    for k, it in enumerate(items):
        sep = k > 0 and it.turns[0][0] == "agent" and items[k - 1].turns[-1][0] == "agent"
        if sep:
            line = SEPARATORS[k % len(SEPARATORS)]
            turns.append(("customer", synthesise(line, customer), ITEM_GAP_S / 2))
            owners.append(items[k - 1].id)
        for j, (speaker, text) in enumerate(it.turns):
            gap = TURN_GAP_S if j else 0.0 if k == 0 else ITEM_GAP_S / 2 if sep else ITEM_GAP_S
            audio = synthesise(text, agent if speaker == "agent" else customer)
            turns.append((speaker, audio, gap))
            owners.append(it.id)
    stereo, spans = lay_out(turns)
    starts: dict[str, float] = {}
    ends: dict[str, float] = {}
    for owner, (s, e) in zip(owners, spans, strict=True):
        starts.setdefault(owner, s)
        ends[owner] = e
    duration = len(stereo) / SAMPLE_RATE
    manifest = {"agent_voice": agent.label, "customer_voice": customer.label,
                "duration_s": round(duration, 3), "items": []}
    for k, it in enumerate(items):
        nxt = starts[items[k + 1].id] if k + 1 < len(items) else duration
        manifest["items"].append({"id": it.id, "start": round(starts[it.id], 3),
                                  "end": round(ends[it.id], 3), "span_end": round(nxt, 3)})
    sf.write(f"{stem}.16k.flac", stereo, SAMPLE_RATE, subtype="PCM_16")
    write_phone(Path(f"{stem}.phone.wav"), stereo)
    Path(f"{stem}.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return manifest


def render_all(items: list[Item], out: Path = OUT, log: Callable[[str], None] = print,
               limit: int | None = None) -> list[tuple[Path, dict]]:
    """Render (or reuse from the cache) every call of ``items`` (the first ``limit``):
    [(stem, manifest)]."""
    calls = plan_calls(items)[:limit]
    done = []
    for k, call in enumerate(calls):
        agent, customer = voices_for(k)
        key = cache_key({"turns": [it.turns for it in call], "agent": agent,
                         "customer": customer, "gap": ITEM_GAP_S, "turn_gap": TURN_GAP_S,
                         "separators": SEPARATORS})
        stem = out / f"call{k:02d}-{key}"
        if Path(f"{stem}.json").exists() and Path(f"{stem}.phone.wav").exists():
            manifest = json.loads(Path(f"{stem}.json").read_text(encoding="utf-8"))
        else:
            out.mkdir(parents=True, exist_ok=True)
            manifest = render_call(call, agent, customer, stem)
            log(f"rendered {stem.name}: {len(call)} items, {manifest['duration_s']:.0f} s, "
                f"agent {agent.label}, customer {customer.label}")
        done.append((stem, manifest))
    return done


class Analyser:
    """The ``coach analyze`` pipeline (streaming faster-whisper, Silero VAD, prosody, cues),
    loaded once."""

    def __init__(self, playbook, *, finals_only: bool = False):
        from coach.io.vad import SileroVad
        from coach.io.whisper import WhisperTranscriber

        self.playbook = playbook
        self.playbook_key = cache_key(repr(playbook))
        self.tx, self.vad = WhisperTranscriber(), SileroVad()
        self.finals_only = finals_only

    def events(self, path: Path, agent_channel: str = "left") -> tuple[list, object]:
        from coach.analyze import analyze_file
        from coach.asr import StreamingOptions
        from coach.pipeline import PipelineOptions

        opts = PipelineOptions(streaming=StreamingOptions(finals_only=self.finals_only))
        got: list = []
        res = analyze_file(path, transcriber=self.tx, make_vad=self.vad.shared,
                           playbook=self.playbook, agent_channel=agent_channel,
                           options=opts, on_event=got.append)
        return got, res


def attribute(cues: list, manifest: dict) -> dict[str, set[str]]:
    """Word cues per item id: a cue belongs to the item whose span holds its time, the
    span starting 0.5 s before the item's first rendered word (recognised word times can
    lead the rendered turn a little); a cue before the first item goes to the first."""
    items = manifest["items"]
    fired: dict[str, set[str]] = {it["id"]: set() for it in items}
    for c in cues:
        if c.id not in WORD_CUES:
            continue
        owner = items[0]["id"]
        for it in items:
            if it["start"] - 0.5 <= c.t:
                owner = it["id"]
        fired[owner].add(c.id)
    return fired


def _cue_file(stem: Path, band: str, analyser: Analyser) -> Path:
    mode = "finals" if analyser.finals_only else "stream"
    return Path(f"{stem}.{band}.{mode}-{analyser.playbook_key}.cues.json")


def run_bands(items: list[Item], analyser: Analyser, bands=BANDS, *, resume: bool = False,
              log: Callable[[str], None] = print) -> dict[str, list[tuple[Item, set[str]]]]:
    """``{band: [(item, fired word cues)]}`` through rendered audio. Each call's result is
    saved beside its audio; ``resume`` reuses saved results of the same playbook and mode
    (for an interrupted run, not after changing the code)."""
    from bench.judge_bench import surviving

    by_id = {it.id: it for it in items}
    calls = render_all(items, log=log)
    out: dict[str, list[tuple[Item, set[str]]]] = {b: [] for b in bands}
    for band in bands:
        for k, (stem, manifest) in enumerate(calls):
            saved = _cue_file(stem, band, analyser)
            if resume and saved.exists():
                fired = {i: set(c) for i, c in json.loads(saved.read_text()).items()}
            else:
                path = Path(f"{stem}.16k.flac" if band == "16k" else f"{stem}.phone.wav")
                events, _ = analyser.events(path)
                fired = attribute(surviving(events), manifest)
                saved.write_text(json.dumps({i: sorted(c) for i, c in fired.items()}) + "\n")
                log(f"{band}: call {k + 1}/{len(calls)} analysed ({manifest['duration_s']:.0f} s)")
            out[band] += [(by_id[i], f) for i, f in fired.items()]
    return out


def real_calls(analyser: Analyser, directory: Path = SPOKENWOZ) -> list[dict]:
    """Negative (nudge/warn) cues per agent-minute on the real SpokenWOZ calls (agent on the
    right channel)."""
    from bench.judge_bench import surviving

    rows = []
    for wav in sorted(directory.glob("*.wav")):
        events, res = analyser.events(wav, agent_channel="right")
        cues = surviving(events)
        neg = [c for c in cues if c.severity in NEGATIVE]
        minutes = res.summary.talk_s["agent"] / 60
        rows.append({"call": wav.stem, "agent_minutes": round(minutes, 2),
                     "negative_cues": len(neg), "cues": sorted(c.id for c in neg),
                     "voice_cues": sorted(c.id for c in cues
                                          if c.id in ("tone-tense", "volume-loud"))})
    return rows



def voice_rows(analyser: Analyser, bands=BANDS, out: Path = OUT) -> list[dict]:
    """The voice cues on rendered calls whose agent's pitch or level rises after a calm
    start (and on a calm control call), per speech engine and band."""
    from bench.judge_bench import surviving
    from bench.voice_calls import KINDS, engines, rise_call

    rows = []
    for engine in engines():
        for kind in KINDS:
            for band in bands:
                path, rise = rise_call(kind, engine, out, phone=band == "phone")
                events, _ = analyser.events(path)
                cues = [c for c in surviving(events) if c.id in ("tone-tense", "volume-loud")]
                rows.append({"engine": engine, "kind": kind, "band": band,
                             "rise_s": round(rise, 1),
                             "cues": [{"id": c.id, "t": round(c.t, 1)} for c in cues]})
    return rows
