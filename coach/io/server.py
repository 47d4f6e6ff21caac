"""The local service of ``coach live``: a Starlette app under uvicorn.

Routes:

- ``/ws``: the event websocket (see :mod:`coach.io.hub`). With a token set, a client must
  give it as ``?token=...`` or ``Authorization: Bearer ...``; otherwise the socket is
  accepted and closed at once with 1008 (policy violation, reason "unauthorized"), so a
  browser overlay can tell "refused" from "server down". Without a token (loopback only),
  a browser page from a foreign origin is refused the same way: any web site the agent
  visits could otherwise read the live call.
- ``/overlay``: the browser overlay page (``?token=`` is passed on to its websocket), and
  ``/overlay/display.js``, its display policy (the rules of :mod:`coach.display`).
- ``/health``: ``{"ok": true, "clients": N, "dropped": N, "protocol": 1}``.
- with a call store: everything else is the replay pages and JSON API
  (:mod:`coach.io.replay`: ``/``, ``/calls/{id}``, ``/api/...``, ``/docs``), under the same
  token.

:class:`ServerThread` runs uvicorn in a background thread with its own event loop (the
hub attaches to that loop in the app's lifespan); :func:`serve_forever` runs it in the
foreground. uvicorn's websocket implementation is the ``websockets`` package.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import logging
import socket
import threading
from collections.abc import AsyncIterator
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket

from coach.errors import CoachError
from coach.io.hub import CLOSE_POLICY, PROTOCOL_VERSION, Hub

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "ServerThread",
    "check_bind",
    "create_app",
    "is_loopback",
    "serve_forever",
]

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
MAX_CLIENT_MESSAGE = 64 * 1024  # clients only send small dismiss/flag messages
SEND_BUFFER = 64 * 1024
"""SO_SNDBUF of client connections. Linux otherwise lets a connection's kernel send buffer
grow to 4 MB, so a stuck client would swallow minutes of events before its queue filled
and it was dropped; with this, about 0.3-0.6 MB (the kernel doubles the figure)."""


def _ws_impl() -> str:
    """uvicorn's websocket implementation built on the ``websockets`` package: the
    Sans-I/O one where this uvicorn has it (its legacy "websockets" one is deprecated and
    imports the deprecated ``websockets.legacy``)."""
    from uvicorn.config import WS_PROTOCOLS

    return "websockets-sansio" if "websockets-sansio" in WS_PROTOCOLS else "websockets"


# -- binding policy -------------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ::1 (also written ``[::1]``)."""
    host = host.strip().strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_loopback


def check_bind(host: str, token: str | None) -> None:
    """Refuse (CoachError) to listen beyond this machine without an access token."""
    if not is_loopback(host) and not token:
        shown = host or "all interfaces"
        raise CoachError(
            f"refusing to listen on {shown} without --token: anyone on the network could "
            f"read the calls (use --token SECRET, or --host 127.0.0.1)"
        )


# -- the app --------------------------------------------------------------------------------


def _overlay_html() -> str:
    return resources.files("coach.io").joinpath("static/overlay.html").read_text("utf-8")


def _overlay_js() -> str:
    return resources.files("coach.io").joinpath("static/display.js").read_text("utf-8")


def _given_token(ws: WebSocket) -> str | None:
    token = ws.query_params.get("token")
    if token:
        return token
    auth = ws.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def _refusal(ws: WebSocket, token: str | None) -> str | None:
    """Why this client is refused, or None if it may connect."""
    if token:
        given = _given_token(ws)
        if given is None:
            return "unauthorized: token required"
        if not hmac.compare_digest(given.encode(), token.encode()):
            return "unauthorized: wrong token"
        return None
    origin = ws.headers.get("origin")
    if origin and origin != "null":
        host = urlsplit(origin).hostname or ""
        if not is_loopback(host):
            return "forbidden origin"
    return None


def create_app(hub: Hub, *, token: str | None = None, store: Any = None,
               team: Any = None) -> Starlette:
    """The service's Starlette app, fanning ``hub`` out on ``/ws``; with ``store`` (a
    :class:`coach.store.Store`) it also serves the replay pages and API; with ``team``
    (a :class:`coach.team.server.TeamServer` on that store) it is a team server: role
    tokens instead of ``token``, the agents' live calls, the board."""
    token = token or None
    page = _overlay_html()
    script = _overlay_js()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        hub.attach(asyncio.get_running_loop())
        if team is not None:
            await team.start()
        try:
            yield
        finally:
            if team is not None:
                await team.stop()
            await hub.aclose()

    async def ws_endpoint(ws: WebSocket) -> None:
        peer = f"{ws.client.host}:{ws.client.port}" if ws.client else "?"
        reason = _refusal(ws, token)
        await ws.accept()
        if reason is not None:
            log.warning("service: refused websocket from %s (%s)", peer, reason)
            await ws.close(CLOSE_POLICY, reason)
            return

        async def receive() -> str | bytes | None:
            msg = await ws.receive()
            if msg["type"] == "websocket.disconnect":
                return None
            return msg.get("text") if msg.get("text") is not None else msg.get("bytes", b"")

        await hub.serve(ws, receive, peer)

    async def overlay(request: Request) -> HTMLResponse:
        return HTMLResponse(
            page,
            headers={
                "Cache-Control": "no-store",
                "Referrer-Policy": "no-referrer",  # the URL may carry the token
                "X-Content-Type-Options": "nosniff",
            },
        )

    async def overlay_js(request: Request) -> Response:
        return Response(script, media_type="text/javascript",
                        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})

    async def health(request: Request) -> JSONResponse:
        return JSONResponse(
            {"ok": True, "clients": hub.clients, "dropped": hub.dropped,
             "protocol": PROTOCOL_VERSION}
        )

    routes: list[Any] = [
        WebSocketRoute("/ws", ws_endpoint),
        Route("/overlay", overlay),
        Route("/overlay/display.js", overlay_js),
        Route("/health", health),
    ]
    middleware = []
    if team is not None:
        from starlette.middleware import Middleware

        from coach.team.api import extend_app
        from coach.team.auth import TeamGuard

        routes += team.websocket_routes()
        middleware.append(Middleware(TeamGuard, access=team.access))
    if store is not None:
        from coach.io.replay import create_replay_app

        routes.append(Mount("", app=create_replay_app(
            store, token=token, access=team.access if team is not None else None,
            extend=(lambda a: extend_app(a, team)) if team is not None else None)))
    app = Starlette(routes=routes, lifespan=lifespan, middleware=middleware)
    app.state.hub = hub
    return app


# -- running it -----------------------------------------------------------------------------


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket, or CoachError in one line (port taken, bad address)."""
    bind_host = "127.0.0.1" if host == "localhost" else host.strip("[]")
    family = socket.AF_INET6 if ":" in bind_host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if SEND_BUFFER:  # inherited by accepted sockets (Linux, macOS)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        sock.bind((bind_host, port))
        sock.listen(128)
    except OSError as e:
        sock.close()
        where = f"[{bind_host}]:{port}" if family == socket.AF_INET6 else f"{bind_host}:{port}"
        if e.errno in (98, 48, 10048):  # EADDRINUSE on Linux, macOS, Windows
            raise CoachError(f"cannot listen on {where}: the port is already in use "
                             f"(another coach running? try --port)") from None
        raise CoachError(f"cannot listen on {where}: {e.strerror or e}") from None
    sock.set_inheritable(True)
    return sock


def _config(app: Any, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        ws=_ws_impl(),
        ws_max_size=MAX_CLIENT_MESSAGE,
        # Each message is serialised once for all clients; per-client deflate would
        # compress it again for every client, on the cores the pipeline needs.
        ws_per_message_deflate=False,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=1,
    )


class _Server(uvicorn.Server):
    """uvicorn.Server that signals when it is listening (or failed to start)."""

    def __init__(self, config: uvicorn.Config, ready: threading.Event) -> None:
        super().__init__(config)
        self._ready = ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets=sockets)
        finally:
            self._ready.set()


class ServerThread:
    """uvicorn serving ``app`` in a background thread with its own event loop.

    ``port=0`` picks a free port; :attr:`port` tells which once started."""

    def __init__(self, app: Any, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._ready = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._error: BaseException | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The server's event loop (the hub is attached to it)."""
        if self._loop is None:
            raise RuntimeError("the server is not started")
        return self._loop

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` of the running server."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout: float = 10.0) -> ServerThread:
        """Start serving; returns once the server is listening. CoachError if the port
        is taken or the server fails to start."""
        if self._thread is not None:
            raise RuntimeError("the server is already started")
        sock = _bind(self.host, self.port)
        self.port = sock.getsockname()[1]
        self._server = _Server(_config(self.app, self.host, self.port), self._ready)
        self._thread = threading.Thread(
            target=self._run, args=(sock,), name=f"coach-service-{self.port}", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(timeout) or not self._server.started:
            self.stop()
            why = f": {self._error}" if self._error else ""
            raise CoachError(f"the service on {self.url} did not start{why}")
        return self

    def _run(self, sock: socket.socket) -> None:
        assert self._server is not None
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._server.serve(sockets=[sock]))
        except BaseException as e:  # SystemExit from a failed startup, or a crash
            self._error = e
            log.error("service: stopped with %r", e)
        finally:
            self._ready.set()
            sock.close()
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

    def stop(self, timeout: float = 2.0) -> None:
        """Shut down: clients get a close frame, then the thread ends (within ~timeout)."""
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout * 0.75)
        if self._thread.is_alive():  # a client that does not finish its close handshake
            self._server.force_exit = True
            self._thread.join(timeout * 0.25 + 1.0)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_forever(app: Any, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
    """Serve ``app`` in the foreground until Ctrl-C / SIGTERM. CoachError if the port
    is taken."""
    sock = _bind(host, port)
    try:
        uvicorn.Server(_config(app, host, sock.getsockname()[1])).run(sockets=[sock])
    finally:
        sock.close()
