"""Into the store: recording folders (with crash recovery) and analysed files.

Both are read from disk (folders, audio files), scored on the QA rubric and handed to
``Store.add_call``, which turns their events into rows (``coach.store.rows``).

A recording folder is what ``coach.live.Recorder`` writes: ``audio.flac`` (agent left,
customer right), ``events.jsonl`` and ``call.json`` (``finished: false`` until the call
ends cleanly). A folder whose process was killed still holds everything flushed up to about
a second before: the FLAC has no length in its header and may stop mid-frame, and the last
line of ``events.jsonl`` may be cut; both are read up to where they end, and the call is
stored with status "recovered".
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from coach.errors import CoachError
from coach.redact import RedactOptions
from coach.store.rows import _as_dict, _num
from coach.store.schema import AlreadyStoredError, StoreError

if TYPE_CHECKING:
    from coach.store.db import Store

__all__ = [
    "ImportResult",
    "import_path",
    "import_recording",
    "is_recording",
    "read_events",
    "recover",
    "save_analysis",
]

log = logging.getLogger(__name__)

RECORDING_FILES = ("call.json", "events.jsonl", "audio.flac")
AUDIO_RATE = 16000


# -- recording folders ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What happened to one folder: ``outcome`` "imported" (``call_id`` set), "skipped"
    (already in the store, still being recorded, nothing in it) or "failed" (``reason``)."""

    folder: Path
    outcome: Literal["imported", "skipped", "failed"]
    reason: str
    call_id: str | None = None


def is_recording(folder: Path) -> bool:
    return folder.is_dir() and any((folder / f).is_file() for f in RECORDING_FILES)


def read_events(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The events of an ``events.jsonl``, and how many lines were dropped: a line cut off
    by a killed writer (the last one, without its newline) or any line that is not a JSON
    object."""
    events: list[dict[str, Any]] = []
    dropped = 0
    if not path.is_file():
        return events, 0
    with open(path, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            dropped += 1
            if i < len(lines) - 1:
                log.info("%s: line %d is not JSON; skipped", path, i + 1)
            continue
        if isinstance(d, dict):
            events.append(d)
        else:
            dropped += 1
    return events, dropped


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _read_meta(folder: Path) -> dict[str, Any]:
    try:
        meta = json.loads((folder / "call.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _still_recording(folder: Path, meta: dict[str, Any], idle_s: float) -> bool:
    """An unfinished folder is a live call still in progress, not a crash, when its files
    changed within ``idle_s`` seconds (the recorder flushes about once a second) — or, if
    call.json names its writer (pid on this host), when that process is alive and wrote
    within the last 5 minutes (an older folder with a live pid has a reused pid)."""
    pid, host = meta.get("pid"), meta.get("host")
    if isinstance(pid, int) and not isinstance(pid, bool) and host in (None,
                                                                       socket.gethostname()):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False  # the writer is gone: a crash, recover now
        except PermissionError:
            pass  # alive, another user's
        idle_s = max(idle_s, 300.0)
    now = time.time()
    for name in RECORDING_FILES:
        try:
            if now - (folder / name).stat().st_mtime < idle_s:
                return True
        except OSError:
            continue
    return False


def _transcode(path: Path, dest: Path, *, agent_channel: str = "left"
               ) -> tuple[float, int, float | None]:
    """Decode ``path`` (whatever coach.io.audiofile reads, cut-off files included) and
    write a clean 16 kHz FLAC, agent left, customer right. Returns (seconds, channels,
    ended_early_at)."""
    import soundfile as sf

    from coach.io.audiofile import open_call

    call = open_call(path, agent_channel=agent_channel)
    nch = 2 if call.info.channels.customer is not None else 1
    frames = 0
    import numpy as np

    with sf.SoundFile(dest, "w", AUDIO_RATE, nch, format="FLAC", subtype="PCM_16") as out:
        for block in call.blocks(0.2):  # small blocks: a cut-off file loses at most 0.2 s
            x = block.agent[:, None] if nch == 1 else np.stack(
                [block.agent, block.customer if block.customer is not None
                 else np.zeros_like(block.agent)], axis=1)
            out.write(np.clip(x, -1.0, 1.0))
            frames += x.shape[0]
    if frames == 0:
        raise CoachError(f"{path}: contains no audio (0 samples)")
    return frames / AUDIO_RATE, nch, call.ended_early_at


def _rubric_score(events: list[dict[str, Any]], duration_s: float | None,
                  playbook: Any = None) -> float | None:
    """The QA rubric's 0-100 score of a call on its way into the store, so the call list
    can be filtered and sorted by it (the default playbook unless one is given)."""
    from coach.playbook import load_playbook
    from coach.rubric import score_events

    try:
        pb = playbook if playbook is not None else load_playbook(None)
        return score_events(events, pb, duration_s=duration_s).score
    except CoachError as exc:  # a bad team playbook must not lose the recording
        log.warning("coach: call not scored: %s", exc)
        return None


def _write_marker(folder: Path, call_id: str, store: Store) -> None:
    try:
        tmp = folder / "imported.json.tmp"
        tmp.write_text(json.dumps({"call_id": call_id, "store": store.url,
                                   "imported_at": datetime.now(UTC).isoformat()}))
        tmp.replace(folder / "imported.json")
    except OSError as exc:  # a read-only folder is still imported
        log.info("%s: cannot write imported.json (%s)", folder, exc)


def _import_folder(store: Store, folder: Path, *, agent: str | None,
                   redact: RedactOptions | None, idle_s: float,
                   playbook: Any = None) -> ImportResult:
    if not folder.is_dir():
        raise StoreError(f"{folder}: no such folder")
    if not is_recording(folder):
        raise StoreError(f"{folder}: not a recording folder (no call.json, events.jsonl or "
                         "audio.flac)")
    marker = folder / "imported.json"
    if marker.is_file():
        try:
            known = json.loads(marker.read_text()).get("call_id")
        except (OSError, ValueError, AttributeError):
            known = None
        if isinstance(known, str) and store.has_call(known):
            return ImportResult(folder, "skipped", f"already imported as {known}", known)
    meta = _read_meta(folder)
    finished = meta.get("finished") is True
    if not finished and _still_recording(folder, meta, idle_s):
        return ImportResult(folder, "skipped", "still being recorded")
    audio = folder / "audio.flac"
    has_audio = audio.is_file() and audio.stat().st_size > 0
    events_path = folder / "events.jsonl"
    key_src = audio if has_audio else events_path
    if not key_src.is_file() or key_src.stat().st_size == 0:
        return ImportResult(folder, "skipped", "nothing recorded (no audio, no events)")
    key = _sha256(key_src)
    existing = store.has_source(key)
    if existing:
        _write_marker(folder, existing, store)
        return ImportResult(folder, "skipped", f"already imported as {existing}", existing)
    events, dropped = read_events(events_path)
    notes = []
    if dropped:
        notes.append(f"{dropped} cut-off line{'s' if dropped > 1 else ''} dropped")
    last_t = max([_num(e.get("end")) or _num(e.get("t")) or 0.0 for e in events] or [0.0])
    with tempfile.TemporaryDirectory(prefix="coach-import-") as tmp:
        audio_path: Path | None = None
        audio_s = None
        channels = None
        if has_audio:
            if finished:
                import soundfile as sf

                try:
                    info = sf.info(str(audio))
                    if 0 < info.frames < (1 << 40):  # a length in the header: a whole file
                        audio_path = audio
                        audio_s, channels = info.frames / info.samplerate, info.channels
                except (RuntimeError, sf.LibsndfileError):
                    pass  # a header we cannot read: decode what is there below
            if audio_path is None:
                try:
                    clean = Path(tmp) / "audio.flac"
                    audio_s, channels, _ = _transcode(audio, clean)
                    audio_path = clean
                except CoachError as exc:
                    notes.append(f"audio not readable ({exc})")
        useful = {"word", "transcript", "prosody", "cue"}
        if audio_path is None and not any(e.get("type") in useful for e in events):
            return ImportResult(folder, "skipped", "nothing usable recorded"
                                + (f" ({'; '.join(notes)})" if notes else ""))
        if finished:
            duration = _num(meta.get("duration"))
        else:
            duration = max(audio_s or 0.0, last_t)
        if duration is None:
            duration = audio_s if audio_s is not None else last_t
        roles = meta.get("channels")
        if not roles and channels:
            roles = "agent,customer" if channels >= 2 else "agent"
        call_meta = {
            "agent": agent or meta.get("agent"),
            "started_at": meta.get("started_at") if meta.get("started_at") is not None
            else _first_mtime(folder),
            "source": "live",
            "source_key": key,
            "channels": roles,
            "model": meta.get("model"),
            "status": "complete" if finished else "recovered",
            "duration_s": duration,
            "score": _rubric_score(events, duration, playbook),
        }
        try:
            call_id = store.add_call(meta=call_meta, events=events, audio_path=audio_path,
                                     redact=redact)
        except AlreadyStoredError as exc:
            return ImportResult(folder, "skipped", f"already imported as {exc.call_id}",
                                exc.call_id)
    _write_marker(folder, call_id, store)
    reason = call_meta["status"] + (f" ({'; '.join(notes)})" if notes else "")
    return ImportResult(folder, "imported", reason, call_id)


def _first_mtime(folder: Path) -> float:
    times = [p.stat().st_mtime for p in folder.iterdir() if p.is_file()]
    return min(times) if times else time.time()


def import_recording(store: Store, folder: str | os.PathLike[str], *,
                     agent: str | None = None, redact: RedactOptions | None = None,
                     idle_s: float = 10.0, playbook: Any = None) -> str | None:
    """Import one recording folder; the new call id, or None when it was skipped
    (already imported, still being recorded, empty). Writes ``imported.json`` into the
    folder after a successful import."""
    res = _import_folder(store, Path(folder), agent=agent, redact=redact, idle_s=idle_s,
                         playbook=playbook)
    return res.call_id if res.outcome == "imported" else None


def _recording_folders(root: Path) -> list[Path]:
    if is_recording(root):
        return [root]
    found = []
    for dirpath, dirnames, _ in os.walk(root):
        dirnames.sort()
        p = Path(dirpath)
        if p != root and is_recording(p):
            found.append(p)
            dirnames[:] = []  # a recording folder holds no further recordings
    return found


def import_path(store: Store, path: str | os.PathLike[str], *, agent: str | None = None,
                redact: RedactOptions | None = None, idle_s: float = 10.0,
                on_result: Callable[[ImportResult], None] | None = None
                ) -> list[ImportResult]:
    """Import a recording folder, or every recording folder under ``path`` (recursively).
    One folder failing does not stop the others: it is reported as "failed"."""
    root = Path(path)
    if not root.exists():
        raise StoreError(f"{path}: no such file or folder")
    if root.is_file():
        if root.name in RECORDING_FILES:
            root = root.parent
        else:
            raise StoreError(f"{path}: not a recording folder (a folder written by "
                             "`coach live`, with call.json, events.jsonl and audio.flac)")
    folders = _recording_folders(root)
    if not folders:
        raise StoreError(f"{path}: no recording folders in it (folders with call.json, "
                         "events.jsonl or audio.flac)")
    results = []
    for folder in folders:
        try:
            res = _import_folder(store, folder, agent=agent, redact=redact, idle_s=idle_s)
        except CoachError as exc:
            res = ImportResult(folder, "failed", str(exc))
        results.append(res)
        if on_result is not None:
            on_result(res)
    return results


def recover(store: Store, live_dir: str | os.PathLike[str], *,
            redact: RedactOptions | None = None, idle_s: float = 10.0) -> list[str]:
    """Import every recording folder under ``live_dir`` not yet in the store (calls cut
    off by a crash included); returns the new call ids. Folders that cannot be imported
    are logged and left for later."""
    root = Path(live_dir)
    if not root.is_dir():
        return []
    ids = []
    for folder in _recording_folders(root):
        try:
            res = _import_folder(store, folder, agent=None, redact=redact, idle_s=idle_s)
        except CoachError as exc:
            log.warning("coach: cannot import %s: %s", folder, exc)
            continue
        if res.outcome == "imported" and res.call_id:
            ids.append(res.call_id)
    return ids


# -- analysed files -------------------------------------------------------------------------


def save_analysis(store: Store, path: str | os.PathLike[str], events: Iterable[Any],
                  meta: dict[str, Any] | None = None, *, redact: RedactOptions | None = None,
                  replace: bool = False) -> str:
    """Store a call analysed by ``coach analyze --save``: its events and its audio as a
    16 kHz FLAC (agent left, customer right), scored on the QA rubric (``meta["playbook"]``,
    else the default playbook). ``meta`` may set agent, started_at (default:
    the file's modification time), model and ``agent_channel`` (as analysed). A file stored
    before (same bytes) returns its existing id, or is replaced with ``replace=True``."""
    p = Path(path)
    meta = dict(meta or {})
    if not p.is_file():
        raise StoreError(f"{path}: no such file")
    key = _sha256(p)
    existing = store.has_source(key)
    if existing and not replace:
        return existing
    evs = [d for d in (_as_dict(e) for e in events) if d]
    with tempfile.TemporaryDirectory(prefix="coach-save-") as tmp:
        flac = Path(tmp) / "audio.flac"
        seconds, nch, ended_early = _transcode(p, flac,
                                               agent_channel=str(meta.pop("agent_channel",
                                                                          "left")))
        truncated = ended_early is not None or any(
            d.get("type") == "call" and d.get("ended_early_at") is not None for d in evs)
        call_meta = {
            "agent": meta.get("agent"),
            "started_at": meta.get("started_at") or p.stat().st_mtime,
            "source": meta.get("source") or p.name,
            "source_key": key,
            "channels": "agent,customer" if nch == 2 else "agent",
            "model": meta.get("model"),
            "status": "truncated" if truncated else "complete",
            "duration_s": meta.get("duration_s"),
            "score": meta["score"] if "score" in meta else _rubric_score(
                evs, meta.get("duration_s") or seconds, meta.get("playbook")),
        }
        if existing:
            store.delete_call(existing)
        return store.add_call(meta=call_meta, events=evs, audio_path=flac, redact=redact)
