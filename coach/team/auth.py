"""Who may do what on a team server: tokens to members, members to what they may see.

- **agent**: publishes their own live calls; reads their own stored calls, scores, notes
  and reviews; acknowledges or disputes their own scores and cues.
- **coach**: the live board, calls, per-agent pages and disputes of their team's agents
  (every agent when the coach has no team); writes notes, resolves disputes.
- **admin**: everything a coach without a team may, and manages tokens.

On a team server every request needs a token (``Authorization: Bearer`` or ``?token=``),
from loopback too: behind a reverse proxy every request comes from loopback. Only
``/health`` and the static assets are open. :class:`TeamGuard` (ASGI middleware) resolves
the token once per request and leaves the :class:`Principal` in the scope; routes then
ask :class:`Access` what that principal may see.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["SCOPE_KEY", "Access", "Principal", "Refusal", "TeamGuard", "given_token",
           "principal_of"]

SCOPE_KEY = "coach.principal"
REFUSAL_KEY = "coach.refusal"
OPEN_PREFIXES = ("/static/",)
OPEN_PATHS = ("/health", "/favicon.ico")
TEAM_CACHE_S = 5.0


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: str  # agent | coach | admin
    team: str | None
    token_id: int | None = None

    @property
    def sees_everyone(self) -> bool:
        return self.role == "admin" or (self.role == "coach" and self.team is None)

    @property
    def is_coach(self) -> bool:
        """Coach or admin: may read their agents' calls and write notes."""
        return self.role in ("coach", "admin")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "role": self.role, "team": self.team}


@dataclass(frozen=True, slots=True)
class Refusal:
    status: int  # 401 no or unknown token, 403 revoked
    message: str


def given_token(scope: Scope) -> str | None:
    """The token of a request: ``?token=`` or ``Authorization: Bearer``."""
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    if query.get("token") and query["token"][0].strip():
        return query["token"][0].strip()
    for k, v in scope.get("headers", []):
        if k == b"authorization":
            scheme, _, value = v.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and value.strip():
                return value.strip()
    return None


def principal_of(scope: Scope) -> Principal | None:
    return scope.get(SCOPE_KEY)


class Access:
    """Token checks and visibility rules over the store's team tables."""

    def __init__(self, team: Any):  # coach.store.team.TeamData
        self.team = team
        self._teams: dict[str, tuple[float, frozenset[str]]] = {}

    def authenticate(self, token: str | None) -> Principal | Refusal:
        if not token:
            return Refusal(401, "unauthorized: this team server needs a token (add ?token=... "
                                "to the address, or send Authorization: Bearer ...)")
        m = self.team.member(token)
        if m is None:
            return Refusal(401, "unauthorized: this token is not one of this team server's")
        if m.revoked_at is not None:
            return Refusal(403, f"forbidden: this token was revoked ({m.name}'s access was "
                                "removed)")
        return Principal(m.name, m.role, m.team, m.token_id)

    def still_valid(self, p: Principal) -> bool:
        """False once the principal's token was revoked (checked by long connections)."""
        return p.token_id is None or self.team.token_active(p.token_id)

    # -- visibility -----------------------------------------------------------------------
    def team_agents(self, team: str) -> frozenset[str]:
        now = time.monotonic()
        hit = self._teams.get(team)
        if hit is not None and now - hit[0] < TEAM_CACHE_S:
            return hit[1]
        agents = frozenset(self.team.team_agents(team))
        self._teams[team] = (now, agents)
        return agents

    def visible_agents(self, p: Principal) -> frozenset[str] | None:
        """The agents whose calls ``p`` may read; None: every agent (and unattributed calls)."""
        if p.sees_everyone:
            return None
        if p.role == "agent":
            return frozenset({p.name})
        return self.team_agents(p.team or "")

    def can_see(self, p: Principal, agent: str | None) -> bool:
        visible = self.visible_agents(p)
        return visible is None or (agent is not None and agent in visible)

    def can_see_live(self, p: Principal, agent: str, team: str | None) -> bool:
        """A live call of ``agent`` (of ``team``, as their token says) on the board."""
        if p.sees_everyone:
            return True
        if p.role == "agent":
            return agent == p.name
        return team == p.team or self.can_see(p, agent)


    def check_replay(self, request: Request) -> None:
        """FastAPI dependency of the replay app on a team server: a call of an agent the
        principal may not see is refused (403), coach notes are written by coaches only,
        and the call list is narrowed to the visible agents (``request.state``)."""
        from fastapi import HTTPException

        p = principal_of(request.scope)
        if p is None:
            raise HTTPException(401, "unauthorized: this team server needs a token")
        call_id = request.path_params.get("call_id")
        if call_id is not None:
            exists, agent = self.team.call_agent(call_id)
            if exists and not self.can_see(p, agent):
                raise HTTPException(403, _not_yours(p))
        route = getattr(request.scope.get("route"), "path", "")
        if "/notes" in route and request.method != "GET" and not p.is_coach:
            raise HTTPException(403, "forbidden: coach notes are written by coaches (an agent "
                                     "can dispute a score or a cue on the call's review page)")
        request.state.visible_agents = self.visible_agents(p)


def _not_yours(p: Principal) -> str:
    if p.role == "agent":
        return "forbidden: this call is another agent's"
    return f"forbidden: this call is not one of team {p.team}'s"


class TeamGuard:
    """ASGI middleware: every HTTP request but the open paths needs a valid token; the
    principal goes into the scope. Websockets get the principal (or the refusal) in the
    scope and decide themselves, so they can close with a reason the client can show."""

    def __init__(self, app: ASGIApp, access: Access) -> None:
        self.app = app
        self.access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if scope["type"] == "http" and (path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)):
            await self.app(scope, receive, send)
            return
        from starlette.concurrency import run_in_threadpool

        try:
            who = await run_in_threadpool(self.access.authenticate, given_token(scope))
        except Exception as e:  # the database is down: say so, do not crash the request
            who = Refusal(503, f"the team store is unavailable: {e}")
        if isinstance(who, Principal):
            scope[SCOPE_KEY] = who
        elif scope["type"] == "websocket":
            scope[REFUSAL_KEY] = who
            if not path.startswith("/team/ws/"):
                await send({"type": "websocket.close", "code": 1008, "reason": who.message})
                return
        else:
            await _refuse(path, who)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _refuse(path: str, r: Refusal) -> Any:
    headers = {"Cache-Control": "no-store"}
    if r.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="coach"'
    if path.startswith("/api/") or path == "/openapi.json":
        return JSONResponse({"detail": r.message}, r.status, headers=headers)
    from html import escape

    return HTMLResponse(
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>coach — access '
        'refused</title><link rel="stylesheet" href="/static/replay/replay.css"></head>'
        f'<body class="message"><main><h1>Access refused</h1><p>{escape(r.message)}</p>'
        '</main></body></html>', r.status, headers=headers)
