"""The call store: one ``Store`` over SQLite (default, a file in the data dir) or
PostgreSQL (a team server), the same SQLAlchemy Core code for both.

Everything crossing this boundary is plain JSON-ready data (dicts, ISO 8601 strings);
every database failure becomes a one-line ``StoreError``. A ``Store`` is safe to share
between threads (each call takes its own pooled connection), and several processes may
write one SQLite file at once: writes take the database's write lock up front (BEGIN
IMMEDIATE) and wait for it up to 10 s, so a second writer queues instead of failing.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import (
    Engine,
    and_,
    create_engine,
    delete,
    func,
    select,
    text,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, make_url

from coach.redact import RedactOptions
from coach.store import schema as S
from coach.store.rows import (
    PROSODY_COLUMNS,
    WORD_COLUMNS,
    CallRows,
    build_rows,
    to_datetime,
)
from coach.store.schema import AlreadyStoredError, StoreError
from coach.store.sqlite_file import BUSY_TIMEOUT_S, sqlite_engine, tighten

__all__ = ["AUDIO_CHUNK", "AlreadyStoredError", "NewCall", "Store", "StoreError",
           "default_data_dir", "default_url", "open_store"]

AUDIO_CHUNK = 1 << 20  # audio is stored in 1 MiB rows: ranges are read without the rest
MAX_LIMIT = 10_000
NOTE_MAX_CHARS = 20_000
_TERM = re.compile(r"[^\W_]+")

P = ParamSpec("P")
R = TypeVar("R")


def default_data_dir() -> Path:
    """Where coach keeps its data: ``$COACH_DATA``, else ``$XDG_DATA_HOME/coach``, else
    ``~/.local/share/coach``."""
    base = os.environ.get("COACH_DATA") or os.path.join(
        os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share"), "coach")
    return Path(base)


def default_url(data_dir: Path | None = None) -> str:
    return f"sqlite:///{(data_dir or default_data_dir()) / 'coach.db'}"


def open_store(url: str | None = None, data_dir: Path | None = None) -> Store:
    """Open (creating and migrating as needed) the store at ``url``. Without a URL:
    SQLite in ``data_dir``, else ``$COACH_DB``, else SQLite in the default data dir. A
    plain file path is taken as a SQLite file."""
    secure_dir = None
    if url is None:
        if data_dir is not None:
            url, secure_dir = default_url(Path(data_dir)), Path(data_dir)
        elif os.environ.get("COACH_DB"):
            url = os.environ["COACH_DB"]
        else:
            url, secure_dir = default_url(), default_data_dir()
    return Store(url, _secure_dir=secure_dir)


@dataclass(frozen=True, slots=True)
class NewCall:
    """One call for ``Store.add_calls`` (the arguments of ``Store.add_call``)."""

    meta: dict[str, Any]
    events: Iterable[Any]
    audio_path: Path | None = None


def _one_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    msg = str(orig).strip().splitlines()
    return msg[0].strip() if msg else type(orig).__name__


def _guard(fn: Callable[P, R]) -> Callable[P, R]:
    """Database failures leave a Store method as one-line StoreErrors."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except StoreError:
            raise
        except sa_exc.SQLAlchemyError as exc:
            store = args[0]
            raise StoreError(store._describe(exc)) from exc  # type: ignore[attr-defined]

    return wrapper


def _iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.isoformat()


def _finite(x: Any, what: str) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise StoreError(f"bad {what}: {x!r}") from None
    if not math.isfinite(v):
        raise StoreError(f"bad {what}: {x!r}")
    return v


_LIST_COLUMNS = [S.calls.c.id, S.calls.c.agent, S.calls.c.started_at, S.calls.c.duration_s,
                 S.calls.c.source, S.calls.c.status, S.calls.c.score, S.calls.c.cue_counts,
                 S.calls.c.n_words]
_CALL_COLUMNS = _LIST_COLUMNS + [S.calls.c.channels, S.calls.c.model, S.calls.c.audio_bytes,
                                 S.calls.c.audio_mime, S.calls.c.created_at]


def _call_row(r: Any) -> dict[str, Any]:
    d = dict(r._mapping)
    d["started_at"] = _iso(d["started_at"])
    if "created_at" in d:
        d["created_at"] = _iso(d["created_at"])
    try:
        d["cue_counts"] = json.loads(d["cue_counts"] or "{}")
    except ValueError:
        d["cue_counts"] = {}
    return d


def _note_row(r: Any) -> dict[str, Any]:
    m = r._mapping  # not r.t: Row.t is SQLAlchemy's typed-tuple accessor
    return {"id": m["id"], "t": m["t"], "text": m["text"], "author": m["author"],
            "created_at": _iso(m["created_at"]), "updated_at": _iso(m["updated_at"])}


class Store:
    """A call store. Open with ``open_store``; ``close()`` when done (or use ``with``)."""

    def __init__(self, url: str, *, _secure_dir: Path | None = None):
        raw = str(url)
        if "://" not in raw:  # a plain path: a SQLite file
            raw = f"sqlite:///{Path(raw).expanduser()}"
        try:
            u = make_url(raw)
        except sa_exc.ArgumentError:
            raise StoreError(f"bad database URL {url!r} (expected sqlite:///PATH or "
                             "postgresql://USER@HOST/DB)") from None
        backend = u.get_backend_name()
        if backend in ("postgresql", "postgres"):
            if u.get_driver_name() in ("", "psycopg2", "postgres", "postgresql"):
                u = u.set(drivername="postgresql+psycopg")
        elif backend != "sqlite":
            raise StoreError(f"unsupported database {backend!r} in {url!r} (use sqlite:///PATH "
                             "or postgresql://USER@HOST/DB)")
        self.url: str = u.render_as_string(hide_password=True)
        self.dialect: str = "sqlite" if backend == "sqlite" else "postgresql"
        self.path: Path | None = None
        self._engine = self._create_engine(u, _secure_dir)
        self.version = self._migrate()

    # -- opening ------------------------------------------------------------------------------
    def _create_engine(self, u, secure_dir: Path | None) -> Engine:
        if self.dialect == "postgresql":
            eng = create_engine(u, pool_pre_ping=True, connect_args={"connect_timeout": 5})
            return eng
        self.path, eng = sqlite_engine(u, secure_dir)
        return eng

    def _migrate(self) -> int:
        try:
            with self._engine.connect() as conn:
                version = S.current_version(conn)
                conn.rollback()
            if version > S.LATEST_VERSION:
                raise StoreError(f"the database {self.url} has schema version {version}, newer "
                                 f"than this coach knows ({S.LATEST_VERSION}): upgrade coach "
                                 "to open it")
            if version < S.LATEST_VERSION:
                with self._write() as conn:
                    S.migrate(conn, where=f"the database {self.url}")
            if self.path is not None:
                tighten(self.path)
            return S.LATEST_VERSION
        except StoreError:
            self._engine.dispose()
            raise
        except sa_exc.SQLAlchemyError as exc:
            self._engine.dispose()
            raise StoreError(self._describe(exc, opening=True)) from exc

    def _describe(self, exc: BaseException, *, opening: bool = False) -> str:
        msg = _one_line(exc)
        if opening and not (self.dialect == "postgresql"
                            and isinstance(exc, (sa_exc.OperationalError,
                                                 sa_exc.InterfaceError))):
            return f"cannot open the database {self.url}: {msg}"
        if isinstance(exc, sa_exc.OperationalError):
            if "locked" in msg or "busy" in msg:
                return (f"the database {self.url} stayed locked by another writer for over "
                        f"{BUSY_TIMEOUT_S:.0f} s; try again")
            if self.dialect == "postgresql":
                return f"cannot reach the database {self.url}: {msg}"
            return f"cannot open the database {self.url}: {msg}"
        if isinstance(exc, sa_exc.InterfaceError):
            return f"cannot reach the database {self.url}: {msg}"
        return f"database error ({self.url}): {msg}"

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """A write transaction (on SQLite it holds the write lock from its start)."""
        with self._engine.connect() as conn:
            conn.execution_options(coach_write=True)
            with conn.begin():
                yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self._engine.connect() as conn:
            try:
                yield conn
            finally:
                conn.rollback()

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    # -- writing ------------------------------------------------------------------------------
    @_guard
    def add_call(self, *, meta: dict[str, Any], events: Iterable[Any],
                 audio_path: Path | None, redact: RedactOptions | None = None) -> str:
        """Store one call (rows, and its audio file's bytes) in one transaction; returns
        its id. Raises ``AlreadyStoredError`` when ``meta["source_key"]`` is stored."""
        return self.add_calls([NewCall(meta, events, audio_path)], redact=redact)[0]

    @_guard
    def add_calls(self, items: Iterable[NewCall], *, redact: RedactOptions | None = None
                  ) -> list[str]:
        """Store several calls in one transaction (bulk loads); returns their ids."""
        built: list[tuple[CallRows, Path | None]] = []
        for item in items:
            rows = build_rows(item.meta, item.events, redact)
            audio = Path(item.audio_path) if item.audio_path is not None else None
            if audio is not None:
                if not audio.is_file():
                    raise StoreError(f"{audio}: no such audio file")
                rows.call["audio_bytes"] = audio.stat().st_size
                rows.call["audio_mime"] = "audio/flac"
            built.append((rows, audio))
        if not built:
            return []
        keys = [r.call["source_key"] for r, _ in built if r.call["source_key"]]
        try:
            self._insert(built, keys)
        except sa_exc.IntegrityError as exc:
            # another writer stored the same source between our check and our insert
            for key in keys:
                found = self.has_source(key)
                if found:
                    raise AlreadyStoredError(
                        f"this source is already stored as call {found}", found) from exc
            raise StoreError(f"cannot add the call: {_one_line(exc)}") from exc
        return [r.call["id"] for r, _ in built]

    def _insert(self, built: list[tuple[CallRows, Path | None]], keys: list[str]) -> None:
        with self._write() as conn:
            if keys:
                found = conn.execute(select(S.calls.c.source_key, S.calls.c.id)
                                     .where(S.calls.c.source_key.in_(keys))).first()
                if found is not None:
                    raise AlreadyStoredError(
                        f"this source is already stored as call {found.id}", found.id)
            conn.execute(S.calls.insert(), [r.call for r, _ in built])
            cues = [{"call_id": r.call["id"], **c} for r, _ in built for c in r.cues]
            if cues:
                conn.execute(S.cues.insert(), cues)
            _bulk_insert(conn, S.words, WORD_COLUMNS,
                         [(r.call["id"], *w) for r, _ in built for w in r.words])
            _bulk_insert(conn, S.prosody, PROSODY_COLUMNS,
                         [(r.call["id"], *p) for r, _ in built for p in r.prosody])
            for r, audio in built:
                if audio is not None:
                    n = self._insert_audio(conn, r.call["id"], audio)
                    if n != r.call["audio_bytes"]:
                        conn.execute(update(S.calls).where(S.calls.c.id == r.call["id"])
                                     .values(audio_bytes=n))

    def _insert_audio(self, conn: Connection, call_id: str, path: Path) -> int:
        total = 0
        with open(path, "rb") as f:
            for seq, chunk in enumerate(iter(lambda: f.read(AUDIO_CHUNK), b"")):
                conn.execute(S.audio_chunks.insert(),
                             {"call_id": call_id, "seq": seq, "data": chunk})
                total += len(chunk)
        return total

    @_guard
    def delete_call(self, call_id: str) -> None:
        """Remove a call and everything stored with it."""
        with self._write() as conn:
            n = conn.execute(delete(S.calls).where(S.calls.c.id == call_id)).rowcount
        if not n:
            raise StoreError(f"no call {call_id}")

    @_guard
    def has_source(self, source_key: str) -> str | None:
        """The id of the call stored from this source (sha256 of its audio), if any."""
        with self._read() as conn:
            return conn.execute(select(S.calls.c.id)
                                .where(S.calls.c.source_key == source_key)).scalar()

    @_guard
    def has_call(self, call_id: str) -> bool:
        with self._read() as conn:
            return conn.execute(select(S.calls.c.id).where(S.calls.c.id == call_id)
                                ).first() is not None

    @_guard
    def resolve_id(self, prefix: str) -> str:
        """A full call id from a unique prefix (at least 4 characters), as listed."""
        p = prefix.strip().lower()
        if not re.fullmatch(r"[0-9a-z_-]{1,32}", p):
            raise StoreError(f"bad call id {prefix!r}")
        with self._read() as conn:
            if conn.execute(select(S.calls.c.id).where(S.calls.c.id == p)).first():
                return p
            if len(p) < 4:
                raise StoreError(f"no call {prefix}")
            ids = conn.execute(select(S.calls.c.id).where(S.calls.c.id.startswith(p))
                               .limit(2)).scalars().all()
        if not ids:
            raise StoreError(f"no call {prefix}")
        if len(ids) > 1:
            raise StoreError(f"call id {prefix} is ambiguous: give more characters")
        return ids[0]

    def _must_exist(self, conn: Connection, call_id: str) -> None:
        if conn.execute(select(S.calls.c.id).where(S.calls.c.id == call_id)).first() is None:
            raise StoreError(f"no call {call_id}")

    @_guard
    def set_score(self, call_id: str, score: float | None) -> None:
        value = None if score is None else _finite(score, "score")
        with self._write() as conn:
            n = conn.execute(update(S.calls).where(S.calls.c.id == call_id)
                             .values(score=value)).rowcount
        if not n:
            raise StoreError(f"no call {call_id}")

    @_guard
    def set_feedback(self, call_id: str, cue_idx: int, feedback: str | None) -> None:
        """A coach's (or agent's) verdict on a cue: "dismissed", "flagged" or None."""
        if feedback not in (None, "dismissed", "flagged"):
            raise StoreError(f"bad feedback {feedback!r} (dismissed, flagged or null)")
        with self._write() as conn:
            n = conn.execute(
                update(S.cues).where(and_(S.cues.c.call_id == call_id, S.cues.c.idx == cue_idx))
                .values(feedback=feedback,
                        feedback_at=datetime.now(UTC) if feedback else None)).rowcount
            if not n:
                self._must_exist(conn, call_id)
                raise StoreError(f"call {call_id} has no cue {cue_idx}")

    @staticmethod
    def _note_fields(t: Any, text_: Any) -> tuple[float | None, str | None]:
        tv = None
        if t is not None:
            tv = _finite(t, "note time")
            if tv < 0:
                raise StoreError(f"bad note time {t!r}: negative")
        tx = None
        if text_ is not None:
            if not isinstance(text_, str) or not text_.strip():
                raise StoreError("a note needs some text")
            tx = text_.strip()
            if len(tx) > NOTE_MAX_CHARS:
                raise StoreError(f"a note is limited to {NOTE_MAX_CHARS} characters")
        return tv, tx

    @_guard
    def add_note(self, call_id: str, t: float, text: str, author: str | None = None
                 ) -> dict[str, Any]:
        tv, tx = self._note_fields(t, text)
        if tv is None or tx is None:
            raise StoreError("a note needs a time and some text")
        now = datetime.now(UTC)
        with self._write() as conn:
            self._must_exist(conn, call_id)
            res = conn.execute(S.notes.insert().values(
                call_id=call_id, t=tv, text=tx,
                author=(author.strip()[:200] or None) if author else None,
                created_at=now, updated_at=now))
            nid = res.inserted_primary_key[0]
            row = conn.execute(select(S.notes).where(S.notes.c.id == nid)).one()
        return _note_row(row)

    @_guard
    def update_note(self, call_id: str, note_id: int, *, text: str | None = None,
                    t: float | None = None) -> dict[str, Any]:
        tv, tx = self._note_fields(t, text)
        values: dict[str, Any] = {"updated_at": datetime.now(UTC)}
        if tv is not None:
            values["t"] = tv
        if tx is not None:
            values["text"] = tx
        where = and_(S.notes.c.id == note_id, S.notes.c.call_id == call_id)
        with self._write() as conn:
            n = conn.execute(update(S.notes).where(where).values(**values)).rowcount
            if not n:
                self._must_exist(conn, call_id)
                raise StoreError(f"call {call_id} has no note {note_id}")
            row = conn.execute(select(S.notes).where(where)).one()
        return _note_row(row)

    @_guard
    def delete_note(self, call_id: str, note_id: int) -> None:
        with self._write() as conn:
            n = conn.execute(delete(S.notes).where(
                and_(S.notes.c.id == note_id, S.notes.c.call_id == call_id))).rowcount
            if not n:
                self._must_exist(conn, call_id)
                raise StoreError(f"call {call_id} has no note {note_id}")

    # -- reading ------------------------------------------------------------------------------
    def _search(self, q: str) -> list[Any]:
        """Conditions for a transcript search: the words of ``q`` in that order, the last
        one possibly unfinished ("refund the ch" finds "refund the charge"), through the
        full-text index of each database."""
        terms = _TERM.findall(q.lower())
        if not terms:
            return []
        if self.dialect == "sqlite":
            # one FTS5 phrase, its last word a prefix: exactly "the words in this order,
            # the last one possibly unfinished". "+calls.id": test membership while walking
            # the list index in date order rather than looking every match up by id
            return [text(
                "+calls.id IN (SELECT call_id FROM calls_fts_ids WHERE rowid IN "
                "(SELECT rowid FROM calls_fts WHERE calls_fts MATCH :fts_q))"
            ).bindparams(fts_q='"' + " ".join(terms) + '"*')]
        # the same phrase as a tsquery: "w1 <-> w2 <-> w3:*"
        return [text("calls.transcript_tsv @@ to_tsquery('simple'::regconfig, :ts_q)")
                .bindparams(ts_q=" <-> ".join(terms) + ":*")]

    @_guard
    def list_calls(self, *, agent: str | None = None, since: datetime | str | None = None,
                   until: datetime | str | None = None, cue: str | None = None,
                   min_score: float | None = None, max_score: float | None = None,
                   q: str | None = None, limit: int = 50, offset: int = 0,
                   agents: Iterable[str] | None = None
                   ) -> tuple[list[dict[str, Any]], int]:
        """Calls matching every filter given, newest first, and how many match in all.
        ``since``/``until`` bound the start time (naive datetimes are UTC); ``cue``: calls
        with at least one cue of that id not withdrawn; ``q``: words of the (redacted) transcript;
        ``agents``: only these agents' calls (what a team member may see)."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
            raise StoreError(f"bad limit {limit!r} (1 to {MAX_LIMIT})")
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise StoreError(f"bad offset {offset!r}")
        c = S.calls.c
        conds: list[Any] = []
        if agent:
            conds.append(c.agent == agent)
        if agents is not None:
            conds.append(c.agent.in_(sorted(agents)))
        if since is not None:
            conds.append(c.started_at >= to_datetime(since, what="since"))
        if until is not None:
            conds.append(c.started_at <= to_datetime(until, what="until"))
        if min_score is not None:
            conds.append(c.score >= _finite(min_score, "min_score"))
        if max_score is not None:
            conds.append(c.score <= _finite(max_score, "max_score"))
        if cue:
            conds.append(select(S.cues.c.idx).where(
                and_(S.cues.c.cue_id == cue, S.cues.c.call_id == c.id,
                     S.cues.c.evidence.not_like(S.WITHDRAWN_LIKE))).exists())
        if q and q.strip():
            conds += self._search(q)
        page = (select(*_LIST_COLUMNS).where(*conds)
                .order_by(c.started_at.desc(), c.id.desc()).limit(limit).offset(offset))
        count = select(func.count()).select_from(S.calls).where(*conds)
        with self._read() as conn:
            rows = [_call_row(r) for r in conn.execute(page)]
            total = conn.execute(count).scalar_one() if (offset or len(rows) == limit) \
                else offset + len(rows)
        return rows, total

    @_guard
    def agents(self) -> list[str]:
        with self._read() as conn:
            return list(conn.execute(select(S.calls.c.agent).where(S.calls.c.agent.is_not(None))
                                     .distinct().order_by(S.calls.c.agent)).scalars())

    @_guard
    def get_call(self, call_id: str) -> dict[str, Any]:
        """One call with its words, cues and notes (raises ``StoreError`` if absent)."""
        with self._read() as conn:
            r = conn.execute(select(*_CALL_COLUMNS).where(S.calls.c.id == call_id)).first()
            if r is None:
                raise StoreError(f"no call {call_id}")
            call = _call_row(r)
            w = S.words.c
            call["words"] = [
                {"speaker": x.speaker, "text": x.text, "start": x.start, "end": x.end,
                 "probability": x.probability}
                for x in conn.execute(select(w.speaker, w.text, w.start, w.end, w.probability)
                                      .where(w.call_id == call_id).order_by(w.idx))]
            cu = S.cues.c
            call["cues"] = [
                {"idx": x["idx"], "id": x["cue_id"], "t": x["t"], "speaker": x["speaker"],
                 "severity": x["severity"], "title": x["title"], "advice": x["advice"],
                 "evidence": _json(x["evidence"]), "feedback": x["feedback"],
                 "feedback_at": _iso(x["feedback_at"])}
                for x in conn.execute(select(S.cues).where(cu.call_id == call_id)
                                      .order_by(cu.idx)).mappings()]
            call["notes"] = [_note_row(x) for x in conn.execute(
                select(S.notes).where(S.notes.c.call_id == call_id)
                .order_by(S.notes.c.t, S.notes.c.id))]
        return call

    @_guard
    def prosody(self, call_id: str) -> list[dict[str, Any]]:
        """The call's prosody readings ({speaker, t, f0_hz, loudness_db, wpm}) in time order."""
        p = S.prosody.c
        with self._read() as conn:
            rows = [dict(x) for x in conn.execute(
                select(p.speaker, p.t, p.f0_hz, p.loudness_db, p.wpm)
                .where(p.call_id == call_id).order_by(p.seq)).mappings()]
            if not rows:
                self._must_exist(conn, call_id)
        return rows

    @_guard
    def audio_size(self, call_id: str) -> int:
        with self._read() as conn:
            n = conn.execute(select(S.calls.c.audio_bytes)
                             .where(S.calls.c.id == call_id)).first()
        if n is None:
            raise StoreError(f"no call {call_id}")
        return int(n[0] or 0)

    @_guard
    def read_audio(self, call_id: str, start: int, end: int) -> bytes:
        """Bytes [start, end) of the call's FLAC (clipped to its size)."""
        if start < 0 or end < start:
            raise StoreError(f"bad byte range {start}-{end}")
        size = self.audio_size(call_id)
        end = min(end, size)
        if start >= end:
            return b""
        first, last = start // AUDIO_CHUNK, (end - 1) // AUDIO_CHUNK
        a = S.audio_chunks.c
        with self._read() as conn:
            chunks = conn.execute(select(a.data).where(
                and_(a.call_id == call_id, a.seq >= first, a.seq <= last)).order_by(a.seq)
            ).scalars().all()
        data = b"".join(bytes(c) for c in chunks)
        off = start - first * AUDIO_CHUNK
        return data[off:off + (end - start)]

    def iter_audio(self, call_id: str, start: int = 0, end: int | None = None,
                   chunk: int = AUDIO_CHUNK) -> Iterator[bytes]:
        """Bytes [start, end) of the call's FLAC in pieces (for streaming responses)."""
        size = self.audio_size(call_id)
        end = size if end is None else min(end, size)
        pos = start
        while pos < end:
            piece = self.read_audio(call_id, pos, min(pos + chunk, end))
            if not piece:
                break
            yield piece
            pos += len(piece)


def _bulk_insert(conn: Connection, table: Any, columns: tuple[str, ...],
                 rows: list[tuple[Any, ...]]) -> None:
    """executemany straight to the driver: a call has thousands of words and prosody
    readings, and SQLAlchemy's per-row parameter processing would cost more than the
    database's own work. Only plain numbers and strings go through here."""
    if not rows:
        return
    q = conn.dialect.identifier_preparer.quote
    cols = ("call_id", *columns)
    names = ", ".join(q(c) for c in cols)
    if conn.dialect.name == "postgresql":
        # COPY: PostgreSQL's bulk path, several times faster than batched INSERTs
        with conn.connection.driver_connection.cursor() as cur:
            with cur.copy(f"COPY {q(table.name)} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        return
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    conn.exec_driver_sql(f"INSERT INTO {q(table.name)} ({names}) "
                         f"VALUES ({', '.join([mark] * len(cols))})", rows)


def _json(s: str | None) -> Any:
    try:
        return json.loads(s) if s else {}
    except ValueError:
        return {}
