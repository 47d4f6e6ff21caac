"""How live events reach every server process's board: the store, and PostgreSQL's
``LISTEN/NOTIFY`` when several processes share it.

A server that receives an agent's events writes them (new ones only: see
:meth:`coach.store.team.TeamData.add_live_events`) and, in the same transaction on
PostgreSQL, notifies channel ``coach_live``; every server process, the writer included,
listens on that channel and feeds what it hears to its board. A notification is
delivered only if the transaction commits, so a board never shows an event the store
does not have. An event too large for a notification (PostgreSQL's limit is 8000 bytes)
goes as a reference that listeners read back from the table.

On SQLite (one server process) :class:`LocalBus` hands new events straight to the board.

A listener that lost its connection reconnects and asks its board to resynchronise from
the tables (``Resync``), so nothing notified while it was away is missed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text

from coach.store.team import LiveEvent, TeamData

__all__ = ["CHANNEL", "Delivery", "LocalBus", "PgBus", "Presence", "Resync", "Stored",
           "make_bus"]

log = logging.getLogger(__name__)

CHANNEL = "coach_live"
MAX_PAYLOAD = 7900  # PostgreSQL refuses notification payloads of 8000 bytes or more


@dataclass(frozen=True, slots=True)
class Delivery:
    """A new event of a live call."""

    call_id: str
    agent: str
    team: str | None
    seq: int
    received_at: float  # Unix time the receiving server stored it
    event: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Presence:
    """An agent's connection carrying ``call_id`` opened or closed (on some server)."""

    call_id: str
    agent: str
    team: str | None
    connected: bool
    at: float


@dataclass(frozen=True, slots=True)
class Stored:
    """The finished call ``call_id`` reached the store (its replay page exists)."""

    call_id: str
    at: float


@dataclass(frozen=True, slots=True)
class Resync:
    """Reload the live calls from the store: notifications may have been missed."""


Notice = list[Delivery] | Presence | Stored | Resync
Batch = Sequence[tuple[str, str, str | None, int, dict[str, Any]]]


def _deliveries(batch: Batch, new: list[LiveEvent]) -> list[Delivery]:
    who = {call_id: (agent, team) for call_id, agent, team, _s, _e in batch}
    return [Delivery(e.call_id, who[e.call_id][0], who[e.call_id][1], e.seq,
                     e.received_at.timestamp(), e.data) for e in new]


class LocalBus:
    """One server process: new events go straight to this process's board."""

    def __init__(self, team: TeamData):
        self.team = team
        self._deliver: Callable[[Notice], None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self, deliver: Callable[[Notice], None]) -> None:
        self._deliver = deliver
        self._loop = asyncio.get_running_loop()
        deliver(Resync())

    async def stop(self) -> None:
        self._deliver = None

    def _send(self, notice: Notice) -> None:
        if self._deliver is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._deliver, notice)

    def write(self, batch: Batch) -> list[LiveEvent]:
        """Store ``batch`` (from a worker thread); the new events go to the board."""
        new = self.team.add_live_events(batch, received_at=datetime.now(UTC))
        if new:
            self._send(_deliveries(batch, new))
        return new

    def presence(self, p: Presence) -> None:
        self._send(p)

    def stored(self, s: Stored) -> None:
        self._send(s)


class PgBus(LocalBus):
    """Several server processes on one PostgreSQL database."""

    def __init__(self, team: TeamData, *, retry_s: float = 1.0):
        super().__init__(team)
        self.retry_s = retry_s
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    def _dsn(self) -> str:
        url = self.team.store._engine.url.set(drivername="postgresql")
        return url.render_as_string(hide_password=False)

    async def start(self, deliver: Callable[[Notice], None]) -> None:
        self._deliver = deliver
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.create_task(self._listen(), name="coach-team-listen")
        try:  # the board starts once listening, so nothing falls between load and listen
            await asyncio.wait_for(self.connected.wait(), 10)
        except TimeoutError:
            log.warning("team: not listening to %s yet; the board will catch up", CHANNEL)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        self._deliver = None

    async def _listen(self) -> None:
        import psycopg

        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                        self._dsn(), autocommit=True, connect_timeout=5) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.connected.set()
                    if self._deliver is not None:
                        self._deliver(Resync())  # anything missed while not listening
                    async for n in conn.notifies():
                        await self._heard(n.payload)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self.connected.clear()
                log.warning("team: lost the notification channel (%s); reconnecting",
                            str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__)
                await asyncio.sleep(self.retry_s)

    async def _heard(self, payload: str) -> None:
        try:
            msg = json.loads(payload)
        except ValueError:
            log.warning("team: a notification that is not JSON on %s", CHANNEL)
            return
        if self._deliver is None:
            return
        if msg.get("k") == "p":
            self._deliver(Presence(msg["c"], msg["a"], msg.get("tm"), bool(msg["on"]),
                                   float(msg["at"])))
            return
        if msg.get("k") == "s":
            self._deliver(Stored(msg["c"], float(msg["at"])))
            return
        out: list[Delivery] = []
        refs: list[tuple[str, int]] = []
        for d in msg.get("e", []):
            if "e" in d:
                out.append(Delivery(d["c"], d["a"], d.get("tm"), d["s"], d["r"], d["e"]))
            else:
                refs.append((d["c"], d["s"]))
        if refs:  # events too large for a notification: read them back
            who = {d["c"]: (d["a"], d.get("tm")) for d in msg.get("e", [])}
            stored = await asyncio.to_thread(self.team.events_of, refs)
            out += [Delivery(e.call_id, *who[e.call_id], e.seq, e.received_at.timestamp(),
                             e.data) for e in stored]
            out.sort(key=lambda x: (x.call_id, x.seq))
        if out:
            self._deliver(out)

    def write(self, batch: Batch) -> list[LiveEvent]:
        with self.team.store._write() as conn:
            new = self.team.add_live_events(batch, received_at=datetime.now(UTC), conn=conn)
            payloads = _payloads(_deliveries(batch, new))
            if payloads:
                conn.execute(text("SELECT pg_notify(:ch, :p)"),
                             [{"ch": CHANNEL, "p": p} for p in payloads])
        return new

    def presence(self, p: Presence) -> None:
        self._notify(json.dumps({"k": "p", "c": p.call_id, "a": p.agent, "tm": p.team,
                                 "on": p.connected, "at": p.at}))

    def stored(self, s: Stored) -> None:
        self._notify(json.dumps({"k": "s", "c": s.call_id, "at": s.at}))

    def _notify(self, payload: str) -> None:
        try:
            with self.team.store._write() as conn:
                conn.execute(text("SELECT pg_notify(:ch, :p)"), {"ch": CHANNEL, "p": payload})
        except Exception as e:  # the board shows the call as quiet anyway after a while
            log.warning("team: cannot announce a connection change: %s", e)


def _payloads(ds: list[Delivery]) -> list[str]:
    """Notification payloads of at most MAX_PAYLOAD bytes, several events each."""
    out: list[str] = []
    cur: list[str] = []
    size = 12
    for d in ds:
        item = json.dumps({"c": d.call_id, "a": d.agent, "tm": d.team, "s": d.seq,
                           "r": round(d.received_at, 3), "e": d.event},
                          ensure_ascii=False, separators=(",", ":"))
        if len(item.encode()) + 12 > MAX_PAYLOAD:
            item = json.dumps({"c": d.call_id, "a": d.agent, "tm": d.team, "s": d.seq},
                              ensure_ascii=False, separators=(",", ":"))
        n = len(item.encode()) + 1
        if cur and size + n > MAX_PAYLOAD:
            out.append('{"k":"e","e":[' + ",".join(cur) + "]}")
            cur, size = [], 12
        cur.append(item)
        size += n
    if cur:
        out.append('{"k":"e","e":[' + ",".join(cur) + "]}")
    return out


def make_bus(team: TeamData) -> LocalBus:
    """PgBus on PostgreSQL (several server processes may share it), else LocalBus."""
    return PgBus(team) if team.dialect == "postgresql" else LocalBus(team)
