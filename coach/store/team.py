"""The team layer's tables: role tokens, and the live calls agents publish with their events.

:class:`TeamData` wraps a :class:`coach.store.Store` (same database, same one-line
``StoreError`` on failure). Tokens are stored as their SHA-256 digest: a token is 32 random
bytes, so a plain digest cannot be reversed by guessing (a slow password hash is for
passwords people choose) and a lookup stays one indexed query per request.

Live events are keyed by (call id, the agent's sequence number): an event sent again after
a reconnect is a duplicate and is not stored twice (``INSERT ... ON CONFLICT DO NOTHING``
on both databases); :meth:`TeamData.add_live_events` returns only the events that were new.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from coach.store import schema as S
from coach.store.db import Store, _guard
from coach.store.schema import StoreError

__all__ = ["ROLES", "TOKEN_PREFIX", "LiveEvent", "Member", "TeamData", "hash_token"]

ROLES = ("agent", "coach", "admin")
TOKEN_PREFIX = "coach_"


def hash_token(token: str) -> str:
    """The stored form of a token (hex SHA-256)."""
    return hashlib.sha256(token.strip().encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Member:
    """Whoever holds a token: an agent (``name`` is their calls' agent name), a coach (of
    ``team``, or of everyone when ``team`` is None) or an admin."""

    token_id: int
    name: str
    role: str
    team: str | None
    created_at: str | None = None
    revoked_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.token_id, "name": self.name, "role": self.role, "team": self.team,
                "created_at": self.created_at, "revoked_at": self.revoked_at}


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """One event of a live call as stored: ``data`` is the event's JSON object."""

    call_id: str
    seq: int
    received_at: datetime
    data: dict[str, Any]


def _member(r: Any) -> Member:
    m = r._mapping
    return Member(m["id"], m["name"], m["role"], m["team"],
                  m["created_at"].isoformat() if m["created_at"] else None,
                  m["revoked_at"].isoformat() if m["revoked_at"] else None)


def _clean_name(name: Any, what: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise StoreError(f"bad {what}: give a non-empty name")
    name = " ".join(name.split())
    if len(name) > 200:
        raise StoreError(f"bad {what}: at most 200 characters")
    return name


class TeamData:
    """Tokens and live calls in ``store``'s database."""

    def __init__(self, store: Store):
        self.store = store
        self.dialect = store.dialect

    def _describe(self, exc: BaseException) -> str:  # used by @_guard
        return self.store._describe(exc)

    # -- tokens -------------------------------------------------------------------------------
    @_guard
    def create_token(self, name: str, role: str, team: str | None = None
                     ) -> tuple[str, Member]:
        """A new token for ``name`` with ``role``; returns (the token, shown once, and its
        member record). A person may hold several tokens (one per machine)."""
        if role not in ROLES:
            raise StoreError(f"bad role {role!r} (one of {', '.join(ROLES)})")
        name = _clean_name(name, "name")
        team = _clean_name(team, "team") if team not in (None, "") else None
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        with self.store._write() as conn:
            res = conn.execute(S.team_tokens.insert().values(
                name=name, role=role, team=team, token_hash=hash_token(token), created_at=now))
            tid = res.inserted_primary_key[0]
            row = conn.execute(select(S.team_tokens).where(S.team_tokens.c.id == tid)).one()
        return token, _member(row)

    @_guard
    def member(self, token: str) -> Member | None:
        """The holder of ``token`` (revoked ones included: callers tell the two apart), or
        None for a token this server never issued."""
        if not token or len(token) > 200:
            return None
        with self.store._read() as conn:
            row = conn.execute(select(S.team_tokens).where(
                S.team_tokens.c.token_hash == hash_token(token))).first()
        return None if row is None else _member(row)

    @_guard
    def token_active(self, token_id: int) -> bool:
        """False once token ``token_id`` is revoked (or gone)."""
        t = S.team_tokens.c
        with self.store._read() as conn:
            return conn.execute(select(t.id).where(and_(t.id == token_id,
                                                        t.revoked_at.is_(None)))
                                ).first() is not None

    @_guard
    def call_agent(self, call_id: str) -> tuple[bool, str | None]:
        """(whether stored call ``call_id`` exists, its agent)."""
        with self.store._read() as conn:
            row = conn.execute(select(S.calls.c.agent).where(S.calls.c.id == call_id)).first()
        return (False, None) if row is None else (True, row[0])

    @_guard
    def members(self, *, include_revoked: bool = False) -> list[Member]:
        q = select(S.team_tokens).order_by(S.team_tokens.c.role, S.team_tokens.c.name,
                                           S.team_tokens.c.id)
        if not include_revoked:
            q = q.where(S.team_tokens.c.revoked_at.is_(None))
        with self.store._read() as conn:
            return [_member(r) for r in conn.execute(q)]

    @_guard
    def has_tokens(self) -> bool:
        with self.store._read() as conn:
            return conn.execute(select(S.team_tokens.c.id).where(
                S.team_tokens.c.revoked_at.is_(None)).limit(1)).first() is not None

    @_guard
    def revoke(self, who: str | int) -> list[Member]:
        """Revoke token ``who`` (its id) or every token of the person named ``who``;
        returns what was revoked. StoreError when nothing matches."""
        t = S.team_tokens.c
        if isinstance(who, int) or (isinstance(who, str) and who.strip().isdigit()):
            cond = t.id == int(who)
        else:
            cond = t.name == _clean_name(who, "name")
        with self.store._write() as conn:
            rows = [_member(r) for r in conn.execute(
                select(S.team_tokens).where(and_(cond, t.revoked_at.is_(None))))]
            if not rows:
                raise StoreError(f"no active token for {who!r}")
            conn.execute(update(S.team_tokens).where(and_(cond, t.revoked_at.is_(None)))
                         .values(revoked_at=datetime.now(UTC)))
        return rows

    @_guard
    def team_agents(self, team: str) -> list[str]:
        """Names of the agents of ``team`` (those with a token, revoked ones included: their
        past calls stay with their team)."""
        t = S.team_tokens.c
        with self.store._read() as conn:
            return list(conn.execute(select(t.name).where(and_(t.role == "agent",
                                                               t.team == team))
                                     .distinct().order_by(t.name)).scalars())

    @_guard
    def agent_team(self, name: str) -> str | None:
        """The team of agent ``name`` (from their newest token), or None."""
        t = S.team_tokens.c
        with self.store._read() as conn:
            return conn.execute(select(t.team).where(and_(t.role == "agent", t.name == name))
                                .order_by(t.id.desc()).limit(1)).scalar()

    # -- live calls ---------------------------------------------------------------------------
    def _insert(self, table: Any) -> Any:
        return (pg_insert if self.dialect == "postgresql" else sqlite_insert)(table)

    @_guard
    def call_owner(self, call_id: str) -> str | None:
        """The agent whose live call ``call_id`` is, or None if there is none."""
        with self.store._read() as conn:
            return conn.execute(select(S.live_calls.c.agent)
                                .where(S.live_calls.c.id == call_id)).scalar()

    @_guard
    def add_live_events(self, batch: Sequence[tuple[str, str, str | None, int, dict[str, Any]]],
                        *, received_at: datetime | None = None, conn: Any = None
                        ) -> list[LiveEvent]:
        """Store a batch of ``(call_id, agent, team, seq, event)``; the events that were
        new (not stored before), in batch order. A call's row is created by its first
        event. Must not be given events of a call owned by another agent (the caller
        checks with :meth:`call_owner`)."""
        if not batch:
            return []
        now = received_at or datetime.now(UTC)
        if conn is None:
            with self.store._write() as c:
                return self._add_live_events(c, batch, now)
        return self._add_live_events(conn, batch, now)

    def _add_live_events(self, conn: Any, batch: Sequence[tuple], now: datetime
                         ) -> list[LiveEvent]:
        calls: dict[str, dict[str, Any]] = {}
        for call_id, agent, team, seq, event in batch:
            c = calls.setdefault(call_id, {"id": call_id, "agent": agent, "team": team,
                                           "started_at": None, "state": "live",
                                           "last_seq": seq, "last_event_at": now})
            c["last_seq"] = max(c["last_seq"], seq)
            if event.get("type") == "call":
                if event.get("state") == "start" and event.get("started_at") is not None:
                    try:
                        c["started_at"] = datetime.fromtimestamp(float(event["started_at"]),
                                                                  UTC)
                    except (TypeError, ValueError, OverflowError, OSError):
                        pass
                elif event.get("state") == "end":
                    c["state"] = "ended"
        lc = S.live_calls
        for c in calls.values():
            ins = self._insert(lc).values(**c)
            ex = ins.excluded
            conn.execute(ins.on_conflict_do_update(
                index_elements=[lc.c.id],
                set_={"last_seq": func.max(lc.c.last_seq, ex.last_seq)
                      if self.dialect == "sqlite" else func.greatest(lc.c.last_seq, ex.last_seq),
                      "last_event_at": ex.last_event_at,
                      "started_at": func.coalesce(lc.c.started_at, ex.started_at),
                      "state": func.coalesce(
                          _ended_if(ex.state), lc.c.state)}))
        rows = [{"call_id": call_id, "seq": seq, "received_at": now,
                 "data": json.dumps(event, ensure_ascii=False, separators=(",", ":"))}
                for call_id, _a, _t, seq, event in batch]
        ins = self._insert(S.live_events).on_conflict_do_nothing(
            index_elements=[S.live_events.c.call_id, S.live_events.c.seq])
        new = {(r.call_id, r.seq) for r in conn.execute(
            ins.returning(S.live_events.c.call_id, S.live_events.c.seq), rows)}
        seen: set[tuple[str, int]] = set()
        out = []
        for call_id, _a, _t, seq, event in batch:
            key = (call_id, seq)
            if key in new and key not in seen:
                seen.add(key)
                out.append(LiveEvent(call_id, seq, now, event))
        return out

    @_guard
    def end_live_call(self, call_id: str) -> bool:
        """Mark a live call ended (its agent went away, or it was stored); False if unknown."""
        with self.store._write() as conn:
            return bool(conn.execute(update(S.live_calls).where(S.live_calls.c.id == call_id)
                                     .values(state="ended")).rowcount)

    @_guard
    def live_calls(self, *, since: datetime) -> list[dict[str, Any]]:
        """Live calls with an event at or after ``since``, and calls still marked live."""
        lc = S.live_calls.c
        with self.store._read() as conn:
            return [dict(r) for r in conn.execute(
                select(S.live_calls).where(or_(lc.last_event_at >= since, lc.state == "live"))
                .order_by(lc.last_event_at)).mappings()]

    @_guard
    def live_events(self, call_id: str, *, after_seq: int = -1, limit: int | None = None
                    ) -> list[LiveEvent]:
        """Events of a live call in sequence order (after ``after_seq``)."""
        e = S.live_events.c
        q = select(S.live_events).where(and_(e.call_id == call_id, e.seq > after_seq)
                                        ).order_by(e.seq)
        if limit is not None:
            q = q.limit(limit)
        with self.store._read() as conn:
            return [LiveEvent(r.call_id, r.seq, r.received_at, json.loads(r.data))
                    for r in conn.execute(q)]

    @_guard
    def events_of(self, keys: Iterable[tuple[str, int]]) -> list[LiveEvent]:
        """The stored events with these (call id, seq) keys."""
        by_call: dict[str, list[int]] = {}
        for call_id, seq in keys:
            by_call.setdefault(call_id, []).append(seq)
        out: list[LiveEvent] = []
        e = S.live_events.c
        with self.store._read() as conn:
            for call_id, seqs in by_call.items():
                out += [LiveEvent(r.call_id, r.seq, r.received_at, json.loads(r.data))
                        for r in conn.execute(select(S.live_events).where(
                            and_(e.call_id == call_id, e.seq.in_(seqs))).order_by(e.seq))]
        return out

    @_guard
    def prune_live(self, *, older_than: timedelta) -> int:
        """Forget ended live calls (and their events) older than ``older_than``: the
        finished call is in the store by then. Returns how many calls were removed."""
        cutoff = datetime.now(UTC) - older_than
        lc = S.live_calls.c
        with self.store._write() as conn:
            ids = list(conn.execute(select(lc.id).where(lc.last_event_at < cutoff)).scalars())
            if ids:
                conn.execute(delete(S.live_events).where(S.live_events.c.call_id.in_(ids)))
                conn.execute(delete(S.live_calls).where(lc.id.in_(ids)))
        return len(ids)


def _ended_if(state: Any) -> Any:
    """``'ended'`` when the incoming state is ended, else NULL (keep the stored state)."""
    from sqlalchemy import case

    return case((state == "ended", "ended"), else_=None)
