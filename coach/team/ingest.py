"""Agents' live calls arriving at a team server (``/team/ws/agent``).

Each agent connection reads ``events`` frames (:mod:`coach.team.protocol`), checks them,
applies the team policy again, and queues the events; one writer task stores what is
queued in one transaction per round (so twenty agents cost a few transactions a second,
not a hundred) through the bus, which also tells every server's board. Then each
connection gets an ``ack`` for what is stored; the agent's coach forgets what was acked.

A connection is closed (1008, with the reason) for: no, unknown or revoked token (also
when revoked while connected: checked every few seconds), a token that is not an agent's,
more than ``MAX_BAD`` malformed messages, or more events than the rate limit allows
(a flooding client). Each malformed message otherwise gets a one-line ``error`` reply and
is dropped; the connection and every other agent carry on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from coach.team.auth import REFUSAL_KEY, SCOPE_KEY, Access, Principal, Refusal
from coach.team.bus import LocalBus, Presence
from coach.team.policy import TeamPolicy
from coach.team.protocol import PROTOCOL, FrameError, RateLimit, parse_frame

__all__ = ["Ingest", "IngestOptions"]

log = logging.getLogger(__name__)

CLOSE_POLICY = 1008
CLOSE_AWAY = 1001


@dataclass(frozen=True, slots=True)
class IngestOptions:
    rate: float = 200.0  # events a second an agent may send on average...
    burst: float = 20000.0  # ...and at once (an hour's backlog after a network cut)
    max_bad: int = 50  # malformed messages before the connection is closed
    recheck_s: float = 5.0  # how often a connected agent's token is checked again
    max_batch: int = 2000  # events per store transaction
    out_queue: int = 1000  # replies waiting for a slow agent before it is dropped


@dataclass(eq=False)
class _Conn:
    principal: Principal
    peer: str
    out: asyncio.Queue[str | None]
    calls: dict[str, bool] = field(default_factory=dict)  # call id -> ended
    acked: dict[str, int] = field(default_factory=dict)
    bad: int = 0
    closed: bool = False


class Ingest:
    """Receives agents' events; see the module docstring."""

    def __init__(self, access: Access, policy: TeamPolicy, bus: LocalBus,
                 options: IngestOptions | None = None):
        self.access = access
        self.team = access.team
        self.policy = policy
        self.bus = bus
        self.options = options or IngestOptions()
        self._queue: asyncio.Queue[tuple[_Conn, str, int, dict[str, Any]]] | None = None
        self._writer: asyncio.Task[None] | None = None
        self.connections: set[_Conn] = set()
        self.stored = 0  # events stored by this process
        self.duplicates = 0

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._writer = asyncio.get_running_loop().create_task(self._write_loop(),
                                                              name="coach-team-writer")

    async def stop(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            try:
                await self._writer
            except (asyncio.CancelledError, Exception):
                pass

    # -- one agent connection ---------------------------------------------------------------
    async def serve(self, ws: Any) -> None:
        """Run one agent websocket (Starlette's) until it closes."""
        peer = f"{ws.client.host}:{ws.client.port}" if ws.client else "?"
        who = ws.scope.get(SCOPE_KEY) or ws.scope.get(REFUSAL_KEY)
        await ws.accept()
        if not isinstance(who, Principal):
            reason = who.message if isinstance(who, Refusal) else "unauthorized"
            log.warning("team: refused an agent connection from %s (%s)", peer, reason)
            await ws.close(CLOSE_POLICY, reason[:120])
            return
        if who.role != "agent":
            await ws.close(CLOSE_POLICY, f"forbidden: a {who.role} token cannot publish calls "
                                         "(give the agent their own token)")
            return
        conn = _Conn(who, peer, asyncio.Queue(self.options.out_queue))
        self.connections.add(conn)
        log.info("team: agent %s connected from %s", who.name, peer)
        await ws.send_text(json.dumps({
            "type": "hello", "protocol": PROTOCOL, "agent": who.name, "team": who.team,
            "policy": self.policy.to_dict(), "sharing": self.policy.sharing_line()}))
        sender = asyncio.create_task(self._send_loop(ws, conn))
        checker = asyncio.create_task(self._recheck(ws, conn))
        try:
            await self._read_loop(ws, conn)
        finally:
            conn.closed = True
            self.connections.discard(conn)
            sender.cancel()
            checker.cancel()
            for call_id, ended in conn.calls.items():
                if not ended:
                    await asyncio.to_thread(self.bus.presence, Presence(
                        call_id, who.name, who.team, False, time.time()))
            log.info("team: agent %s disconnected (%s)", who.name, peer)

    async def _read_loop(self, ws: Any, conn: _Conn) -> None:
        o = self.options
        limit = RateLimit(o.rate, o.burst, time.monotonic())
        while True:
            msg = await ws.receive()
            if msg["type"] == "websocket.disconnect":
                return
            data = msg.get("text") if msg.get("text") is not None else msg.get("bytes", b"")
            try:
                frame = parse_frame(data)
            except FrameError as e:
                if not await self._bad(ws, conn, str(e)):
                    return
                continue
            for line in frame.rejected:
                if not await self._bad(ws, conn, line):
                    return
            if not frame.events:
                continue
            if not limit.take(len(frame.events), time.monotonic()):
                log.warning("team: agent %s (%s) sends too fast; disconnected", conn.principal.name,
                            conn.peer)
                await ws.close(CLOSE_POLICY, f"flooding: more than {o.rate:.0f} events a "
                                             "second; reconnect and send more slowly")
                return
            if frame.call not in conn.calls:
                owner = await asyncio.to_thread(self.team.call_owner, frame.call)
                if owner is not None and owner != conn.principal.name:
                    if not await self._bad(ws, conn, f"call {frame.call[:8]} is another "
                                                     "agent's; its events were dropped"):
                        return
                    continue
                conn.calls[frame.call] = False
                await asyncio.to_thread(self.bus.presence, Presence(
                    frame.call, conn.principal.name, conn.principal.team, True, time.time()))
            assert self._queue is not None
            for seq, event in frame.events:
                allowed = self.policy.live_event(event)
                if allowed is None:  # a client that ignores the policy: keep nothing of it
                    allowed = {"type": "dropped"}
                if event.get("type") == "call" and event.get("state") == "end":
                    conn.calls[frame.call] = True
                self._queue.put_nowait((conn, frame.call, seq, allowed))

    async def _bad(self, ws: Any, conn: _Conn, line: str) -> bool:
        conn.bad += 1
        log.info("team: from agent %s: %s", conn.principal.name, line)
        if conn.bad > self.options.max_bad:
            await ws.close(CLOSE_POLICY, "too many malformed messages")
            return False
        self._reply(conn, {"type": "error", "message": line})
        return True

    def _reply(self, conn: _Conn, msg: dict[str, Any]) -> None:
        try:
            conn.out.put_nowait(json.dumps(msg))
        except asyncio.QueueFull:  # not reading its replies: let it reconnect
            conn.out = asyncio.Queue(1)
            conn.out.put_nowait(None)

    async def _send_loop(self, ws: Any, conn: _Conn) -> None:
        try:
            while True:
                text = await conn.out.get()
                if text is None:
                    await ws.close(CLOSE_POLICY, "not reading the server's replies")
                    return
                await ws.send_text(text)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.info("team: reply to %s failed: %s", conn.principal.name, type(e).__name__)

    async def _recheck(self, ws: Any, conn: _Conn) -> None:
        while True:
            await asyncio.sleep(self.options.recheck_s)
            try:
                ok = await asyncio.to_thread(self.access.still_valid, conn.principal)
            except Exception:
                continue  # the store is unreachable: not the agent's fault
            if not ok:
                log.warning("team: agent %s's token was revoked; disconnected",
                            conn.principal.name)
                await ws.close(CLOSE_POLICY, "forbidden: this token was revoked")
                return

    # -- the writer -----------------------------------------------------------------------
    async def _write_loop(self) -> None:
        assert self._queue is not None
        q = self._queue
        while True:
            items = [await q.get()]
            while not q.empty() and len(items) < self.options.max_batch:
                items.append(q.get_nowait())
            batch = [(call, c.principal.name, c.principal.team, seq, event)
                     for c, call, seq, event in items]
            while True:
                try:
                    new = await asyncio.to_thread(self.bus.write, batch)
                    break
                except asyncio.CancelledError:
                    raise
                except Exception as e:  # the database is away: keep the events, retry
                    log.warning("team: cannot store %d live events (%s); retrying",
                                len(batch), str(e).splitlines()[0] if str(e) else type(e))
                    await asyncio.sleep(1.0)
            self.stored += len(new)
            self.duplicates += len(batch) - len(new)
            acks: dict[tuple[_Conn, str], int] = {}
            for c, call, seq, _e in items:
                acks[(c, call)] = max(seq, acks.get((c, call), -1))
            for (c, call), seq in acks.items():
                if not c.closed and seq > c.acked.get(call, -1):
                    c.acked[call] = seq
                    self._reply(c, {"type": "ack", "call": call, "seq": seq})
