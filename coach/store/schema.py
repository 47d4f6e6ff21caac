"""Tables of the call store (SQLAlchemy Core) and the ordered migrations that build them.

One schema for SQLite and PostgreSQL. The database records the migrations applied to it in
``schema_version``; opening a store applies the missing ones, in order, in one
transaction, and refuses a database written by a newer coach (whose tables this code
does not know).

Changing the schema: append a migration (never edit a released one) and update the table
definitions below to match what all migrations together produce; ``test_store`` checks
that a migrated database has exactly the columns defined here.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    func,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.types import TypeDecorator

from coach.errors import CoachError

__all__ = [
    "LATEST_VERSION",
    "AlreadyStoredError",
    "MIGRATIONS",
    "Migration",
    "StoreError",
    "UTCDateTime",
    "audio_chunks",
    "calls",
    "cues",
    "current_version",
    "metadata",
    "migrate",
    "notes",
    "prosody",
    "live_calls",
    "live_events",
    "reviews",
    "schema_version",
    "team_tokens",
    "words",
]


class StoreError(CoachError):
    """The call store cannot do what was asked: unknown call, unreachable or too new
    database, bad input. Always one line. (Defined here, the package's lowest module, so
    every store module shares it; import it from ``coach.store``.)"""


class AlreadyStoredError(StoreError):
    """The source (same ``source_key``) is already in the store, as ``call_id``."""

    def __init__(self, message: str, call_id: str):
        super().__init__(message)
        self.call_id = call_id


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on both backends. SQLite has no time zones: values are
    stored as naive UTC (ISO text, which sorts in time order) and come back aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


metadata = MetaData()

# Child rows are clustered by call on SQLite (WITHOUT ROWID tables keyed by call_id first):
# reading one call's thousands of words is then a single range scan.
_clustered = {"sqlite_with_rowid": False}

calls = Table(
    "calls", metadata,
    Column("id", String(32), primary_key=True),
    Column("agent", String(200)),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("duration_s", Float, nullable=False, default=0.0),
    Column("source", Text),
    Column("source_key", String(64), unique=True),
    Column("channels", String(40)),
    Column("model", String(200)),
    Column("status", String(16), nullable=False, default="complete"),
    Column("score", Float),
    Column("cue_counts", Text, nullable=False, default="{}"),
    Column("n_words", Integer, nullable=False, default=0),
    Column("transcript", Text, nullable=False, default=""),
    Column("audio_bytes", BigInteger, nullable=False, default=0),
    Column("audio_mime", String(40)),
    Column("created_at", UTCDateTime(), nullable=False),
)
# ix_calls_started_at: created by migration 1 (its columns depend on the database)
Index("ix_calls_agent_started_at", calls.c.agent, calls.c.started_at)
Index("ix_calls_score", calls.c.score)

_fk = {"ondelete": "CASCADE"}

words = Table(
    "words", metadata,
    Column("call_id", String(32), ForeignKey("calls.id", **_fk), primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("speaker", String(16), nullable=False),
    Column("text", Text, nullable=False),
    Column("start", Float, nullable=False),
    Column("end", Float, nullable=False),
    Column("probability", Float),
    **_clustered,
)

prosody = Table(
    "prosody", metadata,
    Column("call_id", String(32), ForeignKey("calls.id", **_fk), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("speaker", String(16), nullable=False),
    Column("t", Float, nullable=False),
    Column("f0_hz", Float),
    Column("loudness_db", Float),
    Column("wpm", Float),
    **_clustered,
)

cues = Table(
    "cues", metadata,
    Column("call_id", String(32), ForeignKey("calls.id", **_fk), primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("cue_id", String(64), nullable=False),
    Column("t", Float, nullable=False),
    Column("speaker", String(16), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("title", Text, nullable=False, default=""),
    Column("advice", Text, nullable=False, default=""),
    Column("evidence", Text, nullable=False, default="{}"),
    Column("feedback", String(16)),
    Column("feedback_at", UTCDateTime()),
    **_clustered,
)
Index("ix_cues_cue_id_call_id", cues.c.cue_id, cues.c.call_id)

# A cue live coaching withdrew (a ``retract`` event) keeps its row, with a "withdrawn" key
# in its evidence; a JSON key is the only place this text can stand (a string value is
# never followed by a colon). Withdrawn cues are not counted and not found by cue filters.
_WITHDRAWN_KEY = '"withdrawn":'
WITHDRAWN_LIKE = f"%{_WITHDRAWN_KEY}%"


def count_cues(rows: Iterable[tuple[str, str]]) -> str:
    """A call's ``cue_counts``: its standing cues per id, as JSON text, from (cue id,
    evidence JSON text) pairs."""
    standing = Counter(cue_id for cue_id, evidence in rows
                       if _WITHDRAWN_KEY not in (evidence or ""))
    return json.dumps(dict(sorted(standing.items())))

notes = Table(
    "notes", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("call_id", String(32), ForeignKey("calls.id", **_fk), nullable=False),
    Column("t", Float, nullable=False),
    Column("text", Text, nullable=False),
    Column("author", String(200)),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)
Index("ix_notes_call_id", notes.c.call_id, notes.c.t)

audio_chunks = Table(
    "audio_chunks", metadata,
    Column("call_id", String(32), ForeignKey("calls.id", **_fk), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("data", LargeBinary, nullable=False),
    **_clustered,
)

# -- the team layer (coach.team): role tokens, live calls published by agents ---------------

team_tokens = Table(
    "team_tokens", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),  # an agent's name is calls.agent
    Column("role", String(16), nullable=False),  # agent | coach | admin
    Column("team", String(200)),
    Column("token_hash", String(64), nullable=False, unique=True),  # sha256 of the token
    Column("created_at", UTCDateTime(), nullable=False),
    Column("revoked_at", UTCDateTime()),
)
Index("ix_team_tokens_name", team_tokens.c.name)

live_calls = Table(
    "live_calls", metadata,
    Column("id", String(32), primary_key=True),  # chosen by the agent's coach; the stored call's id
    Column("agent", String(200), nullable=False),
    Column("team", String(200)),
    Column("started_at", UTCDateTime()),
    Column("state", String(16), nullable=False, default="live"),  # live | ended
    Column("last_seq", Integer, nullable=False, default=-1),
    Column("last_event_at", UTCDateTime(), nullable=False),
)
Index("ix_live_calls_last_event_at", live_calls.c.last_event_at)

live_events = Table(
    "live_events", metadata,
    Column("call_id", String(32), ForeignKey("live_calls.id", **_fk), primary_key=True),
    Column("seq", Integer, primary_key=True),  # the agent's numbering: a resent event is a duplicate
    Column("received_at", UTCDateTime(), nullable=False),
    Column("data", Text, nullable=False),  # the event as JSON, as the team policy let it through
    **_clustered,
)

# An agent's answer to a stored call's score: acknowledged, or disputed (the score, one
# rubric step, or one cue) with a comment; a coach resolves disputes.
reviews = Table(
    "reviews", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("call_id", String(32), ForeignKey("calls.id", **_fk), nullable=False),
    Column("agent", String(200)),
    Column("kind", String(16), nullable=False),  # ack | dispute
    Column("target", String(16), nullable=False),  # score | step | cue
    Column("step", String(32)),
    Column("cue_idx", Integer),
    Column("cue_id", String(64)),
    Column("comment", Text, nullable=False, default=""),
    Column("author", String(200)),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("status", String(16), nullable=False),  # acknowledged | open | upheld | overturned
    Column("resolution", Text),
    Column("resolved_by", String(200)),
    Column("resolved_at", UTCDateTime()),
)
Index("ix_reviews_call_id", reviews.c.call_id)
Index("ix_reviews_status", reviews.c.status, reviews.c.created_at)

schema_version = Table(
    "schema_version", metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("description", Text, nullable=False),
    Column("applied_at", UTCDateTime(), nullable=False),
)


# -- migrations -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    apply: Callable[[Connection], None]


_V1_TABLES = [calls, words, prosody, cues, notes, audio_chunks]


# The list page's index (newest first; ids break ties). On SQLite it also carries every
# listed column: a calls row is mostly transcript (about a page each), so a list page read
# from the index alone never touches those rows. PostgreSQL keeps long text out of line
# (TOAST), its rows are small already.
_LIST_INDEX = ("started_at", "id", "agent", "duration_s", "source", "status", "score",
               "n_words", "cue_counts")


def _m1_tables(conn: Connection) -> None:
    metadata.create_all(conn, tables=_V1_TABLES)
    cols = _LIST_INDEX if conn.dialect.name == "sqlite" else _LIST_INDEX[:2]
    conn.exec_driver_sql(f"CREATE INDEX ix_calls_started_at ON calls ({', '.join(cols)})")


def _m2_search(conn: Connection) -> None:
    """Full-text search over the (redacted) transcript: FTS5 on SQLite, a GIN index over a
    'simple' (no stemming) tsvector on PostgreSQL; both split words the same way.

    The FTS5 table is contentless (the text is in calls.transcript already) and keyed by
    the integer rowid of a small map table, so a match yields call ids without reading any
    transcript; triggers keep both in step with calls."""
    if conn.dialect.name == "sqlite":
        for sql in (
            "CREATE TABLE calls_fts_ids (rowid INTEGER PRIMARY KEY, "
            "call_id VARCHAR(32) NOT NULL UNIQUE)",
            "CREATE VIRTUAL TABLE calls_fts USING fts5(transcript, content='', "
            "tokenize = 'unicode61 remove_diacritics 0')",
            "CREATE TRIGGER calls_fts_insert AFTER INSERT ON calls BEGIN "
            "INSERT INTO calls_fts_ids(call_id) VALUES (new.id); "
            "INSERT INTO calls_fts(rowid, transcript) "
            "SELECT rowid, new.transcript FROM calls_fts_ids WHERE call_id = new.id; END",
            "CREATE TRIGGER calls_fts_delete AFTER DELETE ON calls BEGIN "
            "INSERT INTO calls_fts(calls_fts, rowid, transcript) "
            "SELECT 'delete', rowid, old.transcript FROM calls_fts_ids WHERE call_id = old.id; "
            "DELETE FROM calls_fts_ids WHERE call_id = old.id; END",
            "CREATE TRIGGER calls_fts_update AFTER UPDATE OF transcript ON calls BEGIN "
            "INSERT INTO calls_fts(calls_fts, rowid, transcript) "
            "SELECT 'delete', rowid, old.transcript FROM calls_fts_ids WHERE call_id = old.id; "
            "INSERT INTO calls_fts(rowid, transcript) "
            "SELECT rowid, new.transcript FROM calls_fts_ids WHERE call_id = new.id; END",
            "INSERT INTO calls_fts_ids(call_id) SELECT id FROM calls ORDER BY started_at",
            "INSERT INTO calls_fts(rowid, transcript) SELECT m.rowid, c.transcript "
            "FROM calls c JOIN calls_fts_ids m ON m.call_id = c.id",
        ):
            conn.exec_driver_sql(sql)
    elif conn.dialect.name == "postgresql":
        # a stored tsvector, not an index on to_tsvector(transcript): counting the calls
        # that say a common word, or checking a phrase, then reads the vector instead of
        # parsing every transcript again (9 s -> 0.1 s for a word in all of 10k calls)
        conn.exec_driver_sql(
            "ALTER TABLE calls ADD COLUMN transcript_tsv tsvector GENERATED ALWAYS AS "
            "(to_tsvector('simple'::regconfig, transcript)) STORED")
        conn.exec_driver_sql(
            "CREATE INDEX ix_calls_transcript_fts ON calls USING gin (transcript_tsv)")


def _m3_team(conn: Connection) -> None:
    metadata.create_all(conn, tables=[team_tokens, live_calls, live_events])


def _m4_reviews(conn: Connection) -> None:
    metadata.create_all(conn, tables=[reviews])


def _m5_standing_counts(conn: Connection) -> None:
    """Calls stored before this version counted their withdrawn cues: count again."""
    cu = cues.c
    ids = conn.execute(select(cu.call_id).where(cu.evidence.like(WITHDRAWN_LIKE))
                       .distinct()).scalars().all()
    for call_id in ids:
        rows = conn.execute(select(cu.cue_id, cu.evidence).where(cu.call_id == call_id))
        conn.execute(update(calls).where(calls.c.id == call_id)
                     .values(cue_counts=count_cues((r.cue_id, r.evidence) for r in rows)))


MIGRATIONS: list[Migration] = [
    Migration(1, "calls, words, prosody, cues, notes, audio", _m1_tables),
    Migration(2, "full-text search over transcripts", _m2_search),
    Migration(3, "team: role tokens, live calls and their events", _m3_team),
    Migration(4, "team: agents' reviews of their scores (acknowledge, dispute)", _m4_reviews),
    Migration(5, "cue counts leave withdrawn cues out", _m5_standing_counts),
]
LATEST_VERSION = MIGRATIONS[-1].version

_PG_LOCK = 0x636F616368  # pg_advisory_xact_lock key: one migrator at a time


def current_version(conn: Connection) -> int:
    """The schema version of the database (0 for an empty one)."""
    if not conn.dialect.has_table(conn, "schema_version"):
        return 0
    return conn.execute(select(func.max(schema_version.c.version))).scalar() or 0


def migrate(conn: Connection, *, where: str,
            migrations: list[Migration] | None = None) -> list[int]:
    """Apply the missing migrations on ``conn``, inside the caller's transaction (which
    must hold the database's write lock on SQLite: BEGIN IMMEDIATE). Returns the versions
    applied. ``where`` names the database in error messages."""
    migrations = MIGRATIONS if migrations is None else migrations
    latest = migrations[-1].version
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK})
    version = current_version(conn)
    if version > latest:
        raise StoreError(f"{where} has schema version {version}, newer than this coach "
                         f"knows ({latest}): upgrade coach to open it")
    if version == 0:
        schema_version.create(conn, checkfirst=True)
    applied = []
    for m in migrations:
        if m.version <= version:
            continue
        m.apply(conn)
        conn.execute(schema_version.insert().values(
            version=m.version, description=m.description, applied_at=datetime.now(UTC)))
        applied.append(m.version)
    return applied


# Columns the migrations add on one database only (search support), not used by queries
# through the tables above.
DIALECT_COLUMNS = {"postgresql": {"calls": ["transcript_tsv"]}}


def table_columns(dialect: str | None = None) -> dict[str, list[str]]:
    """Column names per table as defined here (to compare with a migrated database)."""
    extra = DIALECT_COLUMNS.get(dialect or "", {})
    return {t.name: [c.name for c in t.columns] + extra.get(t.name, [])
            for t in metadata.sorted_tables}
