"""``coach serve --team``: the team layer inside the service (:mod:`coach.io.server`).

:class:`TeamServer` holds what a team server runs besides the replay pages: the agents'
live calls arriving (:mod:`coach.team.ingest`), the bus that tells every server process
about them (:mod:`coach.team.bus`), the board kept from them (:mod:`coach.team.board`)
and the websockets that push the board to supervisors and a followed call to whoever
follows it, each through a :class:`coach.io.hub.Hub` (bounded queue per viewer: a slow
browser is dropped, never slows the others). Its routes and pages are in
:mod:`coach.team.api`.

Websockets: ``/team/ws/agent`` (agents publish), ``/team/ws/board`` (coaches and admins:
the board of the calls they may see), ``/team/ws/calls/{id}`` (one call's events).
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from starlette.routing import WebSocketRoute

from coach.io.hub import CLOSE_POLICY, Hub
from coach.store.team import TeamData
from coach.team.auth import REFUSAL_KEY, SCOPE_KEY, Access, Principal, Refusal
from coach.team.board import Board, LiveRow
from coach.team.bus import Delivery, LocalBus, Presence, Resync, Stored, make_bus
from coach.team.ingest import Ingest, IngestOptions
from coach.team.policy import TeamPolicy

__all__ = ["TeamServer"]

log = logging.getLogger(__name__)

RELOAD_WINDOW = timedelta(minutes=30)  # calls reloaded after a restart or a lost channel
PRUNE_AFTER = timedelta(days=2)
BASELINE_TTL_S = 60.0  # live events are kept this long (the call is stored by then)


class TeamServer:
    """Everything of the team layer that lives in a server process; see the module."""

    def __init__(self, store: Any, policy: TeamPolicy | None = None, *, playbook: Any = None,
                 spool_dir: Path | None = None, ingest_options: IngestOptions | None = None,
                 bus: LocalBus | None = None):
        self.store = store
        self.team = TeamData(store)
        self.access = Access(self.team)
        self.policy = policy or TeamPolicy()
        if playbook is None:  # loaded once: scoring and summaries need it on every request
            from coach.playbook import load_playbook

            playbook = load_playbook()
        self.playbook = playbook
        self.spool_dir = spool_dir
        self.bus = bus or make_bus(self.team)
        self.ingest = Ingest(self.access, self.policy, self.bus, ingest_options)
        self.board = Board(self.policy.alerts)
        self.hubs: dict[str | None, Hub] = {}  # None: viewers who see every call
        self.follow: dict[str, Hub] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._reloading = False
        self.started_at = time.time()
        self._baselines: dict[str, tuple[float, Any]] = {}

    def baseline(self, agent: str) -> Any:
        """The agent's learned voice baseline (coach.team.baselines), kept a minute: it
        changes only as calls are stored, and the per-agent page asks for it each time."""
        from coach.team.baselines import learn_baseline

        now = time.monotonic()
        hit = self._baselines.get(agent)
        if hit is not None and now - hit[0] < BASELINE_TTL_S:
            return hit[1]
        learned = learn_baseline(self.store, agent)
        if learned is not None:  # a new agent's next stored call may give them one
            self._baselines[agent] = (now, learned)
        return learned

    # -- lifecycle (the service's lifespan) ------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self.ingest.start()
        await self.bus.start(self._notice)
        self._tasks.append(self._loop.create_task(self._ticker(), name="coach-team-tick"))

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.bus.stop()
        await self.ingest.stop()
        for hub in [*self.hubs.values(), *self.follow.values()]:
            await hub.aclose()

    async def _ticker(self) -> None:
        last_prune = 0.0
        while True:
            await asyncio.sleep(1.0)
            self._publish(self.board.tick(time.time()))
            if time.monotonic() - last_prune > 3600:
                last_prune = time.monotonic()
                try:
                    await asyncio.to_thread(self.team.prune_live, older_than=PRUNE_AFTER)
                except Exception as e:
                    log.warning("team: cannot prune old live events: %s", e)

    # -- what the bus delivers (on the event loop) -------------------------------------------
    def _notice(self, n: Any) -> None:
        if isinstance(n, Resync):
            if not self._reloading and self._loop is not None:
                self._reloading = True
                self._loop.create_task(self._reload())
            return
        if isinstance(n, Presence):
            self._publish(self.board.presence(n.call_id, n.agent, n.team, n.connected, n.at))
            return
        if isinstance(n, Stored):
            self._publish(self.board.stored(n.call_id, n.at))
            return
        self._deliver(n)

    def _deliver(self, ds: list[Delivery], *, quiet: bool = False) -> None:
        for d in ds:
            updates = self.board.apply(d.call_id, d.agent, d.team, d.seq, d.event,
                                       d.received_at, quiet=quiet)
            if not updates:
                continue
            self._publish(updates)
            hub = self.follow.get(d.call_id)
            if hub is not None:
                hub.publish({"type": "event", "event": {"seq": d.seq, **d.event}})

    async def _reload(self) -> None:
        """Catch up from the store: after a (re)start, or a lost notification channel."""
        try:
            since = datetime.now(UTC) - RELOAD_WINDOW
            calls = await asyncio.to_thread(self.team.live_calls, since=since)
            for c in calls:
                row = self.board.row(c["id"])
                after = row.last_seq if row is not None else -1
                events = await asyncio.to_thread(self.team.live_events, c["id"],
                                                 after_seq=after)
                self._deliver([Delivery(e.call_id, c["agent"], c["team"], e.seq,
                                        e.received_at.timestamp(), e.data) for e in events],
                              quiet=row is None)
                if c["state"] == "ended" and self.board.row(c["id"]) is not None \
                        and self.board.row(c["id"]).state != "ended":
                    self._publish(self.board.stored(c["id"], time.time()))
        except Exception as e:
            log.warning("team: cannot reload the live calls: %s", e)
        finally:
            self._reloading = False

    def _publish(self, updates: list[dict[str, Any]]) -> None:
        """Board updates to the viewers who may see them, and to the call's followers."""
        for m in updates:
            row = m.get("row") or m.get("alert") or {}
            team = row.get("team")
            for hub in (self.hubs.get(None), self.hubs.get(team) if team is not None else None):
                if hub is not None:
                    hub.publish(m)
            hub = self.follow.get(row.get("call_id", ""))
            if hub is not None:
                hub.publish(m)

    # -- websockets ---------------------------------------------------------------------------
    def websocket_routes(self) -> list[WebSocketRoute]:
        return [WebSocketRoute("/team/ws/agent", self.ingest.serve),
                WebSocketRoute("/team/ws/board", self._board_ws),
                WebSocketRoute("/team/ws/calls/{call_id}", self._follow_ws)]

    @staticmethod
    async def _who(ws: Any) -> Principal | None:
        who = ws.scope.get(SCOPE_KEY) or ws.scope.get(REFUSAL_KEY)
        await ws.accept()
        if isinstance(who, Principal):
            return who
        reason = who.message if isinstance(who, Refusal) else "unauthorized"
        await ws.close(CLOSE_POLICY, reason[:120])
        return None

    def visible(self, p: Principal, row: LiveRow | dict[str, Any]) -> bool:
        agent = row["agent"] if isinstance(row, dict) else row.agent
        team = row.get("team") if isinstance(row, dict) else row.team
        if p.sees_everyone:
            return True
        if p.role == "agent":
            return agent == p.name
        return team is not None and team == p.team

    def _hub(self, key: str | None) -> Hub:
        hub = self.hubs.get(key)
        if hub is None:
            hub = self.hubs[key] = Hub(queue_size=1024)
            hub.attach(self._loop)
        return hub

    async def _board_ws(self, ws: Any) -> None:
        who = await self._who(ws)
        if who is None:
            return
        if not who.is_coach:
            await ws.close(CLOSE_POLICY, "forbidden: the board is for coaches (an agent sees "
                                         "their own calls on their page)")
            return
        key = None if who.sees_everyone else who.team
        snapshot = self.board.snapshot(time.time(), lambda r: self.visible(who, r))
        snapshot["viewer"] = who.to_dict()
        snapshot["sound"] = self.policy.alerts.sound
        await self._hub(key).serve(ws, _discard(ws), _peer(ws), greeting=[snapshot])

    async def _follow_ws(self, ws: Any) -> None:
        who = await self._who(ws)
        if who is None:
            return
        call_id = ws.path_params["call_id"]
        row = self.board.row(call_id)
        if row is None:
            await ws.close(CLOSE_POLICY, "no live call with this id on the board (it may have "
                                         "ended: see the replay list)")
            return
        if not self.visible(who, row):
            await ws.close(CLOSE_POLICY, "forbidden: this call is not one you may follow")
            return
        hub = self.follow.get(call_id)
        if hub is None:
            hub = self.follow[call_id] = Hub(queue_size=512 + len(row.recent))
            hub.attach(self._loop)
        greeting = {"type": "follow", "row": row.to_dict(time.time()),
                    "events": list(row.recent), "words_shared": self.policy.live.words}
        try:
            await hub.serve(ws, _discard(ws), _peer(ws), greeting=[greeting])
        finally:
            if hub.clients == 0 and self.follow.get(call_id) is hub:
                del self.follow[call_id]
                await hub.aclose()


def _peer(ws: Any) -> str:
    return f"{ws.client.host}:{ws.client.port}" if ws.client else "?"


def _discard(ws: Any) -> Any:
    """A viewer's receive: what viewers send is ignored; None when they leave."""

    async def receive() -> None:
        while True:
            msg = await ws.receive()
            if msg["type"] == "websocket.disconnect":
                return None

    return receive
