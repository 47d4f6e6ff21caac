"""The team layer's pages and JSON API, added to the replay app (same guard, same error
shape ``{"detail": "one line"}``, same page headers).

| route | who |
|---|---|
| ``GET /team`` (the board page), ``GET /api/team/board`` | coach, admin (an agent is sent to their own page) |
| ``GET /team/calls/{id}`` (follow a live call) | whoever may see the call |
| ``GET /api/team/me``, ``GET /api/team/policy`` | any token |
| ``GET/POST /api/team/tokens``, ``DELETE /api/team/tokens/{id}`` | admin |
| ``PUT /api/team/calls/{id}/audio``, ``POST /api/team/calls/{id}`` | the agent whose call it is |
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from coach.team.auth import Principal, principal_of
from coach.team.bus import Stored

__all__ = ["extend_app"]

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parents[1] / "io" / "static"
CALL_ID = re.compile(r"^[0-9a-f]{32}$")
MAX_AUDIO = 2 << 30  # 2 GiB: about 9 hours of stereo 16 kHz FLAC
MAX_UPLOAD_JSON = 256 << 20


class Message(BaseModel):
    detail: str


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name = Field(description="the person; an agent's name is the agent of their calls")
    role: Literal["agent", "coach", "admin"]
    team: Name | None = Field(None, description="agents and coaches: their team")


class MemberOut(BaseModel):
    id: int
    name: str
    role: str
    team: str | None = None
    created_at: str | None = None
    revoked_at: str | None = None


class NewToken(BaseModel):
    token: str = Field(description="shown once: give it to its holder")
    member: MemberOut


class CallUpload(BaseModel):
    meta: dict[str, Any] = Field(default_factory=dict)
    events: list[dict[str, Any]] = Field(default_factory=list, max_length=2_000_000)


def require(request: Request, *roles: str) -> Principal:
    p = principal_of(request.scope)
    if p is None:
        raise HTTPException(401, "unauthorized: this team server needs a token")
    if roles and p.role not in roles:
        raise HTTPException(403, f"forbidden: {_roles_text(roles)} only (this token is "
                                 f"{p.name}'s, a {p.role})")
    return p


def _roles_text(roles: tuple[str, ...]) -> str:
    names = {"agent": "agents", "coach": "coaches", "admin": "admins"}
    return " and ".join(names[r] for r in roles)


def _page(name: str) -> str:
    return (STATIC / "team" / name).read_text("utf-8")


def extend_app(app: FastAPI, server: Any) -> None:
    """Add the team routes of ``server`` (a :class:`coach.team.server.TeamServer`) to
    the replay ``app``."""
    from coach.io.replay_guard import PAGE_HEADERS

    pages = {n: _page(n) for n in ("board.html", "follow.html")}
    router = APIRouter()
    errors = {403: {"model": Message, "description": "not allowed for this token"}}
    team, store = server.team, server.store

    # -- pages ------------------------------------------------------------------------------
    @router.get("/team", include_in_schema=False)
    def board_page(request: Request) -> Any:
        p = require(request)
        if not p.is_coach:
            from urllib.parse import quote

            token = request.query_params.get("token")
            q = f"?token={quote(token, safe='')}" if token else ""
            return RedirectResponse(f"/team/agents/{quote(p.name, safe='')}{q}", 303)
        return HTMLResponse(pages["board.html"], headers=PAGE_HEADERS)

    @router.get("/team/calls/{call_id}", include_in_schema=False)
    def follow_page(request: Request, call_id: str) -> HTMLResponse:
        require(request)
        return HTMLResponse(pages["follow.html"], headers=PAGE_HEADERS)

    # -- who and what -------------------------------------------------------------------------
    @router.get("/api/team/me", tags=["team"], summary="Who this token is")
    def me(request: Request) -> dict[str, Any]:
        return require(request).to_dict()

    @router.get("/api/team/policy", tags=["team"],
                summary="The team's policy: what agents' machines share, and the alerts")
    def policy(request: Request) -> dict[str, Any]:
        require(request)
        return {**server.policy.to_dict(), "sharing": server.policy.sharing(),
                "source": server.policy.source}

    @router.get("/api/team/board", tags=["team"], responses=errors,
                summary="The live board now (the page follows it on /team/ws/board)")
    def board(request: Request) -> dict[str, Any]:
        p = require(request, "coach", "admin")
        return server.board.snapshot(time.time(), lambda r: server.visible(p, r))

    @router.get("/api/team/agents/{name}/baseline", tags=["team"], responses=errors,
                summary="An agent's voice baseline (pace, pitch, loudness) across their calls")
    def agent_baseline(request: Request, name: str) -> dict[str, Any]:
        from coach.team.baselines import MIN_CALLS

        p = require(request)
        if not server.access.can_see(p, name):
            raise HTTPException(403, "forbidden: not one of your agents" if p.is_coach
                                else "forbidden: another agent's baseline")
        learned = server.baseline(name)
        if learned is None:
            return {"agent": name, "calls": 0, "f0_hz": None, "loudness_db": None, "wpm": None,
                    "per_call": [], "message": f"fewer than {MIN_CALLS} stored calls with "
                                               "enough speech: each call calibrates itself"}
        return {"agent": name, **learned.to_dict(), "message": learned.describe()}

    # -- tokens -----------------------------------------------------------------------------
    @router.get("/api/team/tokens", response_model=list[MemberOut], tags=["tokens"],
                responses=errors, summary="Tokens (their holders; the tokens are not kept)")
    def tokens(request: Request, revoked: bool = False) -> list[dict[str, Any]]:
        require(request, "admin")
        return [m.to_dict() for m in team.members(include_revoked=revoked)]

    @router.post("/api/team/tokens", response_model=NewToken, status_code=201, tags=["tokens"],
                 responses=errors, summary="A new token for an agent, a coach or an admin")
    def create_token(request: Request, body: TokenIn) -> dict[str, Any]:
        require(request, "admin")
        token, member = team.create_token(body.name, body.role, body.team)
        return {"token": token, "member": member.to_dict()}

    @router.delete("/api/team/tokens/{token_id}", response_model=list[MemberOut],
                   tags=["tokens"], responses=errors,
                   summary="Revoke a token (its holder is disconnected within seconds)")
    def revoke_token(request: Request, token_id: int) -> list[dict[str, Any]]:
        require(request, "admin")
        return [m.to_dict() for m in team.revoke(token_id)]

    # -- finished calls from agents -----------------------------------------------------------
    def own_new_call(request: Request, call_id: str) -> Principal:
        p = require(request, "agent")
        if not CALL_ID.match(call_id):
            raise HTTPException(422, "a call id is 32 lower-case hex digits")
        owner = team.call_owner(call_id)
        if owner is not None and owner != p.name:
            raise HTTPException(403, "forbidden: this call is another agent's")
        return p

    def spool() -> Path:
        d = server.spool_dir or Path(tempfile.gettempdir()) / f"coach-team-{os.getuid()}"
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        return d

    @router.put("/api/team/calls/{call_id}/audio", tags=["agents"], responses=errors,
                summary="The audio of an agent's finished call (FLAC), before its events")
    async def put_audio(request: Request, call_id: str) -> JSONResponse:
        from starlette.concurrency import run_in_threadpool

        async def drain() -> None:
            # Answering before the body is read makes the server close the connection
            # while the agent's machine is still sending: it sees a reset, not our answer.
            async for _ in request.stream():
                pass

        await run_in_threadpool(own_new_call, request, call_id)
        if not server.policy.stored.audio:
            await drain()
            raise HTTPException(403, "forbidden: the team policy does not keep call audio")
        if await run_in_threadpool(store.has_call, call_id):
            await drain()
            return JSONResponse({"id": call_id, "already": True}, 200)
        size = int(request.headers.get("content-length") or 0)
        if size > MAX_AUDIO:
            raise HTTPException(413, f"audio over {MAX_AUDIO >> 30} GiB")
        part = spool() / f"{call_id}.flac.part"
        n = 0
        with open(part, "wb") as f:
            async for chunk in request.stream():
                n += len(chunk)
                if n > MAX_AUDIO:
                    f.close()
                    part.unlink(missing_ok=True)
                    raise HTTPException(413, f"audio over {MAX_AUDIO >> 30} GiB")
                f.write(chunk)
        if n == 0:
            part.unlink(missing_ok=True)
            raise HTTPException(422, "no audio in the request")
        part.replace(part.with_suffix(""))
        return JSONResponse({"id": call_id, "bytes": n}, 201)

    @router.post("/api/team/calls/{call_id}", tags=["agents"], responses=errors,
                 summary="An agent's finished call: its events (as the policy keeps them)")
    def post_call(request: Request, call_id: str,
                  body: Annotated[CallUpload, Body()]) -> JSONResponse:
        from coach.store import AlreadyStoredError
        from coach.store.importer import _rubric_score

        p = own_new_call(request, call_id)
        if not server.policy.stored.store:
            raise HTTPException(403, "forbidden: the team policy keeps calls on agents' "
                                     "machines")
        if store.has_call(call_id):
            return JSONResponse({"id": call_id, "already": True}, 200)
        meta = body.meta
        events = [k for k in (server.policy.stored_event(e) for e in body.events)
                  if k is not None]
        duration = meta.get("duration")
        if not isinstance(duration, (int, float)) or isinstance(duration, bool):
            duration = None
        key = meta.get("source_key")
        if not isinstance(key, str) or not re.fullmatch(r"[0-9a-f]{64}", key):
            raise HTTPException(422, "meta.source_key: the sha256 of the recording")
        audio = spool() / f"{call_id}.flac"
        call_meta = {
            "id": call_id, "agent": p.name, "started_at": meta.get("started_at"),
            "source": "live", "source_key": key, "channels": meta.get("channels"),
            "model": meta.get("model"),
            "status": "complete" if meta.get("finished") is True else "recovered",
            "duration_s": duration,
            "score": _rubric_score(events, duration, server.playbook),
        }
        try:
            stored_id = store.add_call(meta=call_meta, events=events,
                                       audio_path=audio if audio.is_file() else None)
            status = 201
        except AlreadyStoredError as e:
            stored_id, status = e.call_id, 200
        audio.unlink(missing_ok=True)
        server._baselines.pop(p.name, None)  # learned again with this call
        team.end_live_call(call_id)
        server.bus.stored(Stored(call_id, time.time()))
        log.info("team: stored call %s of %s (%d events)", call_id, p.name, len(events))
        return JSONResponse({"id": stored_id, "already": status == 200}, status)

    from starlette.exceptions import HTTPException as StarletteHTTPException

    @app.exception_handler(StarletteHTTPException)
    async def _refused(request: Request, e: StarletteHTTPException) -> Any:
        """A refused page reads as a page; the API keeps ``{"detail"}``."""
        path = request.url.path
        if path.startswith("/api/") or path == "/openapi.json" or e.status_code < 400:
            return JSONResponse({"detail": e.detail}, e.status_code, headers=e.headers)
        from coach.io.replay_guard import _message_page

        title = "Access refused" if e.status_code in (401, 403) else "Not found"
        return HTMLResponse(_message_page(title, str(e.detail)), e.status_code,
                            headers=PAGE_HEADERS)

    app.include_router(router)
    from coach.team.review_api import extend_reviews

    extend_reviews(app, server)
    app.mount("/static/team", StaticFiles(directory=STATIC / "team"), name="team-static")


def _dumps(x: Any) -> str:
    return json.dumps(x, separators=(",", ":"))
