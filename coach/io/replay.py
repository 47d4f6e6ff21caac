"""Replay: the pages coaches use to go back over calls, and the JSON API behind them.

:func:`create_replay_app` builds a FastAPI app over a :class:`coach.store.Store`:

- pages ``/`` (the call list) and ``/calls/{id}`` (one call): static HTML and plain JS
  modules from ``static/replay/``, with the front-end libraries vendored in
  ``static/vendor/`` (see its VERSIONS.md). Nothing is loaded from a CDN; the pages'
  Content-Security-Policy forbids it.
- the JSON API under ``/api`` (documented at ``/openapi.json``; Swagger UI at ``/docs``
  from the vendored swagger-ui-dist);
- ``/api/calls/{id}/audio``: the stored FLAC with HTTP range requests, streamed from the
  store a chunk at a time and stopped when the client goes away.

:func:`coach.io.server.create_app` mounts it next to ``/ws``, ``/overlay`` and ``/health``
when given a store; :func:`run_serve` is ``coach serve`` (replay only, no capture).

Access follows ``coach live``: on loopback without a token, any local client may read,
but requests must name a loopback host (a DNS-rebinding page cannot) and writes from a
foreign web origin are refused; with a token, every route but the static assets needs it,
as ``?token=`` (pages, audio, export links) or ``Authorization: Bearer`` (the API).
"""

from __future__ import annotations

import logging
import math
import re
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Body, Depends, FastAPI, HTTPException, Query, Request, Security
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.security import HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse

from coach.errors import AudioError
from coach.io.httprange import RangeError, parse_range
from coach.io.peaks import (
    DEFAULT_BUCKETS,
    MAX_BUCKETS,
    PeaksCache,
    compute_peaks,
    open_store_audio,
)
from coach.io.replay_guard import DOCS_CSP, PAGE_HEADERS, _Guard, _message_page
from coach.io.replay_models import (
    CallDetail,
    CallList,
    CueOut,
    CueType,
    FeedbackIn,
    NoteIn,
    NoteOut,
    NotePatch,
    PeaksOut,
    _cue_out,
    _cue_types,
)
from coach.io.server import DEFAULT_HOST, DEFAULT_PORT, check_bind

__all__ = ["AUDIO_CHUNK", "create_replay_app", "run_serve"]

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
AUDIO_CHUNK = 256 * 1024
"""Bytes per read from the store while streaming audio: small enough that a client that
goes away stops the stream within one chunk, large enough to keep queries few."""
AUDIO_MIME = "audio/flac"

_NOT_FOUND = re.compile(r"^no call |^call \S+ has no (note|cue) ")
_BAD_INPUT = re.compile(r"^bad |^a note ")


# -- the error model ------------------------------------------------------------------------
# (the other models are in coach.io.replay_models; this one stays here because a team
# server's schema names it after its module, coach__io__replay__Message)


class Message(BaseModel):
    """An error: one line saying what went wrong."""

    detail: str


# -- the app --------------------------------------------------------------------------------


def _page(name: str) -> str:
    return (STATIC / "replay" / name).read_text("utf-8")


def _utc(d: datetime | None) -> datetime | None:
    """Naive datetimes in a query are UTC."""
    if d is not None and d.tzinfo is None:
        return d.replace(tzinfo=UTC)
    return d


def _store_status(e: Exception) -> int:
    """HTTP status of a StoreError: its one-line messages say which kind it is."""
    message = str(e)
    if _NOT_FOUND.match(message):
        return 404
    if _BAD_INPUT.match(message):
        return 422
    return 503  # the database is unreachable, locked, newer than us...


def _safe_name(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", s).strip("-")[:60] or "call"


def create_replay_app(store: Any, *, token: str | None = None, access: Any = None,
                      extend: Any = None) -> FastAPI:
    """The replay pages and JSON API over ``store`` (see the module docstring). The
    app applies the access rule itself (middleware); mount it or serve it as it is.
    On a team server ``access`` (:class:`coach.team.auth.Access`) replaces the token rule
    with roles: its check runs before every route, and lists show only visible agents;
    ``extend(app)`` adds the team's own routes."""
    from coach.store import StoreError

    bearer = HTTPBearer(auto_error=False, description="the service's --token (if it has one)")
    app = FastAPI(
        title="coach replay API",
        version="1",
        summary="Calls recorded or analysed by coach: transcripts, cues, prosody, audio, "
                "coach notes.",
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        dependencies=[Security(bearer)] + ([Depends(access.check_replay)] if access else []),
    )
    peaks_cache = PeaksCache()
    pages = {name: _page(name) for name in ("list.html", "call.html")}
    cue_types = _cue_types()

    @app.exception_handler(StoreError)
    async def _store_error(request: Request, e: Exception) -> JSONResponse:
        status = _store_status(e)
        if status == 503:
            log.warning("replay: %s %s: %s", request.method, request.url.path, e)
        return JSONResponse({"detail": str(e)}, status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, e: RequestValidationError) -> JSONResponse:
        # FastAPI's own handler echoes the input back, and a NaN in it cannot be JSON.
        errors = [{"loc": list(err.get("loc", ())), "msg": str(err.get("msg", "")),
                   "type": str(err.get("type", ""))} for err in e.errors()]
        return JSONResponse({"detail": errors}, 422)

    @app.exception_handler(AudioError)
    async def _audio_error(request: Request, e: Exception) -> JSONResponse:
        log.warning("replay: %s: %s", request.url.path, e)
        return JSONResponse({"detail": str(e)}, 500)

    def call_or_404(call_id: str) -> dict[str, Any]:
        return store.get_call(call_id)  # StoreError("no call ...") -> 404 by the handler

    def must_exist(call_id: str) -> None:
        has_call = getattr(store, "has_call", None)  # cheap; not in the store contract
        if has_call is None:
            store.get_call(call_id)
        elif not has_call(call_id):
            raise StoreError(f"no call {call_id}")

    # -- pages --

    @app.get("/", include_in_schema=False)
    def list_page() -> HTMLResponse:
        return HTMLResponse(pages["list.html"], headers=PAGE_HEADERS)

    @app.get("/calls/{call_id}", include_in_schema=False)
    def call_page(call_id: str, request: Request) -> HTMLResponse:
        try:
            must_exist(call_id)
        except StoreError as e:
            status = _store_status(e)
            title = "No such call" if status == 404 else "The call store is unavailable"
            given = request.query_params.get("token")  # valid: the guard let it through
            back = "/" + (f"?token={quote(given, safe='')}" if given else "")
            return HTMLResponse(_message_page(title, str(e), back), status,
                                headers=PAGE_HEADERS)
        return HTMLResponse(pages["call.html"], headers=PAGE_HEADERS)

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response((STATIC / "replay" / "favicon.svg").read_bytes(),
                        media_type="image/svg+xml",
                        headers={"Cache-Control": "public, max-age=86400"})

    @app.get("/docs", include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        given = request.query_params.get("token")
        openapi = "/openapi.json" + (f"?token={quote(given, safe='')}" if given else "")
        page = get_swagger_ui_html(
            openapi_url=openapi,
            title="coach replay API",
            swagger_js_url="/static/vendor/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/static/vendor/swagger-ui/swagger-ui.css",
            swagger_favicon_url="/static/vendor/swagger-ui/favicon-32x32.png",
            swagger_ui_parameters={"validatorUrl": None, "tryItOutEnabled": False},
        )
        page.headers.update({**PAGE_HEADERS, "Content-Security-Policy": DOCS_CSP})
        return page

    # -- API: reading --

    errors = {404: {"model": Message, "description": "no such call"}}

    @app.get("/api/calls", response_model=CallList, tags=["calls"],
             summary="List calls, newest first")
    def list_calls(
        request: Request,
        agent: Annotated[str | None, Query(max_length=200)] = None,
        since: Annotated[datetime | None, Query(
            description="calls started at or after (ISO 8601; naive = UTC)")] = None,
        until: Annotated[datetime | None, Query(
            description="calls started at or before (ISO 8601; naive = UTC)")] = None,
        cue: Annotated[str | None, Query(max_length=64, description="calls with this cue id")
                       ] = None,
        min_score: Annotated[float | None, Query(ge=0, le=100)] = None,
        max_score: Annotated[float | None, Query(ge=0, le=100)] = None,
        q: Annotated[str | None, Query(max_length=200, description="words in the transcript")
                     ] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict[str, Any]:
        if min_score is not None and max_score is not None and min_score > max_score:
            raise HTTPException(422, "min_score is above max_score")
        since, until = _utc(since), _utc(until)
        if since is not None and until is not None and since > until:
            raise HTTPException(422, "since is after until")
        rows, total = store.list_calls(
            agent=agent or None, since=since, until=until, cue=cue or None,
            min_score=min_score, max_score=max_score, q=(q or "").strip() or None,
            limit=limit, offset=offset, agents=_visible(request))
        return {"total": total, "calls": rows}

    @app.get("/api/agents", response_model=list[str], tags=["calls"],
             summary="Agent names, for the list filter")
    def agents(request: Request) -> list[str]:
        visible = _visible(request)
        return [a for a in store.agents() if visible is None or a in visible]

    @app.get("/api/cue-types", response_model=list[CueType], tags=["calls"],
             summary="Cue ids of the default playbook, with their titles and severities")
    def list_cue_types() -> list[dict[str, Any]]:
        return cue_types

    @app.get("/api/calls/{call_id}", response_model=CallDetail, responses=errors,
             tags=["calls"], summary="One call: words, cues, notes and prosody")
    def get_call(call_id: str) -> dict[str, Any]:
        call = call_or_404(call_id)
        return {**call, "cues": [_cue_out(c) for c in call["cues"]],
                "prosody": store.prosody(call_id)}

    @app.get("/api/calls/{call_id}/peaks", response_model=PeaksOut, responses=errors,
             tags=["audio"], summary="Waveform peaks per channel (agent, customer)")
    def peaks(call_id: str,
              n: Annotated[int, Query(ge=10, le=MAX_BUCKETS)] = DEFAULT_BUCKETS
              ) -> dict[str, Any]:
        size = store.audio_size(call_id)  # StoreError("no call ...") if absent
        if size == 0:
            raise HTTPException(404, f"call {call_id} has no audio")

        def compute():  # type: ignore[no-untyped-def]
            return compute_peaks(open_store_audio(
                lambda a, b: store.read_audio(call_id, a, b), size), n)

        p = peaks_cache.get((call_id, n), compute)
        speakers = ["agent", "customer"][:len(p.channels)]
        return {**p.to_dict(), "speakers": speakers}

    @app.head("/api/calls/{call_id}/audio", include_in_schema=False)
    @app.get("/api/calls/{call_id}/audio", tags=["audio"],
             summary="The call's audio (FLAC: agent left, customer right)",
             description="Supports `Range: bytes=...` (one range; 206 with Content-Range) "
                         "and `If-Range`; HEAD gives the headers alone.",
             response_class=Response,
             responses={200: {"content": {AUDIO_MIME: {}}, "description": "all of it"},
                        206: {"content": {AUDIO_MIME: {}},
                              "description": "the requested byte range"},
                        404: {"model": Message, "description": "no call, or no audio"},
                        416: {"model": Message, "description": "range not satisfiable"}})
    async def audio(call_id: str, request: Request) -> Response:
        size = await run_in_threadpool(store.audio_size, call_id)
        if size == 0:
            raise HTTPException(404, f"call {call_id} has no audio")
        etag = f'"{call_id}-{size}"'
        headers = {"Accept-Ranges": "bytes", "ETag": etag,
                   "Cache-Control": "private, max-age=3600"}
        header = request.headers.get("range")
        if_range = request.headers.get("if-range")
        if if_range is not None and if_range.strip() != etag:
            header = None  # the client's copy is another version: send it all
        try:
            span = parse_range(header, size)
        except RangeError as e:
            return JSONResponse({"detail": f"range not satisfiable: {e}"}, 416,
                                headers={**headers, "Content-Range": f"bytes */{size}"})
        start, end, status = (0, size, 200) if span is None else (span.start, span.end, 206)
        headers["Content-Length"] = str(end - start)
        if span is not None:
            headers["Content-Range"] = span.content_range
        if request.method == "HEAD":
            return Response(status_code=status, headers=headers, media_type=AUDIO_MIME)
        return StreamingResponse(_stream(store, call_id, start, end, request), status,
                                 headers=headers, media_type=AUDIO_MIME)

    @app.get("/api/calls/{call_id}/export.{fmt}", tags=["calls"], response_class=Response,
             summary="The call as JSON, WebVTT or SRT subtitles, or a CSV of its cues",
             responses={200: {"content": {"application/json": {}, "text/vtt": {},
                                          "application/x-subrip": {}, "text/csv": {}}},
                        404: {"model": Message, "description": "no call, or unknown format"}})
    def export(call_id: str,
               fmt: Annotated[str, PathParam(description="json, vtt, srt or csv")]
               ) -> Response:
        from coach.store.export import FORMATS

        if fmt not in FORMATS:
            raise HTTPException(404, f"unknown export format {fmt!r} "
                                     f"({', '.join(FORMATS)})")
        call = call_or_404(call_id)
        render, mime = FORMATS[fmt]
        body = render(call)
        when = str(call.get("started_at") or "")[:16].replace(":", "")
        name = _safe_name(f"coach-{when}-{call.get('agent') or 'call'}-{call_id[:8]}")
        return Response(body, media_type=mime, headers={
            "Content-Disposition": f'attachment; filename="{name}.{fmt}"',
            "Cache-Control": "no-store"})

    # -- API: writing --

    @app.post("/api/calls/{call_id}/notes", response_model=NoteOut, status_code=201,
              responses={**errors, 422: {"description": "bad note"}}, tags=["notes"],
              summary="Add a coach note at a time of the call")
    def add_note(call_id: str, note: NoteIn) -> dict[str, Any]:
        call = call_or_404(call_id)
        _check_time(note.t, call)
        return store.add_note(call_id, note.t, note.text, author=note.author or None)

    @app.patch("/api/calls/{call_id}/notes/{note_id}", response_model=NoteOut,
               responses={404: {"model": Message, "description": "no such call or note"}},
               tags=["notes"], summary="Edit a note's text and/or time")
    def update_note(call_id: str, note_id: int, patch: NotePatch) -> dict[str, Any]:
        call = call_or_404(call_id)
        if patch.t is not None:
            _check_time(patch.t, call)
        return store.update_note(call_id, note_id, text=patch.text, t=patch.t)

    @app.delete("/api/calls/{call_id}/notes/{note_id}", status_code=204,
                responses={404: {"model": Message, "description": "no such call or note"}},
                tags=["notes"], summary="Delete a note")
    def delete_note(call_id: str, note_id: int) -> Response:
        store.delete_note(call_id, note_id)  # StoreError: no call, or no such note
        return Response(status_code=204)

    @app.put("/api/calls/{call_id}/cues/{idx}/feedback", response_model=CueOut,
             responses={404: {"model": Message, "description": "no such call or cue"}},
             tags=["calls"], summary="Set or clear the feedback on a cue")
    def set_feedback(call_id: str, idx: int,
                     body: Annotated[FeedbackIn, Body()]) -> dict[str, Any]:
        call = call_or_404(call_id)
        cue = next((c for c in call["cues"] if c["idx"] == idx), None)
        if cue is None:
            raise HTTPException(404, f"no cue {idx} in call {call_id}")
        store.set_feedback(call_id, idx, body.feedback)
        return _cue_out({**cue, "feedback": body.feedback})

    if extend is not None:
        extend(app)
    app.mount("/static/replay", StaticFiles(directory=STATIC / "replay"), name="replay-static")
    app.mount("/static/vendor", StaticFiles(directory=STATIC / "vendor"), name="vendor")
    app.state.store = store
    if access is None:  # on a team server the team's guard is in front of this app
        app.add_middleware(_Guard, token=token)
    return app


def _visible(request: Request) -> Any:
    """The agents a team member may see (None: everyone, or not a team server)."""
    return getattr(request.state, "visible_agents", None)


def _check_time(t: float, call: dict[str, Any]) -> None:
    duration = call.get("duration_s")
    if isinstance(duration, (int, float)) and math.isfinite(duration) and t > duration + 0.5:
        raise HTTPException(422, f"t={t:g} s is past the end of the call ({duration:.1f} s)")


async def _stream(store: Any, call_id: str, start: int, end: int,
                  request: Request) -> AsyncIterator[bytes]:
    """Bytes [start, end) of a call's audio, a chunk at a time, until the client leaves."""
    pos = start
    while pos < end:
        if await request.is_disconnected():
            log.info("replay: audio client of %s left at byte %d of %d", call_id, pos, end)
            return
        data = await run_in_threadpool(store.read_audio, call_id, pos,
                                       min(pos + AUDIO_CHUNK, end))
        if not data:
            log.warning("replay: audio of %s ends at byte %d, expected %d", call_id, pos, end)
            return
        yield data
        pos += len(data)



# -- coach serve ----------------------------------------------------------------------------


def run_serve(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, token: str | None = None,
              db_url: str | None = None, data_dir: Path | None = None) -> int:
    """``coach serve``: the replay pages and API (no live capture) until Ctrl-C.

    Same binding rule as ``coach live`` (beyond loopback only with a token). Recordings
    left in ``DATA_DIR/live`` by a ``coach live`` that was killed are imported first.
    Raises CoachError (one line) for a refused bind, a taken port or a bad database."""
    from coach.io.hub import Hub
    from coach.io.server import create_app, serve_forever
    from coach.store import default_data_dir, open_store
    from coach.store.importer import recover

    check_bind(host, token)
    store = open_store(db_url, data_dir)
    try:
        live_dir = Path(data_dir or default_data_dir()) / "live"
        recovered = recover(store, live_dir)
        if recovered:
            print(f"coach: imported {len(recovered)} recorded call"
                  f"{'s' if len(recovered) != 1 else ''} from {live_dir}", file=sys.stderr)
        app = create_app(Hub(), token=token, store=store)
        shown = f"[{host}]" if ":" in host else host
        hint = " (add ?token=YOUR_TOKEN)" if token else ""
        print(f"coach: replay on http://{shown}:{port}/{hint}, calls from {store.url}; "
              f"Ctrl-C to stop", file=sys.stderr)
        serve_forever(app, host, port)
    except KeyboardInterrupt:  # Ctrl-C is how a server is stopped: not an error
        pass
    finally:
        store.close()
    return 0
