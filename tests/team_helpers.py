"""Helpers of the team tests: a team server over a real store on a free port, HTTP with a
token, and a websocket client that reads the board."""

from __future__ import annotations

import asyncio
import http.client as httpclient
import json
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from coach.io.hub import Hub
from coach.io.server import ServerThread, create_app
from coach.store.team import TeamData
from coach.team.server import TeamServer


def team_server(store: Any, port: int = 0, **kw: Any) -> tuple[ServerThread, TeamServer]:
    ts = TeamServer(store, **kw)
    st = ServerThread(create_app(Hub(), store=store, team=ts), "127.0.0.1", port).start()
    return st, ts


def tokens(store: Any) -> dict[str, str]:
    """A team: agents Dana (north) and Sam (south), a coach of north, a coach of every
    team, an admin, and a token that was revoked."""
    td = TeamData(store)
    out = {}
    for key, name, role, team in (("dana", "Dana", "agent", "north"),
                                  ("sam", "Sam", "agent", "south"),
                                  ("coach_north", "Nia", "coach", "north"),
                                  ("coach_all", "Ola", "coach", None),
                                  ("admin", "Ada", "admin", None),
                                  ("revoked", "Rex", "agent", "north")):
        out[key], _ = td.create_token(name, role, team)
    td.revoke("Rex")
    return out


def http(base: str, method: str, path: str, token: str | None = None, body: Any = None,
         *, raw: bytes | None = None, content_type: str = "application/json",
         query_token: bool = False) -> tuple[int, Any, dict[str, str]]:
    """(status, parsed JSON or text, headers) of one request over a fresh connection."""
    u = urlsplit(base)
    conn = httpclient.HTTPConnection(u.hostname, u.port, timeout=30)
    headers = {"Accept": "application/json"}
    if token and not query_token:
        headers["Authorization"] = f"Bearer {token}"
    if token and query_token:
        path += ("&" if "?" in path else "?") + "token=" + token
    data = raw
    if body is not None:
        data = json.dumps(body).encode()
    if data is not None:
        headers["Content-Type"] = content_type
    conn.request(method, path, body=data, headers=headers)
    res = conn.getresponse()
    payload = res.read()
    conn.close()
    try:
        parsed: Any = json.loads(payload) if payload else None
    except ValueError:
        parsed = payload.decode("utf-8", "replace")
    return res.status, parsed, {k.lower(): v for k, v in res.getheaders()}


class BoardWatcher:
    """A websocket viewer of ``/team/ws/board`` in a thread: keeps the rows and alerts,
    and the arrival time of every message."""

    def __init__(self, base: str, token: str, path: str = "/team/ws/board"):
        self.url = base.replace("http://", "ws://") + path + f"?token={token}"
        self.rows: dict[str, dict[str, Any]] = {}
        self.alerts: list[dict[str, Any]] = []
        self.messages: list[tuple[float, dict[str, Any]]] = []
        self.close: tuple[int, str] | None = None
        self._lock = threading.Lock()
        self._stop = False
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._thread.start()

    async def _run(self) -> None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed

        try:
            async with connect(self.url, max_size=1 << 24) as ws:
                while not self._stop:
                    try:
                        text = await asyncio.wait_for(ws.recv(), 0.2)
                    except TimeoutError:
                        continue
                    m = json.loads(text)
                    with self._lock:
                        self.messages.append((time.time(), m))
                        if m["type"] == "board":
                            self.rows = {r["call_id"]: r for r in m["rows"] + m["ended"]}
                            self.alerts += m["alerts"]
                        elif m["type"] == "row":
                            self.rows[m["row"]["call_id"]] = m["row"]
                        elif m["type"] == "alert":
                            self.alerts.append(m["alert"])
        except ConnectionClosed as e:
            self.close = (e.rcvd.code, e.rcvd.reason) if e.rcvd else (1006, "")

    def wait(self, pred: Callable[[BoardWatcher], bool], timeout: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if pred(self):
                    return True
            if self.close is not None and not self._thread.is_alive():
                return False
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        self._stop = True
        self._thread.join(5)
