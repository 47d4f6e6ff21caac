"""QA and the call store: saving analysed calls with their score, and SOURCE ``store:``.

``--store [URL]`` saves every analysed audio call (its events and its audio, as
``coach analyze --save`` does) and sets its QA score; the result gets the ``store_id``,
which the report links to the replay page. SOURCE ``store:`` (or ``store:URL``) samples
calls already in the store, optionally filtered by ``--agent``, ``--since`` and ``--cue``;
each is scored from the words and cues it was stored with (``mode`` "stored"), so the call
keeps one score wherever it is shown, the one the store computed when the call came in
(or, if the rubric or playbook has changed since, the new one, written back). With
``--reanalyse`` its stored audio (16 kHz FLAC, agent left) is analysed again instead, and
that score is written back. Their key in the log is ``store:<call id>`` (with
``#reanalysed`` after it for a re-analysis).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coach.errors import CoachError
from coach.qa.sources import CallSource

if TYPE_CHECKING:
    from coach.qa.runner import QaOptions
    from coach.qa.workers import Task

__all__ = ["STORE_PREFIX", "export_audio", "open_qa_store", "save_result", "store_calls",
           "stored_result"]

STORE_PREFIX = "store:"
_PAGE = 1000


def _store_module():
    try:
        import coach.store as store_mod
    except ImportError as exc:  # pragma: no cover - the store ships with coach
        raise CoachError("the call store is not available in this installation") from exc
    return store_mod


def open_qa_store(url: str | None, source: str):
    """The store named by ``--store URL`` or ``store:URL`` (default: the local one)."""
    mod = _store_module()
    if source.startswith(STORE_PREFIX) and source[len(STORE_PREFIX):].strip():
        url = source[len(STORE_PREFIX):].strip()
    return mod.open_store(url or None)


def store_calls(store, opts: QaOptions) -> tuple[list[CallSource], dict[str, str],
                                                 dict[str, str], dict[str, float]]:
    """Every stored call matching the filters, as sources ``store:<id>`` (their audio is
    fetched only once a call is picked), with their ids, log keys and durations by path."""
    f = opts.store_filters
    calls: list[CallSource] = []
    ids: dict[str, str] = {}
    keys: dict[str, str] = {}
    seconds: dict[str, float] = {}
    offset = 0
    while True:
        rows, total = store.list_calls(agent=f.get("agent"), since=f.get("since"),
                                       cue=f.get("cue"), limit=_PAGE, offset=offset)
        for r in rows:
            path = f"{STORE_PREFIX}{r['id']}"
            name = Path(str(r.get("source") or r["id"])).stem or r["id"]
            calls.append(CallSource(path, name, "audio", "left", "store"))
            ids[path] = r["id"]
            # a re-analysis is another result than the stored events' (a rerun of the
            # other kind into the same DIR must not take one for the other)
            keys[path] = f"{path}#reanalysed" if opts.reanalyse else path
            seconds[path] = float(r.get("duration_s") or 0.0)
        offset += len(rows)
        if not rows or offset >= total:
            break
    return calls, ids, keys, seconds


def stored_result(store, task: Task) -> dict[str, Any]:
    """The result of a stored call scored from its stored words and cues (no audio, no
    model): the same rubric on the same events that gave the call its score in the store.
    ``stored_score`` keeps the score the store held before this run."""
    import time

    from coach.events import AGENT, CUSTOMER, Cue, Word
    from coach.qa.analyse_call import new_result, score_summary
    from coach.summary import CallSummary

    t0 = time.perf_counter()
    out = new_result(task.source, task.key, None, "stored")
    out["store_id"] = task.store_id
    try:
        call = store.get_call(task.store_id)
    except CoachError as exc:  # a store error skips this call, not the batch
        out.update(status="skipped", reason=f"{task.source.path}: {exc}")
        return out
    out["model"] = call.get("model")
    summary = CallSummary(duration_s=float(call.get("duration_s") or 0.0))
    for w in call.get("words") or []:
        if w.get("speaker") in (AGENT, CUSTOMER):
            summary.add(Word(w["speaker"], str(w.get("text", "")), float(w["start"]),
                             float(w["end"]), True, float(w.get("probability") or 1.0)))
    for c in call.get("cues") or []:
        if c.get("speaker") in (AGENT, CUSTOMER):
            summary.add(Cue(str(c["id"]), float(c["t"]), c["speaker"],
                            c.get("severity") or "nudge", str(c.get("title") or ""),
                            str(c.get("advice") or ""), dict(c.get("evidence") or {})))
    duration = summary.duration_s or max((w.end for w in summary.words), default=0.0)
    score_summary(out, summary, task.playbook_path, duration)
    out["stored_score"] = call.get("score")
    out["analysed_at"] = datetime.now(UTC).replace(microsecond=0).isoformat()
    out["seconds"] = round(time.perf_counter() - t0, 3)
    return out


def export_audio(store, call_id: str, dest_dir: Path) -> Path:
    """The call's stored FLAC as a file workers can read."""
    if not store.audio_size(call_id):
        raise CoachError(f"{STORE_PREFIX}{call_id}: the store holds no audio for this call")
    dest = dest_dir / f"{call_id}.flac"
    with open(dest, "wb") as f:
        for piece in store.iter_audio(call_id):
            f.write(piece)
    return dest


def save_result(store, task: Task, res: dict[str, Any], events: list | None) -> str | None:
    """Put the analysed call's score in the store; returns its id. A call from the store
    only gets its score; a file is saved (events + audio) first unless it is there."""
    if res.get("status") not in ("ok", "no speech"):
        return res.get("store_id")
    if task.store_id is not None:
        store.set_score(task.store_id, res.get("score"))
        return task.store_id
    if task.source.kind != "audio" or events is None:
        return None
    from coach.store.importer import save_analysis

    meta = {"model": res.get("model"), "agent_channel": task.source.agent_channel,
            "duration_s": res.get("duration_s"), "source": Path(task.source.path).name}
    call_id = save_analysis(store, task.source.path, events, meta)
    store.set_score(call_id, res.get("score"))
    return call_id
