"""A SQLite file as the call store keeps it (used by :class:`coach.store.db.Store`).

Calls are personal data, so the data dir is created 0700 and the database 0600 (with its
-wal and -shm files). The file is put in WAL mode, so readers never wait for a writer;
every write transaction takes the write lock up front (``BEGIN IMMEDIATE``) and waits for
it up to ``BUSY_TIMEOUT_S``, so a second writer, in this process or another, queues
instead of failing. An empty path or ``:memory:`` is a private in-memory database.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import time
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection
from sqlalchemy.pool import StaticPool

from coach.store.schema import StoreError

__all__ = ["BUSY_TIMEOUT_S", "sqlite_engine", "tighten"]

BUSY_TIMEOUT_S = 10.0


def sqlite_engine(u: URL, secure_dir: Path | None) -> tuple[Path | None, Engine]:
    """The database file's absolute path (None in memory) and an engine on it whose write
    transactions (``execution_options(coach_write=True)``) take the write lock at BEGIN."""
    db = u.database or ""
    path: Path | None = None
    if db in ("", ":memory:"):
        eng = create_engine("sqlite://", poolclass=StaticPool,
                            connect_args={"check_same_thread": False})
    else:
        path = Path(db).expanduser().absolute()
        _prepare_sqlite_file(path, secure_dir)
        eng = create_engine(u.set(database=str(path)),
                            connect_args={"timeout": BUSY_TIMEOUT_S})
    memory = path is None

    @event.listens_for(eng, "connect")
    def _on_connect(dbapi_conn, _record) -> None:
        # pysqlite's own transaction handling defers BEGIN and cannot take the write
        # lock up front; we issue BEGIN ourselves (see _on_begin)
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        cur.execute("PRAGMA foreign_keys = ON")
        if not memory:
            _use_wal(cur)
            cur.execute("PRAGMA synchronous = NORMAL")  # WAL: durable across crashes
        cur.execute("PRAGMA cache_size = -32000")
        cur.close()

    @event.listens_for(eng, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("coach_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return path, eng


def _prepare_sqlite_file(path: Path, secure_dir: Path | None) -> None:
    """Calls are personal data: the data dir is 0700 and the database 0600. SQLite creates
    its -wal and -shm files with the database file's mode, so creating that file first
    with 0600 covers all three."""
    parent = path.parent
    try:
        if not parent.exists():
            parent.mkdir(parents=True, mode=0o700, exist_ok=True)
            os.chmod(parent, 0o700)
        if secure_dir is not None and Path(secure_dir).absolute() == parent:
            _chmod_own(parent, 0o700)
        if not path.exists():
            fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
            os.close(fd)
    except OSError as exc:
        raise StoreError(f"cannot create the database {path}: {exc.strerror or exc}") from exc
    tighten(path)


def _use_wal(cur: sqlite3.Cursor) -> None:
    """Put the database in WAL mode (it stays so in the file). Switching needs the file to
    itself and SQLite answers "locked" at once, without waiting for the busy timeout, when
    another process is opening the same new database at that instant: wait and retry."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    delay = 0.005
    while True:
        try:
            if cur.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                cur.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


def _chmod_own(p: Path, mode: int) -> None:
    try:
        st = p.stat()
        if st.st_uid == os.getuid() and stat.S_IMODE(st.st_mode) != mode:
            os.chmod(p, mode)
    except OSError:
        pass


def tighten(path: Path) -> None:
    """Take group and other permissions off the database and its -wal and -shm files."""
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            st = p.stat()
        except OSError:
            continue
        if st.st_uid == os.getuid() and stat.S_IMODE(st.st_mode) & 0o077:
            try:
                os.chmod(p, stat.S_IMODE(st.st_mode) & 0o700)
            except OSError:
                pass
